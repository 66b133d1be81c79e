"""The IMDB Large Movie Review Dataset (Maas et al., ACL 2011): find it, read it, split it.

Accepted sources, all in the official ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` layout:
the official ``aclImdb_v1.tar.gz``, the labelled-only archive, or an extracted ``aclImdb/``
folder. Archives are streamed member by member, never extracted to disk. With no source given
(``--data`` / ``IMDB_DATA``), the official archive is downloaded once into a cache folder and
checked against its published sha256 before it is used.

Standard library only: ``training.evaluate`` imports this module without torch.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import re
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# Published checksum of aclImdb_v1.tar.gz (the same value is pinned by MLDatasets.jl, gomlx and others).
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
ENV_VAR = "IMDB_DATA"
SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
# A labelled review anywhere below an aclImdb root; train/unsup and the *.feat files never match.
_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")

HOW_TO_GET_DATA = (
    f"Get the IMDB dataset from {OFFICIAL_URL} and pass it with --data PATH or the {ENV_VAR} "
    "environment variable (the .tar.gz archive, the labelled-only archive, or an extracted aclImdb/ folder)."
)


class DataError(RuntimeError):
    """The dataset cannot be found, downloaded, verified or read; the message says what to do."""


@dataclass(frozen=True)
class Split:
    """Review texts and their labels (1 = positive, 0 = negative), in a fixed order."""

    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int]) -> Split:
        return Split([self.texts[i] for i in indices], [self.labels[i] for i in indices])


@dataclass(frozen=True)
class Imdb:
    train: Split
    test: Split
    source: Path


# -- finding the data ---------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/serverless-sentiment``, else ``~/.cache/serverless-sentiment``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "serverless-sentiment"


def resolve_source(data: str | Path | None = None) -> Path:
    """The dataset path: ``data``, else ``$IMDB_DATA``, else the cached (downloaded once) official archive."""
    chosen = data or os.environ.get(ENV_VAR)
    if not chosen:
        return download_official()
    path = Path(chosen).expanduser()
    if not path.exists():
        origin = "--data" if data else ENV_VAR
        raise DataError(f"IMDB data not found at {path} (from {origin}). {HOW_TO_GET_DATA}")
    if path.is_dir() and not any((path / d).is_dir() for d in ("aclImdb", "train")):
        archives = sorted(path.glob("*.tar.gz"))  # e.g. a SageMaker channel holding the archive
        if len(archives) == 1:
            return archives[0]
    return path


def download_official(
    directory: Path | None = None, url: str | None = None, sha256: str | None = None
) -> Path:
    """Download the official archive into ``directory`` unless it is already there.

    The file is written under a temporary name, its sha256 checked, and only then renamed into
    place, so an interrupted or corrupted download never looks like a good cached archive.
    """
    directory, url, sha256 = directory or cache_dir(), url or OFFICIAL_URL, sha256 or OFFICIAL_SHA256
    target = directory / ARCHIVE_NAME
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = tempfile.NamedTemporaryFile(dir=directory, prefix=".download-", delete=False)
    try:
        with partial, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {ARCHIVE_NAME}") as bar:
                while chunk := response.read(1 << 20):
                    partial.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != sha256:
            raise DataError(
                f"downloaded {url} but its sha256 is {digest.hexdigest()}, expected {sha256}; "
                f"the file was discarded. Retry, or use a local copy. {HOW_TO_GET_DATA}"
            )
        os.replace(partial.name, target)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"no IMDB data given and downloading {url} failed ({reason}). {HOW_TO_GET_DATA}"
        ) from exc
    finally:
        _remove(partial.name)  # a no-op once the verified file has been renamed into place
    return target


def _remove(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


# -- reading the data ---------------------------------------------------------------------------
def load_imdb(data: str | Path | None = None) -> Imdb:
    """Read the labelled train and test reviews from an archive or an ``aclImdb/`` folder."""
    source = resolve_source(data)
    rows: dict[str, list[tuple[int, int, str]]] = {split: [] for split in SPLITS}
    reader = _read_folder if source.is_dir() else _read_archive
    for split, label, review_id, text in reader(source):
        rows[split].append((label, review_id, text))
    splits = {}
    for split, items in rows.items():
        labels = {label for label, _, _ in items}
        if labels != {0, 1}:
            raise DataError(
                f"{source} holds no {split}/pos and {split}/neg reviews ({len(items)} found); "
                f"is it the IMDB dataset? {HOW_TO_GET_DATA}"
            )
        items.sort(key=lambda item: item[:2])  # neg then pos, by review id: one order for every form
        splits[split] = Split([t for _, _, t in items], [label for label, _, _ in items])
    return Imdb(train=splits["train"], test=splits["test"], source=source)


def _read_archive(path: Path) -> Iterator[tuple[str, int, int, str]]:
    try:
        with tarfile.open(path, mode="r|*") as archive:  # a stream: no seeking, no extraction
            for member in archive:
                match = _REVIEW.search(member.name)
                if match and member.isfile():
                    data = archive.extractfile(member).read()  # type: ignore[union-attr]
                    yield _row(match, data)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot read {path} as a .tar.gz archive: {exc}. {HOW_TO_GET_DATA}") from exc


def _read_folder(path: Path) -> Iterator[tuple[str, int, int, str]]:
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    for split in SPLITS:
        for name in LABELS:
            for file in (root / split / name).glob("*.txt"):
                match = _REVIEW.search(file.as_posix())
                if match:
                    yield _row(match, file.read_bytes())


def _row(match: re.Match[str], data: bytes) -> tuple[str, int, int, str]:
    split, name, review_id, _rating = match.groups()
    return split, LABELS[name], int(review_id), data.decode("utf-8", errors="replace")


# -- splitting ----------------------------------------------------------------------------------
def train_validation_split(train: Split, fraction: float = 0.1, seed: int = 0) -> tuple[Split, Split]:
    """Carve a stratified, seeded validation split out of ``train``; the two are disjoint.

    Each class contributes ``round(fraction * class size)`` reviews, so the validation split has
    the same positive/negative balance as ``train``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, got {fraction}")
    rng = random.Random(seed)
    held_out: list[int] = []
    for label in sorted(set(train.labels)):
        members = [i for i, y in enumerate(train.labels) if y == label]
        held_out += rng.sample(members, round(fraction * len(members)))
    held = set(held_out)
    if not held or len(held) == len(train):
        raise ValueError(f"a {fraction:.0%} validation split of {len(train)} reviews leaves one side empty")
    kept = [i for i in range(len(train)) if i not in held]
    return train.subset(kept), train.subset(sorted(held))
