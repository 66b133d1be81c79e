"""The website as the template's CloudFront distribution serves it, on the synthesized template (in process)."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client, EnvironBuilder

from local_stack.template import Addresses
from local_stack.website import SiteServer
from tests.local_stack.conftest import one

ADDRESSES = Addresses(site_origin="http://127.0.0.1:9100", api_origin="http://127.0.0.1:9101")


@pytest.fixture
def site(read, template_json):
    def make(template=None):
        model = read(json.loads(json.dumps(template or template_json)), addresses=ADDRESSES)
        return Client(SiteServer(model.website)), model
    return make


def policy(model) -> dict[str, str]:
    return {rule.name: rule.value for rule in model.website.headers}


def assert_policy(response, model) -> None:
    for name, value in policy(model).items():
        assert response.headers[name] == value, name


@pytest.mark.parametrize("path, content_type, snippet", [
    ("/", "text/html", b'<textarea id="review"'),
    ("/index.html", "text/html", b'<textarea id="review"'),
    ("/app.js", "javascript", b"textContent"),
    ("/style.css", "text/css", b".card"),
    ("/favicon.svg", "image/svg+xml", b"<svg"),
])
def test_the_pages_files_come_with_the_response_headers_policy(site, path, content_type, snippet):
    client, model = site()
    response = client.get(path)
    assert response.status_code == 200 and content_type in response.content_type
    assert snippet in response.data
    assert response.headers["Cache-Control"] == "max-age=300"  # the deployment's metadata
    assert response.headers["ETag"]
    assert_policy(response, model)
    assert "connect-src 'self' http://127.0.0.1:9101;" in response.headers["Content-Security-Policy"]


def test_config_json_names_the_local_api_as_the_deployment_writes_it(site):
    client, _ = site()
    response = client.get("/config.json")
    assert response.status_code == 200 and response.content_type == "application/json"
    assert response.get_json() == {"apiUrl": "http://127.0.0.1:9101/prod/"}


@pytest.mark.parametrize("path", ["/nope", "/web/index.html", "/../local_stack/gateway.py", "/%2e%2e/app.js", "/app.js/",
                                  "/APP.JS", "/index.html%00"])
def test_a_key_the_bucket_does_not_hold_is_s3s_access_denied_with_the_policy(site, path):
    client, model = site()
    environ = EnvironBuilder(path="/x", method="GET").get_environ()
    environ["PATH_INFO"] = environ["REQUEST_URI"] = environ["RAW_URI"] = path  # what a raw HTTP client can send
    response = client.open(environ)
    assert response.status_code == 403 and response.content_type == "application/xml"
    assert b"<Code>AccessDenied</Code>" in response.data and b"LocalGateway" not in response.data
    assert_policy(response, model)


def test_other_methods_are_cloudfronts_403_with_the_policy(site):
    client, model = site()
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        response = client.open("/index.html", method=method)
        assert response.status_code == 403 and b"not configured to allow the HTTP request method" in response.data
        assert_policy(response, model)


def test_head_and_conditional_requests_are_answered_as_s3_does(site):
    client, model = site()
    full = client.get("/app.js")
    head = client.head("/app.js")
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(full.data))
    again = client.get("/app.js", headers={"If-None-Match": full.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert_policy(again, model)
    part = client.get("/app.js", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.data == full.data[:10]


def test_the_default_root_object_is_for_the_root_only(site, fresh):
    distribution = one(fresh, "AWS::CloudFront::Distribution")[1]
    distribution["Properties"]["DistributionConfig"]["DefaultRootObject"] = "app.js"
    client, _ = site(fresh)
    assert b"textContent" in client.get("/").data
    assert client.get("/index.html").status_code == 200


def test_custom_error_responses_of_the_template_are_served(site, fresh):
    distribution = one(fresh, "AWS::CloudFront::Distribution")[1]
    distribution["Properties"]["DistributionConfig"]["CustomErrorResponses"] = [
        {"ErrorCode": 403, "ResponseCode": 200, "ResponsePagePath": "/index.html"}]  # a single-page app's rule
    client, model = site(fresh)
    response = client.get("/some/client/route")
    assert response.status_code == 200 and b'<textarea id="review"' in response.data
    assert_policy(response, model)


def test_the_policy_the_template_says_is_the_one_sent(site, fresh):
    (_, policy_resource) = one(fresh, "AWS::CloudFront::ResponseHeadersPolicy")
    config = policy_resource["Properties"]["ResponseHeadersPolicyConfig"]
    config["SecurityHeadersConfig"]["FrameOptions"]["FrameOption"] = "SAMEORIGIN"
    config["SecurityHeadersConfig"]["XSSProtection"] = {"Protection": True, "ModeBlock": True, "Override": True}
    config["CustomHeadersConfig"] = {"Items": [
        {"Header": "Permissions-Policy", "Value": "camera=()", "Override": True},
        {"Header": "Cache-Control", "Value": "no-store", "Override": False},  # the origin's wins
    ]}
    config["RemoveHeadersConfig"] = {"Items": [{"Header": "ETag"}]}
    client, _ = site(fresh)
    response = client.get("/index.html")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-XSS-Protection"] == "1; mode=block"
    assert response.headers["Permissions-Policy"] == "camera=()"
    assert response.headers["Cache-Control"] == "max-age=300"
    assert "ETag" not in response.headers
    assert client.get("/nope").headers["Cache-Control"] == "no-store"  # no origin header there: the policy's
