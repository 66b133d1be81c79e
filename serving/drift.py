"""``python -m serving.drift``: compare a set of reviews, or the API's logged metrics, with the model's baseline.

    python -m serving.drift --model-dir artifacts --input reviews.jsonl [--plot drift.png] [--report drift.json]
    python -m serving.drift --model-dir artifacts --input lambda-logs.txt --format logs [--model-version V]

The baseline is what training recorded on the validation split (metrics.json's ``baseline``,
``sentiment.drift``): each review's length in tokens, its out-of-vocabulary rate and the model's
probability. The input is measured the same way:

- reviews (``--format`` text, csv or jsonl, as ``serving.batch`` reads them, from a path, an
  ``s3://`` URI or ``-``): featurized and scored here with the model folder's own model;
- ``logs``: the function's log lines exported to a file (CloudWatch Logs export, ``aws logs
  filter-log-events`` output, or ``sam logs``): every line holding one of the function's drift
  metric records (EMF: ``ReviewLength``, ``OovRate``, ``ProbabilityPositive``) counts, the rest is
  ignored; ``--model-version`` keeps one model's. These records hold numbers only, no text.
- ``capture``: SageMaker data capture files (instance mode, JSON Lines, concatenated), whose
  requests are the Lambda's sparse counts, not text: only the probabilities the endpoint
  answered are compared (length and OOV rate cannot be told from in-vocabulary counts).

For each measure: the population stability index of its histogram against the baseline's and a
verdict (stable under 0.1, moderate to 0.25, shifted above), the means side by side, and the
predicted-positive rate. ``--plot`` draws the three histograms, baseline against input, into a PNG;
``--report`` writes the figures as JSON. Exit codes: 0 no measure shifted, 3 at least one shifted,
2 unusable arguments, model folder or input.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from sentiment import drift
from sentiment.artifacts import METRICS_FILE, ArtifactError
from sentiment.wire import THRESHOLD
from serving.batch import FORMATS, Invalid, UsageError, infer_format, open_input, records
from serving.model import Model

EXIT_OK, EXIT_USAGE, EXIT_SHIFTED = 0, 2, 3
LOG_METRICS = {"ReviewLength": "length", "OovRate": "oov_rate", "ProbabilityPositive": "probability"}
FORMAT_CHOICES = (*FORMATS, "logs", "capture")
CHUNK = 256


class Measures(NamedTuple):
    """The three measures of every review of a set, in order."""

    length: list[float]
    oov_rate: list[float]
    probability: list[float]

    def __len__(self) -> int:
        return len(self.probability)


def read_baseline(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / METRICS_FILE
    try:
        baseline = json.loads(path.read_text(encoding="utf-8"))["baseline"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path} holds no drift baseline ({exc!r}); retrain with this version of "
                            "training to record one") from None
    if not isinstance(baseline, dict) or not all(name in baseline for name in drift.MEASURES):
        raise ArtifactError(f"{path}: its baseline lacks {', '.join(drift.MEASURES)}; retrain")
    return baseline


def measure_reviews(texts: Iterable[str], model: Model) -> Measures:
    """Featurize and score reviews ``CHUNK`` at a time: each one's length, OOV rate and probability."""
    out = Measures([], [], [])
    texts = iter(texts)
    while chunk := [t for _, t in zip(range(CHUNK), texts, strict=False)]:
        rows = []
        for text in chunk:
            row, tokens, oov = model.featurizer.transform_measured(text)
            rows.append(row)
            out.length.append(tokens)
            out.oov_rate.append(drift.oov_rate(tokens, oov))
        out.probability.extend(model.predict_rows(rows).tolist())
    return out


def measure_logs(lines: Iterable[str], model_version: str | None = None) -> Measures:
    """The drift metric records in exported log lines (EMF JSON, possibly after a timestamp or tab)."""
    out = Measures([], [], [])
    for line in lines:
        start = line.find("{")
        if start < 0 or "ReviewLength" not in line:
            continue
        try:
            doc = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("message"), str) and "ReviewLength" in doc["message"]:
            try:  # an export that wraps each line: {"timestamp": ..., "message": "<the EMF line>"}
                doc = json.loads(doc["message"])
            except ValueError:
                continue
        if not isinstance(doc, dict) or "_aws" not in doc or not all(k in doc for k in LOG_METRICS):
            continue
        if model_version is not None and doc.get("ModelVersion") != model_version:
            continue
        values = [doc[k] if isinstance(doc[k], list) else [doc[k]] for k in LOG_METRICS]
        if len({len(v) for v in values}) != 1:
            continue  # a record whose arrays disagree is not the function's
        lengths, oov_percents, probabilities = values
        out.length.extend(float(v) for v in lengths)
        out.oov_rate.extend(float(v) / 100 for v in oov_percents)
        out.probability.extend(float(v) for v in probabilities)
    return out


def measure_capture(lines: Iterable[str]) -> Measures:
    """The probabilities in SageMaker data capture records (``captureData.endpointOutput``)."""
    import base64

    out = Measures([], [], [])
    for line in lines:
        try:
            output = json.loads(line)["captureData"]["endpointOutput"]
            data = output["data"]
            if output.get("encoding") == "BASE64":
                data = base64.b64decode(data)
            predictions = json.loads(data)["predictions"]
            out.probability.extend(float(p["probability_positive"]) for p in predictions)
        except (ValueError, KeyError, TypeError):
            continue  # not a capture record of this server's answers
    return out


