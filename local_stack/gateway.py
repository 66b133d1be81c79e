"""API Gateway (REST) as the template defines it, in front of the template's functions.

A request to ``http://<api>/<stage>/<path>`` goes through what API Gateway does, in its order,
each step read from the template (:class:`local_stack.template.RestApi`):

1. the stage (an unknown one is API Gateway's plain 403 ``Forbidden``);
2. the web ACL associated with the stage: its rate-based rules, per client address (a block is
   the rule's custom response, else the ``WAF_FILTERED`` gateway response);
3. the 10 MB payload quota (``REQUEST_TOO_LARGE``);
4. the resources and methods: the route is matched as API Gateway does (literal, ``{param}``,
   greedy ``{proxy+}``, no backtracking); no route or no method is ``MISSING_AUTHENTICATION_TOKEN``
   (403 "Missing Authentication Token");
5. the stage's throttling for that method (``MethodSettings``: a token bucket of the burst size,
   refilled at the rate), ``THROTTLED`` (429) when empty;
6. the integration: ``AWS_PROXY`` builds the REST proxy event and invokes the function through its
   execution environments (``local_stack.lambda_runtime``); ``MOCK`` answers with its integration
   response. The function's proxy response becomes HTTP as API Gateway does it (``headers`` and
   ``multiValueHeaders`` merged, a base64 body decoded when ``isBase64Encoded``).

API Gateway's own answers are the template's gateway responses (their status, headers and body
template, ``$context`` variables filled in), falling back to ``DEFAULT_4XX``/``DEFAULT_5XX`` and then
to API Gateway's built-in ``{"message": ...}``, with the message API Gateway gives for each error:
a function that fails (an exception, a crash, a timeout, an invalid proxy response) is a 502
"Internal server error"; one that Lambda does not run (at its reserved concurrency) is
``INTEGRATION_FAILURE`` with 500; an integration that has not answered within its
``TimeoutInMillis`` (29 s by default) is ``INTEGRATION_TIMEOUT`` (504) "Endpoint request timed out".

Bodies: one whose Content-Type is among the API's binary media types, or that is not valid UTF-8,
is passed base64-encoded with ``isBase64Encoded: true`` (the function sees the exact bytes and
can refuse them itself); any other as text.
"""

from __future__ import annotations

import base64
import collections
import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from local_stack.lambda_runtime import FunctionFailed, FunctionThrottled, IntegrationTimedOut
from local_stack.template import ACCOUNT_ID, Firewall, GatewayResponse, Method, RestApi, Stage

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload quota
JSON = "application/json"

# API Gateway's own messages ($context.error.message) and default statuses, by response type.
MISSING_AUTHENTICATION_TOKEN = ("MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token")
REQUEST_TOO_LARGE = ("REQUEST_TOO_LARGE", 413, "Request Too Long")
THROTTLED = ("THROTTLED", 429, "Too Many Requests")
WAF_FILTERED = ("WAF_FILTERED", 403, "Forbidden")
FUNCTION_ERROR = ("DEFAULT_5XX", 502, "Internal server error")  # no type of its own: DEFAULT_5XX
INTEGRATION_FAILURE = ("INTEGRATION_FAILURE", 500, "Internal server error")
INTEGRATION_TIMEOUT = ("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out")
CONFIGURATION_ERROR = ("API_CONFIGURATION_ERROR", 500, "Internal server error")
# Hop-by-hop and length headers are the gateway's business, not the function's.
_DROPPED_RESPONSE_HEADERS = {"content-length", "transfer-encoding", "connection"}
_CONTEXT_VARIABLE = re.compile(r"\$(\{)?((?:context|stageVariables)(?:\.[A-Za-z0-9_]+)+)(?(1)\})")

logger = logging.getLogger(__name__)


class Invoker(Protocol):
    """What the gateway needs of a function: one invocation, answered with its JSON payload."""

    def invoke(self, event: dict[str, Any], *, request_id: str, integration_timeout_s: float) -> str: ...


# --- the proxy event ------------------------------------------------------------------------------

