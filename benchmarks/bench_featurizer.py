"""Featurizer speed: text → sparse counts for one IMDB test review at a time, against baselines.

Baselines, measured in the same run on the same reviews (by default every 10th of the 25,000
test reviews), each reported as the mean per review (what users pay) and the median:
- scikit-learn ``CountVectorizer(ngram_range=(1, 2), max_features=100_000)`` fitted on the
  training reviews, one review per ``transform`` call; target: ours >= 2x faster on the mean;
- the course's preprocessing (BeautifulSoup HTML strip, regex, stopwords, Porter stemmer).
  NLTK's stopword list needs a download, so scikit-learn's English stopword list stands in.

Hostile input: the slowest of a set of hostile 50,000-character texts (markup, apostrophes,
entities, long digit runs, combining marks, characters that NFKC expands), each against a normal
50,000-character review (IMDB test reviews joined, as they come: 9% of them hold a non-ASCII
character, so such a text takes the unicode path) in the same run. Target: <= 3x. The same
against an ASCII-only normal review is shown too.

    python -m benchmarks.bench_featurizer [--model-dir artifacts] [--data PATH] [--reviews 2500]
"""

from __future__ import annotations

import functools
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.common import load_featurizer, parser, test_sample
from benchmarks.headline import Headline, Section, verdict
from sentiment.featurizer import Featurizer
from training.data import load_imdb


def course_review_to_words(text: str) -> list[str]:
    """The course's preprocessing, as its notebook wrote it."""
    from bs4 import BeautifulSoup
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    text = BeautifulSoup(text, "html.parser").get_text()
    text = re.sub(r"[^a-zA-Z0-9]", " ", text.lower())
    words = [w for w in text.split() if w not in ENGLISH_STOP_WORDS]
    return [_stemmer().stem(w) for w in words]


@functools.cache
def _stemmer():
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


MEAN_TARGET = 2.0  # x CountVectorizer, mean per review: users pay the mean


@dataclass(frozen=True)
class Timing:
    """Milliseconds per review over one sample."""

    mean: float
    median: float


def time_per_review(fns: list[Callable[[str], object]], reviews: list[str], rounds: int = 3) -> list[Timing]:
    """Each function over all the reviews in turn, for ``rounds`` rounds (so that a burst of load
    elsewhere falls on every function alike, and each runs with its own tables in the caches, as
    in a Lambda).

    A review's time is its fastest of ``rounds`` calls (the machine is shared: what is slower
    than that is someone else's work); the mean and the median are over the reviews.
    """
    best = [[float("inf")] * len(reviews) for _ in fns]
    for _ in range(rounds):
        for times, fn in zip(best, fns, strict=True):
            for i, review in enumerate(reviews):
                start = time.perf_counter()
                fn(review)
                times[i] = min(times[i], time.perf_counter() - start)
    return [Timing(statistics.fmean(times) * 1e3, statistics.median(times) * 1e3) for times in best]


