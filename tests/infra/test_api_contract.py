"""README's error table, read off the synthesized template: routes, preflight and gateway responses.

A request reaches the function only through a method of the template; everything else is
answered by API Gateway itself (a gateway response) or by the firewall in front of the stage.
These tests walk the template as API Gateway routes a request, hand the routed event to the real
handler for the answers README gives to other methods and paths, and check that each of API
Gateway's own answers is the contract's JSON error with the CORS headers the page needs to read it.
The template is read with ``local_stack.template``, the reader the local stack runs, so what is
checked here is what ``make demo`` serves; the last test sends the local gateway's own answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request

from tests.support import readme_error_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLER = "lambda_fn.handler.lambda_handler"
MESSAGE = "$context.error.messageString"  # API Gateway's message for the error, JSON-quoted already
QUOTED_MESSAGE = 'a "quoted" message with a \\ backslash'
SITE = "https://d111111abcdef8.cloudfront.net"  # stands for the distribution's domain
EVIL = "https://evil.example"

# README's error table, the rows API Gateway and the firewall answer themselves:
# response type -> (status, or None where API Gateway keeps its own, error code).
GATEWAY_ERRORS = {
    "DEFAULT_4XX": (None, "request_rejected"),
    "DEFAULT_5XX": (None, "gateway_error"),
    "INTEGRATION_FAILURE": (None, "function_unavailable"),
    "INTEGRATION_TIMEOUT": ("504", "gateway_timeout"),
    "REQUEST_TOO_LARGE": ("413", "payload_too_large"),
    "THROTTLED": ("429", "too_many_requests"),
    "WAF_FILTERED": ("403", "forbidden"),
}
RETRY_AFTER = {"THROTTLED": "1"}
# README's rows the function answers, for methods and paths API Gateway must hand to it.
HANDLER_ROUTES = [
    ("POST", "/predict", 400, "invalid_request"),  # an empty body: the function refuses it
    ("GET", "/predict", 405, "method_not_allowed"),
    ("PUT", "/predict", 405, "method_not_allowed"),
    ("DELETE", "/predict", 405, "method_not_allowed"),
    ("PATCH", "/predict", 405, "method_not_allowed"),
    ("GET", "/", 404, "not_found"),
    ("POST", "/", 404, "not_found"),
    ("GET", "/foo", 404, "not_found"),
    ("POST", "/v2/predict", 404, "not_found"),
    ("POST", "/predict/extra", 404, "not_found"),
    ("GET", "/a/b/c", 404, "not_found"),
]


# --- reading the template: local_stack.template, the reader the local stack runs -------------------

def model(synth):
    """The synthesized stack as the local stack reads it, the distribution's origin mapped to SITE."""
    from local_stack.template import Addresses, model_of

    return model_of(synth.json, base_dir=synth.outdir,
                    addresses=Addresses(site_origin=SITE, api_origin="https://api.invalid"))


def rest_api_id(synth) -> str:
    return model(synth).api.logical_id


def routes(synth) -> dict[str, dict[str, Any]]:
    """{resource path: {HTTP method: the method}}, as local_stack.template walks PathPart and ParentId."""
    return model(synth).api.resources


def method_for(synth, http_method: str, path: str):
    """The method API Gateway gives ``path``, or None (its 403 Missing Authentication Token)."""
    api = model(synth).api
    matched = api.match(path)
    return None if matched is None else api.method(matched[0], http_method)


def function_id(synth) -> str:
    (found,) = [name for name, f in synth.resources("AWS::Lambda::Function").items()
                if f["Properties"].get("Handler") == HANDLER]
    return found


def reaches_the_function(synth, method) -> bool:
    if method is None:
        return False
    integration = method.integration
    return (integration.type == "AWS_PROXY" and integration.http_method == "POST"
            and integration.function == function_id(synth) and method.authorization_type == "NONE")


def gateway_responses(synth) -> dict[str, Any]:
    return model(synth).api.gateway_responses


def response_headers(response) -> dict[str, str]:
    """A gateway response's headers, each a quoted static value in the template, unquoted."""
    headers = {}
    for name, text in response.headers.items():
        assert text.startswith("'") and text.endswith("'"), f"{name} is not a static value: {text}"
        headers[name] = text[1:-1]
    return headers


def contract_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": SITE, "Access-Control-Expose-Headers": "Retry-After",
            "Vary": "Origin", "X-Content-Type-Options": "nosniff", **(extra or {})}


