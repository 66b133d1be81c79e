"""The API's Lambda: ``POST /predict`` behind API Gateway REST (v1) proxy integration.

Handler string ``lambda_fn.handler.lambda_handler``. Powertools for AWS Lambda does the
routing, CORS and structured logging; ``validation`` reads the request and ``endpoint``
featurizes it and calls SageMaker. Every response, errors included, carries the CORS
headers for an allowed ``Origin`` plus ``Vary: Origin``; every error body is
``{"error": "<code>", "message": "<what went wrong>"}``. An invocation that is not a REST
proxy event (a field missing or of a type API Gateway never sends) gets 400 ``invalid_event``
naming the field. API contract: docs/openapi.yaml.

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
import re
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.util import extract_origin_header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_fn import endpoint
from lambda_fn.validation import ApiError, json_type, parse_reviews, shorten

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "sentiment-api"))
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE; no namespace, no metrics
JSON = "application/json"
# Powertools' REST route regex is "^/predict/*$", whose "$" also matches before a final newline
PREDICT_PATH = re.compile(r"/predict/*")
HTTP_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


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
        if not PREDICT_PATH.fullmatch(event.path):
            raise NotFoundError()  # answered by not_found below
        reviews = parse_reviews(event.body, bool(event.is_base64_encoded), content_type(event))
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
        method = shorten(app.current_event.http_method)
        if PREDICT_PATH.fullmatch(app.current_event.path):
            return error_response(ApiError(
                405, "method_not_allowed", f"{method} is not allowed on /predict; use POST",
                headers={"Allow": "OPTIONS, POST"},
            ))
        return error_response(ApiError(404, "not_found", "no such resource; this API serves POST /predict"))

    app.exception_handler(ApiError)(error_response)
    app.exception_handler(Exception)(internal_error)
    return app


def content_type(event: APIGatewayProxyEvent) -> str | None:
    """The request's Content-Type, from the header field that Powertools' CORS reads Origin from.

    That field is ``resolved_headers_field``: multiValueHeaders when it holds any header, else
    headers (API Gateway sends both, alike). Its values are gathered here under every casing of
    the name, since the case-insensitive dict keeps only the last. Content-Type is a singleton
    header (RFC 9110, 5.3) and API Gateway's headers keep the last of repeated values where
    Powertools reads the first Origin: rather than guess, different values are a 400.
    """
    multi_value_headers = event.get("multiValueHeaders")
    field = multi_value_headers or {name: [value] for name, value in (event.get("headers") or {}).items()}
    values = [value for name, values in field.items() if name.lower() == "content-type" for value in values]
    if len({value.strip().lower() for value in values}) > 1:
        message = f"Content-Type is sent {len(values)} times with different values; send it once"
        raise ApiError(400, "invalid_request", message)
    return values[0] if values else None


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


def event_problem(event: Any) -> str | None:
    """Why ``event`` is not an API Gateway REST proxy event, or None when it is one.

    Checks the fields that Powertools and this handler read against the types API Gateway
    sends, so that a hand-made or mis-wired invocation gets a 400 naming the field, not a 500
    (or a crash) from deep inside Powertools.
    """
    if not isinstance(event, dict):
        return f"the event is {json_type(event)}, not an object"
    for key in ("httpMethod", "path"):
        if key not in event:
            return f"{key!r} is missing"
        if not isinstance(event[key], str):
            return f"{key!r} is {json_type(event[key])}, not a string"
    if not HTTP_METHOD.fullmatch(event["httpMethod"]):
        return f"'httpMethod' is not an HTTP method: {shorten(event['httpMethod'])!r}"
    if not event["path"].startswith("/"):
        return f"'path' does not start with '/': {shorten(event['path'])!r}"
    problem = headers_problem(event)
    if problem:
        return problem
    body, is_base64 = event.get("body"), event.get("isBase64Encoded")
    if body is not None and not isinstance(body, str):
        return f"'body' is {json_type(body)}, not a string or null"
    if is_base64 is not None and not isinstance(is_base64, bool):
        return f"'isBase64Encoded' is {json_type(is_base64)}, not true or false"
    return None


def headers_problem(event: dict[str, Any]) -> str | None:
    """Why ``headers`` or ``multiValueHeaders`` is not what API Gateway sends, or None."""
    headers, multi_value_headers = event.get("headers"), event.get("multiValueHeaders")
    for key, field in (("headers", headers), ("multiValueHeaders", multi_value_headers)):
        if field is not None and not isinstance(field, dict):
            return f"{key!r} is {json_type(field)}, not an object or null"
    for name, value in (headers or {}).items():
        if not isinstance(value, str):
            return f"headers[{shorten(name)!r}] is {json_type(value)}, not a string"
    for name, values in (multi_value_headers or {}).items():
        if not isinstance(values, list) or not values:
            kind = "an empty list" if values == [] else json_type(values)
            return f"multiValueHeaders[{shorten(name)!r}] is {kind}, not a list of strings"
        for n, value in enumerate(values):
            if not isinstance(value, str):
                return f"multiValueHeaders[{shorten(name)!r}][{n}] is {json_type(value)}, not a string"
    return None


def invalid_event(event: Any, problem: str) -> dict[str, Any]:
    """The 400 for an event that is not from API Gateway, logged once; CORS if its headers are sound."""
    message = f"not an API Gateway REST proxy event: {problem}"
    logger.error(message, status=400, error="invalid_event")
    headers = {"Content-Type": JSON}
    if isinstance(event, dict) and not headers_problem(event):  # Powertools' CORS, as on every answer
        cors = cors_config(os.environ.get("ALLOWED_ORIGINS", ""))
        origin = cors.allowed_origin(extract_origin_header(APIGatewayProxyEvent(event).resolved_headers_field))
        headers.update(cors.to_dict(origin))
    return {"statusCode": 400, "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "body": json.dumps({"error": "invalid_event", "message": message}), "isBase64Encoded": False}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway REST proxy event with a proxy response."""
    started = time.perf_counter()
    problem = event_problem(event)
    if problem:
        return secure(invalid_event(event, problem))
    response = secure(resolver(os.environ.get("ALLOWED_ORIGINS", "")).resolve(event, context))
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


def secure(response: dict[str, Any]) -> dict[str, Any]:
    """Add the headers every answer carries."""
    headers = response.setdefault("multiValueHeaders", {})
    headers["Vary"] = ["Origin"]  # the CORS headers depend on the Origin: keep caches honest
    headers["X-Content-Type-Options"] = ["nosniff"]
    return response