def run(featurizer: Featurizer, reviews: list[str], train_texts: list[str]) -> list[tuple[str, Timing]]:
    """Ours, CountVectorizer fitted as the issue names it, and the course's preprocessing."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(ngram_range=(1, 2), max_features=100_000).fit(train_texts)
    names = ["this project's Featurizer.transform",
             "scikit-learn CountVectorizer(ngram_range=(1, 2), max_features=100_000).transform",
             "course preprocessing (BeautifulSoup + stopwords + Porter)"]
    timings = time_per_review([featurizer.transform, lambda r: vectorizer.transform([r])], reviews)
    timings += time_per_review([course_review_to_words], reviews, rounds=1)
    return list(zip(names, timings, strict=True))


def report(results: list[tuple[str, Timing]], n: int, of: int) -> str:
    ours = results[0][1]
    count_vectorizer = results[1][1]
    ratio = count_vectorizer.mean / ours.mean
    met = "met" if ratio >= MEAN_TARGET else "**not met**"
    lines = [
        f"{n:,} IMDB test reviews (every {of // n}th of {of:,}), one review per call, "
        "each review's fastest of 3 rounds; "
        "CountVectorizer fitted on the 25,000 training reviews.",
        "",
        f"Mean per review: CountVectorizer / ours = **{ratio:.2f}×** (target >= {MEAN_TARGET:g}×: {met}); "
        f"median: {count_vectorizer.median / ours.median:.2f}×.",
        "",
        "| featurizer | mean ms / review | median ms / review | mean × ours |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {name} | {t.mean:.3f} | {t.median:.3f} | {t.mean / ours.mean:.2f}× |" for name, t in results]
    return "\n".join(lines)


REVIEW_CHARS = 50_000  # the API's limit per review
HOSTILE_TARGET = 3.0
# Each is repeated to REVIEW_CHARS characters.
HOSTILE_PATTERNS = {
    "`<` (an unclosed tag)": "<", "`'`": "'", "`<a`": "<a", "`<!--`": "<!--", "`<<>>`": "<<>>",
    "`a` and 49,999 `'`": None, "`x '' `": "x '' ", "`&`": "&", "`&#`": "&#", "`&#9`": "&#9",
    "`&a;` (not an entity)": "&a;", "`&lt`": "&lt", "`&amp;`": "&amp;",
    "`&#` and 4,301 `9` (the digit limit)": "&#" + "9" * 4301 + ";",
    "combining marks `\\u0301\\u0316`": "\u0301\u0316", "`a` + marks": "a\u0301\u0316\u0301\u0316",
    "`\\ufdfa` (NFKC: 18 characters)": "\ufdfa", "`\\u3300` (NFKC: 4 katakana)": "\u3300",
    "`\\ufb03 ` (ligature)": "\ufb03 ", "`\\uff21 ` (full width)": "\uff21 ", "`é<`": "\u00e9<",
    "`é'`": "\u00e9'", "`é&#`": "\u00e9&#", "`a ` (25,000 words)": "a ", "`é ` (25,000 words)": "\u00e9 ",
    "`ab cd ` (bigrams)": "ab cd ",
}


def hostile_texts() -> dict[str, str]:
    texts = {}
    for name, pattern in HOSTILE_PATTERNS.items():
        texts[name] = ("a" + "'" * (REVIEW_CHARS - 1) if pattern is None
                       else (pattern * (REVIEW_CHARS // len(pattern) + 1))[:REVIEW_CHARS])
    return texts


def best_ms(fn: Callable[[str], object], text: str, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def run_hostile(featurizer: Featurizer, reviews: list[str]) -> tuple[str, float]:
    """The report, and the slowest hostile text's time as a multiple of the normal review's."""
    normal = " ".join(reviews)[:REVIEW_CHARS]
    ascii_normal = " ".join(r for r in reviews if r.isascii())[:REVIEW_CHARS]
    if len(normal) < REVIEW_CHARS or len(ascii_normal) < REVIEW_CHARS:
        raise ValueError(f"need more than {REVIEW_CHARS:,} characters of reviews; pass a larger --reviews")
    base, ascii_base = best_ms(featurizer.transform, normal), best_ms(featurizer.transform, ascii_normal)
    rows = sorted(((best_ms(featurizer.transform, text), name) for name, text in hostile_texts().items()),
                  reverse=True)
    slowest, slowest_name = rows[0]
    met = "met" if slowest / base <= HOSTILE_TARGET else "**not met**"
    lines = [
        f"Hostile input: {len(rows)} texts of {REVIEW_CHARS:,} characters, each timed as one "
        "Featurizer.transform call (best of 5), against a normal review of the same length: IMDB test "
        f"reviews joined ({base:.2f} ms; an ASCII-only one: {ascii_base:.2f} ms).",
        "",
        f"Slowest: {slowest_name}, {slowest:.2f} ms = **{slowest / base:.2f}×** the normal review "
        f"(target <= {HOSTILE_TARGET:g}×: {met}); {slowest / ascii_base:.2f}× the ASCII-only one.",
        "",
        "| hostile text | ms | × normal review | × ASCII-only review |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {name} | {ms:.2f} | {ms / base:.2f}× | {ms / ascii_base:.2f}× |" for ms, name in rows]
    return "\n".join(lines), slowest / base


def main(argv: list[str] | None = None) -> Section:
    args = parser(__doc__, reviews=2500).parse_args(argv)  # every 10th of the 25,000 test reviews
    imdb = load_imdb(args.data)
    featurizer, reviews = load_featurizer(args.model_dir, imdb), test_sample(imdb, args.reviews)
    results = run(featurizer, reviews, imdb.train.texts)
    hostile, slowest = run_hostile(featurizer, reviews)
    text = report(results, len(reviews), len(imdb.test.texts)) + "\n\n" + hostile
    print(text)
    (_, ours), (_, count_vectorizer), (_, course) = results
    ratio = count_vectorizer.mean / ours.mean
    command = "python -m benchmarks.bench_featurizer"
    return Section(text, (
        Headline(f"featurizer, one review: mean (median) over every {len(imdb.test.texts) // len(reviews)}th "
                 "test review",
                 f"{ours.mean:.3f} ms ({ours.median:.3f}); CountVectorizer(ngram_range=(1, 2), max_features=100_000) "
                 f"{count_vectorizer.mean:.3f} ms ({count_vectorizer.median:.3f}): **{ratio:.2f}×** "
                 f"({count_vectorizer.median / ours.median:.2f}× on the median); the course's preprocessing "
                 f"{course.mean / ours.mean:.1f}×",
                 f"mean ≥ {MEAN_TARGET:g}× CountVectorizer: {verdict(ratio >= MEAN_TARGET)}", command),
        Headline("featurizer, slowest hostile 50,000-character review", f"{slowest:.2f}× a normal one",
                 f"≤ {HOSTILE_TARGET:g}×: {verdict(slowest <= HOSTILE_TARGET)}", command),
    ))


if __name__ == "__main__":
    main()
