"""Turn the body of a ``POST /predict`` request into a list of reviews, or say exactly what is wrong.

Accepted bodies (UTF-8; API Gateway may hand them over base64-encoded):

- ``application/json`` (also when no Content-Type is sent): ``{"review": "..."}`` or
  ``{"reviews": ["...", ...]}`` with 1..MAX_REVIEWS reviews, optionally ``"explain"`` (true, false
  or a number of terms: ``sentiment.wire``'s rule), and no other field;
- ``text/plain``: the whole body is one review (what the course's page sent).

JSON is read strictly but cheaply: a key repeated in any object is refused (parsers disagree
on which one wins), numbers are never converted except integers of up to 7 digits (only
``explain`` takes a number, and a long one costs time or fails), nesting past the decoder's
depth limit is refused, and so is a review holding an unpaired surrogate escape (not text).
Messages cut echoed values to a few dozen characters.

Pure standard library, no AWS: every rule here is unit-tested without mocks.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from typing import Any, NamedTuple

from sentiment.wire import Explain, PayloadError, read_explain

MAX_REVIEWS = 100  # per request
MAX_REVIEW_CHARS = 50_000  # per review; the longest IMDB review has about 13,700
MAX_BODY_BYTES = 1024 * 1024  # per request, after base64 decoding (API Gateway allows 10 MB)

JSON_TYPE, TEXT_TYPE = "application/json", "text/plain"


class ApiError(Exception):
    """An error answered as ``{"error": code, "message": message}`` with ``status``.

    ``message`` is for the caller and never holds internals; ``detail`` is for the operator
    and only goes to the log.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers, self.detail = headers or {}, detail


class PredictRequest(NamedTuple):
    reviews: list[str]
    explain: Explain = False  # False: no explanation; True: every term; N: the N largest


def parse_request(body: str | None, is_base64: bool, content_type: str | None) -> PredictRequest:
    """The reviews and options of a request body; raises ApiError (400, 413 or 415) naming the first problem."""
    media_type = _media_type(content_type)
    text = _decode(body, is_base64)
    if media_type == TEXT_TYPE:
        return PredictRequest([_check_review(text, "the review")])
    doc = _load_json(text)
    reviews = _reviews_from_json(doc)
    try:
        explain = read_explain(doc.get("explain", False))
    except PayloadError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return PredictRequest(reviews, explain)


def parse_reviews(body: str | None, is_base64: bool, content_type: str | None) -> list[str]:
    """The reviews in a request body; raises ApiError (400, 413 or 415) naming the first problem."""
    return parse_request(body, is_base64, content_type).reviews


class JsonNumber:
    """Any JSON number (NaN and Infinity too), unconverted: this API never reads a number.

    Converting them would cost time (int() of a long digit string is quadratic) or fail (Python
    refuses int strings of over 4,300 digits), yet each is simply "a number, not a string".
    """

    def __repr__(self) -> str:
        return "<a JSON number>"


NUMBER = JsonNumber()


def _load_json(text: str) -> Any:
    """The JSON document in ``text``; ApiError 400 for invalid JSON, a duplicate key or deep nesting."""
    try:
        return json.loads(text, parse_int=_integer, parse_float=_number, parse_constant=_number,
                          object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # valid or not, the decoder stopped at its depth limit (about 1,000)
        message = "the body nests arrays or objects too deeply; a request needs 2 levels"
        raise ApiError(400, "invalid_request", message) from None


def _number(_: str) -> JsonNumber:
    return NUMBER


def _integer(text: str) -> int | JsonNumber:
    return int(text) if len(text) <= 7 else NUMBER


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict, refusing duplicate keys: parsers disagree on which one wins."""
    doc = dict(pairs)
    if len(doc) < len(pairs):
        key = next(key for key, times in Counter(key for key, _ in pairs).items() if times > 1)
        message = f"duplicate key {shorten(key)!r} in a JSON object; send each field once"
        raise ApiError(400, "invalid_request", message)
    return doc


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: messages never echo a whole hostile value."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _media_type(content_type: str | None) -> str:
    """``application/json`` or ``text/plain`` from a Content-Type header; 415 for anything else."""
    media_type, *params = (content_type or JSON_TYPE).split(";")
    media_type = media_type.strip().lower() or JSON_TYPE
    if media_type not in (JSON_TYPE, TEXT_TYPE):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {shorten(media_type)!r} is not supported; send {JSON_TYPE} or {TEXT_TYPE}",
        )
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            message = f"charset {shorten(charset)!r} is not supported; send UTF-8"
            raise ApiError(415, "unsupported_media_type", message)
    return media_type


def _decode(body: str | None, is_base64: bool) -> str:
    """The body as text: base64-decoded when flagged, size-checked, strictly UTF-8."""
    if not body:
        raise ApiError(400, "invalid_request", "the request body is empty; send a review")
    if is_base64:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
            message = "the body is flagged base64 but is not valid base64"
            raise ApiError(400, "invalid_encoding", message) from None
    else:  # "surrogatepass" lets lone surrogates through, so the strict decode below reports them
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(
            413, "payload_too_large", f"the body is {len(raw):,} bytes; the limit is {MAX_BODY_BYTES:,} bytes"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"the body is not valid UTF-8 (byte {exc.start})") from None


def _reviews_from_json(doc: Any) -> list[str]:
    usage = "send {\"review\": \"...\"} or {\"reviews\": [\"...\", ...]}"
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid_request", f"the body must be a JSON object; {usage}")
    unknown = sorted(set(doc) - {"review", "reviews", "explain"})
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field {shorten(unknown[0])!r}; {usage}")
    given = {"review", "reviews"} & set(doc)
    if not given:
        raise ApiError(400, "invalid_request", f"the 'review' field is missing; {usage}")
    if len(given) == 2:
        raise ApiError(400, "invalid_request", f"both 'review' and 'reviews' given; {usage}")
    if "review" in doc:
        return [_check_review(doc["review"], "'review'")]
    reviews = doc["reviews"]
    if not isinstance(reviews, list):
        raise ApiError(400, "invalid_request", "'reviews' must be a list of strings")
    if not reviews:
        raise ApiError(400, "invalid_request", "'reviews' is empty; send at least one review")
    if len(reviews) > MAX_REVIEWS:
        raise ApiError(
            413, "too_many_reviews", f"{len(reviews)} reviews sent; the limit is {MAX_REVIEWS} per request"
        )
    return [_check_review(review, f"reviews[{n}]") for n, review in enumerate(reviews)]


def _check_review(review: Any, name: str) -> str:
    if not isinstance(review, str):
        raise ApiError(400, "invalid_request", f"{name} must be a string, not {json_type(review)}")
    if not review or review.isspace():
        raise ApiError(400, "invalid_request", f"{name} is empty or only whitespace; send some text")
    if len(review) > MAX_REVIEW_CHARS:
        raise ApiError(
            413,
            "review_too_long",
            f"{name} is {len(review):,} characters; the limit is {MAX_REVIEW_CHARS:,}",
        )
    if not review.isascii():
        try:
            review.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate, from a \uD800-\uDFFF escape
            message = (f"{name} holds an unpaired surrogate (\\u{ord(review[exc.start]):04x}) at character "
                       f"{exc.start}, which is not text; send valid Unicode")
            raise ApiError(400, "invalid_encoding", message) from None
    return review


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages ("an object", "a number", ...)."""
    names = {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number",
             JsonNumber: "a number", str: "a string"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
