"""make finds the Python the Lambda runtime and the serving image run, and says so when it cannot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.packaging import image_python

REPO_ROOT = Path(__file__).resolve().parents[2]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)


def test_make_reads_the_version_from_the_dockerfile() -> None:
    version = image_python(REPO_ROOT)
    run = make("-n", "-B", f".venv-py{version}/.installed")
    assert run.returncode == 0, run.stderr
    assert f"-m venv .venv-py{version}" in run.stdout
    assert "-r requirements/runtime.txt" in run.stdout


def test_a_missing_interpreter_is_named_with_what_to_do(tmp_path: Path) -> None:
    version = image_python(REPO_ROOT)
    run = make("-B", f"RUNTIME_PYTHON={tmp_path / 'no-such-python'}", f".venv-py{version}/.installed")
    assert run.returncode != 0
    assert f"error: no Python {version} found" in run.stdout
    assert f"pyenv install {version}" in run.stdout and f"RUNTIME_PYTHON=/path/to/python{version}" in run.stdout


def test_an_interpreter_of_another_version_is_refused() -> None:
    version = image_python(REPO_ROOT)
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return  # this interpreter is the right one; the refusal needs another
    run = make("-B", f"RUNTIME_PYTHON={sys.executable}", f".venv-py{version}/.installed")
    assert run.returncode != 0 and f"error: no Python {version} found" in run.stdout
