"""The local API Gateway alone, on the synthesized template, with a recording function and a fake clock.

These tests pin the translation (HTTP → REST proxy event → HTTP) and API Gateway's own answers as
the template defines them; test_api.py and test_errors.py run the real stack over HTTP.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid

import pytest
from werkzeug.test import Client

from local_stack.gateway import MAX_BODY_BYTES, ApiGateway
from local_stack.lambda_runtime import FunctionFailed, FunctionThrottled, IntegrationTimedOut
from local_stack.model_server import REPO_ROOT
from local_stack.template import Addresses
from tests.local_stack.conftest import (
    add_function,
    add_route,
    add_stage,
    lambda_integration,
    mock_integration,
    remove_route,
    real_function_id,
)

ADDRESSES = Addresses(site_origin="http://127.0.0.1:9000", api_origin="http://127.0.0.1:9001")
SITE = ADDRESSES.site_origin
OK = json.dumps({"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}',
                 "isBase64Encoded": False})
# What API Gateway's own answers carry in this template (infra/gateway_responses.py made them).
GATEWAY_HEADERS = {"Access-Control-Allow-Origin": SITE, "Access-Control-Expose-Headers": "Retry-After",
                   "Vary": "Origin", "X-Content-Type-Options": "nosniff"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording:
    """Stands where the function's pool stands: keeps each event, answers ``result`` (or raises it)."""

    def __init__(self, result=OK):
        self.result, self.calls = result, []

    def invoke(self, event, *, request_id, integration_timeout_s):
        self.calls.append((event, request_id, integration_timeout_s))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result if isinstance(self.result, str) else json.dumps(self.result)

    @property
    def event(self) -> dict:
        assert len(self.calls) == 1, f"expected one invocation, got {len(self.calls)}"
        return self.calls[0][0]


@pytest.fixture
def gateway(read, template_json):
    """``gateway(result=OK, template=None)``: a Client on the template's API, its function recording."""
    def make(result=OK, template=None, clock=None):
        model = read(json.loads(json.dumps(template or template_json)), addresses=ADDRESSES)
        function = Recording(result)
        app = ApiGateway(model.api, {real_function_id(template or template_json): function,
                                     **{k: function for k in model.functions}}, clock=clock or Clock(), log=print)
        return Client(app), function
    return make


def assert_gateway_answer(response, status: int, code: str, message: str | None = None) -> str:
    assert response.status_code == status, response.data
    assert response.content_type == "application/json"
    for name, value in GATEWAY_HEADERS.items():
        assert response.headers[name] == value, name
    body = response.get_json()
    assert set(body) == {"error", "message"} and body["error"] == code
    if message is not None:
        assert body["message"] == message
    return body["message"]


# --- the event ------------------------------------------------------------------------------------

def test_a_post_becomes_the_rest_proxy_event(gateway):
    client, function = gateway()
    before = int(time.time() * 1000)
    response = client.post("/prod/predict?lang=en&x=1&x=2", data='{"review": "été"}',
                           headers={"Content-Type": "application/json", "Origin": SITE, "X-Custom": "a"})
    event, request_id, integration_timeout = function.calls[0]
    assert response.status_code == 200 and response.get_json() == {"ok": True}
    assert response.headers["x-amzn-RequestId"] == request_id
    assert event["resource"] == "/predict" and event["path"] == "/predict" and event["httpMethod"] == "POST"
    assert event["headers"]["Origin"] == SITE and event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["X-Custom"] == ["a"]
    assert event["multiValueHeaders"]["X-Forwarded-For"] == ["127.0.0.1"]
    assert event["queryStringParameters"] == {"lang": "en", "x": "2"}
    assert event["multiValueQueryStringParameters"] == {"lang": ["en"], "x": ["1", "2"]}
    assert event["pathParameters"] is None and event["stageVariables"] is None
    assert event["body"] == '{"review": "été"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] == request_id and uuid.UUID(request_id)
    assert context["stage"] == "prod" and context["path"] == "/prod/predict" and context["resourcePath"] == "/predict"
    assert context["apiId"].startswith("predictapi")  # the template's REST API (its stand-in physical id)
    assert context["identity"]["sourceIp"] == "127.0.0.1" and context["protocol"].startswith("HTTP/")
    assert before <= context["requestTimeEpoch"] <= int(time.time() * 1000)
    assert integration_timeout == 29.0  # the template's integration sets no TimeoutInMillis


@pytest.mark.parametrize("method, path, resource, path_parameters", [
    ("GET", "/predict", "/predict", None),
    ("DELETE", "/predict", "/predict", None),
    ("POST", "/", "/", None),
    ("GET", "/no/such/thing", "/{proxy+}", {"proxy": "no/such/thing"}),
    ("POST", "/index.html", "/{proxy+}", {"proxy": "index.html"}),
    ("POST", "/predict/extra", "/predict/{proxy+}", {"proxy": "extra"}),
    ("GET", "/predict/a/b", "/predict/{proxy+}", {"proxy": "a/b"}),
    ("POST", "/predictions", "/{proxy+}", {"proxy": "predictions"}),
])
def test_every_method_and_path_reaches_the_function_through_the_templates_resources(
        gateway, method, path, resource, path_parameters):
    client, function = gateway()
    client.open(f"/prod{path}", method=method)
    assert function.event["resource"] == resource and function.event["path"] == path
    assert function.event["pathParameters"] == path_parameters


