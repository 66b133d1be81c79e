"""What every benchmark shares: its command line, the IMDB test sample and the featurizer."""

from __future__ import annotations

import argparse
from pathlib import Path

from sentiment.artifacts import FEATURIZER_FILE
from sentiment.featurizer import Featurizer
from training.data import Imdb, load_imdb


def parser(doc: str | None, reviews: int = 2000) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, default=Path("artifacts"), help="training output (default: artifacts)")
    p.add_argument("--data", default=None, help="IMDB data (default: $IMDB_DATA or the download cache)")
    p.add_argument("--reviews", type=int, default=reviews, help="test reviews to sample")
    return p


def test_sample(imdb: Imdb, n: int) -> list[str]:
    """``n`` test reviews spread evenly over the split (both labels, every length)."""
    step = max(1, len(imdb.test.texts) // n)
    return imdb.test.texts[::step][:n]


def load_featurizer(model_dir: Path, imdb: Imdb) -> Featurizer:
    """The trained featurizer, or one fitted now on the training split when there is none yet."""
    path = model_dir / FEATURIZER_FILE
    return Featurizer.load(path) if path.exists() else Featurizer().fit(imdb.train.texts)


def setup(args: argparse.Namespace) -> tuple[Featurizer, list[str]]:
    imdb = load_imdb(args.data)
    return load_featurizer(args.model_dir, imdb), test_sample(imdb, args.reviews)
