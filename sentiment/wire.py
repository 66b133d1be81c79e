"""The wire format between the Lambda and the model server, requests and responses: written and read here only.

Request body, ``Content-Type: application/json``::

    {"fingerprint": "<sha256 of featurizer.json>",
     "instances": [{"indices": [3, 17, 512], "counts": [1, 2, 1]}, ...]}

Response body, ``application/json``::

    {"predictions": [{"label": "positive", "probability_positive": 0.97,
                      "model_version": "20261128T1810Z-3f2a9c1d"}, ...]}

with ``label`` "positive" exactly when ``probability_positive >= THRESHOLD`` (``label``), the one
label rule of the project (the server, batch scoring, the Lambda's check and training's metrics).
A model that records an uncertain band (``low``, ``high``; training derives it from the
validation split) adds ``"uncertain": true|false`` to each prediction: ``low <= p <= high``.

Explanations, opt-in: a request with ``"explain": true`` (every term) or ``"explain": N`` (the N
largest by magnitude) gets, in each prediction::

    "explanation": {"bias": -0.12, "logit": 2.31,
                    "indices": [512, 3, ...], "contributions": [1.02, -0.4, ...],
                    "omitted": {"count": 0, "contribution": 0.0}}

the review's terms by vocabulary index with their signed contributions to the logit, largest
magnitude first (ties by index), and what a limit left out, so that ``bias + contributions +
omitted.contribution == logit``. The API names the terms (``name_terms``) instead of the indices.
Without ``explain`` a request and its response are exactly as before.

For a typical IMDB review this is about a tenth of the dense CSV row the course's Lambda sent.
Pure standard library: it runs inside the Lambda zip.

Reading is bounded before any entry is looked at: at most ``MAX_INSTANCES`` reviews and
``MAX_PAIRS`` index/count pairs (``PayloadTooLarge``). Every index is an integer below the
vocabulary size and every count a number from 0 to ``MAX_COUNT`` (2**24): the model reads
counts as float32, which holds every integer up to 2**24 exactly and turns anything past
3.4e38 into infinity. A bad entry is named in the message, shortened if it is long.

A request is read in two steps: ``read_request`` parses it and reads its fingerprint, then
``Request.rows`` checks its instances against the vocabulary, so a reader can refuse another
featurizer's request (the server's 409) before judging its indices by the wrong vocabulary.
``decode_request`` does both.
"""

from __future__ import annotations

import json
import math
import reprlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sentiment.featurizer import SparseCounts

CONTENT_TYPE = "application/json"
MAX_INSTANCES = 10_000  # reviews in one request
# Index/count pairs in one request: 10,000 reviews of 200 distinct terms each. A 6 MB body holds
# at most about 1.5 million, so only an already-parsed document can reach this.
MAX_PAIRS = 2_000_000
MAX_COUNT = 2**24  # the largest integer that float32, the model's input type, holds exactly
COUNT_RULE = f"counts are at most {MAX_COUNT:,} (2**24, float32's largest exact integer)"


THRESHOLD = 0.5  # positive iff the probability is at least this
MAX_EXPLAIN = 100_000  # the largest N of "explain": N (more than any review's distinct terms)
EXPLAIN_RULE = f'"explain" must be true, false or a number of terms from 1 to {MAX_EXPLAIN:,}'


class PayloadError(ValueError):
    """A request or response body that breaks the wire format; the message says why."""


class PayloadTooLarge(PayloadError):
    """A request with more reviews or entries than one request may carry (a 413 on the server)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class _Short(reprlib.Repr):
    """repr() cut to a few dozen characters, safe for integers past Python's digit limit."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlong = self.maxstring = self.maxother = 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 14_000:  # about 4,200 digits: str() would raise past 4,300
            return f"<an integer of about {int(x.bit_length() * 0.30103):,} digits>"
        return super().repr_int(x, level)


_show = _Short().repr


Explain = bool | int  # False: no explanation; True: every term; N: the N largest


def encode_request(fingerprint: str, rows: Sequence[SparseCounts], explain: Explain = False) -> bytes:
    """Serialize a batch of sparse rows with the featurizer fingerprint that produced them."""
    instances = [{"indices": list(r.indices), "counts": list(r.counts)} for r in rows]
    doc: dict[str, Any] = {"fingerprint": fingerprint, "instances": instances}
    if explain is not False:
        doc["explain"] = read_explain(explain)
    return json.dumps(doc, separators=(",", ":")).encode()


def read_explain(value: Any) -> Explain:
    """The ``explain`` option checked (true, false or 1..MAX_EXPLAIN); PayloadError otherwise."""
    if type(value) is bool or (type(value) is int and 1 <= value <= MAX_EXPLAIN):
        return value
    raise PayloadError(f"{EXPLAIN_RULE}, not {_show(value)}")


