"""Model server speed: latency for one review, throughput for batches of 64, ONNX Runtime vs torch.

1. The real server (``python -m serving``, gunicorn) on localhost, driven over one persistent
   HTTP connection with the sparse JSON the Lambda sends: p50/p99 latency for one review and
   reviews per second for batches of 64. The baseline, measured in the same run, is the same
   parsing and scoring in-process (``serving.inputs.parse_json``, then ``Model.predict``), so the
   difference is the HTTP + server cost.
2. The trained model on ONNX Runtime against the same weights in torch eager mode, at batch 1,
   64 and 256, both on one thread (what a server worker uses) and fed the same sparse batch
   (``indices``, ``counts``, ``offsets``, built once, outside the timing). The torch model is
   the checkpoint training writes beside model.onnx (``model.pt``: the training package's own
   forward, the function that was exported, with its weights), checked to be the same model
   version and to give the same outputs.

Targets: ONNX Runtime >= 1.5x faster than torch eager at batch 1; server p50 < 2 ms for one review.

    python -m benchmarks.bench_server [--model-dir artifacts] [--data PATH] [--requests 2000]
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import parser, test_sample
from benchmarks.headline import Headline, Section, verdict
from sentiment.artifacts import MODEL_FILE
from sentiment.batch import Batch
from sentiment.wire import encode_request
from serving.inputs import parse_json
from serving.model import Model

REPO = Path(__file__).resolve().parent.parent
BATCH = 64
RUNTIME_BATCHES = (1, 64, 256)


# -- the server -----------------------------------------------------------------------------------
class Server:
    """``python -m serving`` on a free port; a persistent connection to it."""

    def __init__(self, model_dir: Path, workers: int):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--model-dir", str(model_dir), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(workers), "--log-level", "warning"],
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if self.post_ok("GET", "/ping", None):
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the model server did not start; see its log above")
            time.sleep(0.1)

    def post_ok(self, method: str, path: str, body: bytes | None) -> bool:
        headers = {"Content-Type": "application/json"} if body else {}
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200 and path != "/ping":
            raise SystemExit(f"server answered {resp.status}: {data[:300]!r}")
        return resp.status == 200

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def timed(fn: Callable[[Any], object], args: Sequence[Any], warmup: int = 50) -> np.ndarray:
    """Seconds per call of ``fn(arg)`` for each of ``args``, after ``warmup`` untimed calls."""
    for arg in args[:warmup]:
        fn(arg)
    times = np.empty(len(args))
    for i, arg in enumerate(args):
        start = time.perf_counter()
        fn(arg)
        times[i] = time.perf_counter() - start
    return times


def bench_server(model: Model, reviews: list[str], model_dir: Path, requests: int, workers: int) -> dict:
    rows = [model.featurizer.transform(r) for r in reviews]
    singles = [encode_request(model.fingerprint, [rows[i % len(rows)]]) for i in range(requests)]
    batches = [encode_request(model.fingerprint, [rows[(i * BATCH + j) % len(rows)] for j in range(BATCH)])
               for i in range(max(20, requests // BATCH))]
    # The baseline: what the server does with a request body, in this process, without HTTP.
    in_process = timed(lambda b: model.predict(parse_json(b, "utf-8", model)), singles[:1000])
    server = Server(model_dir, workers)
    try:
        ping = timed(lambda _: server.post_ok("GET", "/ping", None), range(requests))
        one = timed(lambda b: server.post_ok("POST", "/invocations", b), singles)
        many = timed(lambda b: server.post_ok("POST", "/invocations", b), batches, warmup=5)
    finally:
        server.stop()
    return {"ping": ping, "one": one, "batch": many, "in_process": in_process, "batches": len(batches)}


# -- ONNX Runtime against torch eager --------------------------------------------------------------
def torch_model(model_dir: Path, model: Model):
    """The trained network in torch eager mode: the checkpoint training wrote beside model.onnx."""
    from sentiment.artifacts import CHECKPOINT_FILE
    from training.checkpoint import load_checkpoint
    from training.model import ProbabilityModel

    path = model_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise SystemExit(f"no {path}: training writes it beside model.onnx; retrain "
                         f"(python -m training --out {model_dir})")
    checkpoint = load_checkpoint(path)
    if checkpoint.model_version != model.version:
        raise SystemExit(f"{path} holds model {checkpoint.model_version}, {model_dir / MODEL_FILE} holds "
                         f"{model.version}: retrain (python -m training --out {model_dir})")
    return ProbabilityModel(checkpoint.model).eval()


def bench_runtimes(model_dir: Path, model: Model, reviews: list[str],
                   rounds: int) -> dict[int, tuple[float, float]]:
    """Median seconds per call (onnxruntime, torch eager) for each batch size, on the same inputs."""
    import torch

    torch.set_num_threads(1)  # as the ONNX Runtime session: one thread per server worker
    net = torch_model(model_dir, model)
    rows = model.featurizer.transform_many(reviews[: max(RUNTIME_BATCHES)])
    results = {}
    with torch.inference_mode():
        for size in RUNTIME_BATCHES:
            batch = Batch.from_rows(rows[:size])
            tensors = [torch.from_numpy(a) for a in (batch.indices, batch.counts, batch.offsets)]
            ort_out, torch_out = model.predict(batch), net(*tensors).numpy()
            gap = np.abs(ort_out - torch_out).max()
            if gap > 1e-5:
                raise SystemExit(f"torch and ONNX Runtime disagree by up to {gap:.2e} at batch {size}")
            n = rounds if size == 1 else max(20, rounds // size * 4)
            ort_s = np.median(timed(lambda _, batch=batch: model.predict(batch), range(n), warmup=20))
            torch_s = np.median(timed(lambda _, tensors=tensors: net(*tensors), range(n), warmup=20))
            results[size] = (ort_s, torch_s)
    return results


# -- report -------------------------------------------------------------------------------------------
def report(model: Model, s: dict, runtimes: dict[int, tuple[float, float]], workers: int) -> str:
    ms = lambda seconds: f"{seconds * 1e3:.3f}"  # noqa: E731
    one, batch, base = s["one"], s["batch"], s["in_process"]
    p50, p99 = np.percentile(one, 50), np.percentile(one, 99)
    lines = [
        f"Model {model.version} ({model.kind}, vocabulary {model.vocab_size:,}); server: {workers} worker(s), "
        f"localhost, one persistent connection, sparse JSON.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| one review: server p50 / p99 (ms), {len(one):,} requests | {ms(p50)} / {ms(p99)} |",
        f"| one review: in-process parse + score p50 (ms), the baseline | {ms(np.median(base))} |",
        f"| one review: HTTP + server overhead p50 (ms) | {ms(p50 - np.median(base))} |",
        f"| GET /ping p50 (ms): the HTTP + gunicorn + Flask floor | {ms(np.median(s['ping']))} |",
        f"| batch of {BATCH}: server p50 (ms), {s['batches']} requests | {ms(np.median(batch))} |",
        f"| batch of {BATCH}: throughput (reviews/s) | {BATCH * len(batch) / batch.sum():,.0f} |",
        "",
        "ONNX Runtime against torch eager: the same sparse batch of IMDB test reviews, same weights",
        "and forward, one thread each, median per call:",
        "",
        "| batch | onnxruntime (ms) | torch eager (ms) | onnxruntime per review (ms) | speed-up |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {b} | {ms(o)} | {ms(t)} | {o / b * 1e3:.4f} | {t / o:.2f}x |"
              for b, (o, t) in runtimes.items()]
    speedup = runtimes[1][1] / runtimes[1][0]
    lines += [
        "",
        f"target: onnxruntime >= 1.5x torch eager at batch 1: {speedup:.2f}x -> "
        f"{'met' if speedup >= 1.5 else 'MISSED'}",
        f"target: server p50 < 2 ms for one review: {ms(p50)} ms -> {'met' if p50 < 2e-3 else 'MISSED'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Section:
    p = parser(__doc__, reviews=1000)
    p.add_argument("--requests", type=int, default=2000, help="one-review requests to time")
    p.add_argument("--workers", type=int, default=1, help="server workers (default 1: one core serves, one drives)")
    args = p.parse_args(argv)
    if not (args.model_dir / MODEL_FILE).exists():
        raise SystemExit(f"no {args.model_dir / MODEL_FILE}: train first (python -m training --out {args.model_dir})")
    from training.data import load_imdb

    model = Model.load(args.model_dir)
    reviews = test_sample(load_imdb(args.data), args.reviews)
    served = bench_server(model, reviews, args.model_dir, args.requests, args.workers)
    runtimes = bench_runtimes(args.model_dir, model, reviews, args.requests)
    text = report(model, served, runtimes, args.workers)
    print(text)
    onnx, torch = runtimes[1]
    p50, p99 = np.percentile(served["one"], 50) * 1e3, np.percentile(served["one"], 99) * 1e3
    command = "python -m benchmarks.bench_server"
    return Section(text, (
        Headline("ONNX Runtime vs torch eager, batch 1", f"{onnx * 1e3:.3f} vs {torch * 1e3:.3f} ms: "
                 f"**{torch / onnx:.1f}×**", f"≥ 1.5×: {verdict(torch / onnx >= 1.5)}", command),
        Headline("model server, one review over HTTP", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                 f"p50 < 2 ms: {verdict(p50 < 2)}", command),
    ))


if __name__ == "__main__":
    main()
