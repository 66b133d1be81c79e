"""The sparse wire format between the Lambda and the model server."""

import json

import pytest

from lambda_fn.featurizer import SparseCounts
from lambda_fn.payload import PayloadError, decode_request, encode_request


def test_roundtrip() -> None:
    rows = [SparseCounts([1, 5], [2, 1]), SparseCounts([], [])]
    fingerprint, decoded = decode_request(encode_request("abc", rows), vocab_size=10)
    assert fingerprint == "abc"
    assert decoded == rows


def test_encoding_is_compact() -> None:
    body = encode_request("f", [SparseCounts([1, 2], [3, 4])])
    assert body == b'{"fingerprint":"f","instances":[{"indices":[1,2],"counts":[3,4]}]}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"instances": [{"indices": [], "counts": []}]}', "fingerprint"),
        (b'{"fingerprint": "f", "instances": []}', "non-empty"),
        (b'{"fingerprint": "f", "instances": [3]}', r"instances\[0\]"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1]}]}', "lists"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": []}]}', "1 indices but 0 counts"),
        (b'{"fingerprint": "f", "instances": [{"indices": [10], "counts": [1]}]}', r"index 10 is not"),
        (b'{"fingerprint": "f", "instances": [{"indices": [-1], "counts": [1]}]}', r"index -1"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1.5], "counts": [1]}]}', r"index 1.5"),
        (b'{"fingerprint": "f", "instances": [{"indices": [true], "counts": [1]}]}', r"index True"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": [-2]}]}', r"count -2"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": [NaN]}]}', r"count nan"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": ["2"]}]}', r"count '2'"),
    ],
)
def test_bad_requests_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_request(body, vocab_size=10)


def test_accepts_parsed_documents() -> None:
    doc = json.loads(encode_request("f", [SparseCounts([0], [1])]))
    assert decode_request(doc, vocab_size=1) == ("f", [SparseCounts([0], [1])])
