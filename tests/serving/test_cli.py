"""``python -m serving`` refuses bad artifacts and bad flags with a message and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_a_missing_model_directory_stops_the_server_before_it_binds(launch, tmp_path):
    server = launch(tmp_path / "nowhere", "--workers", "1")
    assert server.proc.wait(timeout=60) == 1
    assert f"serving: cannot start: model directory {tmp_path / 'nowhere'} does not exist" in server.log


def test_a_missing_featurizer_is_named(launch, artifacts_factory):
    directory = artifacts_factory()
    (directory / "featurizer.json").unlink()
    server = launch(directory, "--workers", "1")
    assert server.proc.wait(timeout=60) == 1
    assert "featurizer.json not found" in server.log


def test_a_model_from_another_training_run_stops_the_server(launch, artifacts_factory):
    directory = artifacts_factory(metadata={"featurizer_fingerprint": "f" * 64})
    server = launch(directory, "--workers", "2")
    assert server.proc.wait(timeout=60) != 0  # gunicorn's "worker failed to boot" (3)
    assert "cannot load the model" in server.log
    assert "was trained with featurizer fingerprint " + "f" * 64 in server.log


@pytest.mark.parametrize("flags", [["--workers", "0"], ["--port", "http"]])
def test_bad_flags_are_refused(flags):
    result = subprocess.run([sys.executable, "-m", "serving", *flags], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "usage: python -m serving" in result.stderr


def test_sagemaker_environment_variables_set_the_defaults_and_flags_win(monkeypatch):
    from serving.server import parse_args

    monkeypatch.setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3")
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "9090")
    args = parse_args([])
    assert (args.workers, args.port, args.model_dir, args.host) == (3, 9090, "/opt/ml/model", "0.0.0.0")
    assert parse_args(["--workers", "1", "--port", "8081"]).workers == 1


def test_a_non_integer_environment_variable_is_named():
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "lots", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "serving"], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 1
    assert "SAGEMAKER_MODEL_SERVER_WORKERS must be an integer, got 'lots'" in result.stderr


def test_the_help_says_what_the_timeouts_bound():
    result = subprocess.run([sys.executable, "-m", "serving", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    text = " ".join(result.stdout.split())
    assert "--timeout" in text and "the most one request may take" in text
    assert "--client-timeout" in text
