"""Featurizer speed: text → sparse counts for one IMDB test review at a time, against baselines.

Baselines, measured in the same run on the same reviews:
- scikit-learn ``CountVectorizer.transform`` with the same uni+bigram vocabulary;
- the course's preprocessing (BeautifulSoup HTML strip, regex, stopwords, Porter stemmer).
  NLTK's stopword list needs a download, so scikit-learn's English stopword list stands in.

    python -m benchmarks.bench_featurizer [--model-dir artifacts] [--data PATH] [--reviews 2000]
"""

from __future__ import annotations

import functools
import re
import statistics
import time
from typing import Callable

from benchmarks.common import parser, setup
from lambda_fn.featurizer import Featurizer


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


def median_ms(fn: Callable[[str], object], reviews: list[str], rounds: int = 3) -> float:
    """Median milliseconds per call, the best of a few rounds (the machine is shared)."""
    best = float("inf")
    for _ in range(rounds):
        times = []
        for review in reviews:
            start = time.perf_counter()
            fn(review)
            times.append(time.perf_counter() - start)
        best = min(best, statistics.median(times))
    return best * 1e3


def run(featurizer: Featurizer, reviews: list[str]) -> list[tuple[str, float]]:
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(ngram_range=(1, featurizer.settings.ngram_max), vocabulary=featurizer.vocabulary)
    vectorizer.fit([])
    results = [
        ("this project's Featurizer.transform", median_ms(featurizer.transform, reviews)),
        ("scikit-learn CountVectorizer.transform", median_ms(lambda r: vectorizer.transform([r]), reviews)),
        ("course preprocessing (BeautifulSoup + stopwords + Porter)", median_ms(course_review_to_words, reviews, 1)),
    ]
    return results


def report(results: list[tuple[str, float]], n: int) -> str:
    ours = results[0][1]
    lines = [
        f"Median over {n:,} IMDB test reviews, one review per call (best of rounds).",
        "",
        "| featurizer | ms / review | × slower than ours |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {ms:.3f} | {ms / ours:.2f}× |" for name, ms in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    featurizer, reviews = setup(parser(__doc__).parse_args(argv))
    text = report(run(featurizer, reviews), len(reviews))
    print(text)
    return text


if __name__ == "__main__":
    main()
