"""Text → sparse bag-of-words: the one featurizer shared by training, the Lambda and the server.

Train/serve skew is the classic bug of this architecture, so there is exactly one
implementation. It is fitted on training reviews, saved as ``featurizer.json`` with a
fingerprint (sha256 over its settings and vocabulary), and loaded unchanged by the Lambda
and the model server, which refuse to work together when their fingerprints differ.

Pure standard library: it runs inside the Lambda zip, which carries no numpy.

Why a vocabulary rather than the hashing trick: a Python dict lookup per token is several
times cheaper than hashing each token with a stable hash (``hash()`` is salted per process),
the features stay interpretable, and the vocabulary of the most frequent uni- and bigrams
fits comfortably under the 5 MB budget for ``featurizer.json``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

FORMAT = "sentiment-featurizer/1"
MAX_FILE_BYTES = 5 * 1024 * 1024

_TAG = re.compile(r"<[^>]*>")
# A token is a run of letters or digits, optionally joined by apostrophes ("don't", "o'neil").
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# Stray combining marks left after NFKC, e.g. the dot of "İ".lower() == "i\u0307".
_COMBINING = re.compile("[\u0300-\u036f]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


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


def clean(text: str) -> str:
    """Drop tags such as ``<br />``, decode HTML entities, fold case, width and apostrophes.

    Tags go first, so an escaped ``&lt;b&gt;`` stays text, as a browser would show it.
    """
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    text = text.lower()
    if not text.isascii():  # rare in IMDB: keep the common path free of unicode work
        text = _COMBINING.sub("", unicodedata.normalize("NFKC", text)).translate(_APOSTROPHES)
    return text


def tokenize(text: str) -> list[str]:
    """Clean ``text`` and split it into word tokens; punctuation is dropped."""
    return _TOKEN.findall(clean(text))


def ngrams(tokens: list[str], ngram_max: int) -> list[str]:
    """The tokens followed by their 2..ngram_max-grams, each joined by one space."""
    grams = list(tokens)
    for n in range(2, ngram_max + 1):
        if n == 2:
            grams += [a + " " + b for a, b in zip(tokens, tokens[1:])]
        else:
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
        self.vocabulary: list[str] = list(vocabulary)
        self._index: dict[str, int] = {term: i for i, term in enumerate(self.vocabulary)}
        if len(self._index) != len(self.vocabulary):
            raise FeaturizerError("vocabulary holds duplicate terms")
        self.fingerprint: str = self._compute_fingerprint()

    def __len__(self) -> int:
        return len(self.vocabulary)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> "Featurizer":
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
        tokens = _TOKEN.findall(clean(text))
        get = self._index.get
        ids = [i for i in map(get, tokens) if i is not None]
        n = self.settings.ngram_max
        if n >= 2:
            ids += [i for i in map(get, map(_join_pair, tokens, tokens[1:])) if i is not None]
            for k in range(3, n + 1):
                grams = (" ".join(tokens[j : j + k]) for j in range(len(tokens) - k + 1))
                ids += [i for i in map(get, grams) if i is not None]
        if not ids:
            return SparseCounts([], [])
        items = sorted(Counter(ids).items())
        return SparseCounts([i for i, _ in items], [c for _, c in items])

    def transform_many(self, texts: Iterable[str]) -> list[SparseCounts]:
        return [self.transform(t) for t in texts]

    # -- persistence -----------------------------------------------------------------------
    def _compute_fingerprint(self) -> str:
        payload = json.dumps(
            {"format": FORMAT, "settings": asdict(self.settings), "vocabulary": self.vocabulary},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "settings": asdict(self.settings),
                "fingerprint": self.fingerprint,
                "vocabulary": self.vocabulary,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: str | bytes) -> "Featurizer":
        """Parse a saved featurizer; refuse it when its content does not match its fingerprint."""
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise FeaturizerError(f"unknown featurizer format {doc.get('format')!r}, expected {FORMAT!r}")
            featurizer = cls(FeaturizerSettings(**doc["settings"]), doc["vocabulary"])
            stored = doc["fingerprint"]
        except FeaturizerError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FeaturizerError(f"malformed featurizer file: {exc}") from exc
        if featurizer.fingerprint != stored:
            raise FeaturizerError(
                f"featurizer fingerprint mismatch: file says {stored}, content hashes to {featurizer.fingerprint}"
            )
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
    def load(cls, path: str | Path) -> "Featurizer":
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FeaturizerError(f"cannot read featurizer {path}: {exc.strerror or exc}") from exc
        return cls.from_json(data)


def _join_pair(a: str, b: str) -> str:
    return a + " " + b
