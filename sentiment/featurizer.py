"""Text → sparse bag-of-words: the one featurizer shared by training, the Lambda and the server.

Train/serve skew is the classic bug of this architecture, so there is exactly one
implementation. It is fitted on training reviews, saved as ``featurizer.json`` with a
fingerprint (sha256 over its settings and vocabulary tables), and loaded unchanged by the
Lambda and the model server, which refuse to work together when their fingerprints differ.
The file holds the lookup tables themselves (format 2), so a load, which every Lambda cold
start pays, is a few C-level calls and no Python step per term.

Pure standard library: it runs inside the Lambda zip, which carries no numpy.

Why a vocabulary rather than the hashing trick: a Python dict lookup per token is several
times cheaper than hashing each token with a stable hash (``hash()`` is salted per process),
the features stay interpretable, and the vocabulary of the most frequent uni- and bigrams
fits comfortably under the 5 MB budget for ``featurizer.json``. Speed matters because the
Lambda runs this on every request: see ``_build_index`` and the ASCII path of ``tokenize``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import sys
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import chain, repeat
from operator import add, mul
from pathlib import Path
from typing import NamedTuple

FORMAT = "sentiment-featurizer/2"
OLD_FORMATS = ("sentiment-featurizer/1",)  # a vocabulary list, whose load took a Python step per term
MAX_FILE_BYTES = 5 * 1024 * 1024
# The integer arrays of featurizer.json: "<typecode>:<base64 of the little-endian array>", int32
# ("i") where every value fits, else int64 ("q"), so that 300,000 terms stay under 5 MB.
_INT32, _INT64 = "i", "q"
assert array(_INT32).itemsize == 4 and array(_INT64).itemsize == 8

_TAG = re.compile(r"<[^>]*>")
# Decimal character references long enough to trip Python's int-string digit limit in html.unescape.
_LONG_DECIMAL_REFERENCE = re.compile(r"&#[0-9]{8,}")
# A token is a run of letters or digits, possibly joined by apostrophes ("don't", "rock'n'roll").
_TOKEN = re.compile(r"[^\W_]+(?:'++[^\W_]+)*")
# Stray combining marks left after NFKC, e.g. the dot of "İ".lower() == "i\u0307".
_COMBINING = re.compile("[\u0300-\u036f]")
# A run of more than 30 characters that are neither word nor space: every combining mark is such
# a character (a test checks it), and NFKC sorts a run of combining marks in quadratic time.
_LONG_SYMBOL_RUN = re.compile(r"(?<![^\w\s])[^\w\s]{31,}")
MAX_NON_STARTERS = 30  # Unicode's stream-safe limit (UAX #15): a run this long is cut by U+034F
_GRAPHEME_JOINER = "\u034f"  # a starter that blocks reordering; _COMBINING removes it afterwards
# NFKC may lengthen text (U+FDFA becomes 18 characters): its output is cut at MAX_EXPANSION times
# the length of its input plus EXPANSION_SLACK characters, and made in pieces of about NFKC_PIECE
# characters, so one review's work stays linear in its length whatever it holds.
MAX_EXPANSION, EXPANSION_SLACK = 2, 100
NFKC_PIECE = 512
_APOSTROPHES = ("\u2019", "\u2018", "\u02bc")
# The ASCII fast path: one bytes.translate lowercases letters and blanks out everything that
# cannot be part of a token; it gives exactly what _TOKEN finds, several times faster.
_ASCII_TOKEN_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789'"
_ASCII_TABLE = bytes(
    c + 32 if 65 <= c <= 90 else c if c in _ASCII_TOKEN_CHARS else 32 for c in range(256)
)


class FeaturizerError(ValueError):
    """A featurizer file is missing, malformed, or does not match its fingerprint."""


class SparseCounts(NamedTuple):
    """The bag-of-words of one review: vocabulary indices (ascending) and their counts."""

    indices: list[int]
    counts: list[int]


@dataclass(frozen=True)
class FeaturizerSettings:
    """Everything that changes how text becomes tokens; part of the fingerprint."""

    ngram_max: int = 2
    min_df: int = 3
    max_features: int = 100_000


def _strip_tags(text: str) -> str:
    """Replace each tag, from ``<`` to the next ``>``, by a space.

    Only the text up to the last ``>`` is searched: a ``<`` after it starts no tag, and searching
    on from each such ``<`` to the end of the text would take quadratic time on ``"<" * n``.
    """
    end = text.rfind(">") + 1
    return _TAG.sub(" ", text[:end]) + text[end:] if end else text


def _short_decimal_reference(match: re.Match[str]) -> str:
    digits = match.group()[2:].lstrip("0") or "0"
    # Over 7 digits the code point is past U+10FFFF, which html.unescape decodes to U+FFFD.
    return "&#" + (digits if len(digits) <= 7 else "1114112")


def _decode_entities(text: str) -> str:
    """``html.unescape``, with decimal references shortened first to the same code point.

    html.unescape calls int() on all the digits of ``&#99...9``, which raises ValueError past
    Python's int-string digit limit (4,300 digits).
    """
    if "&#" in text:
        text = _LONG_DECIMAL_REFERENCE.sub(_short_decimal_reference, text)
    return html.unescape(text)


def _strip_markup(text: str) -> str:
    # Tags go first, so an escaped "&lt;b&gt;" stays text, as a browser would show it.
    if "<" in text:
        text = _strip_tags(text)
    if "&" in text:
        text = _decode_entities(text)
    return text


def _grapheme_joined(match: re.Match[str]) -> str:
    run = match.group()
    return _GRAPHEME_JOINER.join(run[i : i + MAX_NON_STARTERS] for i in range(0, len(run), MAX_NON_STARTERS))


def _pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of about NFKC_PIECE characters, each cut before a space where there is one.

    NFKC never joins anything across a space, so normalizing the pieces one by one gives what
    normalizing the whole text gives; a text with no space in NFKC_PIECE characters is not prose,
    and is cut there (which may split a character from its marks).
    """
    start = 0
    while len(text) - start > NFKC_PIECE:
        cut = text.rfind(" ", start + 1, start + NFKC_PIECE)
        cut = start + NFKC_PIECE if cut == -1 else cut
        yield text[start:cut]
        start = cut
    yield text[start:]


