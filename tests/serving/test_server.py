"""The real server (``python -m serving``, gunicorn, 2 workers) over real HTTP.

One server serves the whole module; every bad request is followed by a good one, to show
that the server keeps serving.
"""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import boto3
import pytest
from botocore.exceptions import ClientError

from sentiment.featurizer import SparseCounts
from sentiment.wire import encode_request

VERSION = "20261128T1810Z-0badc0de"
REVIEWS = {  # review -> counts of the weighted terms the tiny model sees
    "A good film, a GREAT plot!": {"good": 1, "great": 1},
    "Awful. Bad, bad, boring.": {"awful": 1, "bad": 2, "boring": 1},
    "Nothing the model knows": {},
}


def _check(predictions, counts_list, expected):
    assert len(predictions) == len(counts_list)
    for p, counts in zip(predictions, counts_list):
        assert p["probability_positive"] == pytest.approx(expected(counts), rel=1e-5, abs=1e-7)
        assert p["label"] == ("positive" if p["probability_positive"] >= 0.5 else "negative")
        assert p["model_version"] == VERSION


def _still_serving(server, featurizer):
    status, _, body = server.invoke(encode_request(featurizer.fingerprint, [featurizer.transform("good")]),
                                    "application/json")
    assert status == 200 and body["predictions"][0]["label"] == "positive"


def _dense(counts, featurizer):
    return ",".join(str(counts.get(term, 0)) for term in featurizer.vocabulary)


