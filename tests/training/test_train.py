"""`python -m training` end to end on the fixture, its configuration, and its errors."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import onnx
import pytest

from sentiment.featurizer import Featurizer
from training.train import TrainConfig, main, parse_config, train

ARTIFACTS = {"model.onnx", "explain.onnx", "featurizer.json", "metrics.json", "training_curves.png", "model.tar.gz"}


@pytest.mark.slow
def test_training_writes_every_artifact(trained_dir: Path, fixture_archive: Path):
    assert {p.name for p in trained_dir.iterdir()} >= ARTIFACTS
    assert not list(trained_dir.glob(".*partial*"))
    metrics = json.loads((trained_dir / "metrics.json").read_text())
    featurizer = Featurizer.load(trained_dir / "featurizer.json")
    assert re.fullmatch(r"\d{8}T\d{4}Z-[0-9a-f]{8}", metrics["model_version"])
    assert metrics["featurizer_fingerprint"] == featurizer.fingerprint
    assert metrics["vocab_size"] == featurizer.vocab_size
    for split, n in (("validation", 4), ("test", 20)):
        assert metrics[split]["n"] == n
        assert 0 <= metrics[split]["accuracy"] <= 1
        assert sum(metrics[split]["confusion_matrix"].values()) == n
        assert {"loss", "roc_auc"} <= set(metrics[split])
    assert metrics["data"] == {"source": str(fixture_archive), "train": 16, "validation": 4, "test": 20}
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 4
    assert len(metrics["history"]) == metrics["epochs_run"]
    assert {"load_data", "featurize", "train", "test", "export", "total"} <= set(metrics["timings_s"])
    assert metrics["config"]["min_df"] == 1 and metrics["config"]["model"] == "linear"
    assert (trained_dir / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metadata = {p.key: p.value for p in onnx.load(trained_dir / "model.onnx").metadata_props}
    assert metadata["model_version"] == metrics["model_version"]
    assert metadata["featurizer_fingerprint"] == featurizer.fingerprint
    band = metrics["uncertain_band"]
    assert 0 <= band["low"] <= 0.5 <= band["high"] <= 1 and band["target_accuracy"] == 0.7
    assert (float(metadata["uncertain_low"]), float(metadata["uncertain_high"])) == (band["low"], band["high"])
    baseline = metrics["baseline"]
    assert baseline["n"] == 4 and 0 <= baseline["positive_rate"] <= 1
    for measure in ("length", "oov_rate", "probability"):
        assert sum(baseline[measure]["counts"]) == 4 and len(baseline[measure]["edges"]) == len(
            baseline[measure]["counts"]) + 1
    assert baseline["length"]["mean"] > 50  # the fixture's validation reviews are a few hundred words long
    explain_metadata = {p.key: p.value for p in onnx.load(trained_dir / "explain.onnx").metadata_props}
    assert explain_metadata["model_version"] == metrics["model_version"]


@pytest.mark.slow
def test_model_tarball_is_sagemaker_model_data(trained_dir: Path):
    with tarfile.open(trained_dir / "model.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["explain.onnx", "featurizer.json", "model.onnx"]
        for name in archive.getnames():
            assert archive.extractfile(name).read() == (trained_dir / name).read_bytes()


@pytest.mark.slow
def test_training_is_reproducible(trained_dir: Path, tmp_path: Path, fixture_folder: Path, train_args):
    """The same seed and data give the same weights: the hash part of the model version matches."""
    argv = ["--data", str(fixture_folder), "--out", str(tmp_path), "--hyperparameters", str(tmp_path / "no")]
    again = train(parse_config(argv + train_args))
    first = json.loads((trained_dir / "metrics.json").read_text())
    assert again["model_version"].split("-")[1] == first["model_version"].split("-")[1]
    assert again["history"][0]["train_loss"] == first["history"][0]["train_loss"]


@pytest.mark.slow
def test_mlp_trains_too(tmp_path: Path, fixture_archive: Path, train_args):
    argv = ["--data", str(fixture_archive), "--out", str(tmp_path), "--hyperparameters", str(tmp_path / "no")]
    metrics = train(parse_config(argv + train_args + ["--model", "mlp", "--hidden", "8", "--epochs", "2"]))
    assert metrics["model_kind"] == "mlp"
    metadata = {p.key: p.value for p in onnx.load(tmp_path / "model.onnx").metadata_props}
    assert metadata["model_kind"] == "mlp"


def test_missing_data_exits_with_a_clear_message(tmp_path: Path, capsys):
    argv = ["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out"),
            "--hyperparameters", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "IMDB data not found" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.onnx").exists()


def test_cli_refuses_an_unknown_model(tmp_path: Path, run_module):
    result = run_module("training", "--model", "lstm", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "invalid choice: 'lstm'" in result.stderr


# -- configuration: defaults < SageMaker hyperparameters.json < flags --------------------------------
def write(path: Path, document: object) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_defaults_without_sagemaker(tmp_path: Path):
    config = parse_config(["--hyperparameters", str(tmp_path / "absent.json")])
    assert config == TrainConfig()


def test_sagemaker_environment_and_hyperparameters(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training")
    monkeypatch.setenv("SM_MODEL_DIR", "/opt/ml/model")
    hyperparameters = write(
        tmp_path / "hp.json",
        {"model": "mlp", "epochs": "7", "lr": "0.005", "normalize": "false", "max-features": "5000",
         "sagemaker_program": "ignored", "sagemaker_region": "us-east-1"},
    )
    config = parse_config(["--hyperparameters", hyperparameters, "--epochs", "3"])
    assert (config.data, config.out) == ("/opt/ml/input/data/training", "/opt/ml/model")
    assert (config.model.kind, config.lr, config.model.normalize, config.featurizer.max_features) == (
        "mlp", 0.005, False, 5000)
    assert config.epochs == 3  # the command line wins


@pytest.mark.parametrize(
    "document, message",
    [
        ({"epochz": "3"}, "unknown hyperparameter 'epochz'"),
        ({"epochs": "many"}, "'epochs' must be a number"),
        ({"normalize": "maybe"}, "'normalize' must be true or false"),
        ({"model": "lstm"}, "unknown model 'lstm'"),
        ({"epochs": "0"}, "epochs must be at least 1, got 0"),
        ({"val_fraction": "1.5"}, "val_fraction must be between 0 and 1, got 1.5"),
        ({"lr": "-1"}, "lr must be > 0"),
        (["epochs", 3], "must be a JSON object"),
    ],
)
def test_bad_hyperparameters_are_clear_errors(tmp_path: Path, capsys, document, message):
    with pytest.raises(SystemExit) as exited:
        parse_config(["--hyperparameters", write(tmp_path / "hp.json", document)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