def test_no_query_and_no_body_are_null_as_in_api_gateway(gateway):
    client, function = gateway()
    client.options("/prod/predict", headers={"Origin": SITE})
    assert function.event["queryStringParameters"] is None and function.event["body"] is None
    assert function.event["isBase64Encoded"] is False


def test_a_body_that_is_not_utf8_arrives_base64_encoded(gateway):
    client, function = gateway()
    raw = b"\xff\xfe good \x80"
    client.post("/prod/predict", data=raw, headers={"Content-Type": "text/plain"})
    assert function.event["isBase64Encoded"] is True and base64.b64decode(function.event["body"]) == raw


def test_the_templates_binary_media_types_arrive_base64_encoded(gateway, fresh):
    fresh["Resources"]["PredictApi3483A3DA"]["Properties"]["BinaryMediaTypes"] = ["application/octet-stream"]
    client, function = gateway(template=fresh)
    client.post("/prod/predict", data=b"plain text", headers={"Content-Type": "application/octet-stream"})
    assert function.event["isBase64Encoded"] is True and base64.b64decode(function.event["body"]) == b"plain text"


def test_a_stage_the_template_adds_is_served_with_its_variables(gateway, fresh):
    add_stage(fresh, "beta", variables={"colour": "blue"})
    client, function = gateway(template=fresh)
    client.post("/beta/predict", data="{}")
    assert function.event["requestContext"]["stage"] == "beta"
    assert function.event["stageVariables"] == {"colour": "blue"}


# --- the function's answer ---------------------------------------------------------------------------

def test_proxy_response_headers_are_merged_like_api_gateway(gateway):
    client, _ = gateway({
        "statusCode": 201,
        "headers": {"X-One": "1", "Set-Cookie": "ignored=1", "Content-Length": "999"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Vary": ["Origin"]},
        "body": "created",
    })
    response = client.get("/prod/predict")
    assert response.status_code == 201 and response.data == b"created"
    assert response.headers["X-One"] == "1" and response.headers["Vary"] == "Origin"
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]  # multiValueHeaders win
    assert response.headers["Content-Length"] == "7"  # the gateway's own, not the function's
    assert response.content_type == "application/json"  # API Gateway's default Content-Type


