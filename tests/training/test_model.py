"""The models: the sparse forward against the dense definition, empty rows, fitted term weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfTransformer

from training.model import ModelSettings, ProbabilityModel, SentimentModel, SparseBatch, segment_sum


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
    return SparseBatch(torch.tensor(indices, dtype=torch.long), torch.tensor(values), torch.tensor(offsets))


def fitted(settings: ModelSettings, counts: torch.Tensor, labels: torch.Tensor) -> SentimentModel:
    torch.manual_seed(0)
    model = SentimentModel(counts.shape[1], settings)
    model.fit_term_weights(sparse(counts), labels)
    return model.eval()


def logits(model: SentimentModel, counts: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.forward_sparse(sparse(counts))


def reference_logits(model: SentimentModel, counts: torch.Tensor) -> torch.Tensor:
    """The model's definition on dense rows, written out plainly."""
    s = model.settings
    tf = counts.clamp(max=1) if s.term_frequency == "binary" else torch.log1p(counts)
    x = tf * model.term_weight
    if s.normalize:
        x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    with torch.no_grad():
        return model.head(x @ model.input_weight + model.input_bias).squeeze(-1)


ALL_SETTINGS = [
    ModelSettings(kind=kind, term_frequency=tf, weighting=w, normalize=norm, hidden=8)
    for kind, tf, w, norm in itertools.product(
        ("linear", "mlp"), ("binary", "log"), ("nb", "idf", "none"), (True, False)
    )
]


def settings_id(s: ModelSettings) -> str:
    return f"{s.kind}-{s.term_frequency}-{s.weighting}-{'l2' if s.normalize else 'raw'}"


@pytest.mark.parametrize("settings", ALL_SETTINGS, ids=settings_id)
def test_sparse_forward_computes_the_dense_definition(settings):
    counts = random_counts(12, 40)
    counts[-1] = 0  # the last row empty too: its offset equals nnz
    labels = torch.tensor([0, 1] * 6)
    model = fitted(settings, counts, labels)
    got = logits(model, counts)
    assert got.shape == (12,)
    torch.testing.assert_close(got, reference_logits(model, counts), rtol=1e-5, atol=1e-6)
    assert torch.isfinite(got).all()


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_empty_reviews_score_the_bias_alone(kind):
    counts = random_counts(3, 30)
    model = fitted(ModelSettings(kind=kind, hidden=4), counts, torch.tensor([0, 1, 1]))
    with torch.no_grad():
        model.input_bias.fill_(0.7)
        bias_only = model.head(model.input_bias.unsqueeze(0)).squeeze(-1)
        nothing = model(torch.zeros(0, dtype=torch.long), torch.zeros(0), torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(logits(model, counts)[1], bias_only[0])  # row 1 of random_counts is empty
    torch.testing.assert_close(nothing, bias_only.expand(2))


def test_segment_sum_adds_each_row_and_leaves_empty_rows_zero():
    values = torch.tensor([[1.0, 10], [2, 20], [3, 30], [4, 40]])
    offsets = torch.tensor([0, 0, 2, 2, 3, 4])  # rows: {}, {0, 1}, {}, {2}, {3}, {}
    expected = torch.tensor([[0.0, 0], [3, 30], [0, 0], [3, 30], [4, 40], [0, 0]])
    torch.testing.assert_close(segment_sum(values, offsets), expected)
    assert segment_sum(torch.zeros(0, 2), torch.zeros(3, dtype=torch.long)).tolist() == [[0, 0]] * 3


def test_segment_sum_keeps_float32_precision_behind_large_running_totals():
    values = torch.full((100_001, 1), 1000.0)
    values[-1] = 1e-3  # a last row of one small value, after a running total of 1e8
    got = segment_sum(values, torch.tensor([0, 100_000]))
    torch.testing.assert_close(got[:, 0], torch.tensor([1e8, 1e-3]))


def test_binary_term_frequency_ignores_repeats_and_log_does_not():
    counts = random_counts(4, 30)
    labels = torch.tensor([0, 1, 0, 1])
    for tf, same in (("binary", True), ("log", False)):
        model = fitted(ModelSettings(term_frequency=tf, weighting="none"), counts, labels)
        assert torch.allclose(logits(model, counts), logits(model, counts * 5)) is same


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
    batch = sparse(counts)
    with torch.no_grad():
        probability = ProbabilityModel(model)(batch.indices, batch.counts, batch.offsets)
    assert probability.shape == (5,)
    torch.testing.assert_close(probability, torch.sigmoid(logits(model, counts)))
    assert ((probability > 0) & (probability < 1)).all()


def test_unknown_model_kind_is_refused():
    with pytest.raises(ValueError, match="unknown model kind 'lstm'; choose one of linear, mlp"):
        SentimentModel(10, ModelSettings(kind="lstm"))  # type: ignore[arg-type]
