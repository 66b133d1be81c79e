"""Shared fixtures for the training tests: the tiny IMDB fixture, a clean environment, no network."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "imdb_tiny"
SUBPROCESS_TIMEOUT = 600
DATA_VARIABLES = ("IMDB_DATA", "SM_CHANNEL_TRAINING", "SM_MODEL_DIR")
# A small but complete run: 2 validation reviews per class out of 10, every term kept.
TRAIN_ARGS = ["--val-fraction", "0.2", "--min-df", "1", "--epochs", "4", "--patience", "2",
              "--batch-size", "8"]


@pytest.fixture
def fixture_root() -> Path:
    """tests/fixtures/imdb_tiny: the folder form in aclImdb/, the archive form next to it."""
    return FIXTURE


@pytest.fixture
def train_args() -> list[str]:
    return list(TRAIN_ARGS)


@pytest.fixture
def run_module():
    """Run ``python -m <module> args...`` from the repo root with a clean environment."""
    return _run_module


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    return _clean_env()


@pytest.fixture
def fixture_folder() -> Path:
    return FIXTURE / "aclImdb"


@pytest.fixture
def fixture_archive() -> Path:
    return FIXTURE / "aclImdb_tiny.tar.gz"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No dataset from the environment, a private cache, and no network (file:// URLs only)."""
    for name in DATA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        target = url if isinstance(url, str) else url.full_url
        if not target.startswith("file:"):
            raise AssertionError(f"a test tried to reach the network: {target}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no dataset or SageMaker variables, repo importable."""
    env = {k: v for k, v in os.environ.items() if k not in DATA_VARIABLES}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def _run_module(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real `python -m training` run on the fixture archive, shared by the artifact tests."""
    out = tmp_path_factory.mktemp("artifacts")
    result = _run_module(
        "training",
        "--data", str(FIXTURE / "aclImdb_tiny.tar.gz"),
        "--out", str(out),
        "--hyperparameters", str(out / "absent.json"),
        *TRAIN_ARGS,
        XDG_CACHE_HOME=str(out / "cache"),
    )
    assert result.returncode == 0, f"training failed:\n{result.stdout}\n{result.stderr}"
    return out
