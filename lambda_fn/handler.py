"""The API's Lambda: ``POST /predict`` behind API Gateway REST (v1) proxy integration.

Handler string ``lambda_fn.handler.lambda_handler``. Powertools for AWS Lambda does the
routing, CORS, structured logging and X-Ray tracing; ``validation`` reads the request and
``endpoint`` featurizes it and calls SageMaker. Every response, errors included, carries the
CORS headers for an allowed ``Origin`` plus ``Vary: Origin``; every error body is
``{"error": "<code>", "message": "<what went wrong>"}``. An invocation that is not a REST
proxy event (a field missing or of a type API Gateway never sends) gets 400 ``invalid_event``
naming the field. API contract: docs/openapi.yaml.

Every answer of the resolver (the route, its errors, 404/405 and CORS preflights) passes
through three middlewares, outermost first: ``log_request`` (one log line, metrics flushed),
``add_shared_headers`` and ``answer_errors`` (an exception becomes its JSON error there, inside
the chain: Powertools' own exception handlers run after the middleware has unwound, so their
answers would get neither the headers nor the log line). The one answer the resolver never
gives is ``invalid_event``: such an event cannot be resolved, so that answer is built, headed
and logged by hand.

Environment:
    ENDPOINT_NAME      the SageMaker endpoint to invoke
    FEATURIZER_URI     featurizer.json: ``s3://bucket/key`` or a local path (loaded once, cached)
    ALLOWED_ORIGINS    comma-separated exact origins allowed by CORS, or ``*``; unset allows none
    POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL   logger and tracer settings (default service "sentiment-api")
    POWERTOOLS_METRICS_NAMESPACE   when set, metrics are emitted (CloudWatch EMF): ``ReviewsScored`` per
                                   request, and per review ``ReviewLength`` (tokens), ``OovRate`` (%) and
                                   ``ProbabilityPositive`` with the ``ModelVersion`` and ``Variant`` that
                                   scored it as dimensions (drift monitoring, ``sentiment.drift``)
    POWERTOOLS_TRACE_DISABLED      true turns X-Ray tracing off in Lambda (it is always off elsewhere)
    AWS_LAMBDA_INITIALIZATION_TYPE set by Lambda: with SnapStart or provisioned concurrency, init
                                   loads the featurizer and creates the client ahead (``snapshot``)

One JSON log line per request: request ids, method, path, status, latency, review count and,
for errors, the code; 5xx errors add a line naming the cause. Review text is never logged
(unless POWERTOOLS_LOGGER_LOG_EVENT=true, which logs whole events: debugging only) nor traced.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.util import extract_origin_header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambda_fn import endpoint, snapshot
from lambda_fn.validation import ApiError, json_type, parse_request, shorten
from sentiment.drift import oov_rate


class Untraced(BaseProvider, BaseSegment):
    """The Tracer's provider outside Lambda, where Powertools turns tracing off anyway: does nothing.

    Importing the X-Ray SDK outside Lambda builds a recorder that creates two botocore X-Ray
    clients for centralized sampling (about 150 ms on every import: tests, local stack, benchmarks);
    in Lambda (``LAMBDA_TASK_ROOT`` set, the SDK's own test) it does not, and the SDK is used.
    """

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield self

    @asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield self

    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...
    def close(self, end_time: int | None = None) -> None: ...
    def add_subsegment(self, subsegment: Any) -> None: ...
    def remove_subsegment(self, subsegment: Any) -> None: ...
    def patch(self, modules: Sequence[str]) -> None: ...
    def patch_all(self) -> None: ...


SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "sentiment-api")
logger = Logger(service=SERVICE)
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE; no namespace, no metrics
# The per-review drift metrics have dimensions of their own (model version, variant), so they are a
# metric set of their own: one EMF line per request, next to the one of ``metrics``.
drift_metrics = EphemeralMetrics(service=SERVICE)
# Off unless in Lambda (Powertools' rule; POWERTOOLS_TRACE_DISABLED=true turns it off there too).
# Only botocore is patched: the S3 and SageMaker calls become subsegments, nothing else is imported.
tracer = Tracer(service=SERVICE, patch_modules=["botocore"],
                provider=None if os.environ.get("LAMBDA_TASK_ROOT") else Untraced())
JSON = "application/json"
# On every answer: the CORS headers depend on the Origin (keep caches honest); no MIME sniffing.
SHARED_HEADERS = {"Vary": "Origin", "X-Content-Type-Options": "nosniff"}
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
    app.use([log_request, add_shared_headers, answer_errors])

    @app.post("/predict")
    def post_predict() -> dict[str, Any] | Response:
        event = app.current_event
        if not PREDICT_PATH.fullmatch(event.path):
            return not_found_or_not_allowed(event)
        reviews, explain = parse_request(event.body, bool(event.is_base64_encoded), content_type(event))
        logger.append_keys(review_count=len(reviews), **({"explain": explain} if explain is not False else {}))
        with tracer.provider.in_subsegment("## score_reviews") as subsegment:
            scored = endpoint.score_reviews(reviews, os.environ.get("ENDPOINT_NAME"), os.environ.get("FEATURIZER_URI"),
                                            explain)
            timings = {"featurize_ms": round(scored.featurize_ms, 3), "endpoint_ms": round(scored.endpoint_ms, 3)}
            subsegment.put_metadata("scored", {"review_count": len(reviews), **timings}, namespace=SERVICE)
        logger.append_keys(**timings, variant=scored.body["variant"])
        if metrics.namespace:
            metrics.add_metric(name="ReviewsScored", unit=MetricUnit.Count, value=len(reviews))
            add_drift_metrics(scored)
        return scored.body

    @app.not_found
    def not_found(_: NotFoundError) -> Response:
        return not_found_or_not_allowed(app.current_event)

    return app


def add_drift_metrics(scored: endpoint.Scored) -> None:
    """Each review's length in tokens, OOV rate (%) and probability, by model version and variant.

    Numbers only: no review text, term or explanation ever goes into a metric.
    """
    predictions = scored.body["predictions"]
    drift_metrics.namespace = metrics.namespace
    drift_metrics.add_dimension("ModelVersion", predictions[0]["model_version"])
    drift_metrics.add_dimension("Variant", scored.body["variant"] or "none")
    for measured, prediction in zip(scored.measured, predictions, strict=True):
        drift_metrics.add_metric(name="ReviewLength", unit=MetricUnit.Count, value=measured.tokens)
        drift_metrics.add_metric(name="OovRate", unit=MetricUnit.Percent,
                                 value=round(100 * oov_rate(measured.tokens, measured.oov), 4))
        drift_metrics.add_metric(name="ProbabilityPositive", unit=MetricUnit.NoUnit,
                                 value=prediction["probability_positive"])


# -- the middlewares, outermost first (APIGatewayRestResolver.use) -------------------------------------
def log_request(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """One log line per answer, with its status and latency; the request's metrics flushed."""
    started = time.perf_counter()
    response = next_middleware(app)
    logger.info(
        "request",
        method=app.current_event.http_method,
        path=app.current_event.path,
        status=response.status_code,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    if metrics.metric_set:
        metrics.flush_metrics()
    if drift_metrics.metric_set:
        drift_metrics.flush_metrics()
    return response


def add_shared_headers(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """The headers every answer carries (Powertools adds CORS after the middleware)."""
    response = next_middleware(app)
    response.headers.update(SHARED_HEADERS)
    return response


def answer_errors(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """An exception raised while answering becomes its JSON error answer, still inside the chain."""
    try:
        return next_middleware(app)
    except ApiError as error:
        return error_response(error)
    except Exception as exc:
        return internal_error(exc)


def not_found_or_not_allowed(event: APIGatewayProxyEvent) -> Response:
    """The 405 for another method on /predict, else the 404."""
    if PREDICT_PATH.fullmatch(event.path):
        return error_response(ApiError(
            405, "method_not_allowed", f"{shorten(event.http_method)} is not allowed on /predict; use POST",
            headers={"Allow": "OPTIONS, POST"},
        ))
    return error_response(ApiError(404, "not_found", "no such resource; this API serves POST /predict"))


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
    """The 400 for an event that is not from API Gateway: the one answer the resolver cannot give.

    So it is built here as the middlewares and Powertools would: the shared headers, CORS if
    the event's headers are sound, and one log line (the error itself).
    """
    message = f"not an API Gateway REST proxy event: {problem}"
    logger.error(message, status=400, error="invalid_event")
    headers = {"Content-Type": JSON, **SHARED_HEADERS}
    if isinstance(event, dict) and not headers_problem(event):  # Powertools' CORS, as on every answer
        cors = cors_config(os.environ.get("ALLOWED_ORIGINS", ""))
        origin = cors.allowed_origin(extract_origin_header(APIGatewayProxyEvent(event).resolved_headers_field))
        headers.update(cors.to_dict(origin))
    return {"statusCode": 400, "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "body": json.dumps({"error": "invalid_event", "message": message}), "isBase64Encoded": False}


if snapshot.init_ahead(os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")):
    resolver(os.environ.get("ALLOWED_ORIGINS", ""))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # the answer is summed up in the log line
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway REST proxy event with a proxy response."""
    problem = event_problem(event)
    if problem:
        return invalid_event(event, problem)
    return resolver(os.environ.get("ALLOWED_ORIGINS", "")).resolve(event, context)
