"""Every status of README's error tables, answered over HTTP by the template-driven local stack.

The function's own answers (400 ... 504 from the real handler) pass through the local API Gateway
as API Gateway passes a proxy response; API Gateway's and the firewall's own answers come from the
template's gateway responses and web ACL. The hostile cases run on edited templates, each edit
what a CDK change would synthesize: a function with the hostile handler behind new routes (one
with a short integration timeout, one with a reserved concurrency of 1), a route the API lacks, a
method throttle, stages with a firewall, and the real function misconfigured by its environment.
Nothing in local_stack/ changes for any of them. No timed assertions: a request that must be in
flight says so with a file, and every wait is a generous bound on a hang.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from local_stack.gateway import MAX_BODY_BYTES
from tests.local_stack.conftest import (
    add_firewall,
    add_function,
    add_route,
    add_stage,
    lambda_integration,
    mock_integration,
    real_function_id,
    remove_route,
)
from tests.support import POSITIVE_REVIEW, LocalStack, children, edit_template, readme_error_rows

pytestmark = pytest.mark.slow  # runs the real `python -m local_stack`

HANG_BOUND_S = 90.0
# Each README row, and the test below that shows the local stack answering it.
COVERED = {
    ("400", "invalid_json"): "test_the_functions_own_answers_pass_through",
    ("404 / 405", "not_found"): "test_the_functions_own_answers_pass_through",
    ("404 / 405", "method_not_allowed"): "test_the_functions_own_answers_pass_through",
    ("413", "too_many_reviews"): "test_the_functions_own_answers_pass_through",
    ("415", "unsupported_media_type"): "test_the_functions_own_answers_pass_through",
    ("500", "internal_error"): "test_an_unexpected_failure_in_the_function_is_its_500",
    ("502", "endpoint_unreachable"): "test_an_endpoint_the_function_cannot_reach_is_its_502",
    ("503", "featurizer_unavailable"): "test_a_featurizer_that_cannot_be_loaded_is_the_functions_503",
    ("504", "endpoint_timeout"): "test_an_endpoint_that_never_answers_is_the_functions_504",
    ("403", "forbidden"): "test_the_firewall_blocking_is_api_gateways_403",
    ("413", "payload_too_large"): "test_a_body_over_10_mb_is_api_gateways_413",
    ("429", "too_many_requests"): "test_the_throttle_and_the_firewall_answer_429",
    ("4xx", "request_rejected"): "test_a_route_the_api_lacks_is_api_gateways_4xx",
    ("5xx", "function_unavailable"): "test_a_function_at_its_reserved_concurrency_is_api_gateways_5xx",
    ("5xx", "gateway_error"): "test_a_failing_function_is_api_gateways_502",
    ("504", "gateway_timeout"): "test_an_integration_past_its_timeout_is_api_gateways_504",
}


def readme_rows() -> list[tuple[str, list[str]]]:
    """(status, [codes]) for every row of README's two error tables ("The API")."""
    return [(status, re.findall(r"`([^`]+)`", codes)) for status, codes, _ in readme_error_rows()]


def test_every_status_of_readmes_tables_is_shown_below() -> None:
    rows = readme_rows()
    assert len(rows) >= 15, rows
    tests = set(globals())
    for status, codes in rows:
        shown = [code for code in codes if (status, code) in COVERED]
        assert shown, f"README's row {status} {codes}: no test shows the local stack answering it"
    for (status, code), test in COVERED.items():
        assert test in tests, test
        assert any(status == row_status and code in row_codes for row_status, row_codes in rows), (status, code)


# --- the stacks ---------------------------------------------------------------------------------

