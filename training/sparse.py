"""Featurized reviews as one CSR-style block of numpy arrays, and batches cut from it.

Batches come out in ``model.onnx``'s input form (``sentiment.batch.Batch``). Numpy only (no torch):
``training.evaluate`` uses it next to ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from sentiment.batch import Batch, offsets_from_lengths
from sentiment.featurizer import Featurizer


@dataclass(frozen=True)
class SparseRows:
    """Row ``r`` holds ``counts[indptr[r]:indptr[r+1]]`` at vocabulary ``indices[...]``."""

    indptr: np.ndarray  # int64 [rows + 1]
    indices: np.ndarray  # int64 [nnz]
    counts: np.ndarray  # float32 [nnz]
    vocab_size: int

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def featurize(cls, featurizer: Featurizer, texts: Sequence[str], desc: str = "featurizing") -> SparseRows:
        """Transform every text with the shared featurizer (a progress bar, as it takes seconds)."""
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        indices: list[int] = []
        counts: list[int] = []
        for r, text in enumerate(tqdm(texts, desc=desc, unit="review", mininterval=1.0)):
            row = featurizer.transform(text)
            indices += row.indices
            counts += row.counts
            indptr[r + 1] = len(indices)
        indices_array, counts_array = np.asarray(indices, np.int64), np.asarray(counts, np.float32)
        return cls(indptr, indices_array, counts_array, featurizer.vocab_size)

    def select(self, rows: np.ndarray) -> Batch:
        """The chosen rows, concatenated, in model.onnx's input form."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        offsets = offsets_from_lengths(lengths)
        # Position k of the output row r reads input position starts[r] + (k - offsets[r]).
        gather = np.arange(lengths.sum(), dtype=np.int64) + np.repeat(starts - offsets, lengths)
        return Batch(self.indices[gather], self.counts[gather], offsets)
