"""The serving image's size, from the packages its Dockerfile installs (no Docker engine here).

The image is ``FROM python:<version>-slim`` plus ``pip install -r requirements/serving.txt`` plus
``sentiment/`` and ``serving/``. Docker cannot build it on these machines, so its Python
packages are measured where make install put them for that Python: ``.venv-py<version>``, built
from the same pins. That virtualenv holds the test tools too, so only the distributions
requirements/serving.txt pulls in are counted (pip and setuptools are in the base image). The
base image is not measured. A serverless endpoint pulls the image on a cold start, so its size
is part of the first call's wait.

    python -m benchmarks.bench_image
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from benchmarks.headline import Headline, Section
from infra.packaging import image_python

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements" / "serving.txt"


def site_packages(version: str) -> Path:
    found = sorted((REPO_ROOT / f".venv-py{version}" / "lib").glob(f"python{version}/site-packages"))
    if not found:
        raise SystemExit(f"no .venv-py{version}: run make install (it builds the virtualenv of the image's Python)")
    return found[0]


def closure(path: Path) -> dict[str, metadata.Distribution]:
    """The distributions requirements/serving.txt installs in ``path``, dependencies included."""
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(path)])}
    environment = {"python_version": image_python(REPO_ROOT), "sys_platform": "linux", "platform_system": "Linux",
                   "extra": ""}
    todo = [Requirement(line.split("#", 1)[0]).name for line in REQUIREMENTS.read_text().splitlines()
            if line.split("#", 1)[0].strip()]
    found: dict[str, metadata.Distribution] = {}
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        if name not in installed:
            raise SystemExit(f"{name} (from {REQUIREMENTS.name}) is not installed in {path}")
        found[name] = installed[name]
        for requirement in map(Requirement, found[name].requires or []):
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(requirement.name)
    return found


def size_on_disk(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        located = Path(str(dist.locate_file(file)))
        if located.is_file():
            total += located.stat().st_size
    return total


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def main(argv: list[str] | None = None) -> Section:
    argparse.ArgumentParser(description=__doc__).parse_known_args(argv)  # the shared --model-dir etc. are unused
    version = image_python(REPO_ROOT)
    dists = closure(site_packages(version))
    sizes = sorted(((size_on_disk(d), d.metadata["Name"], d.version) for d in dists.values()), reverse=True)
    code = folder_size(REPO_ROOT / "sentiment") + folder_size(REPO_ROOT / "serving")
    total = sum(size for size, _, _ in sizes) + code
    lines = [
        f"The image adds to `python:{version}-slim` (not measured here) **{total / 2**20:.0f} MiB**: its packages "
        f"as installed for Python {version} (`.venv-py{version}`, the pins of requirements/serving.txt) and "
        f"the code it copies ({code / 1024:.0f} KiB). No torch: the image scores with ONNX Runtime.",
        "",
        "| package | version | MiB installed |",
        "| --- | --- | ---: |",
    ]
    lines += [f"| {name} | {dist_version} | {size / 2**20:.1f} |" for size, name, dist_version in sizes]
    lines.append(f"| `sentiment/` + `serving/` | | {code / 2**20:.2f} |")
    text = "\n".join(lines)
    print(text)
    return Section(text, (Headline(
        "serving image: what it adds to the base image", f"{total / 2**20:.0f} MiB of packages and code "
        f"(`python:{version}-slim` not measured; no torch)", "—", "python -m benchmarks.bench_image"),))


if __name__ == "__main__":
    main(sys.argv[1:])
