"""``model.pt``: the trained torch model and the config that made it, written beside ``model.onnx``.

For work in torch after training (the benchmarks compare it with ONNX Runtime); nothing that
serves reads it, and it is never packed into ``model.tar.gz``. One ``torch.save`` of a plain
dict, loadable with ``torch.load(path, weights_only=True)``:

- ``format``: ``CHECKPOINT_FORMAT``;
- ``state_dict``: ``SentimentModel``'s weights and fitted term weights (the kept epoch's);
- ``vocab_size``, ``model_version``, ``featurizer_fingerprint``: as in model.onnx's metadata;
- ``config``: the ``TrainConfig`` as a plain nested dict (``TrainConfig.to_dict()``), whose
  ``"model"`` entry holds the ``ModelSettings`` fields the model is rebuilt with.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from training.model import ModelSettings, SentimentModel

CHECKPOINT_FORMAT = "sentiment-checkpoint/1"


class Checkpoint(NamedTuple):
    model: SentimentModel  # in evaluation mode
    config: dict[str, Any]  # TrainConfig.to_dict(); TrainConfig.from_dict rebuilds it
    model_version: str
    featurizer_fingerprint: str


def save_checkpoint(
    path: str | Path,
    model: SentimentModel,
    config: Mapping[str, Any],
    *,
    model_version: str,
    featurizer_fingerprint: str,
) -> Path:
    """Write ``model``'s weights with ``config`` (a plain dict with a ``"model"`` entry) to ``path``."""
    path = Path(path)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "state_dict": model.state_dict(),
            "vocab_size": model.vocab_size,
            "model_version": model_version,
            "featurizer_fingerprint": featurizer_fingerprint,
            "config": dict(config),
        },
        path,
    )
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """The model saved at ``path``, rebuilt from its config and weights, in evaluation mode."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format {found!r})")
    model = SentimentModel(raw["vocab_size"], ModelSettings(**raw["config"]["model"]))
    model.load_state_dict(raw["state_dict"])
    model.eval()
    return Checkpoint(model, raw["config"], raw["model_version"], raw["featurizer_fingerprint"])
