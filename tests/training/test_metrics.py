"""Metrics computed with numpy agree with scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, log_loss, roc_auc_score

from training.metrics import binary_metrics, roc_auc


def test_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    probabilities = np.round(np.clip(labels * 0.3 + rng.random(500) * 0.7, 0, 1), 2)  # many ties
    metrics = binary_metrics(probabilities, labels)
    tn, fp, fn, tp = confusion_matrix(labels, probabilities >= 0.5).ravel()
    assert metrics["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert metrics["accuracy"] == pytest.approx((tn + tp) / 500)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, probabilities))
    assert metrics["loss"] == pytest.approx(log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7)))
    assert metrics["n"] == 500


def test_threshold_is_inclusive():
    metrics = binary_metrics(np.array([0.5, 0.4999]), np.array([1, 0]))
    assert metrics["accuracy"] == 1.0


def test_auc_of_one_class_is_undefined():
    assert roc_auc(np.array([0.2, 0.9]), np.array([1, 1])) is None


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="equal, non-empty"):
        binary_metrics(np.array([0.1, 0.2]), np.array([1]))


def test_uncertain_band_of_a_calibrated_model_is_where_accuracy_falls_below_70_percent():
    from training.metrics import uncertain_band

    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 40_000)
    y = rng.uniform(0, 1, p.size) < p  # calibrated: a review at p is positive with probability p
    band = uncertain_band(p, y)
    assert band["low"] == pytest.approx(0.3, abs=0.02) and band["high"] == pytest.approx(0.7, abs=0.02)
    assert band["accuracy_inside"] < 0.7 and 0.3 < band["share_inside"] < 0.45


def test_uncertain_band_is_empty_for_a_model_that_is_always_right():
    from training.metrics import uncertain_band

    p = np.linspace(0, 1, 101)
    band = uncertain_band(p, p >= 0.5)
    assert (band["low"], band["high"], band["share_inside"], band["accuracy_inside"]) == (0.5, 0.5, 0.0, None)