def hostile(template: dict) -> None:
    """Hostile routes and stages: what the tests below need of the template."""
    add_function(template, "Faults", timeout=2)  # a function with the hostile handler
    add_route(template, "faults", lambda_integration("Faults"))
    add_route(template, "faults/slow", lambda_integration("Faults", timeout_ms=300))
    add_function(template, "Single", timeout=30, reserved=1)
    add_route(template, "single", lambda_integration("Single"))
    remove_route(template, "{proxy+}")  # no greedy resource under the root any more
    add_route(template, "throttled", mock_integration(200, '{"mock": true}'), method="GET")
    stage = next(r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage")
    stage["Properties"]["MethodSettings"].append({"ResourcePath": "/~1throttled", "HttpMethod": "GET",
                                                  "ThrottlingRateLimit": 0.001, "ThrottlingBurstLimit": 1})
    add_firewall(template, add_stage(template, "guarded"), "Guarded", limit=10)  # the firewall's own 429
    add_firewall(template, add_stage(template, "blocked"), "Blocked", default_block=True)  # WAF_FILTERED


def misconfigured(**variables: str | None):
    def edit(template: dict) -> None:
        environment = template["Resources"][real_function_id(template)]["Properties"]["Environment"]["Variables"]
        for name, value in variables.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
    return edit


@pytest.fixture(scope="module")
def faults_stack(template: Path, tmp_path_factory: pytest.TempPathFactory):
    edited = edit_template(template, hostile, "Hostile")
    with LocalStack(edited, log_path=tmp_path_factory.mktemp("hostile") / "stack.log") as running:
        yield running


def one_off(template: Path, tmp_path: Path, name: str, edit) -> LocalStack:
    return LocalStack(edit_template(template, edit, name), log_path=tmp_path / f"{name}.log")


def api(stack: LocalStack, path: str, stage: str = "prod") -> str:
    return f"{stack.api_origin}/{stage}{path}"


def assert_error(response, status: int, code: str, message: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] == code, body
    if message is not None:
        assert body["message"] == message
    return body


def assert_gateway_cors(response, stack: LocalStack) -> None:
    """API Gateway's own answers carry CORS for the site (the template's), Vary and nosniff."""
    assert response.headers["Access-Control-Allow-Origin"] == stack.url
    assert response.headers["Vary"] == "Origin" and response.headers["X-Content-Type-Options"] == "nosniff"


class InFlight:
    """A request to the hostile function that has started and waits for its release file."""

    def __init__(self, url: str, tmp_path: Path, name: str):
        self.started, self.release = tmp_path / f"{name}.started", tmp_path / f"{name}.release"
        self.response: requests.Response | None = None
        body = {"action": "wait", "started": str(self.started), "release": str(self.release)}
        self.thread = threading.Thread(target=lambda: setattr(self, "response", requests.post(
            url, json=body, timeout=HANG_BOUND_S)), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + HANG_BOUND_S
        while not self.started.exists():
            assert time.monotonic() < deadline and self.thread.is_alive(), "the request never started"
            time.sleep(0.02)

    def finish(self) -> requests.Response:
        self.release.touch()
        self.thread.join(HANG_BOUND_S)
        assert self.response is not None
        return self.response


# --- the function's own answers -------------------------------------------------------------------

@pytest.mark.parametrize("method, path, body, content_type, status, code", [
    ("POST", "/predict", b"{not json", "application/json", 400, "invalid_json"),
    ("GET", "/no-such-resource", None, None, 404, "not_found"),
    ("GET", "/predict", None, None, 405, "method_not_allowed"),
    ("POST", "/predict", json.dumps({"reviews": ["good"] * 101}), "application/json", 413, "too_many_reviews"),
    ("POST", "/predict", b"<review/>", "application/xml", 415, "unsupported_media_type"),
])
def test_the_functions_own_answers_pass_through(stack, method, path, body, content_type, status, code):
    headers = {"Origin": stack.url, **({"Content-Type": content_type} if content_type else {})}
    response = requests.request(method, api(stack, path), data=body, headers=headers, timeout=30)
    assert_error(response, status, code)
    assert response.headers["Access-Control-Allow-Origin"] == stack.url  # the function's CORS


def test_an_unexpected_failure_in_the_function_is_its_500(template, tmp_path):
    # The endpoint URL botocore is given is not a URL: a ValueError no handler expects.
    with one_off(template, tmp_path, "BadUrl", misconfigured(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME="::not a url::")) as s:
        response = requests.post(api(s, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=30)
        assert_error(response, 500, "internal_error", "internal error; it has been logged")
        assert "Traceback" in s.log() and "Invalid endpoint" in s.log()  # in the log only
        assert "Traceback" not in response.text


def test_an_endpoint_the_function_cannot_reach_is_its_502(template, tmp_path):
    closed = "http://127.0.0.1:9"  # the template points the function at a port nothing listens on
    with one_off(template, tmp_path, "Closed", misconfigured(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=closed)) as s:
        response = requests.post(api(s, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=60)
        assert_error(response, 502, "endpoint_unreachable")


def test_a_featurizer_that_cannot_be_loaded_is_the_functions_503(template, tmp_path):
    missing = "s3://a-bucket-the-template-does-not-deploy/featurizer.json"
    with one_off(template, tmp_path, "NoFeaturizer", misconfigured(FEATURIZER_URI=missing)) as s:
        response = requests.post(api(s, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=60)
        assert_error(response, 503, "featurizer_unavailable")
        response = requests.post(api(s, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=60)
        assert_error(response, 503, "featurizer_unavailable")  # tried again, still failing, still clear


# --- API Gateway's and the firewall's own answers -------------------------------------------------

def test_a_body_over_10_mb_is_api_gateways_413(stack):
    response = requests.post(api(stack, "/predict"), data=b"a" * (MAX_BODY_BYTES + 1),
                             headers={"Content-Type": "text/plain"}, timeout=60)
    assert_error(response, 413, "payload_too_large", "Request Too Long")
    assert_gateway_cors(response, stack)


def test_a_route_the_api_lacks_is_api_gateways_4xx(faults_stack):
    response = requests.get(api(faults_stack, "/no-such-resource"), timeout=30)
    assert_error(response, 403, "request_rejected", "Missing Authentication Token")
    assert_gateway_cors(response, faults_stack)
    assert requests.post(api(faults_stack, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=30).ok


def test_the_throttle_and_the_firewall_answer_429(faults_stack):
    assert requests.get(api(faults_stack, "/throttled"), timeout=30).json() == {"mock": True}
    response = requests.get(api(faults_stack, "/throttled"), timeout=30)  # burst 1, 0.001 per second
    assert_error(response, 429, "too_many_requests", "Too Many Requests")
    assert response.headers["Retry-After"] == "1"
    assert_gateway_cors(response, faults_stack)

    guarded = api(faults_stack, "/predict", stage="guarded")  # 10 requests per address in 5 minutes
    statuses = [requests.post(guarded, json={"review": POSITIVE_REVIEW}, timeout=30).status_code for _ in range(10)]
    assert statuses == [200] * 10
    response = requests.post(guarded, json={"review": POSITIVE_REVIEW}, timeout=30)
    body = assert_error(response, 429, "too_many_requests")
    assert "your address" in body["message"] and response.headers["Retry-After"] == "60"
    assert_gateway_cors(response, faults_stack)
    assert "rule GuardedRate blocks 127.0.0.1" in faults_stack.log()


def test_the_firewall_blocking_is_api_gateways_403(faults_stack):
    response = requests.post(api(faults_stack, "/predict", stage="blocked"), json={"review": "good"}, timeout=30)
    assert_error(response, 403, "forbidden", "Forbidden")
    assert_gateway_cors(response, faults_stack)


@pytest.mark.parametrize("action", ["crash", "bad_proxy", "exit", "kill", "unserializable", "wait"])
def test_a_failing_function_is_api_gateways_502(faults_stack, tmp_path, action):
    body = {"action": action, "release": str(tmp_path / "never")}  # "wait" never returns: past its 2 s timeout
    response = requests.post(api(faults_stack, "/faults"), json=body, timeout=HANG_BOUND_S)
    assert_error(response, 502, "gateway_error", "Internal server error")
    assert_gateway_cors(response, faults_stack)
    assert requests.post(api(faults_stack, "/faults"), json={"action": "ok"}, timeout=30).ok  # replaced if needed


def test_an_integration_past_its_timeout_is_api_gateways_504(faults_stack, tmp_path):
    # The route's integration waits 300 ms; the function (2 s timeout) waits for a file never written.
    body = {"action": "wait", "release": str(tmp_path / "never")}
    response = requests.post(api(faults_stack, "/faults/slow"), json=body, timeout=HANG_BOUND_S)
    assert_error(response, 504, "gateway_timeout", "Endpoint request timed out")
    assert_gateway_cors(response, faults_stack)


def test_a_function_at_its_reserved_concurrency_is_api_gateways_5xx(faults_stack, tmp_path):
    flight = InFlight(api(faults_stack, "/single"), tmp_path, "only")  # the one environment it may have
    response = requests.post(api(faults_stack, "/single"), json={"action": "ok"}, timeout=30)
    assert_error(response, 500, "function_unavailable", "Internal server error")
    assert_gateway_cors(response, faults_stack)
    assert flight.finish().status_code == 200
    assert requests.post(api(faults_stack, "/single"), json={"action": "ok"}, timeout=30).ok


def test_one_hostile_request_does_not_stall_the_others(faults_stack, tmp_path):
    flight = InFlight(api(faults_stack, "/single"), tmp_path, "hostile")  # holds its environment up to 30 s
    response = requests.post(api(faults_stack, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=30)
    assert response.status_code == 200 and flight.thread.is_alive()  # answered while the hostile one runs
    flight.finish()


def test_an_endpoint_that_never_answers_is_the_functions_504(stack):
    """The model server stops answering (SIGSTOP): the function's 2 x 8 s read timeout, then its 504."""
    server = [pid for pid in children(stack.process.pid) if b"serving" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(server) == 1
    os.killpg(server[0], signal.SIGSTOP)
    try:
        response = requests.post(api(stack, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=HANG_BOUND_S)
        assert_error(response, 504, "endpoint_timeout")
    finally:
        os.killpg(server[0], signal.SIGCONT)
    assert requests.post(api(stack, "/predict"), json={"review": POSITIVE_REVIEW}, timeout=60).ok


