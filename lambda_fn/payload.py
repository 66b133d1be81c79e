"""The compact sparse JSON that the Lambda sends to the model server, written and read here only.

Request body, ``Content-Type: application/json``::

    {"fingerprint": "<sha256 of featurizer.json>",
     "instances": [{"indices": [3, 17, 512], "counts": [1, 2, 1]}, ...]}

Response body, ``application/json``::

    {"predictions": [{"label": "positive", "probability_positive": 0.97,
                      "model_version": "20261128T1810Z-3f2a9c1d"}, ...]}

For a typical IMDB review this is about a tenth of the dense CSV row the course's Lambda sent.
Pure standard library: it runs inside the Lambda zip.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from lambda_fn.featurizer import SparseCounts

CONTENT_TYPE = "application/json"


class PayloadError(ValueError):
    """A request body that is not a valid sparse bag-of-words batch; the message says why."""


def encode_request(fingerprint: str, rows: Sequence[SparseCounts]) -> bytes:
    """Serialize a batch of sparse rows with the featurizer fingerprint that produced them."""
    instances = [{"indices": list(r.indices), "counts": list(r.counts)} for r in rows]
    return json.dumps({"fingerprint": fingerprint, "instances": instances}, separators=(",", ":")).encode()


def decode_request(body: bytes | str | Any, vocab_size: int) -> tuple[str, list[SparseCounts]]:
    """Parse and validate a request; raise PayloadError naming the first problem found.

    ``body`` may be raw bytes/str or an already-parsed JSON document.
    """
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise PayloadError("body must be a JSON object with 'fingerprint' and 'instances'")
    fingerprint = body.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise PayloadError("'fingerprint' must be the featurizer fingerprint string")
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise PayloadError("'instances' must be a non-empty list")
    return fingerprint, [_decode_row(n, row, vocab_size) for n, row in enumerate(instances)]


def _decode_row(n: int, row: Any, vocab_size: int) -> SparseCounts:
    if not isinstance(row, dict):
        raise PayloadError(f"instances[{n}] must be an object with 'indices' and 'counts'")
    indices, counts = row.get("indices"), row.get("counts")
    if not isinstance(indices, list) or not isinstance(counts, list):
        raise PayloadError(f"instances[{n}] needs 'indices' and 'counts' lists")
    if len(indices) != len(counts):
        raise PayloadError(f"instances[{n}]: {len(indices)} indices but {len(counts)} counts")
    for i in indices:
        if type(i) is not int or not 0 <= i < vocab_size:
            raise PayloadError(f"instances[{n}]: index {i!r} is not an integer in [0, {vocab_size})")
    for c in counts:
        if type(c) not in (int, float) or not math.isfinite(c) or c < 0:
            raise PayloadError(f"instances[{n}]: count {c!r} is not a finite number >= 0")
    return SparseCounts(indices, counts)
