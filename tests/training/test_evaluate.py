"""`python -m training.evaluate` rescores the exported model with onnxruntime alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment.featurizer import Featurizer, FeaturizerSettings
from training.evaluate import main

pytestmark = pytest.mark.slow
ARCHIVE = str(Path(__file__).resolve().parents[1] / "fixtures" / "imdb_tiny" / "aclImdb_tiny.tar.gz")


def test_reproduces_the_recorded_test_accuracy_without_torch(trained_dir: Path, subprocess_env):
    script = (
        "import sys\n"
        "from training.evaluate import main\n"
        f"code = main(['--model-dir', {str(trained_dir)!r}, '--data', {ARCHIVE!r}])\n"
        "assert 'torch' not in sys.modules, 'evaluate imported torch'\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    recorded = json.loads((trained_dir / "metrics.json").read_text())["test"]["accuracy"]
    assert f"test accuracy in metrics.json:  {recorded:.4%}" in result.stdout
    assert f"test accuracy with onnxruntime: {recorded:.4%}" in result.stdout
    assert "reproduced" in result.stdout


def copy_of(trained_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(trained_dir, target)
    return target


def test_a_different_recorded_accuracy_fails(trained_dir: Path, tmp_path: Path, capsys):
    model_dir = copy_of(trained_dir, tmp_path)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    accuracy = metrics["test"]["accuracy"]
    metrics["test"]["accuracy"] = accuracy + (0.05 if accuracy < 0.5 else -0.05)
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    assert main(["--model-dir", str(model_dir), "--data", ARCHIVE]) == 1
    assert "MISMATCH: they differ by 5.00 points" in capsys.readouterr().err


def test_a_featurizer_from_another_run_is_refused(trained_dir: Path, tmp_path: Path, capsys):
    model_dir = copy_of(trained_dir, tmp_path)
    other = Featurizer(FeaturizerSettings(min_df=1)).fit(["another vocabulary entirely"])
    other.save(model_dir / "featurizer.json")
    assert main(["--model-dir", str(model_dir), "--data", ARCHIVE]) == 2
    assert "model.onnx was trained with featurizer" in capsys.readouterr().err


def test_missing_artifacts_are_a_clear_error(tmp_path: Path, capsys):
    assert main(["--model-dir", str(tmp_path / "empty"), "--data", ARCHIVE]) == 2
    assert "cannot read the artifacts" in capsys.readouterr().err
