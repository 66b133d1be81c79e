"""The model folder: the files training writes, and the one check everything that reads them runs.

A model folder (``python -m training --out DIR``) holds:

- ``model.onnx``: the model. Inputs ``indices`` int64 [nnz], ``counts`` float32 [nnz] and
  ``offsets`` int64 [batch] (a batch in sparse form, see ``sentiment.wire.Batch``); output
  ``probability`` float32 [batch]; metadata ``model_version``, ``featurizer_fingerprint``,
  ``vocab_size``, ``model_kind`` and ``input_format``.
- ``featurizer.json``: the fitted featurizer the model was trained with (``sentiment.featurizer``).
- ``metrics.json``: the run's metrics, with its ``model_version`` and ``featurizer_fingerprint``.
- ``explain.onnx`` (optional: older runs have none): the same inputs → ``probability``,
  ``logit`` [batch], ``contribution`` [nnz] (each input entry's signed share of its review's
  logit) and ``bias`` [batch], with ``bias + the review's contributions == logit``; run only for
  requests that ask for an explanation, so model.onnx, and every other request, stays as it was.
  Same metadata as model.onnx.
- ``model.tar.gz``: ``model.onnx`` and ``featurizer.json`` at its root, and ``explain.onnx`` when
  the run wrote one: what SageMaker unpacks into ``/opt/ml/model`` for the server, all it reads.

model.onnx's metadata may also hold ``uncertain_low`` and ``uncertain_high``: the band of
probabilities in which the model is unsure (derived from the validation split by training,
recorded in metrics.json's ``uncertain_band``); the server marks predictions inside it.
- ``model.pt`` (not deployed): the torch checkpoint, for benchmarks.

``ModelFolder.read`` checks the files a reader needs and that they come from one training run;
``check_model_signature`` checks what ONNX Runtime reports of a loaded ``model.onnx``. Both raise
``ArtifactError`` naming the file and the cause. Standard library only.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentiment.featurizer import Featurizer, FeaturizerError

MODEL_FILE = "model.onnx"
FEATURIZER_FILE = "featurizer.json"
METRICS_FILE = "metrics.json"
ARCHIVE_FILE = "model.tar.gz"
CHECKPOINT_FILE = "model.pt"
EXPLAIN_FILE = "explain.onnx"
SERVED_FILES = (MODEL_FILE, FEATURIZER_FILE)  # model.tar.gz's members: all the server needs
OPTIONAL_SERVED_FILES = (EXPLAIN_FILE,)  # also in model.tar.gz when the run wrote them
DEPLOYED_FILES = (MODEL_FILE, FEATURIZER_FILE, METRICS_FILE, ARCHIVE_FILE)  # what cdk deploy uploads

INPUT_TYPES = {"indices": "tensor(int64)", "counts": "tensor(float)", "offsets": "tensor(int64)"}
INPUT_NAMES = tuple(INPUT_TYPES)  # model.onnx's inputs, in this order
OUTPUT_NAME = "probability"
EXPLAIN_OUTPUTS = (OUTPUT_NAME, "logit", "contribution", "bias")  # explain.onnx's outputs, in this order
BAND_KEYS = ("uncertain_low", "uncertain_high")  # model.onnx metadata: the uncertain band, when recorded
INPUT_FORMAT = "sparse-offsets/1"  # model.onnx metadata: the input contract it was exported with
VERSION_PATTERN = re.compile(r"\d{8}T\d{4}Z-[0-9a-f]{8}")  # <UTC minute>-<featurizer fingerprint[:8]>


class ArtifactError(ValueError):
    """A model folder or one of its files cannot be used; the message names the file and why."""


def train_hint(path: Path) -> str:
    return f"Train a model first: `make train` (or `python -m training --out {path}`)."


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: its featurizer, and the model version when metrics.json was read."""

    path: Path
    featurizer: Featurizer
    model_version: str | None

    @property
    def featurizer_fingerprint(self) -> str:
        return self.featurizer.fingerprint

    @property
    def version(self) -> str:
        """The model version metrics.json records; ArtifactError when it was not read."""
        if self.model_version is None:
            raise ArtifactError(f"{self.path}: {METRICS_FILE} was not read, so the model version is unknown")
        return self.model_version

    @classmethod
    def read(cls, path: str | Path, files: Sequence[str] = DEPLOYED_FILES, hint: str | None = None) -> ModelFolder:
        """Check that ``path`` holds ``files`` and that they belong together; ArtifactError if not.

        The featurizer is always loaded; metrics.json (when in ``files``) must name its
        fingerprint and a well-formed model version; model.tar.gz (when in ``files``) must hold
        the same featurizer at its root, since that is the one the server loads.
        """
        path = Path(path)
        hint = hint or train_hint(path)
        if not path.is_dir():
            raise ArtifactError(f"model directory {path} does not exist. {hint}")
        missing = [name for name in files if not (path / name).is_file()]
        if missing:
            raise ArtifactError(f"{path / missing[0]} not found: model directory {path} is missing "
                                f"{', '.join(missing)}. {hint}")
        if MODEL_FILE in files and (path / MODEL_FILE).stat().st_size == 0:
            raise ArtifactError(f"{path / MODEL_FILE} is empty. {hint}")
        try:
            featurizer = Featurizer.load(path / FEATURIZER_FILE)
        except FeaturizerError as exc:
            raise ArtifactError(f"{path / FEATURIZER_FILE} is broken: {exc}. {hint}") from None
        version = _check_metrics(path, featurizer.fingerprint, hint) if METRICS_FILE in files else None
        if ARCHIVE_FILE in files:
            packed = archived_featurizer(path / ARCHIVE_FILE).fingerprint
            if packed != featurizer.fingerprint:
                raise ArtifactError(
                    f"{path / ARCHIVE_FILE} holds a featurizer (fingerprint {packed[:12]}) other than "
                    f"{FEATURIZER_FILE} ({featurizer.fingerprint[:12]}): the server would refuse every "
                    f"request. {hint}")
        return cls(path=path, featurizer=featurizer, model_version=version)


