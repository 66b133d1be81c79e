"""README's error table, read off the synthesized template: routes, preflight and gateway responses.

A request reaches the function only through a method of the template; everything else is
answered by API Gateway itself (a gateway response) or by the firewall in front of the stage.
These tests walk the template as API Gateway routes a request, hand the routed event to the real
handler for the answers README gives to other methods and paths, and check that each of API
Gateway's own answers is the contract's JSON error with the CORS headers the page needs to read it.
The last test checks that the local stack answers what the template would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request

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


# --- reading the template ------------------------------------------------------------------------

def rest_api_id(synth) -> str:
    (api_id,) = synth.resources("AWS::ApiGateway::RestApi")
    return api_id


def site_origin(synth) -> str:
    """The allowed origin as the template spells it (the distribution's domain, a token)."""
    distribution_id = next(iter(synth.resources("AWS::CloudFront::Distribution")))
    return f"https://${{{distribution_id}.DomainName}}"


def with_site(synth, value: Any) -> str:
    """A template string with the site's origin token replaced by SITE."""
    return synth.render(value).replace(site_origin(synth), SITE)


def routes(synth) -> dict[str, dict[str, dict[str, Any]]]:
    """{resource path: {HTTP method: the method's properties}}, paths built from PathPart and ParentId."""
    api_id = rest_api_id(synth)
    root = {"Fn::GetAtt": [api_id, "RootResourceId"]}
    resources = synth.resources("AWS::ApiGateway::Resource")

    def path_of(ref: Any) -> str:
        if ref == root:
            return "/"
        props = resources[ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId']).rstrip('/')}/{props['PathPart']}"

    table: dict[str, dict[str, dict[str, Any]]] = {"/": {}}
    for resource_id in resources:
        table[path_of({"Ref": resource_id})] = {}
    for method in synth.resources("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        assert props["RestApiId"] == {"Ref": api_id}
        table[path_of(props["ResourceId"])][props["HttpMethod"]] = props
    return table


def route(table: dict[str, dict[str, Any]], path: str) -> str | None:
    """The resource API Gateway matches ``path`` to, or None (its 403 Missing Authentication Token).

    Segment by segment from the root: a literal child first, else the greedy ``{proxy+}`` child
    of the resource reached so far. No backtracking is assumed: a path that matched a literal
    resource is not handed to a ``{proxy+}`` higher up, so every literal resource needs its own.
    """
    current = "/"
    segments = [s for s in path.split("/") if s]
    for i, segment in enumerate(segments):
        literal = f"{current.rstrip('/')}/{segment}"
        greedy = f"{current.rstrip('/')}/{{proxy+}}"
        if literal in table:
            current = literal
        elif greedy in table:
            return greedy
        else:
            return None
    return current


def method_for(table, http_method: str, path: str) -> dict[str, Any] | None:
    resource = route(table, path)
    if resource is None:
        return None
    methods = table[resource]
    return methods.get(http_method) or methods.get("ANY")


def function_id(synth) -> str:
    (found,) = [name for name, f in synth.resources("AWS::Lambda::Function").items()
                if f["Properties"].get("Handler") == HANDLER]
    return found


def reaches_the_function(synth, method: dict[str, Any] | None) -> bool:
    if method is None:
        return False
    integration = method["Integration"]
    uri = synth.render(integration["Uri"])
    return (integration["Type"] == "AWS_PROXY" and integration["IntegrationHttpMethod"] == "POST"
            and f"${{{function_id(synth)}.Arn}}" in uri and method["AuthorizationType"] == "NONE")


def gateway_responses(synth) -> dict[str, dict[str, Any]]:
    found = {}
    for response in synth.resources("AWS::ApiGateway::GatewayResponse").values():
        props = response["Properties"]
        assert props["RestApiId"] == {"Ref": rest_api_id(synth)}
        found[props["ResponseType"]] = props
    return found


def response_headers(synth, props: dict[str, Any]) -> dict[str, str]:
    """A gateway response's headers, each a quoted static value in the template, unquoted."""
    headers = {}
    for name, value in props.get("ResponseParameters", {}).items():
        text = with_site(synth, value)
        assert text.startswith("'") and text.endswith("'"), f"{name} is not a static value: {text}"
        headers[name.removeprefix("gatewayresponse.header.")] = text[1:-1]
    return headers


def contract_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": SITE, "Access-Control-Expose-Headers": "Retry-After",
            "Vary": "Origin", "X-Content-Type-Options": "nosniff", **(extra or {})}


def handler_answer(synth, monkeypatch, http_method: str, path: str, origin: str | None = None):
    """Route a request through the template and answer it with the real handler, as in AWS."""
    from local_stack.gateway import LambdaContext, build_event

    env = synth.json["Resources"][function_id(synth)]["Properties"]["Environment"]["Variables"]
    monkeypatch.setenv("ALLOWED_ORIGINS", with_site(synth, env["ALLOWED_ORIGINS"]))
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"} if origin else {}
    event = build_event(Request(EnvironBuilder(path=path, method=http_method, headers=headers).get_environ()), b"")
    resource = route(routes(synth), path)
    assert event["resource"] == resource, "the local gateway routes this path to another resource"
    from lambda_fn.handler import lambda_handler

    answer = lambda_handler(event, LambdaContext())
    headers = {k.lower(): v[-1] for k, v in answer.get("multiValueHeaders", {}).items()}
    headers.update({k.lower(): v for k, v in (answer.get("headers") or {}).items()})
    return answer["statusCode"], headers, json.loads(answer["body"]) if answer.get("body") else None


# --- routes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("http_method, path, status, code", HANDLER_ROUTES)
def test_every_method_and_path_reaches_the_function_which_answers_as_readme_says(
        serverless, monkeypatch, http_method: str, path: str, status: int, code: str) -> None:
    assert reaches_the_function(serverless, method_for(routes(serverless), http_method, path)), \
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
    permissions = [p["Properties"] for p in serverless.resources("AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id(serverless), "Arn"]}]
    assert permissions
    api_id = rest_api_id(serverless)
    stage_id = next(iter(serverless.resources("AWS::ApiGateway::Stage")))
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = serverless.render(permission["SourceArn"])
        assert source.startswith(f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:"
                                 f"${{{api_id}}}/${{{stage_id}}}/"), source  # no test-invoke, no other API


# --- preflight -----------------------------------------------------------------------------------

def test_preflights_reach_the_function_and_its_allowlist(serverless, monkeypatch) -> None:
    assert reaches_the_function(serverless, method_for(routes(serverless), "OPTIONS", "/predict"))
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
        props = found[kind]
        assert props.get("StatusCode") == status, kind
        retry = {"Retry-After": RETRY_AFTER[kind]} if kind in RETRY_AFTER else {}
        assert response_headers(serverless, props) == contract_headers(retry), kind
        (template,) = props["ResponseTemplates"].values()
        assert list(props["ResponseTemplates"]) == ["application/json"]
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
    headers = {h["Name"]: with_site(serverless, h["Value"]) for h in response["ResponseHeaders"]}
    assert headers == contract_headers({"Retry-After": "60"})
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
    """Its own answers (413 over 10 MB, 502 when the handler fails) match the template's, byte for byte."""
    from local_stack import gateway
    from local_stack.gateway import MAX_BODY_BYTES, LocalGateway

    local_origin = "http://127.0.0.1:8000"

    def failing(event, context):
        raise RuntimeError("boom")

    client = Client(LocalGateway(failing, REPO_ROOT / "web", api_url=local_origin))
    found = gateway_responses(serverless)
    for kind, status, response in [
        ("REQUEST_TOO_LARGE", 413, client.post("/predict", data=b"a" * (MAX_BODY_BYTES + 1))),
        ("DEFAULT_5XX", 502, client.post("/predict", data=b"{}")),  # a failing function: API Gateway's 502
    ]:
        props = found[kind]
        assert response.status_code == status == int(props.get("StatusCode", status)), kind
        expected = {name: value.replace(SITE, local_origin)
                    for name, value in response_headers(serverless, props).items()}
        sent = {name: value for name, value in response.headers.items()
                if name.lower() not in ("content-type", "content-length")}
        assert sent == expected, kind
        (content_type,) = props["ResponseTemplates"]
        assert response.content_type == content_type
        message = json.loads(response.data)["message"]
        template = props["ResponseTemplates"][content_type]
        assert response.data == template.replace(MESSAGE, json.dumps(message)).encode(), kind
    assert set(getattr(gateway, "RESOURCES", ())) == set(routes(serverless))  # and the same resources


# --- README's table of API Gateway's own answers -------------------------------------------------

def readme_error_rows() -> list[tuple[str, str, str]]:
    """(status, code cell, when) for every row of README's error tables in "The API"."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**Errors**"):text.index("**CORS**")]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("status", "---"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


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
