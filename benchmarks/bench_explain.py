"""The cost of ``explain``: the same one-review request with and without it, in one run.

1. The real model server (``python -m serving``) on localhost, one persistent connection: the
   sparse JSON request of each IMDB test review sent twice in turn, without ``explain`` and with
   ``"explain": true`` (every term), so both see the same reviews and the same machine noise:
   p50/p99 of each, the ratio of the p50s, and the response bytes of each.
2. What the Lambda adds: reading the answer (``decode_response``) and naming the terms
   (``name_terms``) against reading the plain answer, in process; and the one-off cost of the
   featurizer's term list, built on the first explained request of an execution environment.

No target is set by the issue; the ratio is reported. Timings are indicative (a shared machine).

    python -m benchmarks.bench_explain [--model-dir artifacts] [--data PATH] [--reviews 1000]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.bench_server import Server, timed
from benchmarks.common import parser, test_sample
from benchmarks.headline import Headline, Section
from sentiment.artifacts import EXPLAIN_FILE, FEATURIZER_FILE
from sentiment.featurizer import Featurizer
from sentiment.wire import decode_response, encode_request, name_terms
from serving.model import Model


def bench_server(model: Model, reviews: list[str], model_dir: Path, rounds: int) -> dict:
    rows = [model.featurizer.transform(r) for r in reviews]
    plain = [encode_request(model.fingerprint, [rows[i % len(rows)]]) for i in range(rounds)]
    explained = [encode_request(model.fingerprint, [rows[i % len(rows)]], explain=True) for i in range(rounds)]
    server = Server(model_dir, workers=1)
    sizes: dict[str, list[int]] = {"plain": [], "explain": []}
    answers: dict[str, list[bytes]] = {"plain": [], "explain": []}
    times = {"plain": np.empty(rounds), "explain": np.empty(rounds)}
    try:
        for body in plain[:50] + explained[:50]:  # warm-up, untimed
            server.post_ok("POST", "/invocations", body)
        for i in range(rounds):  # interleaved: the two see the same reviews and the same noise
            for kind, body in (("plain", plain[i]), ("explain", explained[i])):
                start = time.perf_counter()
                server.conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
                response = server.conn.getresponse()
                data = response.read()
                times[kind][i] = time.perf_counter() - start
                if response.status != 200:
                    raise SystemExit(f"server answered {response.status}: {data[:300]!r}")
                sizes[kind].append(len(data))
                if i < len(reviews):
                    answers[kind].append(data)
    finally:
        server.stop()
    return {"times": times, "sizes": sizes, "answers": answers}


def bench_lambda(model_dir: Path, answers: dict[str, list[bytes]]) -> dict:
    featurizer = Featurizer.load(model_dir / FEATURIZER_FILE)
    start = time.perf_counter()
    vocabulary = featurizer.vocabulary  # built once per execution environment, on the first explanation
    vocabulary_s = time.perf_counter() - start
    plain = timed(lambda body: decode_response(body, 1), answers["plain"])
    explained = timed(lambda body: [name_terms(p["explanation"], vocabulary)
                                    for p in decode_response(body, 1, featurizer.vocab_size)], answers["explain"])
    return {"vocabulary_s": vocabulary_s, "plain": plain, "explain": explained}


def report(model: Model, served: dict, lam: dict) -> tuple[str, float]:
    ms = lambda seconds: f"{seconds * 1e3:.3f}"  # noqa: E731
    plain, explained = served["times"]["plain"], served["times"]["explain"]
    ratio = float(np.median(explained) / np.median(plain))
    size_plain, size_explain = np.median(served["sizes"]["plain"]), np.median(served["sizes"]["explain"])
    lines = [
        f"Model {model.version} ({model.kind}); one server worker on localhost, one persistent connection; "
        f"{len(plain):,} IMDB test reviews, each sent without and with `\"explain\": true`, in turn.",
        "",
        "| measure | without explain | with explain | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| server, one review: p50 (ms) | {ms(np.median(plain))} | {ms(np.median(explained))} | **{ratio:.2f}x** |",
        f"| server, one review: p99 (ms) | {ms(np.percentile(plain, 99))} | {ms(np.percentile(explained, 99))} | "
        f"{np.percentile(explained, 99) / np.percentile(plain, 99):.2f}x |",
        f"| response body, median (bytes) | {size_plain:,.0f} | {size_explain:,.0f} | "
        f"{size_explain / size_plain:.1f}x |",
        f"| Lambda: read the answer (+ name the terms), p50 (ms) | {ms(np.median(lam['plain']))} | "
        f"{ms(np.median(lam['explain']))} | {np.median(lam['explain']) / np.median(lam['plain']):.1f}x |",
        "",
        f"Once per execution environment, on its first explained request: the featurizer's term list, "
        f"{ms(lam['vocabulary_s'])} ms for {model.vocab_size:,} terms.",
        "A request without `explain` is the same request as before this option existed (same body, same graph: "
        "model.onnx; explain.onnx runs only when asked), so its cost is unchanged by the option.",
    ]
    return "\n".join(lines), ratio


def main(argv: list[str] | None = None) -> Section:
    p = parser(__doc__, reviews=1000)
    p.add_argument("--rounds", type=int, default=2000, help="requests of each kind to time")
    args = p.parse_args(argv)
    if not (args.model_dir / EXPLAIN_FILE).exists():
        raise SystemExit(f"no {args.model_dir / EXPLAIN_FILE}: retrain (python -m training --out {args.model_dir})")
    from training.data import load_imdb

    model = Model.load(args.model_dir)
    reviews = test_sample(load_imdb(args.data), args.reviews)
    served = bench_server(model, reviews, args.model_dir, args.rounds)
    lam = bench_lambda(args.model_dir, served["answers"])
    text, ratio = report(model, served, lam)
    print(text)
    plain, explained = (np.median(served["times"][k]) * 1e3 for k in ("plain", "explain"))
    return Section(text, (Headline(
        "`explain` on one review, model server p50 (same reviews, interleaved)",
        f"{explained:.2f} vs {plain:.2f} ms without: **{ratio:.2f}×**; response "
        f"{np.median(served['sizes']['explain']):,.0f} vs {np.median(served['sizes']['plain']):,.0f} bytes",
        "— (reported)", "python -m benchmarks.bench_explain"),))


if __name__ == "__main__":
    main()
