"""Sentiment models over raw bag-of-words counts in sparse form.

Every model starts with the same input transform, kept inside the model as buffers so the
exported ONNX graph takes the raw counts the featurizer produces:

    counts → term frequency (binary presence or log1p) → × per-term weight → L2 row normalisation

The per-term weight is the naive-Bayes log-count ratio (Wang & Manning 2012, "NBSVM"), an IDF,
or 1. Two heads are selectable: ``linear`` (logistic regression) and ``mlp`` (one hidden layer).

There is one forward path, used for training and exported as ``model.onnx``: a batch arrives
as the non-zero counts of all its rows concatenated, ``indices`` int64 [nnz], ``counts``
float32 [nnz], and ``offsets`` int64 [batch], the start of each row (EmbeddingBag's
convention; an empty review is a row whose offset equals the next one's). Nothing is
densified: a dense 100k-term row is 400 KB of zeros for about 230 non-zero terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor, nn

# The allowed choices, defined here only: the command line, its checks and the search read them.
ModelKind = Literal["linear", "mlp"]
TermFrequency = Literal["binary", "log"]
Weighting = Literal["nb", "idf", "none"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)
TERM_FREQUENCIES: tuple[str, ...] = get_args(TermFrequency)
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
CHOICES: dict[str, tuple[str, ...]] = {  # ModelSettings field -> its allowed values
    "kind": MODEL_KINDS,
    "term_frequency": TERM_FREQUENCIES,
    "weighting": WEIGHTINGS,
}
_EPS = 1e-12


class SparseBatch(NamedTuple):
    """Rows of counts in EmbeddingBag form: row r owns ``indices[offsets[r]:offsets[r+1]]``."""

    indices: Tensor  # int64 [nnz], vocabulary indices
    counts: Tensor  # float32 [nnz]
    offsets: Tensor  # int64 [batch], start of each row in ``indices``

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

    term_weight: Tensor  # a buffer (saved with the model, not trained)

    def __init__(self, vocab_size: int, settings: ModelSettings = ModelSettings()):
        super().__init__()
        if settings.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {settings.kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        self.settings = settings
        self.vocab_size = vocab_size
        self.register_buffer("term_weight", torch.ones(vocab_size))
        width = 1 if settings.kind == "linear" else settings.hidden
        # The first layer is stored [vocab, width]: the rows of the terms present are gathered.
        bound = 1 / math.sqrt(vocab_size)
        self.input_weight = nn.Parameter(torch.empty(vocab_size, width).uniform_(-bound, bound))
        self.input_bias = nn.Parameter(torch.zeros(width))
        if settings.kind == "mlp":
            self.head: nn.Module = nn.Sequential(nn.ReLU(), nn.Dropout(settings.dropout), nn.Linear(width, 1))
        else:
            self.head = nn.Identity()

    def _tf(self, counts: Tensor) -> Tensor:
        return counts.clamp(max=1.0) if self.settings.term_frequency == "binary" else torch.log1p(counts)

    # -- the forward path (training and model.onnx) --------------------------------------------
    def forward(self, indices: Tensor, counts: Tensor, offsets: Tensor) -> Tensor:
        """Sparse raw counts of a batch (the ``model.onnx`` inputs, see the module doc) → logits [batch].

        Normalising each review's features and then applying the first layer equals applying
        the layer to the unnormalised features and dividing each row's sum by its norm, so both
        sums are taken in one pass and no per-entry row lookup is needed.
        """
        x = self._tf(counts) * torch.gather(self.term_weight, 0, indices)  # weighted feature per entry
        columns = [_rows(self.input_weight, indices) * x.unsqueeze(1)]
        if self.settings.normalize:
            columns.insert(0, (x * x).unsqueeze(1))
        sums = segment_sum(torch.cat(columns, dim=1), offsets)
        if self.settings.normalize:  # column 0 holds each row's squared norm
            sums = sums[:, 1:] / sums[:, :1].sqrt().clamp(min=_EPS)
        return self.head(sums + self.input_bias).squeeze(-1)

    def forward_sparse(self, batch: SparseBatch) -> Tensor:
        """``forward`` on a ``SparseBatch``."""
        return self(batch.indices, batch.counts, batch.offsets)

    # -- explanations (explain.onnx) ----------------------------------------------------------
    def explain(self, indices: Tensor, counts: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Each entry's signed contribution to its review's logit: ``(logit [batch], contribution [nnz],
        bias [batch])`` with ``bias + sum of the review's contributions == logit``. Evaluation mode only.

        Linear model: exact. Entry j of a review adds ``w_j * f_j`` to the logit, ``f_j`` its
        normalised weighted feature (tf × term weight / the review's L2 norm); the bias is the
        model's bias. The norm belongs to the review as a whole, so a term's contribution is its
        share of this review's logit, not what deleting the word would change.

        MLP: the network is piecewise linear (one ReLU layer), so for this review's pattern of active
        hidden units the logit is ``b2 + sum over active k of v_k (b1_k + sum_j W_jk f_j)``: entry j's
        contribution is ``f_j * sum over active k of v_k W_jk`` (gradient × input) and the bias
        ``b2 + sum over active k of v_k b1_k``. They add up to the logit exactly, but the pattern
        depends on every term at once, so a contribution only approximates a term's importance.
        """
        if self.training:
            raise RuntimeError("explain() needs evaluation mode (dropout off): call model.eval() first")
        nnz = indices.shape[0]
        x = self._tf(counts) * torch.gather(self.term_weight, 0, indices)
        # The review of each entry: a 1 at each review's start, summed up (empty reviews share a start).
        starts = torch.zeros(nnz + 1, dtype=torch.int64).index_add(0, offsets, torch.ones_like(offsets))
        review = starts.cumsum(0)[:nnz] - 1
        if self.settings.normalize:
            norms = segment_sum((x * x).unsqueeze(1), offsets)[:, 0].sqrt().clamp(min=_EPS)
            x = x / torch.index_select(norms, 0, review)
        if self.settings.kind == "linear":
            contribution = _rows(self.input_weight, indices)[:, 0] * x
            bias = self.input_bias.expand(offsets.shape[0])
        else:
            assert isinstance(self.head, nn.Sequential)
            output = self.head[-1]
            assert isinstance(output, nn.Linear)
            pre = segment_sum(_rows(self.input_weight, indices) * x.unsqueeze(1), offsets) + self.input_bias
            gate = (pre > 0).to(pre.dtype) * output.weight[0]  # [batch, hidden]: v_k where unit k is active
            contribution = (_rows(self.input_weight, indices) * torch.index_select(gate, 0, review)).sum(1) * x
            bias = output.bias[0] + (gate * self.input_bias).sum(1)
        logit = self(indices, counts, offsets)
        return logit, contribution, bias

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


