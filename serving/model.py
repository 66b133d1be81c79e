"""The artifacts the server scores with: model.onnx on ONNX Runtime and the shared featurizer.

``model.onnx`` takes a batch in sparse form (``Batch``): ``indices`` int64 [nnz] and ``counts``
float32 [nnz], the non-zero raw counts of all rows concatenated, and ``offsets`` int64 [batch],
where each row starts (an empty review is a row whose offset equals the next one's); it returns
``probability`` float32 [batch].

``Model.load`` checks everything a mismatched deployment could get wrong (missing files, a
featurizer from another training run, a model exported with the older dense input, a fixed
batch size) and raises ``ArtifactError`` naming the cause, so the server refuses to start
instead of scoring with the wrong vocabulary.

onnxruntime is imported only when a model loads, never at import time: a process that forks
after importing it (the gunicorn master) leaves children that abort with
``std::system_error`` when they exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lambda_fn.featurizer import Featurizer, FeaturizerError, SparseCounts

if TYPE_CHECKING:
    import onnxruntime as ort

MODEL_FILE = "model.onnx"
FEATURIZER_FILE = "featurizer.json"
INPUT_TYPES = {"indices": "tensor(int64)", "counts": "tensor(float)", "offsets": "tensor(int64)"}
OUTPUT_NAME = "probability"
INPUT_FORMAT = "sparse-offsets/1"  # model.onnx metadata "input_format", when present


class ArtifactError(RuntimeError):
    """The model directory cannot be served; the message says which file is wrong and why."""


@dataclass(frozen=True)
class Batch:
    """Reviews in ``model.onnx``'s input form; row ``r`` owns ``indices[offsets[r]:offsets[r + 1]]``."""

    indices: np.ndarray  # int64 [nnz], each row's distinct
    counts: np.ndarray  # float32 [nnz]
    offsets: np.ndarray  # int64 [rows]

    def __len__(self) -> int:
        return len(self.offsets)

    @classmethod
    def from_rows(cls, rows: Sequence[SparseCounts]) -> "Batch":
        """Concatenate featurized rows; an index repeated within a row has its counts added up."""
        lengths = np.fromiter((len(r.indices) for r in rows), np.int64, len(rows))
        nnz = int(lengths.sum())
        batch = cls(np.fromiter(chain.from_iterable(r.indices for r in rows), np.int64, nnz),
                    np.fromiter(chain.from_iterable(r.counts for r in rows), np.float32, nnz),
                    _starts(lengths))
        return batch if batch._rows_ascend() else batch._merge_repeats()

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> "Batch":
        """The non-zero entries of a dense ``[rows, vocab_size]`` count matrix."""
        rows, columns = np.nonzero(matrix)  # row-major: by row, then by column
        return cls(columns.astype(np.int64), matrix[rows, columns].astype(np.float32),
                   _starts(np.bincount(rows, minlength=len(matrix))))

    def _rows_ascend(self) -> bool:
        """True when every row's indices strictly increase, as the featurizer writes them."""
        rising = np.diff(self.indices) > 0
        starts = self.offsets[(self.offsets > 0) & (self.offsets < len(self.indices))]
        rising[starts - 1] = True  # a row may start below where the previous one ended
        return bool(rising.all())

    def _merge_repeats(self) -> "Batch":
        """Sort each row's indices and add up the counts of repeated ones (the graph needs them distinct)."""
        lengths = np.diff(np.append(self.offsets, len(self.indices)))
        rows = np.repeat(np.arange(len(self), dtype=np.int64), lengths)
        width = int(self.indices.max()) + 1
        keys, where = np.unique(rows * width + self.indices, return_inverse=True)
        counts = np.bincount(where, weights=self.counts).astype(np.float32)
        return Batch(keys % width, counts, _starts(np.bincount(keys // width, minlength=len(self))))


def _starts(lengths: np.ndarray) -> np.ndarray:
    """Row lengths → offsets, the start of each row."""
    offsets = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return offsets


@dataclass(frozen=True)
class Model:
    """One ONNX Runtime session plus the featurizer it was trained with."""

    session: "ort.InferenceSession"
    featurizer: Featurizer
    version: str
    kind: str

    @property
    def vocab_size(self) -> int:
        return self.featurizer.vocab_size

    @property
    def fingerprint(self) -> str:
        return self.featurizer.fingerprint

    @classmethod
    def load(cls, model_dir: str | Path, intra_op_threads: int = 1) -> "Model":
        """Load and cross-check ``model.onnx`` and ``featurizer.json`` from ``model_dir``."""
        import onnxruntime as ort

        featurizer = read_featurizer(model_dir)
        model_path = Path(model_dir) / MODEL_FILE
        options = ort.SessionOptions()
        # One worker process per core, each session computing on its own thread by default:
        # the workers do not fight over the cores.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise ArtifactError(f"{model_path} is not a model ONNX Runtime can load: {exc}") from exc

        meta = session.get_modelmeta().custom_metadata_map
        model = cls(session, featurizer, meta.get("model_version", ""), meta.get("model_kind", "unknown"))
        model._check(model_path, meta)
        return model

    def _check(self, model_path: Path, meta: dict[str, str]) -> None:
        """Raise ArtifactError unless the model's signature and metadata match the featurizer."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] == ["counts"] and len(inputs[0].shape) == 2:
            raise ArtifactError(
                f"{model_path} takes dense counts {inputs[0].shape}: it was exported by an older version "
                "of training, before model.onnx took sparse input; retrain (python -m training) and "
                "deploy the new artifacts"
            )
        signature = {i.name: f"{i.type} {i.shape}" for i in inputs}
        if ({i.name: i.type for i in inputs} != INPUT_TYPES or any(len(i.shape) != 1 for i in inputs)
                or OUTPUT_NAME not in [o.name for o in outputs]):
            raise ArtifactError(
                f"{model_path} has inputs {signature} and outputs {[o.name for o in outputs]}; expected the "
                f"inputs indices int64 [nnz], counts float32 [nnz], offsets int64 [batch] and the output "
                f"{OUTPUT_NAME!r}"
            )
        if meta.get("input_format", INPUT_FORMAT) != INPUT_FORMAT:
            raise ArtifactError(f"{model_path} has input_format {meta['input_format']!r}; this server reads "
                                f"{INPUT_FORMAT!r}")
        if not self.version:
            raise ArtifactError(f"{model_path} has no 'model_version' in its metadata")
        stored = meta.get("featurizer_fingerprint")
        if stored != self.fingerprint:
            raise ArtifactError(
                f"{model_path} was trained with featurizer fingerprint {stored}, but "
                f"{FEATURIZER_FILE} has fingerprint {self.fingerprint}: deploy the two files from one training run"
            )
        if meta.get("vocab_size") != str(self.vocab_size):
            raise ArtifactError(
                f"{model_path} metadata says vocab_size {meta.get('vocab_size')}, "
                f"but {FEATURIZER_FILE} has {self.vocab_size} terms"
            )
        # Two rows, the second empty, three entries: catches an export that fixed a dimension.
        terms = sorted({0, self.vocab_size // 2, self.vocab_size - 1})
        rows = [SparseCounts(terms, [1] * len(terms)), SparseCounts([], [])]
        try:
            probabilities = self.predict(Batch.from_rows(rows))
        except Exception as exc:
            raise ArtifactError(f"{model_path} fails on a batch of 2 rows: {exc}") from exc
        if probabilities.shape != (2,) or not np.isfinite(probabilities).all():
            raise ArtifactError(f"{model_path} output {OUTPUT_NAME!r} is {probabilities!r} for a batch of "
                                "2 rows; expected 2 finite probabilities")

    def predict(self, batch: Batch) -> np.ndarray:
        """Probabilities of positive, float32 [rows], for a batch in the model's input form."""
        if not len(batch):
            return np.empty(0, np.float32)
        feed = {"indices": batch.indices, "counts": batch.counts, "offsets": batch.offsets}
        (probabilities,) = self.session.run([OUTPUT_NAME], feed)
        return probabilities

    def predict_sparse(self, rows: Sequence[SparseCounts]) -> np.ndarray:
        """Probabilities for featurized rows; repeated indices within a row add up."""
        return self.predict(Batch.from_rows(rows))


def read_featurizer(model_dir: str | Path) -> Featurizer:
    """Check that both artifact files exist and load the featurizer (cheap, and needs no onnxruntime)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ArtifactError(f"model directory {model_dir} does not exist")
    for name in (MODEL_FILE, FEATURIZER_FILE):
        if not (model_dir / name).is_file():
            raise ArtifactError(f"{model_dir / name} not found: the model directory needs the {MODEL_FILE} "
                                f"and {FEATURIZER_FILE} that `python -m training` writes")
    try:
        return Featurizer.load(model_dir / FEATURIZER_FILE)
    except FeaturizerError as exc:
        raise ArtifactError(f"{model_dir / FEATURIZER_FILE}: {exc}") from exc
