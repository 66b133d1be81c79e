"""The container cannot be built here (no Docker engine), so check what the build relies on."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "serving" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def copies() -> list[tuple[list[str], str]]:
    out = []
    for name, args in instructions():
        if name == "COPY":
            *sources, dest = [a for a in shlex.split(args) if not a.startswith("--")]
            out.append((sources, dest))
    return out


def test_every_copied_path_exists_relative_to_the_repository_root():
    sources = [s for srcs, _ in copies() for s in srcs]
    assert sources, "the Dockerfile copies nothing"
    missing = [s for s in sources if not (REPO / s).exists()]
    assert not missing, f"COPY sources missing from the build context (repo root): {missing}"


def test_the_image_holds_the_server_and_the_shared_package_whole():
    copied = {s for srcs, _ in copies() for s in srcs}
    assert {"serving/", "sentiment/", "requirements/serving.txt"} <= copied
    assert not any(s.startswith("lambda_fn") for s in copied)  # the handler is not the server's


def test_serve_is_on_path_executable_and_what_the_container_runs():
    steps = dict(instructions())
    assert json.loads(steps["CMD"]) == ["serve"]
    assert "ENTRYPOINT" not in steps  # so that SageMaker's `docker run <image> serve` runs serve
    assert (["serving/serve"], "/usr/local/bin/serve") in copies()
    script = REPO / "serving" / "serve"
    assert os.access(script, os.X_OK)
    assert "exec python -m serving" in script.read_text()


def test_slim_python_non_root_port_8080_and_only_the_server_dependencies():
    steps = instructions()
    assert ("FROM", "python:3.12-slim") in steps
    users = [args for name, args in steps if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "8080") in steps
    requirements = (REPO / "requirements" / "serving.txt").read_text()
    assert "torch" not in requirements and "onnxruntime==" in requirements


def test_the_copied_files_alone_run_serve(tmp_path):
    """Lay the COPY steps out under a temporary root, as the image would, and run ``serve --help``."""
    workdir = "/"
    root = tmp_path / "image"
    for name, args in instructions():
        if name == "WORKDIR":
            workdir = args.strip()
    for sources, dest in copies():
        target = root / Path(workdir, dest).relative_to("/")  # an absolute dest ignores WORKDIR
        for source in sources:
            if (REPO / source).is_dir():  # COPY dir/ dest/ copies the folder's contents
                shutil.copytree(REPO / source, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
                continue
            into = target / Path(source).name if dest.endswith("/") else target
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, into)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "PYTHONPATH": str(root / Path(workdir).relative_to("/"))}
    result = subprocess.run([str(root / "usr/local/bin/serve"), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: python -m serving" in result.stdout
    imports = subprocess.run([sys.executable, "-c", "import serving.app, serving.server"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=60)
    assert imports.returncode == 0, imports.stderr
