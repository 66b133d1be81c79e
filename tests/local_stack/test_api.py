"""The HTTP API end to end, as the synthesized template defines it: local API Gateway → the real
handler in its execution environments → boto3 → the real model server (tiny model).

One ``python -m local_stack --template ...`` for the module; every answer comes from the real code
path, and every probability is known exactly from the tiny model's weights. The API is at its
stage's URL (``/prod``), the page on another origin, as API Gateway and CloudFront serve them.
"""

from __future__ import annotations

import json
import math

import pytest
import requests

from local_stack.gateway import MAX_BODY_BYTES
from sentiment.featurizer import tokenize
from tests.support import MODEL_VERSION, NEGATIVE_REVIEW, POSITIVE_REVIEW, WEIGHTS

pytestmark = pytest.mark.slow  # runs the real `python -m local_stack`

EVIL_ORIGIN = "https://evil.example"


def expected_probability(review: str) -> float:
    return 1 / (1 + math.exp(-sum(WEIGHTS.get(token, 0.0) for token in tokenize(review))))


def post(stack, body, content_type="application/json", **headers):
    data = json.dumps(body) if isinstance(body, (dict, list)) else body
    return requests.post(f"{stack.api_url}/predict", data=data, headers={"Content-Type": content_type, **headers},
                         timeout=30)


def assert_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"} and body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 10
    return body["message"]


def test_one_review(stack):
    response = post(stack, {"review": POSITIVE_REVIEW})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"predictions", "variant"}
    [prediction] = body["predictions"]
    assert prediction["label"] == "positive" and prediction["model_version"] == MODEL_VERSION
    assert prediction["probability_positive"] == pytest.approx(expected_probability(POSITIVE_REVIEW), abs=1e-6)


def test_a_batch_keeps_its_order(stack):
    reviews = [POSITIVE_REVIEW, NEGATIVE_REVIEW, "the plot", "bad " * 3 + "superb"]
    response = post(stack, {"reviews": reviews})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions] == ["positive", "negative", "positive", "negative"]
    for review, prediction in zip(reviews, predictions):
        assert prediction["probability_positive"] == pytest.approx(expected_probability(review), abs=1e-6)


def test_a_text_plain_body_is_one_review(stack):
    response = post(stack, NEGATIVE_REVIEW.encode(), content_type="text/plain; charset=utf-8")
    assert response.status_code == 200
    assert [p["label"] for p in response.json()["predictions"]] == ["negative"]


def test_the_largest_batch_is_accepted(stack):
    response = post(stack, {"reviews": [POSITIVE_REVIEW] * 100})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 100


@pytest.mark.parametrize("body, content_type, status, code", [
    (b"{not json", "application/json", 400, "invalid_json"),
    (b"", "application/json", 400, "invalid_request"),
    ({"review": ""}, "application/json", 400, "invalid_request"),
    ({"review": "   \n"}, "application/json", 400, "invalid_request"),
    ({"reviews": []}, "application/json", 400, "invalid_request"),
    ({"review": 42}, "application/json", 400, "invalid_request"),
    ({"text": "good"}, "application/json", 400, "invalid_request"),
    (b"\xff\xfe not utf-8", "text/plain", 400, "invalid_encoding"),
    (b'{"review": "caf\xe9"}', "application/json", 400, "invalid_encoding"),
    ({"reviews": ["good"] * 101}, "application/json", 413, "too_many_reviews"),
    ({"review": "x" * 50_001}, "application/json", 413, "review_too_long"),
    (b"<review>good</review>", "application/xml", 415, "unsupported_media_type"),
])
def test_bad_requests_get_the_handlers_error(stack, body, content_type, status, code):
    assert_error(post(stack, body, content_type), status, code)


def test_a_body_over_api_gateways_limit_is_refused_by_the_gateway(stack):
    response = post(stack, b"a" * (MAX_BODY_BYTES + 1), "text/plain", Origin=stack.url)
    assert_error(response, 413, "payload_too_large")
    assert response.headers["Access-Control-Allow-Origin"] == stack.url  # the page can read it
    assert response.headers["Vary"] == "Origin" and response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("method, path, status, code", [
    ("GET", "/predict", 405, "method_not_allowed"),
    ("PUT", "/predict", 405, "method_not_allowed"),
    ("DELETE", "/predict", 405, "method_not_allowed"),
    ("GET", "/no-such-resource", 404, "not_found"),
    ("POST", "/v2/predict", 404, "not_found"),
    ("POST", "/predict/extra", 404, "not_found"),
])
def test_other_methods_and_paths_get_the_handlers_404_and_405(stack, method, path, status, code):
    response = requests.request(method, f"{stack.api_url}{path}", timeout=30)
    assert_error(response, status, code)
    if status == 405:
        assert "POST" in response.headers["Allow"]


def test_the_pages_origin_is_echoed_on_success_and_error(stack):
    """The template allows one origin, the distribution's: locally, the page's."""
    for response in (post(stack, {"review": POSITIVE_REVIEW}, Origin=stack.url),
                     post(stack, {"review": ""}, Origin=stack.url)):
        assert response.headers["Access-Control-Allow-Origin"] == stack.url
        assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", [EVIL_ORIGIN, "http://localhost:{port}", "{api}"])
def test_any_other_origin_is_not_echoed(stack, origin):
    origin = origin.format(port=stack.port, api=stack.api_origin)
    for response in (post(stack, {"review": POSITIVE_REVIEW}, Origin=origin),
                     post(stack, {"review": ""}, Origin=origin)):
        assert response.headers.get("Access-Control-Allow-Origin") not in (origin, "*")
        assert "Origin" in response.headers["Vary"]


def test_preflight_allows_the_page_to_post_json(stack):
    response = requests.options(f"{stack.api_url}/predict", timeout=30, headers={
        "Origin": stack.url,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    })
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == stack.url
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_preflight_from_a_disallowed_origin_grants_nothing(stack):
    response = requests.options(f"{stack.api_url}/predict", timeout=30, headers={
        "Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert response.headers.get("Access-Control-Allow-Origin") not in (EVIL_ORIGIN, "*")


def test_the_page_and_its_files_are_served(stack):
    page = requests.get(f"{stack.url}/", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'http-equiv="Content-Security-Policy"' in page.text and '<script src="app.js"' in page.text
    for name, content_type in [("app.js", "javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg")]:
        response = requests.get(f"{stack.url}/{name}", timeout=30)
        assert response.status_code == 200 and content_type in response.headers["Content-Type"], name


def test_config_json_points_at_the_local_api(stack):
    """The deployment's config.json, its ApiUrl marker the local API's stage URL."""
    response = requests.get(f"{stack.url}/config.json", timeout=30)
    assert response.status_code == 200 and response.json() == {"apiUrl": f"{stack.api_url}/"}


def test_the_page_and_the_api_are_apart_as_cloudfront_and_api_gateway(stack):
    assert requests.post(f"{stack.url}/predict", json={"review": "good"}, timeout=30).status_code == 403  # S3/CloudFront
    assert requests.get(f"{stack.api_url}/index.html", timeout=30).json()["error"] == "not_found"  # the function's
    response = requests.get(f"{stack.api_origin}/predict", timeout=30)  # no stage: API Gateway's bare 403
    assert response.status_code == 403 and response.json() == {"message": "Forbidden"}


def test_every_answer_names_its_request_as_api_gateway_does(stack):
    response = post(stack, {"review": POSITIVE_REVIEW})
    request_id = response.headers["x-amzn-RequestId"]
    assert f"REPORT RequestId: {request_id}\tDuration: " in stack.log()  # the function's REPORT line
