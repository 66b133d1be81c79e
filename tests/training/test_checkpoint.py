"""model.pt beside model.onnx: written by training, loadable, the same model, its config round-trips."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sentiment.featurizer import Featurizer
from sentiment.artifacts import CHECKPOINT_FILE
from training.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from training.data import load_imdb
from training.model import ModelSettings, ProbabilityModel, SentimentModel
from training.sparse import SparseRows
from training.train import TrainConfig


@pytest.mark.slow
def test_training_writes_a_checkpoint_of_the_exported_model(trained_dir: Path, fixture_archive: Path):
    assert CHECKPOINT_FILE == "model.pt" and (trained_dir / CHECKPOINT_FILE).is_file()
    metrics = json.loads((trained_dir / "metrics.json").read_text())
    checkpoint = load_checkpoint(trained_dir / CHECKPOINT_FILE)
    assert checkpoint.model_version == metrics["model_version"]
    assert checkpoint.featurizer_fingerprint == metrics["featurizer_fingerprint"]
    config = TrainConfig.from_dict(checkpoint.config)
    assert config.options() == metrics["config"]
    assert checkpoint.model.settings == config.model and not checkpoint.model.training

    featurizer = Featurizer.load(trained_dir / "featurizer.json")
    rows = SparseRows.featurize(featurizer, load_imdb(fixture_archive).test.texts)
    feed = rows.select(np.arange(len(rows))).feed()
    session = ort.InferenceSession(str(trained_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        from_torch = ProbabilityModel(checkpoint.model)(
            *(torch.from_numpy(feed[name]) for name in ("indices", "counts", "offsets"))).numpy()
    np.testing.assert_allclose(session.run(["probability"], feed)[0], from_torch, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_the_checkpoint_stays_out_of_the_model_archive(trained_dir: Path):
    with tarfile.open(trained_dir / "model.tar.gz") as archive:
        assert CHECKPOINT_FILE not in archive.getnames()


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_checkpoint_round_trip(tmp_path: Path, kind: str):
    config = TrainConfig().with_options(model=kind, hidden=4, weighting="idf", min_df=1, out=str(tmp_path))
    torch.manual_seed(0)
    model = SentimentModel(30, config.model)
    with torch.no_grad():
        model.term_weight.uniform_(0.5, 2.0)  # a fitted buffer, saved with the weights
    path = save_checkpoint(tmp_path / CHECKPOINT_FILE, model, config.to_dict(), model_version="v-1",
                           featurizer_fingerprint="f" * 64)

    raw = torch.load(path, weights_only=True)  # plain data: loadable without trusting pickles
    assert raw["format"] == CHECKPOINT_FORMAT and raw["config"] == config.to_dict()
    loaded = load_checkpoint(path)
    assert (loaded.model_version, loaded.featurizer_fingerprint) == ("v-1", "f" * 64)
    assert TrainConfig.from_dict(loaded.config) == config
    assert loaded.model.settings == config.model and loaded.model.vocab_size == 30
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    indices, counts, offsets = torch.tensor([1, 5, 29, 3]), torch.tensor([1.0, 2.0, 1.0, 4.0]), torch.tensor([0, 2])
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model(indices, counts, offsets), model(indices, counts, offsets))


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path: Path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a sentiment-checkpoint/1 checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


# -- the nested config -------------------------------------------------------------------------------
def test_config_nests_the_featurizer_and_model_settings():
    config = TrainConfig()
    assert config.featurizer.min_df == 2 and config.featurizer.max_features == 100_000
    assert config.model == ModelSettings()  # the model's own defaults are the run's
    changed = config.with_options(model="mlp", hidden=8, ngram_max=3, lr=0.1)
    assert (changed.model.kind, changed.model.hidden, changed.featurizer.ngram_max, changed.lr) == ("mlp", 8, 3, 0.1)
    assert config == TrainConfig(), "with_options returns a copy"


@pytest.mark.parametrize("options", [{}, {"model": "mlp", "normalize": False, "min_df": 1, "data": "x.tar.gz"}])
def test_config_round_trips(options):
    config = TrainConfig().with_options(**options)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig().with_options(**config.options()) == config
    assert list(config.options())[:4] == ["data", "out", "seed", "val_fraction"]


def test_with_options_refuses_an_unknown_name():
    with pytest.raises(TypeError, match="unknown option"):
        TrainConfig().with_options(kind="mlp")  # the model's field, but the option is "model"
