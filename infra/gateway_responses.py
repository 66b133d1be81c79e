"""The answers API Gateway and its firewall give without calling the function: one table.

``infra/api.py`` turns :data:`GATEWAY_ERRORS` into the template's gateway responses and
:data:`RATE_LIMITED` into the firewall's 429; the local stack reads both back from the synthesized
template (``local_stack.template``) and sends them as API Gateway and the firewall would. Each body
is the API's contract, ``{"error": "<code>", "message": "..."}``; each answer carries CORS for the
site's origin (static: API Gateway cannot run the function's allowlist for its own answers, and the
site is the only origin allowed in AWS), ``Vary: Origin`` and ``X-Content-Type-Options: nosniff``.

The message is API Gateway's own, ``$context.error.messageString``, which it writes as a JSON
string (quotes and all), so the body stays valid JSON whatever the message says. The firewall's
body cannot use API Gateway's variables, so its message is written here.

Pure Python, no aws_cdk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MESSAGE = "$context.error.messageString"  # API Gateway's message for the error, already JSON-quoted
JSON = "application/json"


@dataclass(frozen=True)
class GatewayError:
    """One of API Gateway's answers: its response type, status, the contract's code, extra headers."""

    response_type: str  # API Gateway's gateway response type (aws_apigateway.ResponseType)
    code: str
    status: int | None  # None: the status API Gateway gives the error (DEFAULT_4XX / DEFAULT_5XX)
    when: str  # for README's error table
    extra_headers: dict[str, str] = field(default_factory=dict)
    message: str = MESSAGE  # or a fixed message, where API Gateway's variables do not exist

    def template(self) -> str:
        """The body template: JSON once API Gateway puts its (JSON-quoted) message in."""
        message = self.message if self.message == MESSAGE else json.dumps(self.message)
        return f'{{"error": {json.dumps(self.code)}, "message": {message}}}'

    def body(self, message: str) -> bytes:
        """The body API Gateway sends when its message for the error is ``message``."""
        return self.template().replace(MESSAGE, json.dumps(message)).encode()

    def headers(self, origin: str) -> dict[str, str]:
        """Every header of the answer but Content-Type (application/json) and Content-Length."""
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": "Retry-After",  # as the function's CORS answers say
            "Vary": "Origin",
            "X-Content-Type-Options": "nosniff",
            **self.extra_headers,
        }


GATEWAY_ERRORS = {e.response_type: e for e in (
    GatewayError("THROTTLED", "too_many_requests", 429,
                 "the stage's (or the account's) request rate is exceeded",
                 extra_headers={"Retry-After": "1"}),  # the stage's token bucket refills every second
    GatewayError("REQUEST_TOO_LARGE", "payload_too_large", 413, "the body is over API Gateway's 10 MB"),
    GatewayError("INTEGRATION_TIMEOUT", "gateway_timeout", 504, "the function gave no answer in 29 s"),
    GatewayError("INTEGRATION_FAILURE", "function_unavailable", None,
                 "the function could not be invoked, e.g. at its reserved concurrency"),
    GatewayError("WAF_FILTERED", "forbidden", 403, "the firewall blocked the request"),
    GatewayError("DEFAULT_4XX", "request_rejected", None, "any other request API Gateway refuses"),
    GatewayError("DEFAULT_5XX", "gateway_error", None,
                 "502 when the function fails or breaks the proxy contract; any other 5XX of API Gateway"),
)}

# The firewall's answer to a client over its per-address limit (a rate-based rule blocks it
# until its rate in the last 5 minutes falls under the limit again).
RATE_LIMIT_WINDOW_S = 300
RATE_LIMITED = GatewayError(
    "WAF_RATE_LIMIT", "too_many_requests", 429, "one address sent more than the firewall's limit in 5 minutes",
    extra_headers={"Retry-After": "60"},
    message="too many requests from your address; wait a minute and try again",
)

# API Gateway's own message for a failing Lambda proxy integration.
FUNCTION_FAILED = "Internal server error"
