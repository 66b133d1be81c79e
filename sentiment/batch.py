"""A batch of reviews in model.onnx's input form, built once here for the server, training and evaluation.

``indices`` int64 [nnz] and ``counts`` float32 [nnz] hold the non-zero raw counts of all rows
concatenated; ``offsets`` int64 [rows] says where each row starts, so row ``r`` owns
``indices[offsets[r]:offsets[r + 1]]`` and an empty row's offset equals the next one's. The fields
come in the order of model.onnx's inputs (``sentiment.artifacts.INPUT_NAMES``). Needs numpy, so
the Lambda (which sends ``sentiment.wire`` JSON instead) never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from sentiment.featurizer import SparseCounts


@dataclass(frozen=True)
class Batch:
    """Reviews in ``model.onnx``'s input form; row ``r`` owns ``indices[offsets[r]:offsets[r + 1]]``."""

    indices: np.ndarray  # int64 [nnz], each row's distinct
    counts: np.ndarray  # float32 [nnz]
    offsets: np.ndarray  # int64 [rows]

    def __len__(self) -> int:
        return len(self.offsets)

    def feed(self) -> dict[str, np.ndarray]:
        """model.onnx's input feed."""
        return {"indices": self.indices, "counts": self.counts, "offsets": self.offsets}

    @classmethod
    def from_rows(cls, rows: Sequence[SparseCounts]) -> Batch:
        """Concatenate featurized rows; an index repeated within a row has its counts added up."""
        lengths = np.fromiter((len(r.indices) for r in rows), np.int64, len(rows))
        nnz = int(lengths.sum())
        batch = cls(np.fromiter(chain.from_iterable(r.indices for r in rows), np.int64, nnz),
                    np.fromiter(chain.from_iterable(r.counts for r in rows), np.float32, nnz),
                    offsets_from_lengths(lengths))
        return batch if batch._rows_ascend() else batch._merge_repeats()

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> Batch:
        """The non-zero entries of a dense ``[rows, vocab_size]`` count matrix."""
        rows, columns = np.nonzero(matrix)  # row-major: by row, then by column
        return cls(columns.astype(np.int64), matrix[rows, columns].astype(np.float32),
                   offsets_from_lengths(np.bincount(rows, minlength=len(matrix))))

    def _rows_ascend(self) -> bool:
        """True when every row's indices strictly increase, as the featurizer writes them."""
        rising = np.diff(self.indices) > 0
        starts = self.offsets[(self.offsets > 0) & (self.offsets < len(self.indices))]
        rising[starts - 1] = True  # a row may start below where the previous one ended
        return bool(rising.all())

    def _merge_repeats(self) -> Batch:
        """Sort each row's indices and add up the counts of repeated ones (the graph needs them distinct)."""
        lengths = np.diff(np.append(self.offsets, len(self.indices)))
        rows = np.repeat(np.arange(len(self), dtype=np.int64), lengths)
        width = int(self.indices.max()) + 1
        keys, where = np.unique(rows * width + self.indices, return_inverse=True)
        counts = np.bincount(where, weights=self.counts).astype(np.float32)
        return Batch(keys % width, counts, offsets_from_lengths(np.bincount(keys // width, minlength=len(self))))


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """Row lengths → offsets, the start of each row."""
    offsets = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return offsets
