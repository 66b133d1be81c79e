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
