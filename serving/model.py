"""The model the server scores with: model.onnx on ONNX Runtime and the featurizer it was trained with.

``Model.load`` checks everything a mismatched deployment could get wrong (missing files, a
featurizer from another training run, a model exported with the older dense input, a fixed
batch size) against the model folder contract (``sentiment.artifacts``) and raises its
``ArtifactError`` naming the cause, so the server refuses to start instead of scoring with the
wrong vocabulary. ``explain.onnx``, when the folder holds one, is loaded as a second session and
run only for requests that ask for explanations; a folder without it serves predictions alone.

onnxruntime is imported only when a model loads, never at import time: a process that forks
after importing it (the gunicorn master) leaves children that abort with
``std::system_error`` when they exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment.artifacts import (
    EXPLAIN_FILE,
    EXPLAIN_OUTPUTS,
    MODEL_FILE,
    OUTPUT_NAME,
    SERVED_FILES,
    ArtifactError,
    ModelFolder,
    Tensor,
    check_explainer_signature,
    check_model_signature,
    uncertain_band,
)
from sentiment.batch import Batch
from sentiment.featurizer import Featurizer, SparseCounts
from sentiment.wire import Band, Explain, explanation

if TYPE_CHECKING:
    import onnxruntime as ort

SERVER_HINT = "The model directory needs the model.onnx and featurizer.json that `python -m training` writes."


@dataclass(frozen=True)
class Model:
    """One ONNX Runtime session plus the featurizer it was trained with."""

    session: ort.InferenceSession
    featurizer: Featurizer
    version: str
    kind: str
    band: Band | None = None  # the uncertain band model.onnx records, if any
    explainer: ort.InferenceSession | None = None  # explain.onnx, if the folder holds it

    @property
    def vocab_size(self) -> int:
        return self.featurizer.vocab_size

    @property
    def fingerprint(self) -> str:
        return self.featurizer.fingerprint

    @classmethod
    def load(cls, model_dir: str | Path, intra_op_threads: int = 1) -> Model:
        """Load and cross-check ``model.onnx`` and ``featurizer.json`` (and ``explain.onnx``) from ``model_dir``."""
        featurizer = read_featurizer(model_dir)
        model_path = Path(model_dir) / MODEL_FILE
        session = _session(model_path, intra_op_threads)
        meta = session.get_modelmeta().custom_metadata_map
        explain_path = Path(model_dir) / EXPLAIN_FILE
        explainer = _session(explain_path, intra_op_threads) if explain_path.is_file() else None
        model = cls(session, featurizer, meta.get("model_version", ""), meta.get("model_kind", "unknown"),
                    uncertain_band(model_path, meta), explainer)
        model._check(model_path, meta)
        if explainer is not None:
            check_explainer_signature(explain_path, map(_tensor, explainer.get_inputs()),
                                      map(_tensor, explainer.get_outputs()),
                                      explainer.get_modelmeta().custom_metadata_map, model.version)
        return model

    def _check(self, model_path: Path, meta: dict[str, str]) -> None:
        """Raise ArtifactError unless the model follows the contract, matches the featurizer and scores."""
        check_model_signature(model_path, map(_tensor, self.session.get_inputs()),
                              map(_tensor, self.session.get_outputs()), meta, self.featurizer)
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
        (probabilities,) = self.session.run([OUTPUT_NAME], batch.feed())
        return probabilities

    def explain(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """explain.onnx on a batch: probabilities, logits [rows], each entry's contribution [nnz] (in the
        batch's entry order) and biases [rows]. Only for a model with an explainer."""
        if self.explainer is None:
            raise ValueError("this model folder has no explain.onnx")
        if not len(batch):
            empty = np.empty(0, np.float32)
            return empty, empty, empty, empty
        probabilities, logits, contributions, biases = self.explainer.run(list(EXPLAIN_OUTPUTS), batch.feed())
        return probabilities, logits, contributions, biases

    def explained(self, batch: Batch, explain: Explain = True) -> tuple[np.ndarray, list[dict]]:
        """Probabilities [rows] and each review's explanation in the wire format (``sentiment.wire``):
        terms by vocabulary index. ValueError when the model answers a non-finite value."""
        probabilities, logits, contributions, biases = self.explain(batch)
        if not (np.isfinite(contributions).all() and np.isfinite(logits).all() and np.isfinite(biases).all()):
            raise ValueError("the model's explanation holds a NaN or infinite value; the model is faulty")
        ends = np.append(batch.offsets[1:], len(batch.indices))
        indices, values = batch.indices.tolist(), contributions.tolist()
        return probabilities, [explanation(indices[start:end], values[start:end], bias, logit, explain)
                               for start, end, bias, logit in zip(batch.offsets.tolist(), ends.tolist(),
                                                                  biases.tolist(), logits.tolist(), strict=True)]

    def predict_rows(self, rows: Sequence[SparseCounts]) -> np.ndarray:
        """Probabilities for featurized rows; repeated indices within a row add up."""
        return self.predict(Batch.from_rows(rows))


def read_featurizer(model_dir: str | Path) -> Featurizer:
    """Check that both served files exist and load the featurizer (cheap, and needs no onnxruntime)."""
    return ModelFolder.read(model_dir, files=SERVED_FILES, hint=SERVER_HINT).featurizer


def _session(path: Path, intra_op_threads: int) -> ort.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One worker process per core, each session computing on its own thread by default:
    # the workers do not fight over the cores.
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types per failure
        raise ArtifactError(f"{path} is not a model ONNX Runtime can load: {exc}") from exc


def _tensor(arg: ort.NodeArg) -> Tensor:
    return Tensor(arg.name, arg.type, arg.shape)
