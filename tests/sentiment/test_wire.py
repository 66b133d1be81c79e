"""The sparse wire format between the Lambda and the model server."""

import json

import pytest

from sentiment.featurizer import SparseCounts
from sentiment.wire import PayloadError, PayloadTooLarge, decode_request, encode_request, read_request


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


def test_the_fingerprint_is_read_before_the_instances() -> None:
    request = read_request(b'{"fingerprint": "f", "instances": [{"indices": [99], "counts": [1]}]}')
    assert request.fingerprint == "f"
    with pytest.raises(PayloadError, match="index 99 is not"):
        request.rows(vocab_size=10)
    with pytest.raises(PayloadError, match="fingerprint"):
        read_request(b'{"fingerprint": "", "instances": []}')


def test_accepts_parsed_documents() -> None:
    doc = json.loads(encode_request("f", [SparseCounts([0], [1])]))
    assert decode_request(doc, vocab_size=1) == ("f", [SparseCounts([0], [1])])


# -- hostile documents: every one is a PayloadError naming the cause, never another exception --

def _body(indices: list, counts: list) -> bytes:
    return json.dumps({"fingerprint": "f", "instances": [{"indices": indices, "counts": counts}]}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # 401 digits: math.isfinite(int) raised OverflowError here, a 500 on the server
        (b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": [' + b"9" * 401 + b"]}]}",
         "count 9999"),
        # finite in Python, infinite as the model's float32 input (NaN/inf probabilities)
        (_body([1], [1e39]), r"count 1e\+39"),
        (_body([1], [3.5e38]), "16,777,216"),
        (_body([1], [2**24 + 1]), "16,777,216"),
        (_body([1], [True]), "count True"),
        (_body([1], [[1]]), r"count \[1\]"),
        (_body([[1]], [1]), r"index \[1\]"),
        (_body([10**400], [1]), "index 1000"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": [1e400]}]}', "count inf"),
        (b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": [-Infinity]}]}', "count -inf"),
    ],
    ids=["401-digit-count", "1e39", "over-float32-exact", "2**24+1", "bool-count", "nested-count",
         "nested-index", "401-digit-index", "1e400", "-inf"],
)
def test_hostile_numbers_are_refused_by_name(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message) as error:
        decode_request(body, vocab_size=10)
    assert len(str(error.value)) < 200  # a 401-digit number is not echoed whole


def test_the_count_bound_is_float32s_exact_integers() -> None:
    assert decode_request(_body([1], [2**24]), vocab_size=10)[1] == [SparseCounts([1], [2**24])]
    assert decode_request(_body([1], [0.5]), vocab_size=10)[1] == [SparseCounts([1], [0.5])]


def test_a_5000_digit_number_is_named_not_called_invalid_json() -> None:
    with pytest.raises(PayloadError, match="more than 4,300 digits"):
        decode_request(b'{"fingerprint": "f", "instances": [{"indices": [1], "counts": [' + b"7" * 5000 + b"]}]}",
                       vocab_size=10)


def test_a_huge_parsed_document_is_refused_before_its_entries_are_read() -> None:
    """10,000 rows of a million entries (one shared list, so the test is cheap): refused at once."""
    entries = [0] * 1_000_000
    doc = {"fingerprint": "f", "instances": [{"indices": entries, "counts": entries}] * 10_000}
    with pytest.raises(PayloadTooLarge, match="10,000,000,000 index/count pairs; send at most 2,000,000"):
        decode_request(doc, vocab_size=10)


def test_more_than_10000_instances_are_too_large() -> None:
    doc = {"fingerprint": "f", "instances": [{"indices": [], "counts": []}] * 10_001}
    with pytest.raises(PayloadTooLarge, match="10001 reviews in one request; send at most 10,000"):
        decode_request(doc, vocab_size=10)