def build_event(request: Request, body: bytes, *, resource: str, path: str, path_parameters: dict[str, str] | None,
                stage: str, api_id: str, request_id: str, stage_variables: dict[str, str] | None = None,
                binary_media_types: tuple[str, ...] = ()) -> dict[str, Any]:
    """The API Gateway REST proxy event for ``request`` (``path`` without the stage), body already read."""
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
    elif _is_binary(request.headers.get("Content-Type"), binary_media_types):
        event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        try:
            event_body, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            event_body, is_base64 = base64.b64encode(body).decode("ascii"), True

    now = time.time()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": stage_variables or None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "deploymentId": "local",
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
            "path": f"/{stage}{path}",
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": stage,
        },
        "body": event_body,
        "isBase64Encoded": is_base64,
    }


def _is_binary(content_type: str | None, binary_media_types: tuple[str, ...]) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return bool(media_type) and any(fnmatch.fnmatchcase(media_type, t.lower()) for t in binary_media_types)


class BadProxyResponse(ValueError):
    """The function returned something API Gateway cannot turn into an HTTP response."""


def to_http(payload: str) -> Response:
    """A Lambda proxy response (the function's JSON payload) as HTTP, headers merged as API Gateway does."""
    try:
        result = json.loads(payload)
    except ValueError as exc:
        raise BadProxyResponse(f"the function's answer is not JSON: {exc}") from None
    if not isinstance(result, dict):
        raise BadProxyResponse(f"the function returned {type(result).__name__}, not an object")
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
    headers, multi = result.get("headers") or {}, result.get("multiValueHeaders") or {}
    if not isinstance(headers, dict) or not isinstance(multi, dict):
        raise BadProxyResponse("headers and multiValueHeaders must be objects")

    # multiValueHeaders win over headers for the same name (API Gateway's merge rule).
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers.items():
        merged[name.lower()] = (name, [str(value)])
    for name, values in multi.items():
        if not isinstance(values, list):
            raise BadProxyResponse(f"multiValueHeaders[{name!r}] is not a list")
        merged[name.lower()] = (name, [str(v) for v in values])
    pairs = [(name, value) for key, (name, values) in merged.items()
             if key not in _DROPPED_RESPONSE_HEADERS for value in values]
    response = Response(data, status=status, headers=pairs)
    if "content-type" not in merged:
        response.headers["Content-Type"] = JSON  # API Gateway's default
    return response


# --- throttling and the firewall --------------------------------------------------------------------

class TokenBucket:
    """API Gateway's throttle: ``burst`` tokens, refilled at ``rate`` per second; a request takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.updated = float(burst), clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class RateLimiter:
    """A WAF rate-based rule: is this address over ``limit`` requests in the last ``window_s`` seconds?

    Every request the rule sees is counted, blocked ones included. Only the last ``limit + 1``
    times are kept per address, all the answer needs, and addresses idle for a whole window are
    forgotten. (AWS WAF checks rates every few seconds, so it blocks a little later than this.)
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._seen: dict[str, collections.deque[float]] = {}
        self._blocked: set[str] = set()
        self._lock = threading.Lock()
        self._swept = clock()

    def over(self, address: str) -> bool:
        with self._lock:
            now = self.clock()
            if now - self._swept > self.window_s:
                self._seen = {a: d for a, d in self._seen.items() if d and now - d[-1] < self.window_s}
                self._swept = now
            times = self._seen.setdefault(address, collections.deque(maxlen=self.limit + 1))
            times.append(now)
            over = len(times) > self.limit and now - times[0] < self.window_s
            if not over:
                self._blocked.discard(address)
            return over

    def newly_blocked(self, address: str) -> bool:
        """True the first time ``address`` is found over the limit since it last was under it."""
        with self._lock:
            if address in self._blocked:
                return False
            self._blocked.add(address)
            return True


# --- the gateway ----------------------------------------------------------------------------------

