"""The source archive a training job runs: this repository's ``training`` and ``sentiment`` packages.

Why AWS's prebuilt PyTorch training image and a source archive, not an image of our own: the
image already holds torch, numpy and SageMaker's training toolkit, so nothing has to be built,
pushed or scanned (no Docker engine is needed to launch a job), and the code a job runs is
exactly the files of this checkout, hashed. The toolkit downloads the archive
(``sagemaker_submit_directory``), pip-installs its ``requirements.txt`` (the few training
packages the image lacks: onnx, onnxscript, tqdm, matplotlib; torch and numpy are the image's,
never reinstalled, since a torch wheel from PyPI is a multi-GB CUDA build) and runs
``sagemaker_entry.py`` (``sagemaker_program``). The price: the job needs network access to PyPI
at start-up (so no network isolation), and it trains with the image's torch, not this
repository's pin.

The archive is deterministic (sorted members, fixed times and owners): the same checkout gives the
same bytes and the same sha256, which names its S3 key, so it is uploaded once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("training", "sentiment")
ENTRY_SCRIPT = "sagemaker_entry.py"
ENTRY_SOURCE = '''"""Run by SageMaker's training toolkit (sagemaker_program): see training/jobs/entry.py."""
import sys

from training.jobs.entry import main

sys.exit(main())
'''
# requirements/training.txt names what training needs; these the image brings (or the job never imports).
FROM_IMAGE = ("torch", "numpy", "optuna")


def requirements(repo_root: Path = REPO_ROOT) -> str:
    """requirements/training.txt without the packages the image provides."""
    kept = []
    for line in (repo_root / "requirements" / "training.txt").read_text().splitlines():
        name = line.split("#")[0].strip().split("==")[0].split("[")[0].strip().lower()
        if name and name not in FROM_IMAGE:
            kept.append(line.split("#")[0].strip())
    return "\n".join(kept) + "\n"


def _members(repo_root: Path) -> list[tuple[str, bytes]]:
    files = [(ENTRY_SCRIPT, ENTRY_SOURCE.encode()), ("requirements.txt", requirements(repo_root).encode())]
    for package in PACKAGES:
        for path in sorted((repo_root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files.append((path.relative_to(repo_root).as_posix(), path.read_bytes()))
    return sorted(files)


def build_archive(repo_root: Path = REPO_ROOT) -> tuple[bytes, str]:
    """``sourcedir.tar.gz``'s bytes and their sha256."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in _members(repo_root):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    data = gzip.compress(raw.getvalue(), mtime=0)
    return data, hashlib.sha256(data).hexdigest()
