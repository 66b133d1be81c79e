"""Request bodies → a ``Batch`` to score, one parser per Content-Type; bad input raises RequestError.

- ``application/json``: the Lambda's sparse bag-of-words (``sentiment.wire``), with the
  featurizer fingerprint checked first, so a mismatch is a 409 rather than an index error. Its
  ``explain`` option comes back on the batch (``ExplainedBatch``); only this type can ask for it.
- ``text/csv``: dense count rows as wide as the vocabulary, one per review; validated, then
  reduced to their non-zero entries (the model takes sparse input).
- ``text/plain``: one raw review per line; ``application/jsonlines``: ``{"review": "..."}``
  per line. Both are featurized here with the model's own featurizer. A blank line is an
  error rather than skipped, so the predictions always line up with the input lines.

Every parser takes the request's ``Deadline`` and looks at it between pieces of work (raw text
is featurized ``CHUNK`` reviews at a time), so a request past the server's ``--timeout`` stops
with a 503 instead of running on after its caller has given up.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sentiment.batch import Batch
from sentiment.wire import (
    COUNT_RULE,
    MAX_COUNT,
    MAX_INSTANCES,
    Explain,
    PayloadError,
    PayloadTooLarge,
    loads,
    read_request,
)
from serving.model import Model

# Work grows with the row count, not the body size: a 6 MB body of empty sparse rows holds
# 200,000 of them. 10,000 rows hold a 6 MB batch-transform body of IMDB reviews; measured on
# this project's 2-core machines: about 1 s to parse as sparse JSON or 2.3 s to featurize as raw
# text, then under 0.1 s to score. The sparse JSON's own limit (sentiment.wire) is the same.
MAX_ROWS = MAX_INSTANCES
# Reviews featurized between two looks at the deadline: 256 long IMDB reviews take ~0.1 s here.
CHUNK = 256


@dataclass(frozen=True)
class ExplainedBatch(Batch):
    """A batch whose request asked for explanations (``sentiment.wire``'s ``explain`` option)."""

    explain: Explain = True


class RequestError(Exception):
    """A request the server refuses: HTTP status, short error code and a human message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Deadline:
    """The moment by which one request must be done (``seconds`` None: never)."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic):
        self.seconds, self._clock = seconds, clock
        self._end = math.inf if seconds is None else clock() + seconds

    def remaining(self) -> float:
        return self._end - self._clock() if self.seconds is not None else math.inf

    def error(self) -> RequestError:
        return RequestError(503, "timeout", f"the request took longer than {self.seconds:g} s, this server's "
                                            "--timeout; send fewer or shorter reviews per request")

    def check(self) -> None:
        """Raise the 503 ``timeout`` RequestError once the deadline has passed."""
        if self.seconds is not None and self._clock() >= self._end:
            raise self.error()


NO_DEADLINE = Deadline(None)


def _bad(message: str) -> RequestError:
    return RequestError(400, "invalid_request", message)


def _text(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset)
    except LookupError:
        raise RequestError(415, "unsupported_charset", f"unknown charset {charset!r}; send utf-8") from None
    except UnicodeDecodeError as exc:
        raise _bad(f"body is not valid {charset}: {exc.reason} at byte {exc.start}") from None


def _lines(text: str) -> list[str]:
    """Split on newlines only (str.splitlines also splits on U+2028 and friends inside a review)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise _bad(f"line {n} is blank; send one review per line")
    if not lines:
        raise _bad("body holds no reviews")
    return lines


def _check_rows(n: int) -> None:
    if n > MAX_ROWS:
        raise RequestError(413, "too_many_reviews", f"{n} reviews in one request; send at most {MAX_ROWS:,}")


def _featurize(model: Model, reviews: list[str], deadline: Deadline) -> Batch:
    rows = []
    for start in range(0, len(reviews), CHUNK):
        deadline.check()
        rows += model.featurizer.transform_many(reviews[start:start + CHUNK])
    deadline.check()
    return Batch.from_rows(rows)


def parse_json(body: bytes, charset: str, model: Model, deadline: Deadline = NO_DEADLINE) -> Batch:
    text = _text(body, charset)
    try:
        request = read_request(text)
        deadline.check()
        if request.fingerprint != model.fingerprint:
            raise RequestError(
                409,
                "featurizer_mismatch",
                f"the request was featurized with fingerprint {request.fingerprint}, but this model's featurizer "
                f"has fingerprint {model.fingerprint}; deploy the featurizer.json of the model being served",
            )
        explain = request.explain
        rows = request.rows(model.vocab_size)
    except PayloadTooLarge as exc:
        raise RequestError(413, exc.code, str(exc)) from None
    except PayloadError as exc:
        raise _bad(str(exc)) from None
    if explain is not False and model.explainer is None:
        raise RequestError(501, "explain_unavailable", f"model {model.version} has no explain.onnx, so it cannot "
                                                       "explain; retrain with this version of training to get one")
    deadline.check()
    batch = Batch.from_rows(rows)
    return batch if explain is False else ExplainedBatch(batch.indices, batch.counts, batch.offsets, explain)


def parse_csv(body: bytes, charset: str, model: Model, deadline: Deadline = NO_DEADLINE) -> Batch:
    text = _text(body, charset)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data" is handled below
            # float64 first: float32 would round 16,777,217 to 2**24 and turn 1e39 into infinity unseen.
            matrix = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except ValueError as exc:
        raise _bad(f"body is not numeric CSV: {str(exc).split(';')[0]}") from None
    deadline.check()
    if matrix.shape[0] == 0:
        raise _bad("body holds no CSV rows")
    _check_rows(matrix.shape[0])
    if matrix.shape[1] != model.vocab_size:
        raise _bad(f"CSV rows have {matrix.shape[1]} columns; this model expects {model.vocab_size} "
                   "(its vocabulary size)")
    for wrong, what in ((~np.isfinite(matrix), "a NaN or infinite count"), (matrix < 0, "a negative count"),
                        (matrix > MAX_COUNT, f"a count over {MAX_COUNT:,}")):
        rows = wrong.any(axis=1)
        if rows.any():
            raise _bad(f"CSV row {int(np.argmax(rows)) + 1} holds {what}; counts must be numbers >= 0 and "
                       f"{COUNT_RULE}")
    return Batch.from_dense(matrix.astype(np.float32))


def parse_text(body: bytes, charset: str, model: Model, deadline: Deadline = NO_DEADLINE) -> Batch:
    lines = _lines(_text(body, charset))
    _check_rows(len(lines))
    return _featurize(model, lines, deadline)


def parse_jsonlines(body: bytes, charset: str, model: Model, deadline: Deadline = NO_DEADLINE) -> Batch:
    lines = _lines(_text(body, charset))
    _check_rows(len(lines))
    reviews = []
    for n, line in enumerate(lines, 1):
        try:
            doc = loads(line, f"line {n}")
        except PayloadError as exc:
            raise _bad(str(exc)) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("review"), str):
            raise _bad(f'line {n} must be a JSON object {{"review": "<text>"}}')
        reviews.append(doc["review"])
    deadline.check()
    return _featurize(model, reviews, deadline)


PARSERS: dict[str, Callable[[bytes, str, Model, Deadline], Batch]] = {
    "application/json": parse_json,
    "text/csv": parse_csv,
    "text/plain": parse_text,
    "application/jsonlines": parse_jsonlines,
}
