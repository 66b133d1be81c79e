"""ONNX export and the SageMaker model-data archive.

``model.onnx`` is one self-contained file: input ``counts`` float32 ``[batch, vocab_size]`` of raw
counts, output ``probability`` float32 ``[batch]``, a dynamic ``batch`` axis, and the model
version, featurizer fingerprint, vocabulary size and model kind in its ``metadata_props``.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import onnx
import torch

from training.model import ProbabilityModel, SentimentModel

OPSET = 18  # supported by onnxruntime 1.32 and by the torch 2.13 dynamo exporter without conversion
INPUT_NAME = "counts"
OUTPUT_NAME = "probability"
TARBALL_MEMBERS = ("model.onnx", "featurizer.json")


def model_version(model: torch.nn.Module, when: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMZ-<first 8 hex of sha256 over the weights>``, e.g. ``20261128T1810Z-3f2a9c1d``."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    when = when or datetime.now(timezone.utc)
    return f"{when.astimezone(timezone.utc):%Y%m%dT%H%MZ}-{digest.hexdigest()[:8]}"


def export_onnx(
    model: SentimentModel, path: str | Path, *, version: str, featurizer_fingerprint: str, opset: int = OPSET
) -> Path:
    """Export ``sigmoid(model(counts))`` to one ONNX file, stamp its metadata and check it."""
    path = Path(path)
    wrapper = ProbabilityModel(model).eval()
    example = torch.zeros(2, model.vocab_size)  # batch 2: a batch of 1 would be specialised away
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" notes: irrelevant here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecation chatter from torch.export internals
            program = torch.onnx.export(
                wrapper,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                dynamic_shapes={"counts": {0: torch.export.Dim("batch")}},
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    program.save(path, external_data=False)

    proto = onnx.load(path)
    metadata = {
        "model_version": version,
        "featurizer_fingerprint": featurizer_fingerprint,
        "vocab_size": str(model.vocab_size),
        "model_kind": model.settings.kind,
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = "Raw bag-of-words counts -> probability that a movie review is positive."
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, path)  # well under 2 GB, so one file with every initializer inside
    return path


def write_model_tarball(target: str | Path, members: Mapping[str, str | Path]) -> Path:
    """A gzip tar of ``members`` (archive name → file) at its root: SageMaker's model-data format."""
    if sorted(members) != sorted(TARBALL_MEMBERS):
        raise ValueError(f"model.tar.gz holds exactly {', '.join(TARBALL_MEMBERS)}, got {', '.join(members)}")
    target = Path(target)
    with tarfile.open(target, "w:gz") as archive:
        for name in TARBALL_MEMBERS:
            archive.add(members[name], arcname=name)
    return target
