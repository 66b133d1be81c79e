"""Batch predictions: ``python -m serving.batch`` on IMDB test reviews, against scoring them in memory.

Baseline, measured in the same run on the same reviews: featurize + ``Model.predict_rows`` in
batches of 256, with no reading, parsing or writing, best of three warm rounds (the ceiling the
tool can approach; each tool run is a single cold run, so its ratio errs low). Each
input format then runs as a real process on a file of those reviews; "scoring" is the rate the
tool reports (model loaded, first record read to last written), "wall" adds process start and
model load. The text run is repeated on four copies of the file: its peak RSS should not grow.
Peak RSS is read from /proc (Linux).

    python -m benchmarks.bench_batch [--model-dir artifacts] [--data PATH] [--reviews 5000]
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import parser, test_sample
from benchmarks.headline import Headline, Section, verdict
from serving.model import Model
from training.data import load_imdb

REPO = Path(__file__).resolve().parents[1]
BATCH = 256
# Runs the tool and prints its peak RSS at exit. VmHWM belongs to the process image started by
# exec; the rusage of a child would also count the pages of this (large) process it forked from.
PEAK_RSS = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print(*[l for l in open('/proc/self/status') if l.startswith('VmHWM')], "
    "file=sys.stderr))\n"
    "runpy.run_module('serving.batch', run_name='__main__', alter_sys=True)\n"
)


def baseline_rate(model_dir: Path, reviews: list[str], rounds: int = 3) -> float:
    """Reviews per second for featurize + predict_rows alone, in this process (best of rounds)."""
    model = Model.load(model_dir)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(0, len(reviews), BATCH):
            model.predict_rows([model.featurizer.transform(r) for r in reviews[i : i + BATCH]])
        best = min(best, time.perf_counter() - start)
    return len(reviews) / best


def write_inputs(directory: Path, reviews: list[str]) -> dict[str, Path]:
    """The reviews as a text file, a CSV and JSON Lines (IMDB reviews hold no newlines)."""
    names = {"text": "reviews.txt", "csv": "reviews.csv", "jsonl": "reviews.jsonl",
             "text x4": "reviews_x4.txt"}
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
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, "--model-dir", str(model_dir), "--input", str(source),
         "--output", f"{source}.out.jsonl", "--quiet"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
    )
    wall = time.perf_counter() - start
    rate = re.search(r"\(([\d,]+) reviews/s\)", done.stderr)
    peak = re.search(r"VmHWM:\s+(\d+) kB", done.stderr)
    if done.returncode != 0 or rate is None or peak is None:
        raise RuntimeError(f"serving.batch exited with {done.returncode}:\n{done.stderr}")
    return wall, float(rate.group(1).replace(",", "")), int(peak.group(1)) / 1024


def main(argv: list[str] | None = None) -> Section:
    args = parser(__doc__, reviews=5000).parse_args(argv)
    reviews = test_sample(load_imdb(args.data), args.reviews)
    base = baseline_rate(args.model_dir, reviews)
    lines = [
        f"{len(reviews):,} IMDB test reviews, batches of {BATCH}, one process on one core; "
        "\"× baseline\" is the tool's scoring rate over in-memory featurize + predict_rows.",
        "",
        "| run | reviews | wall s | scoring reviews/s | × baseline | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| baseline: in memory, no I/O | {len(reviews):,} | – | {base:,.0f} | 1.00× | – |",
    ]
    runs: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        for name, path in write_inputs(Path(tmp), reviews).items():
            wall, rate, rss = run_tool(args.model_dir, path)
            runs[name] = rate, rss
            n = len(reviews) * (4 if name == "text x4" else 1)
            lines.append(f"| `serving.batch` {name} | {n:,} | {wall:.1f} | {rate:,.0f} | {rate / base:.2f}× "
                         f"| {rss:.0f} |")
    text = "\n".join(lines)
    print(text)
    (rate, rss), (_, rss_x4) = runs["text"], runs["text x4"]
    return Section(text, (Headline(
        "batch scoring (`python -m serving.batch`, text input)",
        f"{rate:,.0f} reviews/s; peak RSS {rss:.0f} MiB for {len(reviews):,} and {rss_x4:.0f} MiB for "
        f"{4 * len(reviews):,} reviews", f"flat memory (x4 reviews, ≤ 1.2× RSS): {verdict(rss_x4 <= 1.2 * rss)}",
        "python -m benchmarks.bench_batch"),))


if __name__ == "__main__":
    main()