def handler_answer(synth, monkeypatch, http_method: str, path: str, origin: str | None = None):
    """Route a request through the template and answer it with the real handler, as in AWS."""
    from local_stack.bootstrap import LambdaContext
    from local_stack.gateway import build_event

    function = model(synth).function()
    monkeypatch.setenv("ALLOWED_ORIGINS", function.environment["ALLOWED_ORIGINS"])
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"} if origin else {}
    request = Request(EnvironBuilder(path=f"/prod{path}", method=http_method, headers=headers).get_environ())
    matched = model(synth).api.match(path)
    assert matched is not None
    event = build_event(request, b"", resource=matched[0], path=path, path_parameters=matched[1], stage="prod",
                        api_id="api", request_id="r")
    from lambda_fn.handler import lambda_handler

    answer = lambda_handler(event, LambdaContext("r", 2**62))
    headers = {k.lower(): v[-1] for k, v in answer.get("multiValueHeaders", {}).items()}
    headers.update({k.lower(): v for k, v in (answer.get("headers") or {}).items()})
    return answer["statusCode"], headers, json.loads(answer["body"]) if answer.get("body") else None


# --- routes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("http_method, path, status, code", HANDLER_ROUTES)
def test_every_method_and_path_reaches_the_function_which_answers_as_readme_says(
        serverless, monkeypatch, http_method: str, path: str, status: int, code: str) -> None:
    assert reaches_the_function(serverless, method_for(serverless, http_method, path)), \
        f"{http_method} {path} gets API Gateway's 403 Missing Authentication Token"
    answer_status, headers, body = handler_answer(serverless, monkeypatch, http_method, path, SITE)
    assert (answer_status, body["error"]) == (status, code)
    if status == 405:
        assert headers["allow"] == "OPTIONS, POST"


def test_every_method_of_the_api_is_a_proxy_to_the_function(serverless) -> None:
    table = routes(serverless)
    assert set(table) == {"/", "/predict", "/predict/{proxy+}", "/{proxy+}"}
    for path, methods in table.items():
        assert set(methods) == {"ANY"}, f"{path} has {sorted(methods)}: no MOCK, no other integration"
        assert reaches_the_function(serverless, methods["ANY"]), path


def test_the_function_may_be_invoked_by_this_api_and_stage_only(serverless) -> None:
    """Through its live alias (the version the deploy published), by API Gateway's permissions only."""
    (alias_id,) = serverless.resources("AWS::Lambda::Alias")
    assert serverless.resources("AWS::Lambda::Alias")[alias_id]["Properties"]["FunctionName"] == {
        "Ref": function_id(serverless)}
    permissions = [p["Properties"] for p in serverless.resources("AWS::Lambda::Permission").values()]
    assert permissions and all(p["FunctionName"] == {"Ref": alias_id} for p in permissions)
    api_id = rest_api_id(serverless)
    stage_id = next(iter(serverless.resources("AWS::ApiGateway::Stage")))
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = serverless.render(permission["SourceArn"])
        assert source.startswith(f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:"
                                 f"${{{api_id}}}/${{{stage_id}}}/"), source  # no test-invoke, no other API


# --- preflight -----------------------------------------------------------------------------------

def test_preflights_reach_the_function_and_its_allowlist(serverless, monkeypatch) -> None:
    assert reaches_the_function(serverless, method_for(serverless, "OPTIONS", "/predict"))
    status, headers, _ = handler_answer(serverless, monkeypatch, "OPTIONS", "/predict", SITE)
    assert status in (200, 204)
    assert headers["access-control-allow-origin"] == SITE
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-max-age"] == "600"
    status, headers, _ = handler_answer(serverless, monkeypatch, "OPTIONS", "/predict", EVIL)
    assert "access-control-allow-origin" not in headers


def test_one_max_age_the_handlers(serverless) -> None:
    """No MOCK preflight in the template, so no second Max-Age (or origin list) to drift from the handler's."""
    text = json.dumps(serverless.json)
    assert "Access-Control-Max-Age" not in text and "Access-Control-Allow-Methods" not in text
    for method in serverless.resources("AWS::ApiGateway::Method").values():
        assert method["Properties"]["Integration"]["Type"] != "MOCK"


# --- API Gateway's own answers -------------------------------------------------------------------

def test_gateway_responses_are_the_contracts_json_errors_with_cors(serverless) -> None:
    found = gateway_responses(serverless)
    assert set(found) == set(GATEWAY_ERRORS)
    for kind, (status, code) in GATEWAY_ERRORS.items():
        response = found[kind]
        assert response.status == (None if status is None else int(status)), kind
        retry = {"Retry-After": RETRY_AFTER[kind]} if kind in RETRY_AFTER else {}
        assert response_headers(response) == contract_headers(retry), kind
        (template,) = response.templates.values()
        assert list(response.templates) == ["application/json"]
        assert MESSAGE in template, f"{kind}: the message should be API Gateway's own"
        body = json.loads(template.replace(MESSAGE, json.dumps(QUOTED_MESSAGE)))
        assert body == {"error": code, "message": QUOTED_MESSAGE}, kind


