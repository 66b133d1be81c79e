"""`make bench`: run every benchmark and rewrite benchmarks/results.md from scratch.

    python -m benchmarks [--model-dir artifacts] [--data PATH] [--out benchmarks/results.md] [--only NAME ...]

Each section names the command that produced it, so any figure can be re-measured alone. A
whole run (no --only, no section failed) also rewrites README's Results table from the
headline rows the benchmarks return (benchmarks/headline.py).
The machine is shared and noisy: every speed figure is a ratio against a baseline measured in
the same run, and absolute times are only indicative.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from benchmarks import headline

# (module, title) in report order.
SECTIONS = [
    ("bench_accuracy", "1. Accuracy on the same split"),
    ("bench_featurizer", "2. Featurizer speed"),
    ("bench_server", "3. Inference: ONNX Runtime against torch eager, and the model server"),
    ("bench_payload", "4. Payload sent to the endpoint"),
    ("bench_lambda", "5. Lambda: package size, cold init, warm overhead"),
    ("bench_e2e", "6. End to end on the local stack"),
    ("bench_batch", "7. Batch predictions (python -m serving.batch)"),
    ("bench_explain", "8. Explanations: one review with and without explain"),
    ("bench_image", "9. The serving image's size, from its packages"),
]


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    ) if Path("/proc/cpuinfo").exists() else platform.processor()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    packages = ", ".join(f"{p} {version(p)}" for p in ("torch", "onnxruntime", "scikit-learn", "boto3"))
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {packages}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="artifacts")
    p.add_argument("--data", default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results.md"))
    p.add_argument("--readme", type=Path, default=Path("README.md"), help="whose results table to rewrite")
    p.add_argument("--only", nargs="+", default=None, help="run only these modules (e.g. bench_payload)")
    args = p.parse_args(argv)
    common = ["--model-dir", args.model_dir] + (["--data", args.data] if args.data else [])
    started = datetime.now(UTC)
    parts = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (`python -m benchmarks`) on {started:%Y-%m-%d %H:%M} UTC, "
        f"model in `{args.model_dir}/`.",
        "",
        f"Machine: {machine()}. Shared and noisy: compare the ratios, not the absolute times.",
    ]
    failed, headlines = [], []
    for module, title in SECTIONS:
        if args.only and module not in args.only:
            continue
        print(f"== {title} (python -m benchmarks.{module})", flush=True)
        began = time.perf_counter()
        try:
            section = importlib.import_module(f"benchmarks.{module}").main(common)
            text = section.text
            headlines += section.headlines
        except Exception:  # noqa: BLE001 - a failed section is reported, the others still run
            traceback.print_exc()
            failed.append(module)
            text = "**This section failed in the last run; see the command's output.**"
        parts += ["", f"## {title}", "", f"Command: `python -m benchmarks.{module} --model-dir {args.model_dir}`"
                  f" ({time.perf_counter() - began:.0f} s)", "", text]
    args.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {args.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if args.only or failed:  # README's table is one whole run's
        why = "--only ran part of the benchmarks" if args.only else "a section failed"
        print(f"{args.readme} not rewritten: {why}")
    else:
        headline.rewrite(args.readme, headline.table(headlines, (
            f"Figures from one `make bench` run on {started:%Y-%m-%d} ({machine()}). The machine is shared "
            "and noisy, so each benchmark also prints its ratio against a baseline measured in the same run.")))
        print(f"rewrote the results table of {args.readme}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
