"""Each deployable's asset is its folders: an edit elsewhere leaves its hash, so nothing is rebuilt.

The hashes are CDK's own (``FileSystem.fingerprint``, what ``Code.from_asset`` and
``DockerImageAsset`` hash their source with) over a copy of the repository, with the very
exclude lists the stack passes (``infra.packaging``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from aws_cdk import FileSystem, IgnoreMode

from infra.packaging import IMAGE_PATHS, LAMBDA_FOLDERS, only

REPO_ROOT = Path(__file__).resolve().parents[2]
COPIED = ("lambda_fn", "sentiment", "serving", "training", "infra", "requirements", "web")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name in COPIED:
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def fingerprints(root: Path) -> dict[str, str]:
    return {name: FileSystem.fingerprint(str(root), exclude=only(paths), ignore_mode=IgnoreMode.DOCKER)
            for name, paths in (("lambda", LAMBDA_FOLDERS), ("image", IMAGE_PATHS))}


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


@pytest.mark.parametrize(("edited", "changes"), [
    ("lambda_fn/handler.py", {"lambda"}),
    ("lambda_fn/validation.py", {"lambda"}),
    ("serving/app.py", {"image"}),
    ("requirements/serving.txt", {"image"}),
    ("sentiment/featurizer.py", {"lambda", "image"}),
    ("training/train.py", set()),
    ("infra/api.py", set()),
    ("web/app.js", set()),
])
def test_an_edit_changes_the_hash_of_exactly_the_assets_that_ship_the_file(repo: Path, edited: str,
                                                                           changes: set[str]) -> None:
    before = fingerprints(repo)
    edit(repo / edited)
    after = fingerprints(repo)
    assert {name for name in before if before[name] != after[name]} == changes


def test_caches_do_not_change_a_hash(repo: Path) -> None:
    before = fingerprints(repo)
    for folder in ("lambda_fn", "sentiment", "serving"):
        (repo / folder / "__pycache__").mkdir()
        (repo / folder / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert fingerprints(repo) == before