def test_ping(server):
    status, headers, body = server.request("GET", "/ping")
    assert status == 200 and body == {"status": "ok", "model_version": VERSION}
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/invocations", "/endpoints/my-endpoint/invocations"])
def test_sparse_json_from_the_lambda(server, featurizer, expected, path):
    body = encode_request(featurizer.fingerprint, [featurizer.transform(r) for r in REVIEWS])
    status, headers, out = server.request("POST", path, body, {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200, out
    assert headers["x-model-version"] == VERSION and headers["content-type"] == "application/json"
    _check(out["predictions"], list(REVIEWS.values()), expected)


def test_dense_csv_rows(server, featurizer, expected):
    counts = [{"good": 2, "film": 1}, {"bad": 1, "boring": 3}, {}]
    body = "\n".join(_dense(c, featurizer) for c in counts) + "\n"
    status, _, out = server.invoke(body, "text/csv")
    assert status == 200, out
    _check(out["predictions"], counts, expected)


def test_plain_text_one_review_per_line(server, expected):
    status, _, out = server.invoke("\r\n".join(REVIEWS) + "\r\n", "text/plain; charset=UTF-8")
    assert status == 200, out
    _check(out["predictions"], list(REVIEWS.values()), expected)


def test_json_lines(server, expected):
    body = "\n".join(json.dumps({"review": r}) for r in REVIEWS)
    status, _, out = server.invoke(body, "application/jsonlines")
    assert status == 200, out
    _check(out["predictions"], list(REVIEWS.values()), expected)


def test_a_batch_of_64_keeps_its_order(server, featurizer, expected):
    texts = [("good " * (i % 4)) + ("awful " * (i % 3)) + "film" for i in range(64)]
    body = encode_request(featurizer.fingerprint, [featurizer.transform(t) for t in texts])
    status, _, out = server.invoke(body, "application/json")
    assert status == 200, out
    _check(out["predictions"], [{"good": i % 4, "awful": i % 3} for i in range(64)], expected)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*", "text/html, application/json;q=0.5"])
def test_accept_headers_that_allow_json(server, accept):
    headers = {"Accept": accept} if accept else {}
    status, _, _ = server.invoke("good film", "text/plain", **headers)
    assert status == 200


def _sparse(*instances: dict) -> Callable[[str], bytes]:
    """A sparse JSON body carrying the server's own fingerprint (known only at run time)."""
    return lambda fingerprint: json.dumps({"fingerprint": fingerprint, "instances": list(instances)}).encode()


BAD_REQUESTS = [
    # (id, content type, body, status, error code, words the message must contain)
    ("json-malformed", "application/json", b'{"fingerprint": ', 400, "invalid_request", "not valid JSON"),
    ("json-deeply-nested", "application/json", b"[" * 100_000, 400, "invalid_request", "not valid JSON"),
    ("json-not-object", "application/json", b"[1, 2]", 400, "invalid_request", "JSON object"),
    ("json-index-range", "application/json", _sparse({"indices": [7], "counts": [1]}), 400, "invalid_request",
     "index 7 is not an integer in [0, 7)"),
    ("json-negative", "application/json", _sparse({"indices": [1], "counts": [-1]}), 400, "invalid_request",
     "count -1"),
    ("json-no-instances", "application/json", _sparse(), 400, "invalid_request", "non-empty list"),
    ("json-empty-fingerprint", "application/json", b'{"fingerprint": "", "instances": []}', 400, "invalid_request",
     "'fingerprint' must be the featurizer fingerprint string"),
    ("json-too-many", "application/json", _sparse(*[{"indices": [], "counts": []}] * 10_001), 413,
     "too_many_reviews", "10001 reviews"),
    # hostile numbers: a 500 (OverflowError) or a NaN/inf probability before; a 400 naming the bound now
    ("json-401-digit-count", "application/json", _sparse({"indices": [1], "counts": [10**400]}), 400,
     "invalid_request", "at most 16,777,216"),
    ("json-count-over-float32", "application/json", _sparse({"indices": [1], "counts": [1e39]}), 400,
     "invalid_request", "count 1e+39 is not a number from 0 to 16,777,216"),
    ("json-count-over-2**24", "application/json", _sparse({"indices": [1], "counts": [2**24 + 1]}), 400,
     "invalid_request", "16,777,216"),
    ("json-5000-digit-count", "application/json",
     lambda f: b'{"fingerprint": "%s", "instances": [{"indices": [1], "counts": [%s]}]}' % (f.encode(), b"7" * 5000),
     400, "invalid_request", "more than 4,300 digits"),
    ("json-401-digit-index", "application/json", _sparse({"indices": [10**400], "counts": [1]}), 400,
     "invalid_request", "is not an integer in [0, 7)"),
    ("json-bool-count", "application/json", _sparse({"indices": [1], "counts": [True]}), 400, "invalid_request",
     "count True"),
    ("json-nested-count", "application/json", _sparse({"indices": [1], "counts": [[1]]}), 400, "invalid_request",
     "count [1]"),
    ("csv-width", "text/csv", b"1,2,3\n", 400, "invalid_request", "3 columns; this model expects 7"),
    ("csv-ragged", "text/csv", b"0,0,0,0,0,0,0\n1,2\n", 400, "invalid_request", "number of columns changed"),
    ("csv-negative", "text/csv", b"0,0,0,0,0,0,0\n0,0,-1,0,0,0,0\n", 400, "invalid_request", "row 2 holds a negative"),
    ("csv-nan", "text/csv", b"0,0,0,nan,0,0,0\n", 400, "invalid_request", "row 1 holds a NaN"),
    ("csv-inf", "text/csv", b"0,0,0,0,0,inf,0\n", 400, "invalid_request", "NaN or infinite"),
    ("csv-over-float32", "text/csv", b"0,0,0,1e39,0,0,0\n", 400, "invalid_request", "at most 16,777,216"),
    ("csv-401-digits", "text/csv", b"0,0," + b"9" * 401 + b",0,0,0,0\n", 400, "invalid_request", "16,777,216"),
    ("csv-over-2**24", "text/csv", b"0,16777217,0,0,0,0,0\n", 400, "invalid_request", "row 1 holds a count over"),
    ("csv-words", "text/csv", b"good,film\n", 400, "invalid_request", "not numeric CSV"),
    ("csv-empty", "text/csv", b"", 400, "invalid_request", "no CSV rows"),
    ("text-empty", "text/plain", b"", 400, "invalid_request", "no reviews"),
    ("text-blank-line", "text/plain", b"good\n\nbad\n", 400, "invalid_request", "line 2 is blank"),
    ("text-bad-utf8", "text/plain", b"caf\xe9\n", 400, "invalid_request", "not valid utf-8"),
    ("text-bad-charset", "text/plain; charset=klingon", b"qapla\n", 415, "unsupported_charset", "klingon"),
    ("text-too-many", "text/plain", b"good\n" * 10_001, 413, "too_many_reviews", "at most 10,000"),
    ("jsonl-not-json", "application/jsonlines", b'{"review": "good"}\nnope\n', 400, "invalid_request", "line 2"),
    ("jsonl-no-review", "application/jsonlines", b'{"text": "good"}\n', 400, "invalid_request", '"review"'),
    ("xml", "application/xml", b"<review>good</review>", 415, "unsupported_media_type", "text/csv"),
    ("no-content-type", None, b"good", 415, "unsupported_media_type", "no Content-Type"),
]


@pytest.mark.parametrize("content_type, body, status, code, words", [r[1:] for r in BAD_REQUESTS],
                         ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests_get_a_json_error_and_the_server_keeps_serving(
        server, featurizer, content_type, body, status, code, words):
    if callable(body):
        body = body(featurizer.fingerprint)
    got_status, headers, out = server.invoke(body, content_type)
    assert (got_status, out["error"]) == (status, code), out
    assert words in out["message"]
    assert headers["content-type"] == "application/json"
    _still_serving(server, featurizer)


def test_a_foreign_fingerprint_is_409_naming_both(server, featurizer):
    foreign = "ab" * 32
    status, _, out = server.invoke(encode_request(foreign, [featurizer.transform("good")]), "application/json")
    assert status == 409 and out["error"] == "featurizer_mismatch"
    assert foreign in out["message"] and featurizer.fingerprint in out["message"]
    _still_serving(server, featurizer)


def test_a_foreign_fingerprint_is_409_before_its_indices_are_read(server, featurizer):
    """Another vocabulary's indices may lie past this one: the mismatch is the error to report."""
    status, _, out = server.invoke(encode_request("ab" * 32, [SparseCounts([featurizer.vocab_size], [1])]),
                                   "application/json")
    assert status == 409 and out["error"] == "featurizer_mismatch"


def test_an_accept_header_without_json_is_406(server, featurizer):
    status, _, out = server.invoke("good film", "text/plain", Accept="text/csv")
    assert status == 406 and out["error"] == "not_acceptable" and "application/json" in out["message"]
    _still_serving(server, featurizer)


def test_a_body_over_6_mb_is_413(server, featurizer):
    body = b"0," * (3 * 1024 * 1024 + 1)
    status, _, out = server.invoke(body, "text/csv")
    assert status == 413 and "6,291,456 bytes" in out["message"]
    _still_serving(server, featurizer)


def test_a_large_body_of_the_wrong_type_still_gets_its_415(server, featurizer):
    status, _, out = server.invoke(b"x" * (5 * 1024 * 1024), "application/octet-stream")
    assert status == 415 and out["error"] == "unsupported_media_type"
    _still_serving(server, featurizer)


def test_a_chunked_body_over_6_mb_is_413(server, featurizer):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"good film\n" * 10_000 for _ in range(70))  # 7 MB, no Content-Length
    conn.request("POST", "/invocations", body=chunks, headers={"Content-Type": "text/plain"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"] == "request_entity_too_large"
    conn.close()
    _still_serving(server, featurizer)


@pytest.mark.parametrize("method, path, status", [("GET", "/invocations", 405), ("POST", "/predict", 404)])
def test_unknown_routes_get_json_errors(server, method, path, status):
    got, headers, out = server.request(method, path, b"x", {"Content-Type": "text/plain"})
    assert got == status and headers["content-type"] == "application/json" and out["message"]


def test_50_concurrent_requests_all_succeed(server, featurizer, expected):
    texts = [("great " * (i % 5)) + ("bad " * (i % 2)) for i in range(50)]

    def score(text):
        return server.invoke(encode_request(featurizer.fingerprint, [featurizer.transform(text)]),
                             "application/json")

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(score, texts))
    assert [status for status, _, _ in results] == [200] * 50
    for i, (_, _, out) in enumerate(results):
        _check(out["predictions"], [{"great": i % 5, "bad": i % 2}], expected)


def _runtime(**kwargs):
    return boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", **kwargs)


def test_boto3_sagemaker_runtime_invokes_the_server(server, featurizer, expected):
    client = _runtime(endpoint_url=f"http://127.0.0.1:{server.port}")
    body = encode_request(featurizer.fingerprint, [featurizer.transform(r) for r in REVIEWS])
    resp = client.invoke_endpoint(EndpointName="x", ContentType="application/json", Body=body)
    assert resp["ContentType"] == "application/json"
    _check(json.loads(resp["Body"].read())["predictions"], list(REVIEWS.values()), expected)


def test_boto3_honours_the_endpoint_url_variable_and_sees_errors(server, featurizer, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{server.port}")
    client = _runtime()
    resp = client.invoke_endpoint(EndpointName="local", ContentType="text/plain", Accept="application/json",
                                  Body=b"a great film")
    assert json.loads(resp["Body"].read())["predictions"][0]["label"] == "positive"
    with pytest.raises(ClientError) as error:
        client.invoke_endpoint(EndpointName="local", ContentType="application/json",
                               Body=encode_request("ab" * 32, [featurizer.transform("good")]))
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
