"""The models: in-model transforms, dense/sparse agreement, fitted term weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfTransformer

from training.model import ModelSettings, ProbabilityModel, SentimentModel, SparseBatch


def random_counts(rows: int, vocab: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.full((rows, vocab), 0.3), generator=generator)
    counts[1] = 0  # a review with no known term at all
    return counts


def sparse(counts: torch.Tensor) -> SparseBatch:
    offsets, indices, values = [], [], []
    for row in counts:
        offsets.append(len(indices))
        nonzero = torch.nonzero(row).flatten().tolist()
        indices += nonzero
        values += row[nonzero].tolist()
    return SparseBatch(torch.tensor(indices, dtype=torch.long), torch.tensor(offsets), torch.tensor(values))


def fitted(settings: ModelSettings, counts: torch.Tensor, labels: torch.Tensor) -> SentimentModel:
    torch.manual_seed(0)
    model = SentimentModel(counts.shape[1], settings)
    model.fit_term_weights(sparse(counts), labels)
    return model.eval()


ALL_SETTINGS = [
    ModelSettings(kind=kind, term_frequency=tf, weighting=w, normalize=norm, hidden=8)
    for kind, tf, w, norm in itertools.product(
        ("linear", "mlp"), ("binary", "log"), ("nb", "idf", "none"), (True, False)
    )
]


def settings_id(s: ModelSettings) -> str:
    return f"{s.kind}-{s.term_frequency}-{s.weighting}-{'l2' if s.normalize else 'raw'}"


@pytest.mark.parametrize("settings", ALL_SETTINGS, ids=settings_id)
def test_dense_and_sparse_paths_compute_the_same_logits(settings):
    counts = random_counts(12, 40)
    labels = torch.tensor([0, 1] * 6)
    model = fitted(settings, counts, labels)
    with torch.no_grad():
        dense, from_sparse = model(counts), model.forward_sparse(sparse(counts))
    assert dense.shape == (12,)
    torch.testing.assert_close(dense, from_sparse, rtol=1e-5, atol=1e-6)
    assert torch.isfinite(dense).all()


def test_binary_term_frequency_ignores_repeats_and_log_does_not():
    counts = random_counts(4, 30)
    labels = torch.tensor([0, 1, 0, 1])
    for tf, same in (("binary", True), ("log", False)):
        model = fitted(ModelSettings(term_frequency=tf, weighting="none"), counts, labels)
        with torch.no_grad():
            assert torch.allclose(model(counts), model(counts * 5)) is same


def test_normalised_features_have_unit_length_and_empty_rows_stay_zero():
    counts = random_counts(6, 30)
    model = fitted(ModelSettings(term_frequency="log", weighting="idf"), counts, torch.tensor([0, 1] * 3))
    features = model.features(counts)
    norms = features.norm(dim=1)
    assert norms[1] == 0  # the empty review
    torch.testing.assert_close(norms[[0, 2, 3, 4, 5]], torch.ones(5))


def test_naive_bayes_weights_are_the_smoothed_log_count_ratio():
    # term 0 only in positive reviews, term 1 only in negative ones, term 2 in every review
    counts = torch.tensor([[1.0, 0, 1], [2, 0, 1], [0, 3, 1], [0, 1, 1]])
    labels = torch.tensor([1, 1, 0, 0])
    model = fitted(ModelSettings(weighting="nb", term_frequency="binary", nb_alpha=1.0), counts, labels)
    p = np.array([1 + 2, 1 + 0, 1 + 2])  # alpha + presence in positive reviews
    q = np.array([1 + 0, 1 + 2, 1 + 2])
    expected = np.log((p / p.sum()) / (q / q.sum()))
    np.testing.assert_allclose(model.term_weight.numpy(), expected, rtol=1e-6)
    assert model.term_weight[0] > 0 > model.term_weight[1]


def test_idf_weights_match_scikit_learn():
    counts = random_counts(20, 15, seed=3)
    model = fitted(ModelSettings(weighting="idf", term_frequency="log"), counts, torch.tensor([0, 1] * 10))
    expected = TfidfTransformer(smooth_idf=True).fit(counts.numpy()).idf_
    np.testing.assert_allclose(model.term_weight.numpy(), expected, rtol=1e-5)


def test_transforms_are_buffers_saved_with_the_weights():
    model = SentimentModel(10)
    assert "term_weight" in dict(model.named_buffers())
    assert "term_weight" in model.state_dict()
    assert "term_weight" not in dict(model.named_parameters())


def test_probability_model_outputs_one_probability_per_review():
    counts = random_counts(5, 20)
    model = fitted(ModelSettings(kind="mlp", hidden=4), counts, torch.tensor([0, 1, 0, 1, 1]))
    with torch.no_grad():
        probability = ProbabilityModel(model)(counts)
        logits = model(counts)
    assert probability.shape == (5,)
    torch.testing.assert_close(probability, torch.sigmoid(logits))
    assert ((probability > 0) & (probability < 1)).all()


def test_unknown_model_kind_is_refused():
    with pytest.raises(ValueError, match="unknown model kind 'lstm'; choose one of linear, mlp"):
        SentimentModel(10, ModelSettings(kind="lstm"))  # type: ignore[arg-type]
