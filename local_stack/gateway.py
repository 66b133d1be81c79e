"""A local stand-in for API Gateway (REST, proxy integration) in front of the real Lambda handler.

Every request that is not for a static file of ``web/`` becomes the event API Gateway would
send, through the template's resources (:data:`RESOURCES`, each with one ``ANY`` method):
``/`` and ``/predict`` as such, anything below ``/predict`` through ``/predict/{proxy+}`` and
any other path through ``/{proxy+}``, so the handler's own 404 and 405 answers (and its CORS
preflights) are the ones a client sees. The handler's proxy response is turned back into HTTP
the way API Gateway does it: ``headers`` and ``multiValueHeaders`` merged, a base64 body decoded
when ``isBase64Encoded``, and API Gateway's 502 when the handler raises or returns something
that is not a proxy response.

The answers this gateway gives itself (that 502, and 413 over 10 MB) are the template's gateway
responses: the bodies and headers of ``infra/gateway_responses.py``, with CORS for the page's
origin (``tests/infra/test_api_contract.py`` compares them with the synthesized template).

Bodies: a body that is valid UTF-8 is passed as text; any other body is passed base64-encoded
with ``isBase64Encoded: true``, as API Gateway does for binary media types, so the handler
sees the exact bytes and can refuse them itself. Bodies over 10 MB (API Gateway's payload
quota) are refused here with 413, before the handler runs.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.utils import send_from_directory
from werkzeug.wrappers import Request, Response

from infra.gateway_responses import FUNCTION_FAILED, GATEWAY_ERRORS, JSON

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload quota
LAMBDA_TIMEOUT_MS = 30_000
STAGE = "local"
API_ID = "local"
ACCOUNT_ID = "000000000000"
PREDICT_RESOURCE = "/predict"
# The REST API's resources in the template (infra/api.py), each with one ANY method.
RESOURCES = ("/", PREDICT_RESOURCE, f"{PREDICT_RESOURCE}/{{proxy+}}", "/{proxy+}")
# Hop-by-hop and length headers are the gateway's business, not the handler's.
_DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding", "connection"}

Handler = Callable[[dict[str, Any], Any], Any]
logger = logging.getLogger(__name__)


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers and Powertools read."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "sentiment-predict-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:sentiment-predict-local"
    log_group_name: str = "/aws/lambda/sentiment-predict-local"
    log_stream_name: str = "local"
    timeout_ms: int = LAMBDA_TIMEOUT_MS
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build_event(request: Request, body: bytes) -> dict[str, Any]:
    """The API Gateway REST proxy event for ``request``, whose body has already been read."""
    path = request.path
    resource, path_parameters = route(path)

    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        multi_headers.setdefault(name, []).append(value)
    host = urlsplit(request.host_url).hostname or "localhost"
    multi_headers.setdefault("X-Forwarded-For", [request.remote_addr or "127.0.0.1"])
    multi_headers.setdefault("X-Forwarded-Proto", [request.scheme])
    multi_headers.setdefault("X-Forwarded-Port", [str(request.environ.get("SERVER_PORT", ""))])

    multi_query = {name: request.args.getlist(name) for name in request.args}

    if not body:
        event_body, is_base64 = None, False
    else:
        try:
            event_body, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event_body, is_base64 = base64.b64encode(body).decode("ascii"), True

    now = time.time()
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "extendedRequestId": request_id,
            "httpMethod": request.method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": request.remote_addr or "127.0.0.1",
                "user": None,
                "userAgent": request.headers.get("User-Agent"),
                "userArn": None,
            },
            "path": f"/{STAGE}{path}",
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": STAGE,
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }


def route(path: str) -> tuple[str, dict[str, str] | None]:
    """The resource of :data:`RESOURCES` API Gateway matches ``path`` to, and its path parameters."""
    if path in (PREDICT_RESOURCE, "/"):
        return path, None
    if path.startswith(f"{PREDICT_RESOURCE}/"):
        return f"{PREDICT_RESOURCE}/{{proxy+}}", {"proxy": path.removeprefix(f"{PREDICT_RESOURCE}/")}
    return "/{proxy+}", {"proxy": path.lstrip("/")}


class BadProxyResponse(ValueError):
    """The handler returned something API Gateway could not turn into an HTTP response."""


def to_http(result: Any) -> Response:
    """Turn a Lambda proxy response into HTTP, merging headers as API Gateway does."""
    if not isinstance(result, dict):
        raise BadProxyResponse(f"handler returned {type(result).__name__}, not a dict")
    status = result.get("statusCode")
    if type(status) is not int or not 100 <= status <= 599:
        raise BadProxyResponse(f"statusCode {status!r} is not an HTTP status code")
    body = result.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise BadProxyResponse(f"body is {type(body).__name__}, not a string")
    try:
        data = base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else body.encode()
    except ValueError as exc:
        raise BadProxyResponse(f"isBase64Encoded is true but the body is not base64: {exc}") from exc

    # multiValueHeaders win over headers for the same name (API Gateway's merge rule).
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, value in (result.get("headers") or {}).items():
        merged[name.lower()] = (name, [str(value)])
    for name, values in (result.get("multiValueHeaders") or {}).items():
        merged[name.lower()] = (name, [str(v) for v in values])
    headers = [
        (name, value)
        for key, (name, values) in merged.items()
        if key not in _DROPPED_RESPONSE_HEADERS
        for value in values
    ]
    response = Response(data, status=status, headers=headers)
    if "content-type" not in merged:
        response.headers["Content-Type"] = "application/json"  # API Gateway's default
    return response


class LocalGateway:
    """WSGI app: static ``web/`` files, a generated ``/config.json``, and the API via the handler.

    Handler calls are serialised: one Lambda execution environment runs one event at a time,
    and handlers may keep per-invocation state in module globals.
    """

    def __init__(self, handler: Handler, web_dir: str | Path, api_url: str):
        self.handler = handler
        self.web_dir = Path(web_dir).resolve()
        self.config = json.dumps({"apiUrl": api_url})
        # The page's origin (it is served here too): the one API Gateway's own answers allow.
        parts = urlsplit(api_url)
        self.site_origin = f"{parts.scheme}://{parts.netloc}"
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        try:
            response = self.dispatch(request)
        except HTTPException as exc:  # malformed requests the HTTP layer itself refuses
            response = exc.get_response(environ)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.method in ("GET", "HEAD") and request.path != PREDICT_RESOURCE:
            static = self.static(request)
            if static is not None:
                return static
        return self.invoke(request)

    def static(self, request: Request) -> Response | None:
        """The page's files, or None when ``web/`` has no such file (then the API answers)."""
        if request.path == "/config.json":
            response = Response(self.config, mimetype="application/json")
        else:
            name = "index.html" if request.path == "/" else request.path.lstrip("/")
            try:
                response = send_from_directory(self.web_dir, name, request.environ)
            except NotFound:
                return None
        response.cache_control.no_cache = True
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def invoke(self, request: Request) -> Response:
        """Run the handler on the request's proxy event and return its proxy response as HTTP."""
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return self.gateway_answer("REQUEST_TOO_LARGE", 413,
                                       f"the request body is over API Gateway's limit of {MAX_BODY_BYTES:,} bytes")
        event = build_event(request, body)
        context = LambdaContext(aws_request_id=event["requestContext"]["requestId"])
        try:
            with self._lock:
                result = self.handler(event, context)
            return to_http(result)
        except Exception:  # API Gateway answers 502 when the integration fails
            logger.exception("Lambda handler failed on %s %s", request.method, request.path)
            return self.gateway_answer("DEFAULT_5XX", 502, FUNCTION_FAILED)

    def gateway_answer(self, response_type: str, status: int, message: str) -> Response:
        """API Gateway's gateway response of ``response_type``, with ``message`` as its message."""
        error = GATEWAY_ERRORS[response_type]
        assert error.status in (None, status), (response_type, status)
        return Response(error.body(message), status=status, headers=error.headers(self.site_origin),
                        mimetype=JSON)
