"""Batch predictions: ``python -m serving.batch`` on IMDB test reviews, against scoring them in memory.

Baseline, measured in the same run on the same reviews: featurize + ``Model.predict_sparse`` in
batches of 256, with no reading, parsing or writing (the floor the tool can approach). Each
input format then runs as a real process on a file of those reviews; "scoring" is the rate the
tool reports (model loaded, first record read to last written), "wall" adds process start and
model load. The text run is repeated on four copies of the file: its peak RSS should not grow.

    python -m benchmarks.bench_batch [--model-dir artifacts] [--data PATH] [--reviews 5000]
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import parser, test_sample
from serving.model import Model
from training.data import load_imdb

REPO = Path(__file__).resolve().parents[1]
BATCH = 256


def baseline_rate(model_dir: Path, reviews: list[str]) -> float:
    """Reviews per second for featurize + predict_sparse alone, in this process."""
    model = Model.load(model_dir)
    start = time.perf_counter()
    for i in range(0, len(reviews), BATCH):
        model.predict_sparse([model.featurizer.transform(r) for r in reviews[i : i + BATCH]])
    return len(reviews) / (time.perf_counter() - start)


def write_inputs(directory: Path, reviews: list[str]) -> dict[str, Path]:
    """The reviews as a text file, a CSV and JSON Lines (IMDB reviews hold no newlines)."""
    names = {"text": "reviews.txt", "csv": "reviews.csv", "jsonl": "reviews.jsonl", "text x4": "reviews_x4.txt"}
    paths = {fmt: directory / name for fmt, name in names.items()}
    paths["text"].write_text("".join(r.replace("\n", " ") + "\n" for r in reviews), encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        writer.writerows(enumerate(reviews))
    paths["jsonl"].write_text("".join(json.dumps({"review": r}) + "\n" for r in reviews), encoding="utf-8")
    paths["text x4"].write_text(paths["text"].read_text(encoding="utf-8") * 4, encoding="utf-8")
    return paths


def run_tool(model_dir: Path, source: Path) -> tuple[float, float, float]:
    """(wall seconds, scoring reviews/s the tool reports, peak RSS MiB) of one real run."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.batch", "--model-dir", str(model_dir), "--input", str(source),
         "--output", f"{source}.out.jsonl", "--quiet"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    match = re.search(r"\(([\d,]+) reviews/s\)", stderr)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"serving.batch exited with {proc.returncode}:\n{stderr}")
    return wall, float(match.group(1).replace(",", "")), usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> str:
    args = parser(__doc__, reviews=5000).parse_args(argv)
    reviews = test_sample(load_imdb(args.data), args.reviews)
    base = baseline_rate(args.model_dir, reviews)
    lines = [
        f"{len(reviews):,} IMDB test reviews, batches of {BATCH}, one process on one core; "
        "\"× baseline\" is the tool's scoring rate over in-memory featurize + predict_sparse.",
        "",
        "| run | reviews | wall s | scoring reviews/s | × baseline | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| baseline: in memory, no I/O | {len(reviews):,} | – | {base:,.0f} | 1.00× | – |",
    ]
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        for name, path in write_inputs(Path(tmp), reviews).items():
            wall, rate, rss = run_tool(args.model_dir, path)
            n = len(reviews) * (4 if name == "text x4" else 1)
            lines.append(f"| `serving.batch` {name} | {n:,} | {wall:.1f} | {rate:,.0f} | {rate / base:.2f}× "
                         f"| {rss:.0f} |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