def _nfkc(text: str) -> str:
    """NFKC, its length capped (MAX_EXPANSION) and runs of marks cut (UAX #15): linear time."""
    # Most text is normalized already (its quick check is linear: a run of marks out of order is a
    # "no" at once) and is then returned as it is: joiners would only be removed again by _fold.
    if unicodedata.is_normalized("NFKC", text):
        return text
    limit = MAX_EXPANSION * len(text) + EXPANSION_SLACK
    if _LONG_SYMBOL_RUN.search(text):
        text = _LONG_SYMBOL_RUN.sub(_grapheme_joined, text)
    normalized, length = [], 0
    for piece in _pieces(text):
        normalized.append(unicodedata.normalize("NFKC", piece))
        length += len(normalized[-1])
        if length >= limit:
            break
    return "".join(normalized)[:limit]


def _fold(text: str) -> str:
    """Fold width, compatibility forms, case and apostrophes of markup-free text."""
    if text.isascii():
        return text.lower()
    text = _COMBINING.sub("", _nfkc(text).lower())
    for apostrophe in _APOSTROPHES:
        if apostrophe in text:
            text = text.replace(apostrophe, "'")
    return text


def clean(text: str) -> str:
    """Drop tags such as ``<br />``, decode HTML entities, fold width, case and apostrophes."""
    return _fold(_strip_markup(text))


def tokenize(text: str) -> list[str]:
    """Clean ``text`` and split it into word tokens; punctuation is dropped."""
    text = _strip_markup(text)
    if not text.isascii():  # 9% of IMDB reviews: this path is slower
        return _TOKEN.findall(_fold(text))
    words = text.encode("ascii").translate(_ASCII_TABLE).decode("ascii").split()
    if "'" in text:  # apostrophes only count inside a token
        words = list(filter(None, map(str.strip, words, repeat("'"))))
    return words


