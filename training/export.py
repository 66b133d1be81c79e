"""ONNX export and the SageMaker model-data archive.

``model.onnx`` is one self-contained file (opset ``OPSET``, no external data) taking a batch of
reviews in sparse form, the non-zero raw counts of all rows concatenated:

- ``indices`` int64 ``[nnz]``: vocabulary indices, each row's distinct;
- ``counts`` float32 ``[nnz]``: their raw counts;
- ``offsets`` int64 ``[batch]``: where each row starts in ``indices`` (EmbeddingBag's convention:
  ``offsets[0] == 0``, non-decreasing; an empty review is a row whose offset equals the next one's).

Output ``probability`` float32 ``[batch]``; ``nnz`` and ``batch`` are named dynamic axes. Its
``metadata_props`` hold the model version, featurizer fingerprint, vocabulary size, model kind
and ``input_format`` (``sparse-offsets/1``), and the uncertain band when training gives one.

``explain.onnx`` (``export_explainer``) takes the same inputs and adds ``logit``, ``contribution``
``[nnz]`` and ``bias`` ``[batch]`` (``training.model.ExplainModel``). It is a second graph, not
extra outputs of the first, because ONNX Runtime runs every node of a graph whatever outputs are
asked for: requests without an explanation keep model.onnx's cost exactly.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import onnx
import torch

from sentiment.artifacts import (
    ARCHIVE_FILE,
    BAND_KEYS,
    EXPLAIN_OUTPUTS,
    INPUT_FORMAT,
    INPUT_NAMES,
    OPTIONAL_SERVED_FILES,
    OUTPUT_NAME,
    SERVED_FILES,
)
from training.model import ExplainModel, ProbabilityModel, SentimentModel

OPSET = 18  # supported by onnxruntime 1.32 and by the torch 2.13 dynamo exporter without conversion


def model_version(model: torch.nn.Module, when: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMZ-<first 8 hex of sha256 over the weights>``, e.g. ``20261128T1810Z-3f2a9c1d``."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    when = when or datetime.now(UTC)
    return f"{when.astimezone(UTC):%Y%m%dT%H%MZ}-{digest.hexdigest()[:8]}"


def export_onnx(
    model: SentimentModel, path: str | Path, *, version: str, featurizer_fingerprint: str, opset: int = OPSET,
    uncertain_band: tuple[float, float] | None = None,
) -> Path:
    """Export ``sigmoid(model(indices, counts, offsets))`` to one ONNX file, stamp its metadata, check it."""
    band = {} if uncertain_band is None else dict(zip(BAND_KEYS, map(repr, uncertain_band), strict=True))
    return _export(ProbabilityModel(model).eval(), model, path, [OUTPUT_NAME], opset, band | {
        "model_version": version, "featurizer_fingerprint": featurizer_fingerprint},
        "Sparse bag-of-words counts (indices, counts, offsets) -> probability that each movie review is positive.")


def export_explainer(
    model: SentimentModel, path: str | Path, *, version: str, featurizer_fingerprint: str, opset: int = OPSET
) -> Path:
    """Export ``ExplainModel``: probability, logit, each entry's contribution and the bias, to one ONNX file."""
    return _export(ExplainModel(model).eval(), model, path, list(EXPLAIN_OUTPUTS), opset, {
        "model_version": version, "featurizer_fingerprint": featurizer_fingerprint},
        "Sparse bag-of-words counts -> probability, logit, each entry's signed contribution to the logit, "
        "and the bias: bias + a review's contributions = its logit.")


def _export(wrapper: torch.nn.Module, model: SentimentModel, path: str | Path, outputs: list[str], opset: int,
            metadata: dict[str, str], doc: str) -> Path:
    path = Path(path)
    model.eval()
    # 3 rows holding 5 entries: sizes of 0 or 1, or nnz == batch, would be specialised away.
    example = (torch.tensor([0, 1, 2, 0, 3]) % model.vocab_size, torch.ones(5), torch.tensor([0, 3, 3]))
    nnz, batch = torch.export.Dim("nnz"), torch.export.Dim("batch")
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" notes: irrelevant here
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)  # deprecation chatter from torch.export internals
            # indices and counts share the axis "nnz" on purpose; the exporter remarks on it
            warnings.filterwarnings("ignore", "# The axis name: nnz will not be used", UserWarning)
            program = torch.onnx.export(
                wrapper,
                example,
                input_names=list(INPUT_NAMES),
                output_names=outputs,
                opset_version=opset,
                dynamo=True,
                external_data=False,
                dynamic_shapes={"indices": {0: nnz}, "counts": {0: nnz}, "offsets": {0: batch}},
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    if program is None:  # only without dynamo=True
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    program.save(path, external_data=False)

    proto = onnx.load(path)
    metadata = {**metadata, "vocab_size": str(model.vocab_size), "model_kind": model.settings.kind,
                "input_format": INPUT_FORMAT}
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = doc
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)  # well under 2 GB, so one file with every initializer inside
    return path


def write_model_tarball(target: str | Path, members: Mapping[str, str | Path]) -> Path:
    """A gzip tar of ``members`` (archive name → file) at its root: SageMaker's model-data format.

    ``members`` are the served files, and optionally explain.onnx."""
    if not set(SERVED_FILES) <= set(members) <= set(SERVED_FILES + OPTIONAL_SERVED_FILES):
        raise ValueError(f"{ARCHIVE_FILE} holds exactly {', '.join(SERVED_FILES)} (and optionally "
                         f"{', '.join(OPTIONAL_SERVED_FILES)}), got {', '.join(members)}")
    target = Path(target)
    with tarfile.open(target, "w:gz") as archive:
        for name in SERVED_FILES + OPTIONAL_SERVED_FILES:
            if name in members:
                archive.add(members[name], arcname=name)
    return target
