"""Binary classification metrics from probabilities (numpy only, shared by training and evaluate)."""

from __future__ import annotations

import numpy as np

from sentiment.wire import THRESHOLD

_CLIP = 1e-7


def roc_auc(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None for one class."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(probabilities, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based rank of each distinct score
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, log loss, ROC AUC and the confusion matrix, positive iff p >= THRESHOLD (sentiment.wire)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"need two equal, non-empty 1-D arrays, got shapes {p.shape} and {y.shape}")
    predicted = p >= THRESHOLD
    clipped = np.clip(p, _CLIP, 1 - _CLIP)
    loss = -np.mean(np.where(y, np.log(clipped), np.log1p(-clipped)))
    return {
        "n": int(p.size),
        "accuracy": float(np.mean(predicted == y)),
        "loss": float(loss),
        "roc_auc": roc_auc(p, y),
        "confusion_matrix": {
            "tn": int(np.sum(~predicted & ~y)),
            "fp": int(np.sum(predicted & ~y)),
            "fn": int(np.sum(~predicted & y)),
            "tp": int(np.sum(predicted & y)),
        },
    }


UNCERTAIN_ACCURACY = 0.70  # inside the band, the model is right less often than this
UNCERTAIN_WINDOW = 0.1  # share of the reviews over which accuracy is taken at each margin


def uncertain_band(probabilities: np.ndarray, labels: np.ndarray, target: float = UNCERTAIN_ACCURACY,
                   window: float = UNCERTAIN_WINDOW) -> dict:
    """The band of probabilities around 0.5 in which the model is unsure, from labelled (validation) reviews.

    The reviews are sorted by their margin ``|p - 0.5|``; the accuracy at a margin is that of the
    ``window`` share of reviews nearest to it in margin (a moving window, at least 10 reviews). The
    band is ``[0.5 - d, 0.5 + d]`` for the largest margin ``d`` at which that accuracy is below
    ``target``: past it the model is right at least ``target`` of the time. ``d`` is 0 when no
    margin is below the target.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"need two equal, non-empty 1-D arrays, got shapes {p.shape} and {y.shape}")
    margin = np.abs(p - 0.5)
    order = np.argsort(margin, kind="stable")
    margin, correct = margin[order], ((p >= THRESHOLD) == y)[order].astype(np.float64)
    width = min(p.size, max(10, round(window * p.size)))
    local = np.convolve(correct, np.ones(width) / width, mode="valid")  # window k covers k .. k+width-1
    centre = margin[np.arange(local.size) + width // 2]
    below = np.flatnonzero(local < target)
    half_width = float(centre[below[-1]]) if below.size else 0.0
    inside = margin <= half_width if below.size else np.zeros(p.size, bool)
    return {
        "low": round(0.5 - half_width, 4),
        "high": round(0.5 + half_width, 4),
        "target_accuracy": target,
        "window": width,
        "share_inside": float(inside.mean()),
        "accuracy_inside": float(correct[inside].mean()) if inside.any() else None,
        "rule": (f"the widest band around 0.5 at whose edge the model is right less than {target:.0%} of the time "
                 f"(accuracy over the {width} validation reviews nearest in margin)"),
    }
