"""The artifacts the server scores with: model.onnx on ONNX Runtime and the shared featurizer.

``Model.load`` checks everything a mismatched deployment could get wrong (missing files, a
featurizer from another training run, a fixed batch size) and raises ``ArtifactError`` naming
the cause, so the server refuses to start instead of scoring with the wrong vocabulary.

onnxruntime is imported only when a model loads, never at import time: a process that forks
after importing it (the gunicorn master) leaves children that abort with
``std::system_error`` when they exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lambda_fn.featurizer import Featurizer, FeaturizerError, SparseCounts

if TYPE_CHECKING:
    import onnxruntime as ort

MODEL_FILE = "model.onnx"
FEATURIZER_FILE = "featurizer.json"
INPUT_NAME = "counts"
OUTPUT_NAME = "probability"
# Sparse rows are densified this many at a time: a dense row is vocab_size float32s
# (400 kB for 100k terms), so a large batch is never materialised at once.
CHUNK_ROWS = 64


class ArtifactError(RuntimeError):
    """The model directory cannot be served; the message says which file is wrong and why."""


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
        if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
            raise ArtifactError(
                f"{model_path} has inputs {[i.name for i in inputs]} and outputs {[o.name for o in outputs]}; "
                f"expected the single input {INPUT_NAME!r} and the output {OUTPUT_NAME!r}"
            )
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
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if len(inputs[0].shape) != 2 or (isinstance(width, int) and width != self.vocab_size):
            raise ArtifactError(f"{model_path} input {INPUT_NAME!r} has shape {inputs[0].shape}; "
                                f"expected [batch, {self.vocab_size}]")
        try:  # a batch of two catches an export that fixed the batch size at 1
            probabilities = self.predict(np.zeros((2, self.vocab_size), np.float32))
        except Exception as exc:
            raise ArtifactError(f"{model_path} fails on a batch of 2 rows: {exc}") from exc
        if probabilities.shape != (2,):
            raise ArtifactError(f"{model_path} output {OUTPUT_NAME!r} has shape {probabilities.shape} "
                                "for a batch of 2 rows; expected [batch]")

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities of positive, shape [rows], for a dense float32 [rows, vocab_size] batch."""
        (probabilities,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return probabilities

    def predict_sparse(self, rows: Sequence[SparseCounts]) -> np.ndarray:
        """Probabilities for sparse rows, densified CHUNK_ROWS at a time; repeated indices add up."""
        out = np.empty(len(rows), np.float32)
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            dense = np.zeros((len(chunk), self.vocab_size), np.float32)
            for r, row in enumerate(chunk):
                np.add.at(dense[r], np.asarray(row.indices, np.intp), row.counts)
            out[start : start + len(chunk)] = self.predict(dense)
        return out


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
