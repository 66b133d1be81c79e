"""The Powertools layer is looked up for the version requirements/lambda.txt pins, read with `packaging`."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.api import powertools_version


def pinned(tmp_path: Path, text: str) -> str:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "lambda.txt").write_text(text)
    return powertools_version(tmp_path)


@pytest.mark.parametrize(("text", "version"), [
    ("aws-lambda-powertools==3.37.0\n", "3.37.0"),
    ("aws-lambda-powertools[tracer]==3.9.0  # with an extra and a comment\n", "3.9.0"),
    ("boto3\n# aws-lambda-powertools==1.0\nAWS_Lambda_Powertools == 3.1\n", "3.1"),  # names compare normalized
])
def test_the_pinned_version_is_read(tmp_path: Path, text: str, version: str) -> None:
    assert pinned(tmp_path, text) == version


@pytest.mark.parametrize("text", ["aws-lambda-powertools>=3\n", "boto3==1.0\n", ""])
def test_anything_but_one_exact_pin_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="must pin aws-lambda-powertools==<version>"):
        pinned(tmp_path, text)


def test_the_repositorys_pin_is_found() -> None:
    assert powertools_version(Path(__file__).resolve().parents[2]).count(".") == 2
