"""What each deployable ships: whole folders of the repository, named once here.

The layout defines what ships: the Lambda zip holds the handler's folder and the shared
package, the model server's image holds the server's folder, the shared package and the
server's pinned requirements. An asset built from these lists changes only when one of its
folders does, so a handler-only edit neither rebuilds nor re-uploads the image.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

LAMBDA_FOLDERS = ("lambda_fn", "sentiment")
IMAGE_PATHS = ("serving", "sentiment", "requirements/serving.txt")
DOCKERFILE = "serving/Dockerfile"


def image_python(root: Path) -> str:
    """The serving image's Python version ("3.12"), from its Dockerfile's ``FROM python:X.Y-slim``: the
    one place it is written (the Lambda runtime, make's test virtualenv and the benchmarks follow it)."""
    (version,) = re.findall(r"^FROM python:(\d+\.\d+)-slim$", (root / DOCKERFILE).read_text(), re.M)
    return version


def only(paths: tuple[str, ...]) -> list[str]:
    """The asset excludes (Docker ignore syntax) that keep ``paths`` of the repository root and nothing else."""
    return ["*", *(f"!{path}" for path in paths), "**/__pycache__", "**/*.pyc"]


def zip_folders(root: Path, folders: tuple[str, ...] = LAMBDA_FOLDERS) -> bytes:
    """The zip CDK makes of ``folders`` (caches aside), for tests and benchmarks that need its bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder in folders:
            for path in sorted((root / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()