class ApiGateway:
    """WSGI app: the template's REST API, its functions reached through ``invokers`` (by logical id)."""

    def __init__(self, api: RestApi, invokers: Mapping[str, Invoker], *, clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] | None = None):
        self.api, self.invokers, self.clock = api, invokers, clock
        self.log = log or (lambda message: logger.warning("%s", message))
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._limiters: dict[tuple[str, str], RateLimiter] = {}
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
        request_id = str(uuid.uuid4())
        stage_name, _, rest = request.path.lstrip("/").partition("/")
        stage = self.api.stages.get(stage_name)
        if stage is None:  # no stage, no gateway responses: API Gateway's bare answer
            response = Response(json.dumps({"message": "Forbidden"}), status=403, mimetype=JSON)
            response.headers["x-amzn-ErrorType"] = "ForbiddenException"
            return self._stamp(response, request_id)
        context = _Context(request, request_id, stage, path="/" + rest)
        return self._stamp(self._through_stage(request, context), request_id)

    def _through_stage(self, request: Request, context: _Context) -> Response:
        stage = context.stage
        if stage.firewall is not None:
            blocked = self._firewall(stage, stage.firewall, request, context)
            if blocked is not None:
                return blocked
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return self.gateway_response(REQUEST_TOO_LARGE, context)
        matched = self.api.match(context.path)
        method = None if matched is None else self.api.method(matched[0], request.method)
        if matched is None or method is None:
            return self.gateway_response(MISSING_AUTHENTICATION_TOKEN, context)
        context.resource = method.resource_path
        throttle = stage.throttle_for(method)
        if throttle is not None and not self._bucket(stage, method, throttle.rate, throttle.burst).take():
            return self.gateway_response(THROTTLED, context)
        integration = method.integration
        if integration.type == "MOCK":
            return self._mock(method, context)
        if integration.type != "AWS_PROXY" or integration.function is None or integration.http_method != "POST":
            wrong_method = integration.http_method not in (None, "POST")
            self.log(f"{request.method} {context.path}: the {integration.type} integration of {method.logical_id} "
                     f"cannot be run" + (f" (Lambda is invoked with POST, not {integration.http_method})"
                                         if wrong_method else " locally"))
            return self.gateway_response(CONFIGURATION_ERROR, context)
        invoker = self.invokers.get(integration.function)
        if invoker is None:
            return self.gateway_response(CONFIGURATION_ERROR, context)
        event = build_event(request, body, resource=method.resource_path, path=context.path,
                            path_parameters=matched[1], stage=stage.name, api_id=self.api.api_id,
                            request_id=context.request_id, stage_variables=stage.variables,
                            binary_media_types=self.api.binary_media_types)
        try:
            payload = invoker.invoke(event, request_id=context.request_id,
                                     integration_timeout_s=integration.timeout_ms / 1000)
            return to_http(payload)
        except FunctionThrottled:
            return self.gateway_response(INTEGRATION_FAILURE, context)
        except IntegrationTimedOut:
            return self.gateway_response(INTEGRATION_TIMEOUT, context)
        except FunctionFailed:
            return self.gateway_response(FUNCTION_ERROR, context)
        except BadProxyResponse as exc:
            self.log(f"{request.method} {context.path}: malformed Lambda proxy response: {exc}")
            return self.gateway_response(FUNCTION_ERROR, context)

    # - steps -
    def _bucket(self, stage: Stage, method: Method, rate: float, burst: int) -> TokenBucket:
        key = (stage.name, method.logical_id)  # a bucket per method of the stage
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = TokenBucket(rate, burst, self.clock)
            return self._buckets[key]

    def _firewall(self, stage: Stage, firewall: Firewall, request: Request, context: _Context) -> Response | None:
        address = request.remote_addr or "127.0.0.1"
        for rule in firewall.rules:
            with self._lock:
                limiter = self._limiters.setdefault((stage.name, rule.name),
                                                    RateLimiter(rule.limit, rule.window_s, self.clock))
            over = limiter.over(address)
            if over and limiter.newly_blocked(address):  # logged once per block, not per request
                verb = "blocks" if rule.action == "Block" else "counts"
                self.log(f"web ACL {firewall.logical_id}: rule {rule.name} {verb} {address} "
                         f"(over {rule.limit} requests in {rule.window_s} s)")
            if over and rule.action == "Block":
                return self._waf_block(rule.custom_response, context)
        if firewall.default_action == "Block":
            return self._waf_block(firewall.default_response, context)
        return None

    def _waf_block(self, custom: Any, context: _Context) -> Response:
        if custom is None:  # API Gateway answers for the firewall
            return self.gateway_response(WAF_FILTERED, context)
        response = Response(custom.body or "", status=custom.status, content_type=custom.content_type)
        for name, value in custom.headers.items():
            response.headers[name] = value
        return response

    def _mock(self, method: Method, context: _Context) -> Response:
        integration = method.integration
        status = 200
        template = integration.request_templates.get(JSON) or next(iter(integration.request_templates.values()), None)
        if template is not None:
            try:
                status = int(json.loads(self._render(template, context))["statusCode"])
            except (ValueError, KeyError, TypeError):
                self.log(f"{method.logical_id}: its MOCK request template is not "
                         '{"statusCode": N} JSON; answering 200')
        chosen = next((r for r in integration.responses if r.selection_pattern is not None
                       and re.fullmatch(r.selection_pattern, str(status))), None)
        chosen = chosen or next((r for r in integration.responses if r.selection_pattern is None), None)
        if chosen is None:  # "No match for output mapping and no default output mapping configured"
            return self.gateway_response(CONFIGURATION_ERROR, context)
        content_type, body = next(iter(chosen.templates.items()), (JSON, ""))
        response = Response(self._render(body, context), status=chosen.status, content_type=content_type)
        for name, expression in chosen.headers.items():
            value = self._header_value(expression, context)
            if value is not None:
                response.headers[name.removeprefix("method.response.header.")] = value
        return response

    # - API Gateway's own answers -
    def gateway_response(self, error: tuple[str, int, str], context: _Context) -> Response:
        """The template's gateway response for ``error`` (type, status, message), as API Gateway sends it."""
        kind, status, message = error
        context.error = (kind, message)
        found: GatewayResponse | None = self.api.gateway_responses.get(kind) or self.api.gateway_responses.get(
            "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
        if found is None:
            response = Response(json.dumps({"message": message}), status=status, mimetype=JSON)
        else:
            templates = found.templates or {JSON: '{"message":$context.error.messageString}'}
            content_type = JSON if JSON in templates else next(iter(templates))
            response = Response(self._render(templates[content_type], context), status=found.status or status,
                                content_type=content_type)
            for name, expression in found.headers.items():
                value = self._header_value(expression, context)
                if value is not None:
                    response.headers[name] = value
        response.headers["x-amzn-ErrorType"] = _ERROR_TYPES.get(kind, "InternalServerErrorException")
        return response

    def _render(self, template: str, context: _Context) -> str:
        return _CONTEXT_VARIABLE.sub(lambda m: context.variable(m.group(2)), template)

    @staticmethod
    def _header_value(expression: str, context: _Context) -> str | None:
        """A mapping expression: a 'static' value, or a value of the request (method.request...)."""
        if len(expression) >= 2 and expression[0] == expression[-1] == "'":
            return expression[1:-1]
        for prefix, source in (("method.request.header.", context.request.headers),
                               ("method.request.querystring.", context.request.args)):
            if expression.startswith(prefix):
                return source.get(expression.removeprefix(prefix))
        if expression.startswith(("context.", "stageVariables.")):
            return context.variable(expression)
        return None

    @staticmethod
    def _stamp(response: Response, request_id: str) -> Response:
        response.headers.setdefault("x-amzn-RequestId", request_id)
        return response


_ERROR_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "REQUEST_TOO_LARGE": "RequestTooLargeException",
    "THROTTLED": "ThrottlingException",
    "WAF_FILTERED": "ForbiddenException",
    "INTEGRATION_TIMEOUT": "InternalServerErrorException",
}


class _Context:
    """What a gateway response template can read of the request ($context, $stageVariables)."""

    def __init__(self, request: Request, request_id: str, stage: Stage, path: str):
        self.request, self.request_id, self.stage, self.path = request, request_id, stage, path
        self.resource: str | None = None
        self.error: tuple[str, str] = ("", "")

    def variable(self, name: str) -> str:
        if name.startswith("stageVariables."):
            return self.stage.variables.get(name.removeprefix("stageVariables."), "")
        values = {
            "context.error.messageString": json.dumps(self.error[1]),
            "context.error.message": self.error[1],
            "context.error.responseType": self.error[0],
            "context.requestId": self.request_id,
            "context.extendedRequestId": self.request_id,
            "context.stage": self.stage.name,
            "context.httpMethod": self.request.method,
            "context.path": f"/{self.stage.name}{self.path}",
            "context.resourcePath": self.resource or "",
            "context.identity.sourceIp": self.request.remote_addr or "",
            "context.identity.userAgent": self.request.headers.get("User-Agent", ""),
            "context.domainName": urlsplit(self.request.host_url).hostname or "",
            "context.accountId": ACCOUNT_ID,
        }
        return values.get(name, "")  # API Gateway renders an unknown variable as nothing
