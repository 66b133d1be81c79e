"""The API's Lambda: ``POST /predict`` behind API Gateway REST (v1) proxy integration.

Handler string ``lambda_fn.handler.lambda_handler``. Powertools for AWS Lambda does the
routing, CORS and structured logging; ``validation`` reads the request and ``endpoint``
featurizes it and calls SageMaker. Every response, errors included, carries the CORS
headers for an allowed ``Origin`` plus ``Vary: Origin``; every error body is
``{"error": "<code>", "message": "<what went wrong>"}``. API contract: docs/openapi.yaml.

Environment:
    ENDPOINT_NAME      the SageMaker endpoint to invoke
    FEATURIZER_URI     featurizer.json: ``s3://bucket/key`` or a local path (loaded once, cached)
    ALLOWED_ORIGINS    comma-separated exact origins allowed by CORS, or ``*``; unset allows none
    POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL   logger settings (default service "sentiment-api")
    POWERTOOLS_METRICS_NAMESPACE   when set, a ``ReviewsScored`` metric is emitted (CloudWatch EMF)

One JSON log line per request: request ids, method, path, status, latency, review count and,
for errors, the code; 5xx errors add a line naming the cause. Review text is never logged
(unless POWERTOOLS_LOGGER_LOG_EVENT=true, which logs whole events: debugging only).
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_fn import endpoint
from lambda_fn.validation import ApiError, parse_reviews

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "sentiment-api"))
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE; no namespace, no metrics
JSON = "application/json"


def cors_config(allowed_origins: str) -> CORSConfig:
    """CORS for a comma-separated list of exact origins, or ``*``.

    Powertools answers a matching ``Origin`` with that origin (``*`` when configured so)
    and sends no CORS header to any other origin; an empty list allows none.
    """
    origins = [origin.strip().rstrip("/") for origin in allowed_origins.split(",") if origin.strip()]
    first, *rest = ["*"] if "*" in origins else origins or [""]
    return CORSConfig(allow_origin=first, extra_origins=rest, expose_headers=["Retry-After"], max_age=600)


@functools.cache
def resolver(allowed_origins: str) -> APIGatewayRestResolver:
    """The REST resolver for one ALLOWED_ORIGINS value (built once per execution environment)."""
    if not allowed_origins.strip():
        logger.warning("ALLOWED_ORIGINS is not set: no browser page on another origin can call this API")
    app = APIGatewayRestResolver(cors=cors_config(allowed_origins))

    @app.post("/predict")
    def predict() -> dict[str, Any]:
        event = app.current_event
        reviews = parse_reviews(event.body, bool(event.is_base64_encoded), event.headers.get("content-type"))
        logger.append_keys(review_count=len(reviews))
        scored = endpoint.predict(reviews, os.environ.get("ENDPOINT_NAME"), os.environ.get("FEATURIZER_URI"))
        logger.append_keys(
            featurize_ms=round(scored.featurize_ms, 3),
            endpoint_ms=round(scored.endpoint_ms, 3),
            variant=scored.body["variant"],
        )
        if metrics.namespace:
            metrics.add_metric(name="ReviewsScored", unit=MetricUnit.Count, value=len(reviews))
        return scored.body

    @app.not_found
    def not_found(_: NotFoundError) -> Response:
        method = app.current_event.http_method
        if app.current_event.path == "/predict":
            return error_response(ApiError(
                405, "method_not_allowed", f"{method} is not allowed on /predict; use POST",
                headers={"Allow": "OPTIONS, POST"},
            ))
        return error_response(ApiError(404, "not_found", "no such resource; this API serves POST /predict"))

    app.exception_handler(ApiError)(error_response)
    app.exception_handler(Exception)(internal_error)
    return app


def error_response(error: ApiError) -> Response:
    """The JSON error response; an error with a detail (the 5xx ones) also logs its cause."""
    logger.append_keys(error=error.code)
    if error.detail:
        logger.error(error.detail, status=error.status)
    body = {"error": error.code, "message": error.message}
    return Response(status_code=error.status, content_type=JSON, body=body, headers=error.headers)


def internal_error(exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered without internals."""
    logger.exception("unhandled error", exc_info=exc)
    return error_response(ApiError(500, "internal_error", "internal error; it has been logged"))


def _is_rest_proxy_event(event: Any) -> bool:
    return isinstance(event, dict) and all(isinstance(event.get(key), str) for key in ("httpMethod", "path"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway REST proxy event with a proxy response."""
    started = time.perf_counter()
    if not _is_rest_proxy_event(event):
        logger.error("not an API Gateway REST proxy event; invoke this function through API Gateway")
        body = {"error": "invalid_event", "message": "not an API Gateway REST proxy event"}
        return {"statusCode": 400, "multiValueHeaders": {"Content-Type": [JSON]}, "body": json.dumps(body),
                "isBase64Encoded": False}
    response = resolver(os.environ.get("ALLOWED_ORIGINS", "")).resolve(event, context)
    headers = response.setdefault("multiValueHeaders", {})
    headers["Vary"] = ["Origin"]  # the CORS headers depend on the Origin: keep caches honest
    headers["X-Content-Type-Options"] = ["nosniff"]
    logger.info(
        "request",
        method=event["httpMethod"],
        path=event["path"],
        status=response["statusCode"],
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    if metrics.metric_set:
        metrics.flush_metrics()
    return response
