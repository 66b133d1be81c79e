"""The local gateway alone: HTTP → API Gateway REST proxy event → HTTP, with a recording handler.

These tests pin the translation itself; test_api.py runs it with the real handler and server.
"""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from werkzeug.test import Client, EnvironBuilder

from local_stack.gateway import MAX_BODY_BYTES, LocalGateway
from local_stack.model_server import REPO_ROOT

API_URL = "http://127.0.0.1:9999"
OK = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}',
      "isBase64Encoded": False}


class RecordingHandler:
    """Stands where lambda_handler stands: keeps each (event, context) and returns ``result``."""

    def __init__(self, result=OK):
        self.result, self.calls = result, []

    def __call__(self, event, context):
        self.calls.append((event, context))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    @property
    def event(self) -> dict:
        assert len(self.calls) == 1, f"expected one handler call, got {len(self.calls)}"
        return self.calls[0][0]


def gateway(result=OK) -> tuple[Client, RecordingHandler]:
    handler = RecordingHandler(result)
    return Client(LocalGateway(handler, REPO_ROOT / "web", API_URL)), handler


def test_post_becomes_a_rest_proxy_event():
    client, handler = gateway()
    before = int(time.time() * 1000)
    response = client.post("/predict?lang=en&x=1&x=2", data='{"review": "été"}',
                           headers={"Content-Type": "application/json", "Origin": "http://127.0.0.1:9999",
                                    "X-Custom": "a"})
    event, context = handler.calls[0]

    assert response.status_code == 200 and response.get_json() == {"ok": True}
    assert event["resource"] == "/predict" and event["path"] == "/predict" and event["httpMethod"] == "POST"
    assert event["headers"]["Origin"] == "http://127.0.0.1:9999"
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["X-Custom"] == ["a"]
    assert event["multiValueHeaders"]["X-Forwarded-For"] == ["127.0.0.1"]
    assert event["queryStringParameters"] == {"lang": "en", "x": "2"}
    assert event["multiValueQueryStringParameters"] == {"lang": ["en"], "x": ["1", "2"]}
    assert event["pathParameters"] is None and event["stageVariables"] is None
    assert event["body"] == '{"review": "été"}' and event["isBase64Encoded"] is False

    ctx = event["requestContext"]
    assert uuid.UUID(ctx["requestId"]) and ctx["stage"] == "local" and ctx["apiId"] == "local"
    assert ctx["resourcePath"] == "/predict" and ctx["httpMethod"] == "POST" and ctx["path"] == "/local/predict"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["protocol"].startswith("HTTP/")
    assert before <= ctx["requestTimeEpoch"] <= int(time.time() * 1000)

    assert context.aws_request_id == ctx["requestId"]
    assert 0 < context.get_remaining_time_in_millis() <= 30_000
    powertools = build_lambda_context_model(context)  # what Logger.inject_lambda_context reads
    assert powertools.function_name == context.function_name and powertools.function_memory_size == 512
    assert powertools.function_arn.startswith("arn:aws:lambda:")


def test_no_query_and_no_body_are_null_as_in_api_gateway():
    client, handler = gateway()
    client.options("/predict", headers={"Origin": "http://localhost:9999"})
    event = handler.event
    assert event["httpMethod"] == "OPTIONS"
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_a_body_that_is_not_utf8_arrives_base64_encoded():
    client, handler = gateway()
    raw = b"\xff\xfe good \x80"
    client.post("/predict", data=raw, headers={"Content-Type": "text/plain"})
    assert handler.event["isBase64Encoded"] is True
    assert base64.b64decode(handler.event["body"]) == raw


@pytest.mark.parametrize("method, path, resource, path_parameters", [
    ("GET", "/predict", "/predict", None),
    ("DELETE", "/predict", "/predict", None),
    ("GET", "/no/such/thing", "/{proxy+}", {"proxy": "no/such/thing"}),
    ("POST", "/index.html", "/{proxy+}", {"proxy": "index.html"}),
    ("POST", "/", "/", None),
    ("POST", "/predict/extra", "/predict/{proxy+}", {"proxy": "extra"}),
    ("GET", "/predict/a/b", "/predict/{proxy+}", {"proxy": "a/b"}),
    ("POST", "/predictions", "/{proxy+}", {"proxy": "predictions"}),
])
def test_every_other_method_and_path_reaches_the_handler(method, path, resource, path_parameters):
    client, handler = gateway()
    client.open(path, method=method)
    assert handler.event["resource"] == resource and handler.event["path"] == path
    assert handler.event["pathParameters"] == path_parameters


