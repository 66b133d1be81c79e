"""Fixtures shared by the local-stack and browser tests: a tiny model and the running stack.

``tests/serving`` defines its own ``model_dir`` (a model whose probabilities it computes), which
takes precedence there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LocalStack, write_tiny_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def stack(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """``python -m local_stack`` on a free port, started once per test module."""
    log = tmp_path_factory.mktemp("stack") / "local_stack.log"
    with LocalStack(model_dir, log_path=log) as running:
        yield running
