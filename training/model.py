"""Sentiment models over raw bag-of-words counts.

Every model starts with the same input transform, kept inside the model as buffers so the
exported ONNX graph takes the raw counts the featurizer produces:

    counts → term frequency (binary presence or log1p) → × per-term weight → L2 row normalisation

The per-term weight is the naive-Bayes log-count ratio (Wang & Manning 2012, "NBSVM"), an IDF,
or 1. Two heads are selectable: ``linear`` (logistic regression) and ``mlp`` (one hidden layer).

Two forward paths compute the same function with the same parameters: ``forward`` takes a
dense ``[batch, vocab]`` tensor (the exported graph), ``forward_sparse`` takes a sparse batch
(training, where a dense 256 × 100k batch would be 100 MB of mostly zeros).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

ModelKind = Literal["linear", "mlp"]
TermFrequency = Literal["binary", "log"]
Weighting = Literal["nb", "idf", "none"]
MODEL_KINDS: tuple[str, ...] = ("linear", "mlp")
_EPS = 1e-12


class SparseBatch(NamedTuple):
    """Rows of counts in EmbeddingBag form: row r owns ``indices[offsets[r]:offsets[r+1]]``."""

    indices: Tensor  # int64 [nnz], vocabulary indices
    offsets: Tensor  # int64 [batch], start of each row in ``indices``
    counts: Tensor  # float32 [nnz]

    def row_ids(self) -> Tensor:
        lengths = torch.diff(self.offsets, append=torch.tensor([self.indices.numel()]))
        return torch.repeat_interleave(torch.arange(self.offsets.numel()), lengths)


@dataclass(frozen=True)
class ModelSettings:
    kind: ModelKind = "linear"
    term_frequency: TermFrequency = "binary"
    weighting: Weighting = "nb"
    normalize: bool = True
    hidden: int = 32  # mlp only
    dropout: float = 0.5  # mlp only, on the hidden layer
    nb_alpha: float = 1.0  # Laplace smoothing of the naive-Bayes ratio


class SentimentModel(nn.Module):
    """Raw counts → logit of "positive". Call ``fit_term_weights`` once before training."""

    def __init__(self, vocab_size: int, settings: ModelSettings = ModelSettings()):
        super().__init__()
        if settings.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {settings.kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        self.settings = settings
        self.vocab_size = vocab_size
        self.register_buffer("term_weight", torch.ones(vocab_size))
        width = 1 if settings.kind == "linear" else settings.hidden
        # The first layer is stored [vocab, width] so F.embedding_bag can use it unchanged.
        bound = 1 / math.sqrt(vocab_size)
        self.input_weight = nn.Parameter(torch.empty(vocab_size, width).uniform_(-bound, bound))
        self.input_bias = nn.Parameter(torch.zeros(width))
        if settings.kind == "mlp":
            self.head: nn.Module = nn.Sequential(nn.ReLU(), nn.Dropout(settings.dropout), nn.Linear(width, 1))
        else:
            self.head = nn.Identity()

    def _tf(self, counts: Tensor) -> Tensor:
        return counts.clamp(max=1.0) if self.settings.term_frequency == "binary" else torch.log1p(counts)

    # -- forward paths ------------------------------------------------------------------------
    def features(self, counts: Tensor) -> Tensor:
        """Dense raw counts ``[batch, vocab]`` → the transformed input the first layer sees."""
        x = self._tf(counts) * self.term_weight
        if self.settings.normalize:
            x = x / torch.sqrt((x * x).sum(dim=1, keepdim=True)).clamp(min=_EPS)
        return x

    def forward(self, counts: Tensor) -> Tensor:
        """Dense raw counts ``[batch, vocab]`` → logits ``[batch]``."""
        return self.head(self.features(counts) @ self.input_weight + self.input_bias).squeeze(-1)

    def forward_sparse(self, batch: SparseBatch) -> Tensor:
        """The same function as ``forward`` on a sparse batch, without materialising zeros."""
        values = self._tf(batch.counts) * self.term_weight[batch.indices]
        if self.settings.normalize:
            rows = batch.row_ids()
            squares = torch.zeros(batch.offsets.numel()).index_add_(0, rows, values * values)
            values = values / torch.sqrt(squares).clamp(min=_EPS)[rows]
        hidden = F.embedding_bag(
            batch.indices, self.input_weight, batch.offsets, mode="sum", per_sample_weights=values
        )
        return self.head(hidden + self.input_bias).squeeze(-1)

    # -- the fitted transform -----------------------------------------------------------------
    @torch.no_grad()
    def fit_term_weights(self, batch: SparseBatch, labels: Tensor) -> None:
        """Set ``term_weight`` from the training rows (never validation or test)."""
        s = self.settings
        if s.weighting == "none":
            self.term_weight.fill_(1.0)
            return
        tf = self._tf(batch.counts)
        if s.weighting == "idf":  # smooth idf, as scikit-learn's TfidfTransformer
            df = torch.zeros(self.vocab_size).index_add_(0, batch.indices, (tf > 0).float())
            n = batch.offsets.numel()
            self.term_weight.copy_(torch.log((1 + n) / (1 + df)) + 1)
            return
        positive = labels[batch.row_ids()].float()
        p = s.nb_alpha + torch.zeros(self.vocab_size).index_add_(0, batch.indices, tf * positive)
        q = s.nb_alpha + torch.zeros(self.vocab_size).index_add_(0, batch.indices, tf * (1 - positive))
        self.term_weight.copy_(torch.log((p / p.sum()) / (q / q.sum())))


class ProbabilityModel(nn.Module):
    """What is exported: raw counts → probability that the review is positive, ``[batch]``."""

    def __init__(self, model: SentimentModel):
        super().__init__()
        self.model = model

    def forward(self, counts: Tensor) -> Tensor:
        return torch.sigmoid(self.model(counts))