def test_the_firewall_answers_429_with_the_contracts_json_error(serverless) -> None:
    acl = serverless.one("AWS::WAFv2::WebACL")["Properties"]
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    (rule,) = acl["Rules"]
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement == {"AggregateKeyType": "IP", "EvaluationWindowSec": 300, "Limit": 300}
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    (read,) = model(serverless).api.stages["prod"].firewall.rules  # as the local stack reads (and runs) it
    assert read.custom_response.headers == contract_headers({"Retry-After": "60"})
    body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    parsed = json.loads(body["Content"])
    assert set(parsed) == {"error", "message"} and parsed["error"] == "too_many_requests"
    assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True


def test_the_firewall_guards_the_apis_stage(serverless) -> None:
    (acl_id,) = serverless.resources("AWS::WAFv2::WebACL")
    (association,) = serverless.resources("AWS::WAFv2::WebACLAssociation").values()
    (stage_id,) = serverless.resources("AWS::ApiGateway::Stage")
    props = association["Properties"]
    assert props["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    assert serverless.render(props["ResourceArn"]) == (
        f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/restapis/${{{rest_api_id(serverless)}}}"
        f"/stages/${{{stage_id}}}")
    # The ARN names the stage by name, which CloudFormation cannot see as a dependency.
    assert stage_id in association.get("DependsOn", [])


def test_the_firewall_can_be_turned_off_and_its_limit_set(instance, everything) -> None:
    instance.template.resource_count_is("AWS::WAFv2::WebACL", 0)
    instance.template.resource_count_is("AWS::WAFv2::WebACLAssociation", 0)
    (rule,) = everything.one("AWS::WAFv2::WebACL")["Properties"]["Rules"]
    assert rule["Statement"]["RateBasedStatement"]["Limit"] == 1000


# --- the local stack answers as the template does ------------------------------------------------

def test_the_local_gateway_sends_the_templates_gateway_responses(serverless) -> None:
    """Its own answers (413 over 10 MB, 502 when the function fails) are the template's, byte for byte:
    local_stack reads them from the template (the same reader as this module's), it holds no copy."""
    from local_stack.gateway import MAX_BODY_BYTES, ApiGateway
    from local_stack.lambda_runtime import FunctionFailed
    from local_stack.template import Addresses, model_of

    local = Addresses(site_origin="http://127.0.0.1:8000", api_origin="http://127.0.0.1:8001")
    stack = model_of(serverless.json, base_dir=serverless.outdir, addresses=local)

    class Failing:
        def invoke(self, event, *, request_id, integration_timeout_s):
            raise FunctionFailed({"errorType": "RuntimeError", "errorMessage": "boom"})

    client = Client(ApiGateway(stack.api, {function_id(serverless): Failing()}))
    found = gateway_responses(serverless)
    for kind, status, response in [
        ("REQUEST_TOO_LARGE", 413, client.post("/prod/predict", data=b"a" * (MAX_BODY_BYTES + 1))),
        ("DEFAULT_5XX", 502, client.post("/prod/predict", data=b"{}")),  # a failing function: API Gateway's 502
    ]:
        template = found[kind]
        assert response.status_code == status == (template.status or status), kind
        expected = {name: value.replace(SITE, local.site_origin) for name, value in response_headers(template).items()}
        sent = {name: value for name, value in response.headers.items()
                if name.lower() not in ("content-type", "content-length", "x-amzn-requestid", "x-amzn-errortype")}
        assert sent == expected, kind
        (content_type,) = template.templates
        assert response.content_type == content_type
        message = json.loads(response.data)["message"]
        assert message == {"REQUEST_TOO_LARGE": "Request Too Long", "DEFAULT_5XX": "Internal server error"}[kind]
        assert response.data == template.templates[content_type].replace(MESSAGE, json.dumps(message)).encode(), kind
    assert stack.api.resources.keys() == routes(serverless).keys()  # and the same resources


# --- README's table of API Gateway's own answers -------------------------------------------------


def test_readme_lists_every_answer_api_gateway_and_its_firewall_give() -> None:
    from infra.gateway_responses import GATEWAY_ERRORS as TEMPLATE_ERRORS
    from infra.gateway_responses import RATE_LIMITED

    rows = readme_error_rows()
    for error in [*TEMPLATE_ERRORS.values(), RATE_LIMITED]:
        status = str(error.status) if error.status else ("4xx" if "4XX" in error.response_type else "5xx")
        retry = error.extra_headers.get("Retry-After")
        matching = [row for row in rows if row[0] == status and f"`{error.code}`" in row[1]
                    and (retry is None or f"Retry-After: {retry}" in row[1])]
        assert matching, (f"README's error table has no row {status} `{error.code}`"
                          f"{f' (+ Retry-After: {retry})' if retry else ''} for {error.response_type}")