def loads(body: bytes | bytearray | str, what: str = "body") -> Any:
    """``json.loads``, with every failure a PayloadError saying what is wrong with ``what``."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(f"{what} is not valid JSON, or nests too deeply to read") from None
    except ValueError:  # the only other one: an integer literal past Python's digit limit
        raise PayloadError(f"{what} holds a number of more than {sys.get_int_max_str_digits():,} digits, past Python's "
                           f"limit for integers; {COUNT_RULE} and indices below the vocabulary size") from None


@dataclass(frozen=True)
class Request:
    """A request read as far as its fingerprint: compare that first, then ask for ``rows``.

    The indices only mean something for the featurizer that made them, so a reader checks the
    fingerprint before the instances are looked at (the server's 409 rather than an index error).
    """

    fingerprint: str
    _doc: dict[str, Any] = field(repr=False)

    @property
    def explain(self) -> Explain:
        """The request's ``explain`` option (False when absent); PayloadError when malformed."""
        return read_explain(self._doc.get("explain", False))

    def rows(self, vocab_size: int) -> list[SparseCounts]:
        """The instances, checked against the vocabulary size; PayloadError naming the first problem.

        The number of reviews and of entries is checked before any entry is read (PayloadTooLarge).
        """
        instances = self._doc.get("instances")
        if not isinstance(instances, list) or not instances:
            raise PayloadError("'instances' must be a non-empty list")
        if len(instances) > MAX_INSTANCES:
            raise PayloadTooLarge(f"{len(instances)} reviews in one request; send at most {MAX_INSTANCES:,}",
                                  "too_many_reviews")
        pairs = sum(_pair_count(n, row) for n, row in enumerate(instances))
        if pairs > MAX_PAIRS:
            raise PayloadTooLarge(f"{pairs:,} index/count pairs; send at most {MAX_PAIRS:,} in one request",
                                  "too_many_terms")
        return [_decode_row(n, row, vocab_size) for n, row in enumerate(instances)]


def read_request(body: bytes | bytearray | str | Any) -> Request:
    """Parse a request and read its fingerprint; PayloadError if it is not JSON or has none.

    ``body`` may be raw bytes/str or an already-parsed JSON document.
    """
    if isinstance(body, (bytes, bytearray, str)):
        body = loads(body)
    if not isinstance(body, dict):
        raise PayloadError("body must be a JSON object with 'fingerprint' and 'instances'")
    fingerprint = body.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise PayloadError("'fingerprint' must be the featurizer fingerprint string")
    return Request(fingerprint, body)


def decode_request(body: bytes | bytearray | str | Any, vocab_size: int) -> tuple[str, list[SparseCounts]]:
    """Parse and validate a whole request: its fingerprint and its rows (``read_request``, then ``rows``)."""
    request = read_request(body)
    return request.fingerprint, request.rows(vocab_size)


def _pair_count(n: int, row: Any) -> int:
    """The row's number of entries, once its shape is checked (its entries are not read)."""
    if not isinstance(row, dict):
        raise PayloadError(f"instances[{n}] must be an object with 'indices' and 'counts'")
    indices, counts = row.get("indices"), row.get("counts")
    if not isinstance(indices, list) or not isinstance(counts, list):
        raise PayloadError(f"instances[{n}] needs 'indices' and 'counts' lists")
    if len(indices) != len(counts):
        raise PayloadError(f"instances[{n}]: {len(indices)} indices but {len(counts)} counts")
    return len(indices)


def _decode_row(n: int, row: dict, vocab_size: int) -> SparseCounts:
    indices, counts = row["indices"], row["counts"]
    for i in indices:
        if type(i) is not int or not 0 <= i < vocab_size:  # bool is not int here
            raise PayloadError(f"instances[{n}]: index {_show(i)} is not an integer in [0, {vocab_size})")
    for c in counts:
        # Comparisons refuse NaN and the infinities; they work on integers of any size.
        if not ((type(c) is int or type(c) is float) and 0 <= c <= MAX_COUNT):
            raise PayloadError(f"instances[{n}]: count {_show(c)} is not a number from 0 to {MAX_COUNT:,}: "
                               f"{COUNT_RULE}")
    return SparseCounts(indices, counts)


def label(probability: float) -> str:
    """The label of a probability of positive: the project's one decision rule."""
    return "positive" if probability >= THRESHOLD else "negative"


Band = tuple[float, float]  # the uncertain band, (low, high)


def uncertain(probability: float, band: Band) -> bool:
    """Whether a probability falls in the model's uncertain band: the model is unsure of its label."""
    return band[0] <= probability <= band[1]


def prediction(probability: float, model_version: str, band: Band | None = None) -> dict[str, Any]:
    """One entry of a response's ``predictions``."""
    entry: dict[str, Any] = {"label": label(probability), "probability_positive": probability,
                             "model_version": model_version}
    if band is not None:
        entry["uncertain"] = uncertain(probability, band)
    return entry


def encode_response(probabilities: Sequence[float], model_version: str, band: Band | None = None,
                    explanations: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The response document for a batch's probabilities (the server serializes it)."""
    predictions = [prediction(p, model_version, band) for p in probabilities]
    for entry, explained in zip(predictions, explanations or (), strict=explanations is not None):
        entry["explanation"] = explained
    return {"predictions": predictions}


def explanation(indices: Sequence[int], contributions: Sequence[float], bias: float, logit: float,
                explain: Explain = True) -> dict[str, Any]:
    """One review's explanation: its terms by decreasing magnitude of contribution (ties by index),
    cut to the ``explain`` largest when it is a number; numbers to 9 significant digits (float32's)."""
    order = sorted(range(len(indices)), key=lambda k: (-abs(contributions[k]), indices[k]))
    kept = order if explain is True else order[:explain]
    rest = sum(float(contributions[k]) for k in order[len(kept):])
    return {"bias": _f32(bias), "logit": _f32(logit), "indices": [int(indices[k]) for k in kept],
            "contributions": [_f32(contributions[k]) for k in kept],
            "omitted": {"count": len(order) - len(kept), "contribution": _f32(rest)}}


def _f32(value: float) -> float:
    return float(f"{float(value):.9g}")


def name_terms(explained: dict[str, Any], vocabulary: Sequence[str]) -> dict[str, Any]:
    """An explanation with each index replaced by its term (the API's form): ``terms`` [{term, contribution}]."""
    terms = [{"term": vocabulary[i], "contribution": c}
             for i, c in zip(explained["indices"], explained["contributions"], strict=True)]
    return {"bias": explained["bias"], "logit": explained["logit"], "terms": terms, "omitted": explained["omitted"]}


def decode_response(body: bytes | str, count: int, vocab_size: int | None = None) -> list[dict[str, Any]]:
    """The predictions of a response to ``count`` reviews, checked; PayloadError naming the problem.

    Explanations are read (and their indices checked below ``vocab_size``) only when ``vocab_size``
    is given, i.e. when they were asked for; ``uncertain`` is passed on when the server sent it.
    """
    doc = loads(body, "the response")
    items = doc.get("predictions") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise PayloadError("the response must be a JSON object with a 'predictions' list")
    if len(items) != count:
        raise PayloadError(f"{len(items)} predictions for {count} reviews")
    return [_decode_prediction(n, item, vocab_size) for n, item in enumerate(items)]


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _decode_explanation(n: int, item: Any, vocab_size: int) -> dict[str, Any]:
    where = f"predictions[{n}].explanation"
    if not isinstance(item, dict):
        raise PayloadError(f"{where} is missing or not an object")
    indices, contributions, omitted = item.get("indices"), item.get("contributions"), item.get("omitted")
    if not (isinstance(indices, list) and isinstance(contributions, list) and len(indices) == len(contributions)):
        raise PayloadError(f"{where} needs 'indices' and 'contributions' lists of one length")
    if not (_number(item.get("bias")) and _number(item.get("logit")) and isinstance(omitted, dict)
            and type(omitted.get("count")) is int and _number(omitted.get("contribution"))):
        raise PayloadError(f"{where} needs numbers 'bias' and 'logit' and 'omitted' {{count, contribution}}")
    if not all(type(i) is int and 0 <= i < vocab_size for i in indices):
        raise PayloadError(f"{where}: an index is not an integer in [0, {vocab_size})")
    if not all(map(_number, contributions)):
        raise PayloadError(f"{where}: a contribution is not a finite number")
    return {"bias": float(item["bias"]), "logit": float(item["logit"]), "indices": indices,
            "contributions": [float(c) for c in contributions],
            "omitted": {"count": omitted["count"], "contribution": float(omitted["contribution"])}}


def _decode_prediction(n: int, item: Any, vocab_size: int | None = None) -> dict[str, Any]:
    if not isinstance(item, dict) or not {"label", "probability_positive", "model_version"} <= item.keys():
        raise PayloadError(f"predictions[{n}] must be an object with label, probability_positive and model_version")
    probability, version = item["probability_positive"], item["model_version"]
    if type(probability) not in (int, float) or not 0 <= probability <= 1:  # NaN fails the comparison
        raise PayloadError(f"predictions[{n}]: probability_positive {_show(probability)} is not a number in [0, 1]")
    if item["label"] != label(probability):
        raise PayloadError(f"predictions[{n}]: label {_show(item['label'])} disagrees with "
                           f"probability_positive {probability}")
    if not isinstance(version, str) or not version:
        raise PayloadError(f"predictions[{n}]: model_version {_show(version)} is not a non-empty string")
    decoded = {"label": item["label"], "probability_positive": float(probability), "model_version": version}
    if "uncertain" in item:
        if type(item["uncertain"]) is not bool:
            raise PayloadError(f"predictions[{n}]: uncertain {_show(item['uncertain'])} is not true or false")
        decoded["uncertain"] = item["uncertain"]
    if vocab_size is not None:
        decoded["explanation"] = _decode_explanation(n, item.get("explanation"), vocab_size)
    return decoded