def _check_metrics(path: Path, fingerprint: str, hint: str) -> str:
    """The model version metrics.json records, after checking it names this featurizer."""
    try:
        metrics = json.loads((path / METRICS_FILE).read_text(encoding="utf-8"))
        version, recorded = metrics["model_version"], metrics["featurizer_fingerprint"]
    except (ValueError, KeyError, TypeError) as err:
        raise ArtifactError(f"{path / METRICS_FILE} must be JSON with model_version and "
                            f"featurizer_fingerprint ({err!r}). {hint}") from None
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise ArtifactError(f"{path / METRICS_FILE}: model_version {version!r} is not of the form "
                            "YYYYMMDDTHHMMZ-<8 hex digits>")
    if recorded != fingerprint:
        raise ArtifactError(f"{path}: {FEATURIZER_FILE} (fingerprint {fingerprint[:12]}) is not the one "
                            f"{METRICS_FILE} was trained with ({str(recorded)[:12]}). {hint}")
    return version


def archived_featurizer(archive_path: Path) -> Featurizer:
    """The featurizer inside model.tar.gz: the one the model server actually loads."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = {name.removeprefix("./"): name for name in archive.getnames()}
            absent = [m for m in SERVED_FILES if m not in members]
            if absent:
                raise ArtifactError(f"{archive_path} lacks {', '.join(absent)} at its root; "
                                    "SageMaker unpacks it into /opt/ml/model as is.")
            data = archive.extractfile(members[FEATURIZER_FILE])
            return Featurizer.from_json(data.read() if data is not None else b"")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ArtifactError(f"{archive_path} is not a gzip tar archive: {err}") from None
    except FeaturizerError as err:
        raise ArtifactError(f"{archive_path}: its {FEATURIZER_FILE}: {err}") from None


@dataclass(frozen=True)
class Tensor:
    """An input or output of a loaded model as ONNX Runtime describes it."""

    name: str
    type: str  # e.g. "tensor(int64)"
    shape: Sequence[object]


def check_model_signature(model_path: Path, inputs: Iterable[Tensor], outputs: Iterable[Tensor],
                          metadata: Mapping[str, str], featurizer: Featurizer) -> str:
    """Check a loaded model.onnx against the contract and its featurizer; return its model version."""
    inputs, output_names = list(inputs), [o.name for o in outputs]
    if [i.name for i in inputs] == ["counts"] and len(inputs[0].shape) == 2:
        raise ArtifactError(
            f"{model_path} takes dense counts {list(inputs[0].shape)}: it was exported by an older version "
            "of training, before model.onnx took sparse input; retrain (python -m training) and "
            "deploy the new artifacts")
    if ({i.name: i.type for i in inputs} != INPUT_TYPES or any(len(i.shape) != 1 for i in inputs)
            or OUTPUT_NAME not in output_names):
        signature = {i.name: f"{i.type} {list(i.shape)}" for i in inputs}
        raise ArtifactError(
            f"{model_path} has inputs {signature} and outputs {output_names}; expected the inputs "
            f"indices int64 [nnz], counts float32 [nnz], offsets int64 [batch] and the output {OUTPUT_NAME!r}")
    if metadata.get("input_format", INPUT_FORMAT) != INPUT_FORMAT:
        raise ArtifactError(f"{model_path} has input_format {metadata['input_format']!r}; this code reads "
                            f"{INPUT_FORMAT!r}")
    version = metadata.get("model_version")
    if not version:
        raise ArtifactError(f"{model_path} has no 'model_version' in its metadata")
    stored = metadata.get("featurizer_fingerprint")
    if stored != featurizer.fingerprint:
        raise ArtifactError(
            f"{model_path} was trained with featurizer fingerprint {stored}, but {FEATURIZER_FILE} has "
            f"fingerprint {featurizer.fingerprint}: deploy the two files from one training run")
    if metadata.get("vocab_size") != str(featurizer.vocab_size):
        raise ArtifactError(f"{model_path} metadata says vocab_size {metadata.get('vocab_size')}, "
                            f"but {FEATURIZER_FILE} has {featurizer.vocab_size} terms")
    return version


def uncertain_band(model_path: Path, metadata: Mapping[str, str]) -> tuple[float, float] | None:
    """The uncertain band model.onnx's metadata records, ``(low, high)``; None when it records none."""
    if not any(key in metadata for key in BAND_KEYS):
        return None
    try:
        low, high = (float(metadata[key]) for key in BAND_KEYS)
    except (KeyError, ValueError):
        raise ArtifactError(f"{model_path} metadata {BAND_KEYS} must both be numbers, got "
                            f"{[metadata.get(key) for key in BAND_KEYS]}") from None
    if not 0 <= low <= 0.5 <= high <= 1:
        raise ArtifactError(f"{model_path}: uncertain band [{low}, {high}] must hold 0.5 within [0, 1]")
    return low, high


def check_explainer_signature(explain_path: Path, inputs: Iterable[Tensor], outputs: Iterable[Tensor],
                              metadata: Mapping[str, str], model_version: str) -> None:
    """Check a loaded explain.onnx: model.onnx's inputs, ``EXPLAIN_OUTPUTS``, the same model version."""
    inputs, output_names = list(inputs), [o.name for o in outputs]
    if {i.name: i.type for i in inputs} != INPUT_TYPES or output_names != list(EXPLAIN_OUTPUTS):
        raise ArtifactError(f"{explain_path} has inputs {[i.name for i in inputs]} and outputs {output_names}; "
                            f"expected model.onnx's inputs and the outputs {list(EXPLAIN_OUTPUTS)}")
    if metadata.get("model_version") != model_version:
        raise ArtifactError(f"{explain_path} is model version {metadata.get('model_version')}, {MODEL_FILE} is "
                            f"{model_version}: deploy the two files from one training run")