class ExplainModel(nn.Module):
    """What explain.onnx holds: the sparse inputs → ``probability``, ``logit`` [batch], ``contribution``
    [nnz] (each entry's, in input order) and ``bias`` [batch] (``SentimentModel.explain``)."""

    def __init__(self, model: SentimentModel):
        super().__init__()
        self.model = model

    def forward(self, indices: Tensor, counts: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        logit, contribution, bias = self.model.explain(indices, counts, offsets)
        return torch.sigmoid(logit), logit, contribution, bias


class ProbabilityModel(nn.Module):
    """What is exported: the sparse inputs → probability that each review is positive, ``[batch]``."""

    def __init__(self, model: SentimentModel):
        super().__init__()
        self.model = model

    def forward(self, indices: Tensor, counts: Tensor, offsets: Tensor) -> Tensor:
        return torch.sigmoid(self.model(indices, counts, offsets))


def segment_sum(values: Tensor, offsets: Tensor) -> Tensor:
    """Sums of ``values`` [nnz, k] over the rows that start at ``offsets`` [batch] → [batch, k].

    Taken as differences of a running total at the row starts: CumSum, Gather and Sub in ONNX,
    a few fast kernels in ONNX Runtime (its ScatterElements reduction is several times slower).
    The running total is float64, so a difference of two large totals keeps float32 precision.
    Empty rows (equal offsets, or offsets equal to nnz) sum to 0.
    """
    running = values.to(torch.float64).cumsum(dim=0)
    totals = torch.cat([running.new_zeros(1, values.shape[1]), running])  # totals[i] = sum of values[:i]
    at_starts = totals.index_select(0, offsets)
    at_ends = torch.cat([at_starts[1:], totals[-1:]])
    return (at_ends - at_starts).to(values.dtype)


def _rows(weight: Tensor, indices: Tensor) -> Tensor:
    """``weight[indices]`` for a [vocab, width] table. A single column is gathered as a vector:
    ONNX Runtime's GatherElements is ~10x faster than Gather on one-float rows."""
    if weight.shape[1] == 1:
        return torch.gather(weight[:, 0], 0, indices).unsqueeze(1)
    return weight.index_select(0, indices)
