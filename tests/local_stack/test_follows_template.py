"""Change the template, and the local stack follows it: no change to local_stack/.

One edited copy of the synthesized template changes what a CDK change would: a new route, a
throttle on it, a gateway response's header, the website's headers policy and root object, the
function's memory and environment variables. The same requests to the unedited stack (``stack``)
show that each answer below comes from the edit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.local_stack.conftest import add_route, mock_integration, one, real_function_id
from tests.support import POSITIVE_REVIEW, LocalStack, edit_template, write_model

pytestmark = pytest.mark.slow  # runs the real `python -m local_stack`

OTHER_ORIGIN = "https://reviews.example"


@pytest.fixture(scope="module")
def other_featurizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A featurizer from another training run: the model server refuses what it featurizes."""
    folder = write_model(tmp_path_factory.mktemp("other"), weights={"good": 1.0}, vocabulary=["bad", "good", "other"],
                         metadata={"model_version": "20261201T0000Z-00000000"})
    return folder / "featurizer.json"


@pytest.fixture(scope="module")
def edited(template: Path, other_featurizer: Path, tmp_path_factory: pytest.TempPathFactory):
    def change(data: dict) -> None:
        # a route and a throttle on it
        add_route(data, "health", mock_integration(200, '{"healthy": true, "stage": "$context.stage"}'), method="GET")
        stage = one(data, "AWS::ApiGateway::Stage")[1]
        stage["Properties"]["MethodSettings"].append({"ResourcePath": "/~1health", "HttpMethod": "GET",
                                                      "ThrottlingRateLimit": 0.001, "ThrottlingBurstLimit": 2})
        # a header of API Gateway's own answer
        throttled = next(r for r in data["Resources"].values() if r["Type"] == "AWS::ApiGateway::GatewayResponse"
                         and r["Properties"]["ResponseType"] == "THROTTLED")
        throttled["Properties"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] = "'7'"
        # the website: its headers policy and its root object
        policy = one(data, "AWS::CloudFront::ResponseHeadersPolicy")[1]["Properties"]["ResponseHeadersPolicyConfig"]
        policy["SecurityHeadersConfig"]["FrameOptions"]["FrameOption"] = "SAMEORIGIN"
        policy["CustomHeadersConfig"] = {"Items": [{"Header": "X-Stack-Edit", "Value": "followed", "Override": True}]}
        one(data, "AWS::CloudFront::Distribution")[1]["Properties"]["DistributionConfig"]["DefaultRootObject"] = "app.js"
        # the function: its memory and its environment
        function = data["Resources"][real_function_id(data)]["Properties"]
        function["MemorySize"] = 512
        variables = function["Environment"]["Variables"]
        variables["ALLOWED_ORIGINS"] = OTHER_ORIGIN
        variables["FEATURIZER_URI"] = str(other_featurizer)
        variables["POWERTOOLS_SERVICE_NAME"] = "edited-service"

    path = edit_template(template, change, "Edited")
    with LocalStack(path, log_path=tmp_path_factory.mktemp("edited") / "stack.log") as running:
        yield running


def test_a_route_the_template_adds_is_served(edited, stack):
    response = requests.get(f"{edited.api_url}/health", timeout=30)
    assert response.status_code == 200 and response.json() == {"healthy": True, "stage": "prod"}
    before = requests.get(f"{stack.api_url}/health", timeout=30)
    assert before.status_code == 404 and before.json()["error"] == "not_found"  # the function's, via {proxy+}


def test_a_throttle_and_a_gateway_response_header_the_template_changes_are_applied(edited):
    statuses = [requests.get(f"{edited.api_url}/health", timeout=30).status_code for _ in range(3)]
    assert set(statuses) <= {200, 429} and statuses[2] == 429  # a burst of 2 and 0.001 per second
    response = requests.get(f"{edited.api_url}/health", timeout=30)
    assert response.status_code == 429 and response.json()["error"] == "too_many_requests"
    assert response.headers["Retry-After"] == "7"
    assert requests.post(f"{edited.api_url}/predict", data="{", timeout=30).status_code == 400  # other methods unthrottled


def test_the_websites_headers_and_root_object_follow_the_template(edited, stack):
    root = requests.get(f"{edited.url}/", timeout=30)
    assert "textContent" in root.text  # app.js is the root object now
    assert root.headers["X-Frame-Options"] == "SAMEORIGIN" and root.headers["X-Stack-Edit"] == "followed"
    assert requests.get(f"{edited.url}/missing", timeout=30).headers["X-Stack-Edit"] == "followed"
    unedited = requests.get(f"{stack.url}/", timeout=30)
    assert unedited.headers["X-Frame-Options"] == "DENY" and "X-Stack-Edit" not in unedited.headers


def test_the_functions_environment_and_memory_follow_the_template(edited):
    preflight = requests.options(f"{edited.api_url}/predict", timeout=30,
                                 headers={"Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] == OTHER_ORIGIN  # ALLOWED_ORIGINS
    response = requests.post(f"{edited.api_url}/predict", json={"review": POSITIVE_REVIEW}, timeout=30)
    assert response.status_code == 502 and response.json()["error"] == "featurizer_mismatch"  # FEATURIZER_URI
    log = edited.log()
    assert '"service":"edited-service"' in log  # POWERTOOLS_SERVICE_NAME
    assert "Memory Size: 512 MB" in log and "Memory Size: 256 MB" not in log