def test_base64_proxy_bodies_are_decoded(gateway):
    raw = bytes(range(256))
    client, _ = gateway({"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                         "body": base64.b64encode(raw).decode(), "isBase64Encoded": True})
    assert client.get("/prod/predict").data == raw


@pytest.mark.parametrize("result", [
    FunctionFailed({"errorType": "RuntimeError", "errorMessage": "boom"}),
    "not json",
    json.dumps(None),
    json.dumps({"body": "no status"}),
    json.dumps({"statusCode": "200", "body": "status as a string"}),
    json.dumps({"statusCode": 200, "body": {"not": "a string"}}),
    json.dumps({"statusCode": 200, "body": "not base64!", "isBase64Encoded": True}),
    json.dumps({"statusCode": 200, "multiValueHeaders": {"X": "not a list"}}),
], ids=["function error", "not json", "null", "no status", "string status", "object body", "bad base64",
        "bad multi-value header"])
def test_a_failing_function_gets_the_templates_502(gateway, result):
    client, _ = gateway(result)
    response = client.post("/prod/predict", data="{}", headers={"Origin": "https://evil.example"})
    assert_gateway_answer(response, 502, "gateway_error", "Internal server error")  # DEFAULT_5XX


def test_a_function_at_its_reserved_concurrency_gets_the_integration_failure(gateway):
    client, _ = gateway(FunctionThrottled("at its reserved concurrency"))
    assert_gateway_answer(client.post("/prod/predict", data="{}"), 500, "function_unavailable", "Internal server error")


def test_an_integration_that_times_out_gets_the_templates_504(gateway):
    client, _ = gateway(IntegrationTimedOut("r"))
    assert_gateway_answer(client.post("/prod/predict", data="{}"), 504, "gateway_timeout", "Endpoint request timed out")


# --- API Gateway's own answers -------------------------------------------------------------------------

def test_a_body_over_10_mb_is_refused_before_the_function(gateway):
    client, function = gateway()
    response = client.post("/prod/predict", data=b"a" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "text/plain"})
    assert function.calls == []
    assert_gateway_answer(response, 413, "payload_too_large", "Request Too Long")


def test_a_body_of_exactly_10_mb_is_passed_on(gateway):
    client, function = gateway()
    client.post("/prod/predict", data=b"a" * MAX_BODY_BYTES, headers={"Content-Type": "text/plain"})
    assert len(function.event["body"]) == MAX_BODY_BYTES


def test_a_path_without_a_resource_is_missing_authentication_token(gateway, fresh):
    remove_route(fresh, "{proxy+}")  # the greedy resource under the root
    client, function = gateway(template=fresh)
    response = client.get("/prod/no-such-resource")
    assert_gateway_answer(response, 403, "request_rejected", "Missing Authentication Token")  # DEFAULT_4XX
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert function.calls == []


def test_an_unknown_stage_is_api_gateways_bare_forbidden(gateway):
    client, function = gateway()
    for path in ("/", "/predict", "/beta/predict"):
        response = client.post(path, data="{}")
        assert response.status_code == 403 and response.get_json() == {"message": "Forbidden"}
    assert function.calls == []


def test_the_stage_throttle_is_a_token_bucket_of_the_templates_burst_and_rate(gateway):
    clock = Clock()
    client, function = gateway(clock=clock)
    statuses = [client.post("/prod/predict", data="{}").status_code for _ in range(21)]
    assert statuses == [200] * 20 + [429]  # api_burst_limit: 20
    response = client.post("/prod/predict", data="{}")
    assert_gateway_answer(response, 429, "too_many_requests", "Too Many Requests")
    assert response.headers["Retry-After"] == "1"
    clock.now += 0.1  # api_rate_limit: 10 per second, so one token back
    assert [client.post("/prod/predict", data="{}").status_code for _ in range(2)] == [200, 429]
    assert len(function.calls) == 21


def test_method_settings_throttle_one_method_on_its_own(gateway, fresh):
    stage = next(r for r in fresh["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage")
    stage["Properties"]["MethodSettings"].append(
        {"ResourcePath": "/~1predict", "HttpMethod": "ANY", "ThrottlingRateLimit": 0.001, "ThrottlingBurstLimit": 1})
    client, _ = gateway(template=fresh)
    assert [client.post("/prod/predict", data="{}").status_code for _ in range(2)] == [200, 429]
    assert client.post("/prod/elsewhere", data="{}").status_code == 200  # the stage's default still


def test_the_firewall_blocks_an_address_over_its_rate_with_its_own_429(gateway):
    clock = Clock()
    client, function = gateway(clock=clock)
    for _ in range(15):  # 300 in 5 minutes, under the stage throttle's refill
        for _ in range(20):
            assert client.post("/prod/predict", data="{}").status_code == 200
        clock.now += 2
    response = client.post("/prod/predict", data="{}")
    assert response.status_code == 429 and response.headers["Retry-After"] == "60"
    assert response.get_json()["error"] == "too_many_requests" and "your address" in response.get_json()["message"]
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert len(function.calls) == 300
    clock.now += 301  # the window has passed
    assert client.post("/prod/predict", data="{}").status_code == 200


def test_a_mock_integration_the_template_adds_answers_as_its_integration_response(gateway, fresh):
    add_route(fresh, "health", mock_integration(200, '{"status": "ok", "stage": "$context.stage"}',
                                                {"Cache-Control": "no-store"}), method="GET")
    client, function = gateway(template=fresh)
    response = client.get("/prod/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "stage": "prod"}
    assert response.headers["Cache-Control"] == "no-store"
    assert function.calls == []
    other = client.post("/prod/health", data="{}")  # GET only: POST has no method there
    assert_gateway_answer(other, 403, "request_rejected", "Missing Authentication Token")


def test_an_integration_timeout_and_a_function_are_read_per_route(gateway, fresh):
    add_function(fresh, "Faults")
    add_route(fresh, "faults", lambda_integration("Faults", timeout_ms=1500))
    client, function = gateway(template=fresh)
    client.post("/prod/faults", data="{}")
    assert function.calls[0][2] == 1.5


def test_a_lambda_integration_invoked_with_another_method_is_a_configuration_error(gateway, fresh):
    integration = lambda_integration(real_function_id(fresh))
    integration["IntegrationHttpMethod"] = "GET"  # Lambda is only ever invoked with POST
    add_route(fresh, "wrong", integration)
    client, function = gateway(template=fresh)
    assert_gateway_answer(client.post("/prod/wrong", data="{}"), 500, "gateway_error", "Internal server error")
    assert function.calls == []


def test_the_gateway_imports_no_cdk():
    """The local stack reads the template without loading aws_cdk (and Node.js)."""
    code = "import sys, local_stack.__main__; sys.exit('aws_cdk' in sys.modules or 'jsii' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=60).returncode == 0


def test_a_blocked_address_is_logged_once_per_block_not_per_request(read, template_json):
    from local_stack.gateway import RateLimiter

    clock = Clock()
    limiter = RateLimiter(limit=2, window_s=10, clock=clock)
    seen = []
    for _ in range(6):
        if limiter.over("10.0.0.1") and limiter.newly_blocked("10.0.0.1"):
            seen.append(clock.now)
    assert seen == [1000.0]  # blocked from the third request on, logged once
    clock.now += 11
    assert not limiter.over("10.0.0.1")  # under the limit again
    assert limiter.over("10.0.0.1") is False and limiter.over("10.0.0.1") is True
    assert limiter.newly_blocked("10.0.0.1")  # a new block, logged again
