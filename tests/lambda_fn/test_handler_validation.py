"""Bad requests get a clear message, the right status and CORS headers: 400, 404, 405, 413, 415."""

from __future__ import annotations

import json

import pytest

from lambda_fn.validation import MAX_BODY_BYTES, MAX_REVIEW_CHARS, MAX_REVIEWS, ApiError, parse_reviews

JSON, TEXT = "application/json", "text/plain"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "message"),
    [
        # 400: not JSON, not text, or not UTF-8
        ('{"review": "great film"', JSON, 400, "invalid_json",
         "the body is not valid JSON: Expecting ',' delimiter: line 1 column 24 (char 23)"),
        ("[" * 100_000, JSON, 400, "invalid_request",  # unterminated, but the depth limit stops it first
         "the body nests arrays or objects too deeply; a request needs 2 levels"),
        ("", JSON, 400, "invalid_request", "the request body is empty; send a review"),
        (None, TEXT, 400, "invalid_request", "the request body is empty; send a review"),
        ('{"review": "\ud800"}', JSON, 400, "invalid_encoding", "the body is not valid UTF-8 (byte 12)"),
        (b'{"review": "caf\xe9"}', JSON, 400, "invalid_encoding", "the body is not valid UTF-8 (byte 15)"),
        (b"\xff\xfe", TEXT, 400, "invalid_encoding", "the body is not valid UTF-8 (byte 0)"),
        # 400: the wrong shape
        ('["a review"]', JSON, 400, "invalid_request", "the body must be a JSON object; send"),
        ('"a review"', JSON, 400, "invalid_request", "the body must be a JSON object; send"),
        ("{}", JSON, 400, "invalid_request", "the 'review' field is missing; send"),
        ('{"reveiw": "typo"}', JSON, 400, "invalid_request", "unknown field 'reveiw'; send"),
        ('{"review": "a", "reviews": ["b"]}', JSON, 400, "invalid_request",
         "both 'review' and 'reviews' given"),
        ('{"review": 5}', JSON, 400, "invalid_request", "'review' must be a string, not a number"),
        ('{"review": null}', JSON, 400, "invalid_request", "'review' must be a string, not null"),
        ('{"review": ["a"]}', JSON, 400, "invalid_request", "'review' must be a string, not a list"),
        ('{"review": true}', JSON, 400, "invalid_request", "'review' must be a string, not a boolean"),
        ('{"reviews": "a"}', JSON, 400, "invalid_request", "'reviews' must be a list of strings"),
        ('{"reviews": []}', JSON, 400, "invalid_request", "'reviews' is empty; send at least one review"),
        ('{"reviews": ["ok", {}]}', JSON, 400, "invalid_request",
         "reviews[1] must be a string, not an object"),
        # 400: nothing to score
        ('{"review": ""}', JSON, 400, "invalid_request",
         "'review' is empty or only whitespace; send some text"),
        ('{"review": " \\n\\t "}', JSON, 400, "invalid_request", "'review' is empty or only whitespace"),
        ('{"reviews": ["ok", "   "]}', JSON, 400, "invalid_request",
         "reviews[1] is empty or only whitespace"),
        ("  \n ", TEXT, 400, "invalid_request", "the review is empty or only whitespace"),
        # 413: too much
        (json.dumps({"reviews": ["ok"] * (MAX_REVIEWS + 1)}), JSON, 413, "too_many_reviews",
         "101 reviews sent; the limit is 100 per request"),
        (json.dumps({"review": "a" * (MAX_REVIEW_CHARS + 1)}), JSON, 413, "review_too_long",
         "'review' is 50,001 characters; the limit is 50,000"),
        ("a" * (MAX_BODY_BYTES + 1), TEXT, 413, "payload_too_large",
         "the body is 1,048,577 bytes; the limit is 1,048,576 bytes"),
        (b"a" * (MAX_BODY_BYTES + 1), TEXT, 413, "payload_too_large", "the body is 1,048,577 bytes"),
        # 415: not a type this API reads
        ("review=great", "application/x-www-form-urlencoded", 415, "unsupported_media_type",
         "Content-Type 'application/x-www-form-urlencoded' is not supported; "
         "send application/json or text/plain"),
        ("--x--", "multipart/form-data; boundary=x", 415, "unsupported_media_type",
         "Content-Type 'multipart/form-data' is not supported"),
        ('{"review": "ok"}', "application/json; charset=latin-1", 415, "unsupported_media_type",
         "charset 'latin-1' is not supported; send UTF-8"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_message(
    aws, invoke, make_event, expect_error, body, content_type, status, code, message
):
    answer = invoke(make_event(body, headers={"Content-Type": content_type}))
    assert expect_error(answer, status, code).startswith(message)


def test_a_body_flagged_base64_must_be_base64(aws, invoke, make_event, expect_error):
    event = make_event('{"review": "not encoded"}')
    event["isBase64Encoded"] = True
    message = expect_error(invoke(event), 400, "invalid_encoding")
    assert message == "the body is flagged base64 but is not valid base64"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
def test_other_methods_on_predict_are_405(aws, invoke, make_event, expect_error, method):
    answer = invoke(make_event(None, method=method))
    assert expect_error(answer, 405, "method_not_allowed") == f"{method} is not allowed on /predict; use POST"
    assert answer.headers["allow"] == "OPTIONS, POST"


@pytest.mark.parametrize(("method", "path"),
                         [("POST", "/"), ("GET", "/predictions"), ("POST", "/predict/extra")])
def test_unknown_paths_are_404(aws, invoke, make_event, expect_error, method, path):
    answer = invoke(make_event({"review": "fine"}, method=method, path=path))
    assert expect_error(answer, 404, "not_found") == "no such resource; this API serves POST /predict"


# -- the limits themselves, without the handler -------------------------------------------------------
def test_the_limits_are_inclusive() -> None:
    assert len(parse_reviews(json.dumps({"reviews": ["ok"] * MAX_REVIEWS}), False, JSON)) == MAX_REVIEWS
    assert parse_reviews("é" * MAX_REVIEW_CHARS, False, TEXT) == ["é" * MAX_REVIEW_CHARS]
    body = '{"review": "ok"}'
    assert parse_reviews(body + " " * (MAX_BODY_BYTES - len(body)), False, JSON) == ["ok"]
    with pytest.raises(ApiError, match="1,048,577 bytes"):
        parse_reviews(body + " " * (MAX_BODY_BYTES - len(body) + 1), False, JSON)


def test_reviews_are_passed_on_unchanged() -> None:
    text = "  <b>Great</b> film – 10/10!\n"
    assert parse_reviews(json.dumps({"reviews": [text, "ok"]}), False, "application/json") == [text, "ok"]
    assert parse_reviews(text, False, 'text/plain; charset="utf-8"') == [text]
