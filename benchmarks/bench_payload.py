"""Bytes sent to the endpoint per review: the Lambda's sparse JSON against the course's dense CSV row.

    python -m benchmarks.bench_payload [--model-dir artifacts] [--data PATH] [--reviews 2000]
"""

from __future__ import annotations

import statistics

from benchmarks.common import parser, setup
from benchmarks.headline import Headline, Section
from sentiment.featurizer import Featurizer, SparseCounts
from sentiment.wire import encode_request


def dense_csv_row(row: SparseCounts, width: int) -> bytes:
    """What the course's Lambda sent: every vocabulary count, comma-separated."""
    dense = [0] * width
    for index, count in zip(row.indices, row.counts, strict=True):
        dense[index] = count
    return ",".join(map(str, dense)).encode()


def run(featurizer: Featurizer, reviews: list[str]) -> dict[str, float]:
    rows = [featurizer.transform(r) for r in reviews]
    sparse = [len(encode_request(featurizer.fingerprint, [row])) for row in rows]
    dense = [len(dense_csv_row(row, featurizer.vocab_size)) for row in rows]
    return {"sparse_json": statistics.median(sparse), "dense_csv": statistics.median(dense)}


def report(sizes: dict[str, float], n: int, width: int) -> str:
    ratio = sizes["dense_csv"] / sizes["sparse_json"]
    return "\n".join(
        [
            f"Median request body for one review over {n:,} IMDB test reviews (vocabulary of {width:,} terms).",
            "",
            "| format | median bytes | × sparse |",
            "| --- | ---: | ---: |",
            f"| sparse JSON (this project's Lambda) | {sizes['sparse_json']:,.0f} | 1.0× |",
            f"| dense CSV row (the course's Lambda) | {sizes['dense_csv']:,.0f} | {ratio:,.1f}× |",
        ]
    )


def main(argv: list[str] | None = None) -> Section:
    featurizer, reviews = setup(parser(__doc__).parse_args(argv))
    sizes = run(featurizer, reviews)
    text = report(sizes, len(reviews), featurizer.vocab_size)
    print(text)
    return Section(text, (Headline(
        "bytes sent to the endpoint per review (median)",
        f"{sizes['sparse_json']:,.0f} (sparse JSON) vs {sizes['dense_csv']:,.0f} (the course's dense CSV): "
        f"{sizes['dense_csv'] / sizes['sparse_json']:.0f}× less", "—", "python -m benchmarks.bench_payload"),))


if __name__ == "__main__":
    main()