def compare(baseline: dict[str, Any], current: Measures) -> dict[str, Any]:
    """PSI, verdict and means of each measure, and the predicted-positive rates; ``shifted`` overall.

    A measure the input does not hold (data capture: length and OOV rate) is left out."""
    if not len(current):
        raise UsageError("the input holds no reviews or drift records to compare")
    result: dict[str, Any] = {"n": len(current), "baseline_n": baseline.get("n"), "measures": {}}
    for name in drift.MEASURES:
        base = baseline[name]
        edges = drift.edges_of(base)
        values = getattr(current, name)
        if not values:
            continue
        counts = drift.histogram(values, edges)
        value = drift.psi(base["counts"], counts)
        result["measures"][name] = {
            "psi": round(value, 4), "verdict": drift.verdict(value),
            "mean": sum(values) / len(values), "baseline_mean": base["mean"],
            "counts": counts, "baseline_counts": base["counts"], "edges": base["edges"],
        }
    positive = sum(p >= THRESHOLD for p in current.probability) / len(current)
    result["positive_rate"], result["baseline_positive_rate"] = positive, baseline.get("positive_rate")
    result["shifted"] = [n for n, m in result["measures"].items() if m["verdict"] == "shifted"]
    return result


def plot(result: dict[str, Any], path: str | Path, title: str) -> Path:
    """The three histograms, baseline against the input (shares of reviews), with each PSI and verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"length": "review length (tokens)", "oov_rate": "out-of-vocabulary rate",
             "probability": "probability of positive"}
    shown = len(result["measures"])
    fig, axes = plt.subplots(1, shown, figsize=(4.7 * shown, 4), constrained_layout=True, squeeze=False)
    for ax, (name, m) in zip(axes[0], result["measures"].items(), strict=True):
        labels = _bin_labels(m["edges"], percent=name == "oov_rate")
        x = range(len(labels))
        for counts, label, offset in ((m["baseline_counts"], "baseline (validation)", -0.2),
                                      (m["counts"], "input", 0.2)):
            total = sum(counts) or 1
            ax.bar([i + offset for i in x], [c / total for c in counts], width=0.4, label=label)
        ax.set_xticks(list(x), labels, rotation=60, fontsize=7)
        ax.set(title=f"{names[name]}\nPSI {m['psi']:.3f}: {m['verdict']}", ylabel="share of reviews")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _bin_labels(edges: list[float | None], percent: bool) -> list[str]:
    def show(v: float | None) -> str:
        if v is None:
            return "∞"
        return f"{v * 100:g}%" if percent else f"{v:g}"

    return [f"{show(a)}–{show(b)}" for a, b in zip(edges, edges[1:], strict=False)]


def summary_lines(result: dict[str, Any]) -> Iterator[str]:
    yield f"{result['n']:,} reviews against the baseline of {result['baseline_n']:,} validation reviews"
    for name, m in result["measures"].items():
        yield (f"  {name:<12} PSI {m['psi']:7.4f}  {m['verdict']:<9} mean {_fmt(name, m['mean'])} "
               f"(baseline {_fmt(name, m['baseline_mean'])})")
    yield (f"  predicted positive {result['positive_rate']:.1%} (baseline {result['baseline_positive_rate']:.1%})")
    yield "verdict: " + (f"SHIFTED ({', '.join(result['shifted'])})" if result["shifted"] else "no measure shifted")


def _fmt(name: str, value: float) -> str:
    return f"{value:.2%}" if name == "oov_rate" else f"{value:.3f}" if name == "probability" else f"{value:.0f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m serving.drift", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="the training output: its model and metrics.json's baseline")
    p.add_argument("--input", required=True, help="reviews or exported logs: a path, s3://bucket/key, or - (stdin)")
    p.add_argument("--format", choices=FORMAT_CHOICES,
                   help="text, csv, jsonl (reviews; default from the extension), logs (the function's metrics) "
                        "or capture (SageMaker data capture: probabilities only)")
    p.add_argument("--text-column", help="CSV column or JSON field holding the review (default: 'review', else 'text')")
    p.add_argument("--model-version", help="logs: only the records of this model version")
    p.add_argument("--plot", type=Path, help="write the histograms to this PNG")
    p.add_argument("--report", type=Path, help="write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.format is None:
        try:
            args.format = infer_format(args.input)
        except UsageError as exc:
            p.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        baseline = read_baseline(args.model_dir)
        s3_client = None
        if args.input.startswith("s3://"):
            import boto3

            s3_client = boto3.client("s3")
        source, _ = open_input(args.input, s3_client)
        with source:
            if args.format in ("logs", "capture"):
                text = io.TextIOWrapper(io.BufferedReader(source), encoding="utf-8", errors="replace")
                current = measure_logs(text, args.model_version) if args.format == "logs" else measure_capture(text)
            else:
                model = Model.load(args.model_dir)
                items = records(source, args.format, args.text_column)
                current = measure_reviews((r for r in items if not isinstance(r, Invalid)), model)
        result = compare(baseline, current)
    except (UsageError, ArtifactError) as exc:
        print(f"serving.drift: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result["input"] = args.input
    for line in summary_lines(result):
        print(line)
    if args.plot:
        plot(result, args.plot, f"Drift: {args.input} against the validation baseline ({args.model_dir})")
        print(f"plot: {args.plot}")
    if args.report:
        args.report.write_text(json.dumps(result, indent=2, default=_jsonable) + "\n")
        print(f"report: {args.report}")
    return EXIT_SHIFTED if result["shifted"] else EXIT_OK


def _jsonable(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


if __name__ == "__main__":
    sys.exit(main())
