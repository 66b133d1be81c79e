"""Hostile and malformed input: always a documented 4xx with ``{"error", "message"}``, never a 500.

Issue #11's handler defects, then the neighbours of the same classes: events of the wrong shape,
JSON that is valid but unusual (huge numbers, duplicate keys, deep nesting), text that is not
Unicode, and headers read the way Powertools reads them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_fn.validation import MAX_BODY_BYTES, MAX_REVIEW_CHARS

ORIGIN = "https://app.example.com"  # the sample event's Origin, allowed by conftest's ALLOWED_ORIGINS
JSON, TEXT = "application/json", "text/plain"
BIG = "9" * 5_000  # over Python's 4,300-digit limit for int("...")


def with_fields(make_event, **fields: Any) -> dict[str, Any]:
    """A sample POST /predict event with some top-level fields replaced."""
    event = make_event({"review": "a wonderful film"})
    event.update(fields)
    return event


# -- 1. events of the wrong shape: 400 invalid_event naming the field and its type -----------------
@pytest.mark.parametrize(
    ("fields", "named", "cors"),
    [
        ({"body": {"review": "great"}}, "'body' is an object, not a string or null", True),
        ({"body": 5}, "'body' is a number", True),
        ({"body": ["great"]}, "'body' is a list", True),
        ({"body": b'{"review": "great"}'}, "'body' is bytes", True),
        ({"body": True}, "'body' is a boolean", True),
        ({"isBase64Encoded": "true"}, "'isBase64Encoded' is a string, not true or false", True),
        ({"isBase64Encoded": "false"}, "'isBase64Encoded' is a string, not true or false", True),
        ({"isBase64Encoded": 1}, "'isBase64Encoded' is a number", True),
        ({"headers": ["content-type"]}, "'headers' is a list, not an object or null", False),
        ({"headers": "content-type: text/plain"}, "'headers' is a string", False),
        ({"headers": {"Content-Type": 5}}, "headers['Content-Type'] is a number, not a string", False),
        ({"headers": {"Origin": ["https://app.example.com"]}}, "headers['Origin'] is a list, not a string", False),
        ({"multiValueHeaders": "origin"}, "'multiValueHeaders' is a string", False),
        ({"multiValueHeaders": {"Origin": []}}, "multiValueHeaders['Origin'] is an empty list", False),
        ({"multiValueHeaders": {"Origin": ORIGIN}}, "multiValueHeaders['Origin'] is a string, not a list", False),
        ({"multiValueHeaders": {"Origin": [5]}}, "multiValueHeaders['Origin'][0] is a number", False),
        ({"httpMethod": 5}, "'httpMethod' is a number", True),
        ({"httpMethod": ""}, "'httpMethod' is not an HTTP method: ''", True),
        ({"httpMethod": "PO ST"}, "'httpMethod' is not an HTTP method", True),
        ({"path": None}, "'path' is null, not a string", True),
        ({"path": "predict"}, "'path' does not start with '/'", True),
    ],
)
def test_a_malformed_event_is_a_400_invalid_event_naming_the_field(aws, invoke, make_event, logs, fields,
                                                                     named, cors):
    answer = invoke(with_fields(make_event, **fields))

    assert (answer.status, answer.body["error"]) == (400, "invalid_event"), answer.body
    assert set(answer.body) == {"error", "message"}
    assert answer.body["message"].startswith("not an API Gateway REST proxy event: " + named), answer.body
    assert answer.headers["content-type"] == JSON and answer.headers["vary"] == "Origin"
    # CORS for an allowed Origin when the headers can be read; no guessing when they cannot
    assert answer.headers.get("access-control-allow-origin") == (ORIGIN if cors else None)
    [line] = logs()  # logged once, without a traceback
    assert line["level"] == "ERROR" and "exception" not in line
    assert line["message"] == answer.body["message"] and line["error"] == "invalid_event"


def test_an_event_without_is_base64_encoded_is_read_as_text(featurizer, queue_answers, invoke, make_event,
                                                            api):
    event = make_event({"review": "fine"})
    del event["isBase64Encoded"]
    queue_answers({"predictions": [api.prediction(0.9)]})
    assert invoke(event).status == 200


# -- 2. numbers are numbers, however long: never "not valid JSON" -------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"review": %s}' % BIG, "'review' must be a string, not a number"),
        ('{"review": -%s}' % BIG, "'review' must be a string, not a number"),
        ('{"review": 0.%s}' % BIG, "'review' must be a string, not a number"),
        ('{"review": 1%se5}' % BIG, "'review' must be a string, not a number"),
        ('{"review": 1e999999}', "'review' must be a string, not a number"),
        ('{"review": NaN}', "'review' must be a string, not a number"),
        ('{"review": Infinity}', "'review' must be a string, not a number"),
        ('{"review": -Infinity}', "'review' must be a string, not a number"),
        ('{"reviews": ["fine", %s]}' % BIG, "reviews[1] must be a string, not a number"),
        ('{"reviews": ["fine", {"n": %s}]}' % BIG, "reviews[1] must be a string, not an object"),
        ('{"reviews": %s}' % BIG, "'reviews' must be a list of strings"),
        ('{"review": "fine", "stars": %s}' % BIG, "unknown field 'stars'"),
        (BIG, "the body must be a JSON object"),
        ("9" * (MAX_BODY_BYTES - 20), "the body must be a JSON object"),
    ],
)
def test_a_huge_number_is_a_number_not_invalid_json(aws, invoke, make_event, expect_error, body, message):
    answer = invoke(make_event(body, headers={"Content-Type": JSON}))
    assert expect_error(answer, 400, "invalid_request").startswith(message)


# -- 3. duplicate keys: refused, since parsers disagree on which one wins ----------------------------
@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"review": 1, "review": "great"}', "review"),
        ('{"review": "great", "review": 1}', "review"),
        ('{"review": "same", "review": "same"}', "review"),
        ('{"reviews": ["a"], "reviews": ["b"]}', "reviews"),
        ('{"reviews": ["a"], "review": "b", "reviews": ["c"]}', "reviews"),
        ('{"reviews": [{"x": 1, "x": 2}]}', "x"),
        ('{"review": "great", "\\u0072eview": "dull"}', "review"),  # the same key, escaped
    ],
)
def test_a_duplicate_key_is_refused_naming_it(aws, invoke, make_event, expect_error, body, key):
    answer = invoke(make_event(body, headers={"Content-Type": JSON}))
    message = expect_error(answer, 400, "invalid_request")
    assert message == f"duplicate key {key!r} in a JSON object; send each field once"


def test_a_long_key_is_shortened_in_the_message(aws, invoke, make_event, expect_error):
    key = "k" * 100_000
    for body in (f'{{"{key}": 1, "{key}": 2}}', f'{{"{key}": 1}}'):
        message = expect_error(invoke(make_event(body)), 400, "invalid_request")
        assert "kkkk" in message and len(message) < 300


# -- 4. Content-Type read from the same header field as Origin (Powertools' resolved_headers_field) --
def header_event(make_event, body: str, headers: dict[str, str] | None,
                 multi_value_headers: dict[str, list[str]] | None) -> dict[str, Any]:
    event = make_event(body)
    event["headers"], event["multiValueHeaders"] = headers, multi_value_headers
    return event


@pytest.mark.parametrize("name", ["Content-Type", "content-type", "CONTENT-TYPE", "cOnTeNt-TyPe"])
def test_content_type_only_in_multi_value_headers_is_honoured(aws, invoke, make_event, expect_error, name):
    event = header_event(make_event, "   ", None, {name: [TEXT], "Origin": [ORIGIN]})
    # read as text/plain: "the review is empty", where JSON would have been "not valid JSON"
    assert expect_error(invoke(event), 400, "invalid_request").startswith("the review is empty")


def test_a_charset_only_in_multi_value_headers_is_checked(aws, invoke, make_event, expect_error):
    event = header_event(make_event, "great", None, {"Content-Type": [f"{TEXT}; charset=latin-1"],
                                                     "Origin": [ORIGIN]})
    assert expect_error(invoke(event), 415, "unsupported_media_type") == \
        "charset 'latin-1' is not supported; send UTF-8"


def test_content_type_and_origin_follow_the_same_field_when_the_two_disagree(aws, invoke, make_event,
                                                                              expect_error, api):
    # API Gateway always sends both fields alike; when a hand-made event does not, multiValueHeaders
    # wins for both headers, as in Powertools' resolved_headers_field
    event = header_event(make_event, "   ", {"Content-Type": JSON, "Origin": api.other_origin},
                         {"Content-Type": [TEXT], "Origin": [ORIGIN]})
    assert expect_error(invoke(event), 400, "invalid_request").startswith("the review is empty")


def test_without_multi_value_headers_the_headers_field_is_read(aws, invoke, make_event, expect_error):
    event = header_event(make_event, "   ", {"Content-Type": TEXT, "Origin": ORIGIN}, {})
    assert expect_error(invoke(event), 400, "invalid_request").startswith("the review is empty")


@pytest.mark.parametrize(
    "multi_value_headers",
    [
        {"Content-Type": [TEXT, JSON]},
        {"Content-Type": [JSON, TEXT]},
        {"Content-Type": [JSON, f"{JSON}; charset=latin-1"]},
        {"Content-Type": [TEXT], "content-type": [JSON]},  # one header name in two casings
    ],
)
def test_two_different_content_types_are_refused(aws, invoke, make_event, expect_error, multi_value_headers):
    event = header_event(make_event, '{"review": "great"}', None, {**multi_value_headers, "Origin": [ORIGIN]})
    message = expect_error(invoke(event), 400, "invalid_request")
    assert message == "Content-Type is sent 2 times with different values; send it once"


def test_the_same_content_type_twice_is_one_content_type(aws, invoke, make_event, expect_error):
    event = header_event(make_event, "   ", None, {"Content-Type": [TEXT, " Text/Plain "], "Origin": [ORIGIN]})
    assert expect_error(invoke(event), 400, "invalid_request").startswith("the review is empty")


# -- 5. more of the same classes: each a documented 4xx, never a 500 ---------------------------------
def event_with(make_event, *, body: str | None = None, content_type: str | None = JSON, **fields: Any):
    event = make_event(body if body is not None else '{"review": "great"}',
                       headers={"Content-Type": content_type})
    event.update(fields)
    return event


HOSTILE = {
    # JSON that is deep, broken or not an object
    "deep valid nesting": (dict(body='{"reviews": ' + "[" * 5_000 + "]" * 5_000 + "}"), 400, "invalid_request",
                           "the body nests arrays or objects too deeply"),
    "1 MiB of [": (dict(body="[" * MAX_BODY_BYTES), 400, "invalid_request",
                   "the body nests arrays or objects too deeply"),
    "1 MiB of {\"a\": ": (dict(body='{"a":' * (MAX_BODY_BYTES // 5)), 400, "invalid_request",
                          "the body nests arrays or objects too deeply"),
    "JSON null": (dict(body="null"), 400, "invalid_request", "the body must be a JSON object"),
    "JSON true": (dict(body="true"), 400, "invalid_request", "the body must be a JSON object"),
    "JSON string": (dict(body='"a wonderful film"'), 400, "invalid_request", "the body must be a JSON object"),
    "a UTF-8 BOM": (dict(body='\ufeff{"review": "great"}'), 400, "invalid_json", "the body is not valid JSON"),
    "two documents": (dict(body='{"review": "a"} {"review": "b"}'), 400, "invalid_json",
                      "the body is not valid JSON: Extra data"),
    # text that is not Unicode
    "escaped lone surrogate": (dict(body='{"review": "bad \\ud800 text"}'), 400, "invalid_encoding",
                               "'review' holds an unpaired surrogate (\\ud800) at character 4"),
    "escaped lone low surrogate in a batch": (dict(body='{"reviews": ["ok", "\\udfff"]}'), 400,
                                              "invalid_encoding", "reviews[1] holds an unpaired surrogate"),
    "reversed surrogate pair": (dict(body='{"review": "\\ude00\\ud83d"}'), 400, "invalid_encoding",
                                "'review' holds an unpaired surrogate (\\ude00) at character 0"),
    "escaped lone surrogate key": (dict(body='{"\\ud800": "x"}'), 400, "invalid_request",
                                   "unknown field '\\ud800'"),
    "raw lone surrogate": (dict(body='{"review": "\ud800"}'), 400, "invalid_encoding",
                           "the body is not valid UTF-8"),
    # headers: odd casing, many parameters, huge values
    "huge Content-Type": (dict(content_type="x/" + "y" * 100_000), 415, "unsupported_media_type",
                          "Content-Type 'x/yyy"),
    "many parameters, the last a bad charset": (dict(content_type=JSON + "; a=b" * 10_000 + "; charset=latin-1"),
                                                415, "unsupported_media_type", "charset 'latin-1'"),
    "huge charset": (dict(content_type=JSON + "; charset=" + "x" * 100_000), 415, "unsupported_media_type",
                     "charset 'xxx"),
    "a Content-Type list in one header": (dict(content_type=f"{TEXT}, {JSON}"), 415, "unsupported_media_type",
                                          "Content-Type 'text/plain, application/json' is not supported"),
    # weird methods and paths
    "huge method": (dict(httpMethod="X" * 100_000), 405, "method_not_allowed", "XXXX"),
    "path with a final newline": (dict(path="/predict\n"), 404, "not_found", "no such resource"),
    "path with slashes and a newline": (dict(path="/predict//\n"), 404, "not_found", "no such resource"),
    "path with a NUL": (dict(path="/predict\x00"), 404, "not_found", "no such resource"),
    "upper-case path": (dict(path="/PREDICT"), 404, "not_found", "no such resource"),
    "huge path": (dict(path="/" + "p" * 100_000), 404, "not_found", "no such resource"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_a_documented_4xx(aws, invoke, make_event, expect_error, name):
    fields, status, code, message = HOSTILE[name]
    answer = invoke(event_with(make_event, **fields))
    got = expect_error(answer, status, code)
    assert got.startswith(message), got
    assert len(got) < 300, "a message never echoes a whole hostile value"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"review": "a\\u0000wonderful\\u0000film"}', JSON),
        ("a\x00wonderful film", TEXT),
        ('{"review": "a wonderful film \\ud83d\\ude00"}', JSON),  # an escaped surrogate pair is one character
        ('{"review": "a wonderful film"}', JSON + "; a=b" * 10_000),
        ('{"review": "a wonderful film"}', JSON + ";;;; charset=utf-8;"),
        (json.dumps({"review": "<" * MAX_REVIEW_CHARS}), JSON),
        (json.dumps({"reviews": ["&#" + "9" * (MAX_REVIEW_CHARS - 2)] * 20}), JSON),
    ],
)
def test_hostile_but_valid_input_is_scored(featurizer, queue_answers, invoke, make_event, api, body,
                                           content_type):
    count = len(json.loads(body)["reviews"]) if '"reviews"' in body else 1
    queue_answers({"predictions": [api.prediction(0.5)] * count})
    answer = invoke(make_event(body, headers={"Content-Type": content_type}))
    assert answer.status == 200, answer.body


def test_a_lower_case_method_is_routed_as_powertools_does(featurizer, queue_answers, invoke, make_event, api):
    queue_answers({"predictions": [api.prediction(0.9)]})
    assert invoke(with_fields(make_event, httpMethod="post")).status == 200