@pytest.mark.parametrize("path, content_type, snippet", [
    ("/", "text/html", b'<textarea id="review"'),
    ("/index.html", "text/html", b'<textarea id="review"'),
    ("/app.js", "javascript", b"textContent"),
    ("/style.css", "text/css", b".card"),
])
def test_the_page_is_served_without_calling_the_handler(path, content_type, snippet):
    client, handler = gateway()
    response = client.get(path)
    assert response.status_code == 200 and content_type in response.content_type
    assert snippet in response.data
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert handler.calls == []


def test_config_json_points_the_page_at_this_gateway():
    client, handler = gateway()
    response = client.get("/config.json")
    assert response.status_code == 200 and response.content_type == "application/json"
    assert response.get_json() == {"apiUrl": API_URL} and handler.calls == []


def test_paths_outside_web_are_never_served():
    client, handler = gateway()
    environ = EnvironBuilder(path="/x", method="GET").get_environ()
    environ["PATH_INFO"] = "/../local_stack/gateway.py"  # what a raw HTTP client can send
    response = client.open(environ)
    assert b"LocalGateway" not in response.data
    assert handler.event["path"] == "/../local_stack/gateway.py"  # the API answers it, not the disk


def test_proxy_response_headers_are_merged_like_api_gateway():
    client, _ = gateway({
        "statusCode": 201,
        "headers": {"X-One": "1", "Set-Cookie": "ignored=1", "Content-Length": "999"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Vary": ["Origin"]},
        "body": "created",
    })
    response = client.get("/predict")
    assert response.status_code == 201 and response.data == b"created"
    assert response.headers["X-One"] == "1" and response.headers["Vary"] == "Origin"
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]  # multiValueHeaders win
    assert response.headers["Content-Length"] == "7"  # the gateway's own, not the handler's
    assert response.content_type == "application/json"  # API Gateway's default Content-Type


def test_base64_proxy_bodies_are_decoded():
    raw = bytes(range(256))
    client, _ = gateway({"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                         "body": base64.b64encode(raw).decode(), "isBase64Encoded": True})
    assert client.get("/predict").data == raw


# What API Gateway's own answers carry (infra/gateway_responses.py; the template test compares them).
GATEWAY_HEADERS = {"Access-Control-Allow-Origin": API_URL, "Access-Control-Expose-Headers": "Retry-After",
                   "Vary": "Origin", "X-Content-Type-Options": "nosniff"}


def assert_gateway_answer(response, status: int, code: str) -> str:
    assert response.status_code == status and response.content_type == "application/json"
    for name, value in GATEWAY_HEADERS.items():
        assert response.headers[name] == value, name
    body = response.get_json()
    assert set(body) == {"error", "message"} and body["error"] == code
    return body["message"]


@pytest.mark.parametrize("result", [
    RuntimeError("boom"),
    None,
    {"body": "no status"},
    {"statusCode": "200", "body": "status as a string"},
    {"statusCode": 200, "body": {"not": "a string"}},
    {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
])
def test_a_failing_handler_gets_api_gateways_502(result, caplog):
    client, _ = gateway(result)
    response = client.post("/predict", data="{}", headers={"Origin": "https://evil.example"})
    assert assert_gateway_answer(response, 502, "gateway_error") == "Internal server error"
    assert "Lambda handler failed on POST /predict" in caplog.text  # the cause is logged


def test_bodies_over_10_mb_are_refused_before_the_handler():
    client, handler = gateway()
    response = client.post("/predict", data=b"a" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "text/plain"})
    assert handler.calls == []
    assert "10,485,760 bytes" in assert_gateway_answer(response, 413, "payload_too_large")


def test_the_gateways_cors_origin_is_the_pages():
    app = LocalGateway(RecordingHandler(RuntimeError("boom")), REPO_ROOT / "web", "http://127.0.0.1:9999/")
    response = Client(app).post("/predict", data="{}")
    assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9999"


def test_the_gateway_imports_no_cdk():
    """The local stack shares the gateway's answers with infra/ without loading aws_cdk (and Node.js)."""
    import subprocess
    import sys

    code = "import sys, local_stack.gateway; sys.exit('aws_cdk' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, timeout=60).returncode == 0


def test_a_body_of_exactly_10_mb_is_passed_on():
    client, handler = gateway()
    client.post("/predict", data=b"a" * MAX_BODY_BYTES, headers={"Content-Type": "text/plain"})
    assert len(handler.event["body"]) == MAX_BODY_BYTES


def test_handler_calls_are_serialised_like_one_lambda_instance():
    import threading

    active, overlaps = [0], []

    def slow_handler(event, context):
        active[0] += 1
        overlaps.append(active[0])
        time.sleep(0.05)
        active[0] -= 1
        return OK

    app = LocalGateway(slow_handler, REPO_ROOT / "web", API_URL)
    threads = [threading.Thread(target=lambda: Client(app).post("/predict", data="{}")) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [1, 1, 1, 1]
