"""What drift monitoring measures, defined once: training's baseline, the Lambda's metrics and the report.

Three measures per review, none of which holds any of its text:

- ``length``: its number of tokens (``Featurizer.transform_measured``);
- ``oov_rate``: the share of its tokens whose unigram is not in the vocabulary (0 for no tokens);
- ``probability``: the model's probability that it is positive.

Training records the baseline of each on the validation split in metrics.json (``baseline``):
a histogram over the fixed bins below, the mean and quantiles, and the predicted-positive rate.
A set of reviews is compared with it by the population stability index (PSI) of each
histogram, ``sum((a - e) * ln(a / e))`` over the bins (fractions, each floored at ``PSI_FLOOR``),
read with the usual rule: under 0.1 stable, 0.1 to 0.25 a moderate shift, over 0.25 a shift.

Pure standard library: the Lambda imports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MEASURES = ("length", "oov_rate", "probability")
# Bin edges of each measure: a value v falls in bin i when edges[i] <= v < edges[i + 1]; the last bin is
# closed (1.0 falls in the last probability bin) and open-ended for lengths.
BINS: dict[str, tuple[float, ...]] = {
    "length": (0, 10, 25, 50, 100, 150, 200, 300, 500, 800, 1200, math.inf),
    "oov_rate": (0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 1.0),
    "probability": tuple(i / 10 for i in range(11)),
}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PSI_FLOOR = 1e-4  # an empty bin counts as this fraction, so the PSI stays finite
MODERATE, SHIFTED = 0.1, 0.25  # PSI thresholds: stable below MODERATE, shifted above SHIFTED


def oov_rate(tokens: int, oov: int) -> float:
    return oov / tokens if tokens else 0.0


def histogram(values: Iterable[float], edges: Sequence[float]) -> list[int]:
    """Counts of ``values`` in the bins between ``edges`` (values past either end go to the end bins)."""
    counts = [0] * (len(edges) - 1)
    last = len(counts) - 1
    for v in values:
        i = 0
        while i < last and v >= edges[i + 1]:
            i += 1
        counts[i] += 1
    return counts


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two histograms over the same bins (counts or fractions)."""
    if len(expected) != len(actual):
        raise ValueError(f"histograms of {len(expected)} and {len(actual)} bins")
    e_total, a_total = sum(expected), sum(actual)
    if not e_total or not a_total:
        raise ValueError("an empty histogram has no PSI")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e / e_total, PSI_FLOOR), max(a / a_total, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def verdict(value: float) -> str:
    """``stable``, ``moderate`` or ``shifted`` for a PSI."""
    return "stable" if value < MODERATE else "moderate" if value <= SHIFTED else "shifted"


def quantiles(values: Sequence[float], qs: Sequence[float] = QUANTILES) -> dict[str, float]:
    """Nearest-rank quantiles, keyed ``p5``, ``p50``..."""
    ordered = sorted(values)
    if not ordered:
        return {}
    return {f"p{round(q * 100)}": float(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)])
            for q in qs}


def summary(values: Sequence[float], edges: Sequence[float]) -> dict[str, Any]:
    """The record of one measure: mean, quantiles, and the histogram over ``edges``."""
    return {"mean": sum(values) / len(values) if values else None, "quantiles": quantiles(values),
            "edges": [e if math.isfinite(e) else None for e in edges], "counts": histogram(values, edges)}


def baseline(lengths: Sequence[int], oov_rates: Sequence[float], probabilities: Sequence[float],
             threshold: float) -> dict[str, Any]:
    """metrics.json's ``baseline``: each measure's summary and the predicted-positive rate."""
    if not len(lengths) == len(oov_rates) == len(probabilities) > 0:
        raise ValueError("a baseline needs the same, non-zero number of each measure")
    values = {"length": lengths, "oov_rate": oov_rates, "probability": probabilities}
    return {"n": len(lengths),
            "positive_rate": sum(p >= threshold for p in probabilities) / len(probabilities),
            **{name: summary(values[name], BINS[name]) for name in MEASURES}}


def edges_of(record: dict[str, Any]) -> list[float]:
    """A summary's edges back as numbers (JSON holds the open end as null)."""
    return [math.inf if e is None else float(e) for e in record["edges"]]