def ngrams(tokens: list[str], ngram_max: int) -> list[str]:
    """The tokens followed by their 2..ngram_max-grams, each joined by one space."""
    grams = list(tokens)
    for n in range(2, ngram_max + 1):
        grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return grams


class Featurizer:
    """Fit on training texts, save, load, and turn one text into sparse counts.

    >>> f = Featurizer(FeaturizerSettings(min_df=1)).fit(["a good film", "a bad film"])
    >>> f.transform("A good, GOOD film!")  # doctest: +ELLIPSIS
    SparseCounts(indices=[...], counts=[...])
    """

    def __init__(self, settings: FeaturizerSettings | None = None, vocabulary: Iterable[str] = ()):
        self.settings = settings or FeaturizerSettings()
        self._set_vocabulary(vocabulary)

    def _set_vocabulary(self, vocabulary: Iterable[str]) -> None:
        terms = list(vocabulary)
        if len(set(terms)) != len(terms):
            raise FeaturizerError("vocabulary holds duplicate terms")
        self._vocabulary: list[str] | None = terms
        self._build_index(terms)
        self.fingerprint: str = self._compute_fingerprint()

    @property
    def vocabulary(self) -> list[str]:
        """The terms by index, n-grams joined by one space (built on first use after a load)."""
        if self._vocabulary is None:
            words, terms = self._words, [""] * self.vocab_size
            for word_id, index in enumerate(self._unigram_ids):
                if index >= 0:
                    terms[index] = words[word_id - 1]
            for n in range(2, self.settings.ngram_max + 1):
                for key, index in self._ngram_ids[n].items():
                    ids = []
                    for _ in range(n):
                        key, word_id = divmod(key, self._base)
                        ids.append(word_id)
                    terms[index] = " ".join(words[i - 1] for i in reversed(ids))
            self._vocabulary = terms
        return self._vocabulary

    def _build_index(self, vocabulary: list[str]) -> None:
        """Index n-grams by integer keys so transform never builds or hashes n-gram strings.

        Every word of the vocabulary gets an id from 1 (0 is any other word); an n-gram
        (w1..wn) is looked up by the key ((w1 * base + w2) * base + ...) in the table for n.
        """
        # Built with whole-list C calls (one join and split per n, map, zip) rather than a
        # Python loop per term: this runs on every Lambda cold start, for ~100k terms.
        n_max = self.settings.ngram_max
        spaces = list(map(str.count, vocabulary, repeat(" ")))
        positions = {n: [i for i, s in enumerate(spaces) if s == n - 1] for n in range(1, n_max + 1)}
        words_by_n = {n: " ".join(map(vocabulary.__getitem__, at)).split(" ") if at else []
                      for n, at in positions.items()}
        words = dict.fromkeys(chain.from_iterable(words_by_n.values()))
        if "" in words or sum(map(len, positions.values())) != len(vocabulary):
            bad = next(t for t in vocabulary if "" in t.split(" ") or t.count(" ") >= n_max)
            raise FeaturizerError(f"vocabulary term {bad!r} is not a 1..{n_max}-gram")
        self._words: list[str] = list(words)
        self._word_ids: dict[str, int] = dict(zip(self._words, range(1, len(self._words) + 1), strict=True))
        self._base = base = len(words) + 1
        word_id = self._word_ids.__getitem__
        self._unigram_ids = [-1] * base
        for wid, index in zip(map(word_id, words_by_n[1]), positions[1], strict=True):
            self._unigram_ids[wid] = index
        self._ngram_ids: list[dict[int, int]] = [{} for _ in range(n_max + 1)]
        for n in range(2, n_max + 1):
            flat = words_by_n[n]  # w1 w2 .. wn of each n-gram in turn
            keys = list(map(word_id, flat[0::n]))
            for k in range(1, n):
                keys = list(map(add, map(mul, keys, repeat(base)), map(word_id, flat[k::n])))
            self._ngram_ids[n] = dict(zip(keys, positions[n], strict=True))
        self._vocab_size = len(vocabulary)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> Featurizer:
        """Build the vocabulary: the ``max_features`` terms in most documents (ties by term)."""
        s = self.settings
        document_frequency: Counter[str] = Counter()
        for text in texts:
            document_frequency.update(set(ngrams(tokenize(text), s.ngram_max)))
        kept = [(df, term) for term, df in document_frequency.items() if df >= s.min_df]
        kept.sort(key=lambda item: (-item[0], item[1]))
        vocabulary = sorted(term for _, term in kept[: s.max_features])
        self._set_vocabulary(vocabulary)
        return self

    # -- transforming ----------------------------------------------------------------------
    def transform(self, text: str) -> SparseCounts:
        """The sparse bag-of-words of one review; terms outside the vocabulary are ignored."""
        return self.transform_measured(text)[0]

    def transform_measured(self, text: str) -> tuple[SparseCounts, int, int]:
        """``transform``, plus the review's number of tokens and of out-of-vocabulary tokens (those
        whose unigram is not a term): what drift monitoring watches, at no extra tokenising."""
        words = list(map(self._word_ids.get, tokenize(text), repeat(0)))
        ids = list(map(self._unigram_ids.__getitem__, words))
        oov = ids.count(-1)
        keys = words
        for n in range(2, self.settings.ngram_max + 1):
            keys = list(map(add, map(mul, keys[:-1], repeat(self._base)), words[n - 1 :]))
            ids += map(self._ngram_ids[n].get, keys, repeat(-1))
        counts = Counter(ids)
        counts.pop(-1, None)
        indices = sorted(counts)
        return SparseCounts(indices, list(map(counts.__getitem__, indices))), len(words), oov

    def transform_many(self, texts: Iterable[str]) -> list[SparseCounts]:
        return [self.transform(t) for t in texts]

    # -- persistence -----------------------------------------------------------------------
    # featurizer.json holds the lookup tables themselves, so that a load (every Lambda cold start)
    # is a few C-level calls: the words joined by newlines, split once; for each word id, its
    # unigram's index or -1; for each n >= 2, the n-gram keys and their indices as int64 arrays.
    # The fingerprint is sha256 over the format, the settings and those strings as stored.
    def _payload(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "settings": asdict(self.settings),
            "vocab_size": self.vocab_size,
            "words": "\n".join(self._words),
            "unigram_ids": _pack(self._unigram_ids),
            "ngrams": {str(n): {"keys": _pack(self._ngram_ids[n].keys()), "indices": _pack(self._ngram_ids[n].values())}
                       for n in range(2, self.settings.ngram_max + 1)},
        }

    def _compute_fingerprint(self) -> str:
        return _fingerprint(self._payload())

    def to_json(self) -> str:
        return json.dumps({"fingerprint": self.fingerprint, **self._payload()}, separators=(",", ":"),
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes) -> Featurizer:
        """Parse a saved featurizer; refuse it when it is malformed or does not match its fingerprint."""
        try:
            doc = json.loads(data)
            fmt = doc.get("format")
        except (ValueError, AttributeError) as exc:
            raise FeaturizerError(f"malformed featurizer file: {exc}") from None
        if fmt in OLD_FORMATS:
            raise FeaturizerError(f"featurizer file format {fmt!r} is from an older version of this project; "
                                  f"retrain (make retrain, or python -m training) to write {FORMAT!r}")
        if fmt != FORMAT:
            raise FeaturizerError(f"unknown featurizer format {fmt!r}, expected {FORMAT!r}")
        try:
            stored = doc["fingerprint"]
            payload = {key: doc[key] for key in ("format", "settings", "vocab_size", "words", "unigram_ids", "ngrams")}
            actual = _fingerprint(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise FeaturizerError(f"malformed featurizer file: missing or bad field {exc}") from None
        if actual != stored:
            raise FeaturizerError(f"featurizer fingerprint mismatch: file says {stored}, content hashes to {actual}")
        try:
            return cls._from_payload(payload, stored)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise FeaturizerError(f"malformed featurizer file: {exc}") from None

    @classmethod
    def _from_payload(cls, payload: dict, fingerprint: str) -> Featurizer:
        featurizer = cls.__new__(cls)
        featurizer.settings = settings = FeaturizerSettings(**payload["settings"])
        words = payload["words"].split("\n") if payload["words"] else []
        unigram_ids = _unpack(payload["unigram_ids"])
        vocab_size = payload["vocab_size"]
        ngram_ids: list[dict[int, int]] = [{} for _ in range(settings.ngram_max + 1)]
        count = len(unigram_ids) - unigram_ids.count(-1)
        for n in range(2, settings.ngram_max + 1):
            table = payload["ngrams"][str(n)]
            keys, indices = _unpack(table["keys"]), _unpack(table["indices"])
            ngram_ids[n] = dict(zip(keys, indices, strict=True))
            if len(ngram_ids[n]) != len(keys):
                raise ValueError(f"the {n}-gram table repeats a key")
            count += len(keys)
        if len(unigram_ids) != len(words) + 1 or unigram_ids[0] != -1:
            raise ValueError(f"{len(unigram_ids)} unigram ids for {len(words)} words")
        if count != vocab_size:
            raise ValueError(f"the tables hold {count} terms, vocab_size says {vocab_size}")
        for table in (unigram_ids, *(ngram_ids[n].values() for n in range(2, settings.ngram_max + 1))):
            if table and not (-1 <= min(table) and max(table) < vocab_size):
                raise ValueError(f"an index is outside 0..{vocab_size - 1}")
        featurizer._words, featurizer._base, featurizer._vocab_size = words, len(words) + 1, vocab_size
        featurizer._word_ids = dict(zip(words, range(1, len(words) + 1), strict=True))
        if len(featurizer._word_ids) != len(words):
            raise ValueError("a word is listed twice")
        featurizer._unigram_ids, featurizer._ngram_ids = unigram_ids, ngram_ids
        featurizer._vocabulary = None
        featurizer.fingerprint = fingerprint
        return featurizer

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        data = self.to_json().encode("utf-8")
        if len(data) > MAX_FILE_BYTES:
            raise FeaturizerError(
                f"featurizer.json would be {len(data):,} bytes, over the {MAX_FILE_BYTES:,} byte budget; "
                "lower max_features"
            )
        path.write_bytes(data)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Featurizer:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FeaturizerError(f"cannot read featurizer {path}: {exc.strerror or exc}") from exc
        return cls.from_json(data)


def _pack(values: Iterable[int]) -> str:
    values = list(values)
    fits = -(2**31) <= min(values, default=0) and max(values, default=0) < 2**31
    typecode = _INT32 if fits else _INT64
    packed = array(typecode, values)
    if sys.byteorder == "big":
        packed.byteswap()
    return f"{typecode}:{base64.b64encode(packed.tobytes()).decode('ascii')}"


def _unpack(text: str) -> list[int]:
    typecode, _, data = text.partition(":")
    if typecode not in (_INT32, _INT64):
        raise ValueError(f"an integer array of unknown type {typecode[:8]!r}")
    packed = array(typecode)
    packed.frombytes(base64.b64decode(data, validate=True))
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def _fingerprint(payload: dict) -> str:
    """sha256 over the format, the settings (canonical JSON) and each stored string, in a fixed order."""
    digest = hashlib.sha256()
    head = {"format": payload["format"], "settings": payload["settings"], "vocab_size": payload["vocab_size"]}
    parts = [json.dumps(head, sort_keys=True, separators=(",", ":")), payload["words"], payload["unigram_ids"]]
    for n in sorted(payload["ngrams"], key=int):
        parts += [n, payload["ngrams"][n]["keys"], payload["ngrams"][n]["indices"]]
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"expected a string in the featurizer file, got {type(part).__name__}")
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()
