"""The Lambda's own cost: cold init, and warm time per request with the endpoint call stubbed.

Cold init: fresh interpreters import ``lambda_fn.handler`` and load ``featurizer.json`` (the
trained one from --model-dir, else one fitted now on the IMDB training split); the baseline,
timed the same way, is ``import boto3`` alone, which any Python Lambda that calls AWS pays.
Creating the sagemaker-runtime client (paid by the first request) is shown apart.

Warm: the real handler on the real API Gateway sample event (tests/lambda_fn/events/), one
IMDB test review per request, then 100 per request, with the ``invoke_endpoint`` call stubbed
(the target's measure). A last row stubs only the network: botocore still serializes and
signs the request and parses the answer, which is what the function pays per call on AWS on
top of SageMaker's own latency. JSON log lines go to /dev/null. The baseline is
``Featurizer.transform`` alone on the same reviews.

Hostile requests: for each hostile text of ``bench_featurizer`` (markup, apostrophes, entities,
marks, NFKC expansions), the largest requests that pass the API's limits (1 MiB body, 100 reviews,
50,000 characters each): 50,000-character reviews as many as fit, and 100 reviews as long as fit,
through the handler with the endpoint call stubbed.

Targets: cold init (import + featurizer load) <= 300 ms; featurizer load <= 0.15x and cold init plus
the first request (client creation and one call, the network answered inside botocore) <= 1.5x
``import boto3`` in the same run; warm, endpoint call excluded, <= 1 ms per review; no request
within the limits over 1 s in the handler.

    python -m benchmarks.bench_lambda [--model-dir artifacts] [--data PATH] [--reviews 2000]
"""

from __future__ import annotations

import io
import itertools
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import parser, setup
from benchmarks.headline import Headline, Section, verdict
from sentiment.artifacts import FEATURIZER_FILE

REPO = Path(__file__).resolve().parent.parent
SAMPLE_EVENT = REPO / "tests" / "lambda_fn" / "events" / "rest_api_post_predict.json"
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
       "ENDPOINT_NAME": "bench", "ALLOWED_ORIGINS": "https://app.example.com"}
COLD_RUNS = 7

COLD = """
import json, os, sys, time
os.environ["FEATURIZER_URI"] = sys.argv[1]
started = time.perf_counter()
import lambda_fn.handler
imported = time.perf_counter()
from lambda_fn import endpoint
endpoint.load_featurizer(sys.argv[1])
loaded = time.perf_counter()
client = endpoint.sagemaker_runtime()
created = time.perf_counter()
from benchmarks.bench_lambda import CannedHttp, Context, answer
http = CannedHttp()
http.body = answer(1)
client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", http)
lambda_fn.handler.logger.registered_handler.setStream(open(os.devnull, "w"))
event = json.loads(open(sys.argv[2]).read())
assert lambda_fn.handler.lambda_handler(event, Context)["statusCode"] == 200
done = time.perf_counter()
print(json.dumps({"import": imported - started, "featurizer": loaded - imported, "client": created - loaded,
                  "first_request": done - created}))
"""
BOTO3 = """
import json, time
started = time.perf_counter()
import boto3
print(json.dumps({"boto3": time.perf_counter() - started}))
"""


def zip_bytes() -> int:
    """The Lambda zip as the stack builds it (infra.packaging)."""
    from infra.packaging import zip_folders

    return len(zip_folders(REPO))


def lambda_python() -> str:
    """The Lambda runtime's Python, found as the local stack finds it (make install's .venv-py<version>)."""
    from infra.packaging import image_python  # the Lambda runtime matches the image (a test checks)
    from local_stack.template import runtime_python

    return runtime_python(f"python{image_python(REPO)}")[0]


def cold_init(featurizer_path: Path, python: str) -> dict[str, float]:
    """Median milliseconds of each cold step over fresh interpreters of ``python`` (runs interleaved)."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    samples: dict[str, list[float]] = {}
    for _ in range(COLD_RUNS):
        for script, args in ((COLD, [str(featurizer_path), str(SAMPLE_EVENT)]), (BOTO3, [])):
            out = subprocess.run([python, "-c", script, *args], env=env, cwd=REPO, check=True,
                                 capture_output=True, text=True).stdout
            for name, seconds in json.loads(out.splitlines()[-1]).items():
                samples.setdefault(name, []).append(seconds * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def median_ms(call: Callable[[], Any], runs: int, rounds: int = 3) -> float:
    """Median milliseconds per call, best of a few rounds (the machine is shared)."""
    best = float("inf")
    for _ in range(rounds):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        best = min(best, statistics.median(times))
    return best * 1e3


def answer(count: int) -> bytes:
    prediction = {"label": "positive", "probability_positive": 0.9,
                  "model_version": "20261128T1810Z-3f2a9c1d"}
    return json.dumps({"predictions": [prediction] * count}).encode()


class StubClient:
    """Stands in for the whole ``invoke_endpoint`` call: the endpoint call is excluded."""

    body = b""

    def invoke_endpoint(self, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.body), "InvokedProductionVariant": "AllTraffic"}


class CannedHttp:
    """Answers InvokeEndpoint inside botocore's send step: the SDK's own work is included."""

    body = b""

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        headers = {"Content-Type": "application/json", "Content-Length": str(len(self.body)),
                   "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        return AWSResponse(request.url, 200, headers, _Raw(self.body))


Context = type("Context", (), {
    "function_name": "bench", "memory_limit_in_mb": 1024, "aws_request_id": "r",
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
})


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.read()


def warm(featurizer_path: Path, featurizer: Any, reviews: list[str]) -> dict[str, float]:
    """Median ms per review: transform alone, then the handler with each kind of stub."""
    os.environ.update(ENV, FEATURIZER_URI=str(featurizer_path))
    from lambda_fn import endpoint
    from lambda_fn.handler import lambda_handler, logger

    logger.registered_handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the run)
    context = Context
    template = json.loads(SAMPLE_EVENT.read_text())
    stub, http = StubClient(), CannedHttp()
    real_client = endpoint.sagemaker_runtime()
    real_client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", http)

    def per_review(size: int, client: Any) -> float:
        stub.body = http.body = answer(size)
        body = (lambda b: {"review": b[0]}) if size == 1 else (lambda b: {"reviews": b})
        events = [{**template, "body": json.dumps(body(reviews[i : i + size]))}
                  for i in range(0, len(reviews) - size + 1, size)]
        endpoint.sagemaker_runtime = lambda: client
        assert lambda_handler(events[0], context)["statusCode"] == 200  # and the featurizer is cached
        cycle = itertools.cycle(events)
        runs = max(len(events), 200)  # a batch benchmark has few distinct events: go round them
        return median_ms(lambda: lambda_handler(next(cycle), context), runs) / size

    cycle = itertools.cycle(reviews)
    return {
        "transform": median_ms(lambda: featurizer.transform(next(cycle)), len(reviews)),
        "stubbed_1": per_review(1, stub),
        "stubbed_100": per_review(100, stub),
        "sdk_1": per_review(1, real_client),
    }


def limit_filling_bodies(text: str) -> dict[str, str]:
    """The largest JSON bodies of ``text`` that pass the API's limits: long reviews, and many."""
    from lambda_fn.validation import MAX_BODY_BYTES, MAX_REVIEWS

    def body(review: str, count: int) -> str:
        return json.dumps({"reviews": [review] * count}, ensure_ascii=False)

    def size(review: str, count: int) -> int:
        return len(body(review, count).encode())

    long_count = min(MAX_REVIEWS, int(MAX_BODY_BYTES // (size(text, 1) - size("", 0))))
    chars = int(len(text) * (MAX_BODY_BYTES / MAX_REVIEWS) / (size(text, 1) - size("", 0)))
    while size(text[:chars], MAX_REVIEWS) > MAX_BODY_BYTES:
        chars -= 100
    short = text[:chars]
    bodies = {f"{long_count} x {len(text):,} chars": body(text, long_count),
              f"{MAX_REVIEWS} x {len(short):,} chars": body(short, MAX_REVIEWS)}
    for name, value in bodies.items():
        assert len(value.encode()) <= MAX_BODY_BYTES, name
    return bodies


def hostile(featurizer_path: Path) -> list[tuple[float, str]]:
    """Milliseconds in the handler (endpoint stubbed, best of 3) of each hostile request, slowest first."""
    from benchmarks.bench_featurizer import hostile_texts
    from lambda_fn import endpoint
    from lambda_fn.handler import lambda_handler

    os.environ.update(ENV, FEATURIZER_URI=str(featurizer_path))
    context = Context
    template = json.loads(SAMPLE_EVENT.read_text())
    stub = StubClient()
    endpoint.sagemaker_runtime = lambda: stub
    rows = []
    for name, text in hostile_texts().items():
        for shape, body in limit_filling_bodies(text).items():
            stub.body = answer(len(json.loads(body)["reviews"]))
            event = {**template, "body": body}
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                status = lambda_handler(event, context)["statusCode"]
                best = min(best, time.perf_counter() - start)
            assert status == 200, (name, shape, status)
            rows.append((best * 1e3, f"{name}, {shape}"))
    return sorted(rows, reverse=True)


def report_hostile(rows: list[tuple[float, str]]) -> str:
    slowest, name = rows[0]
    met = "met" if slowest <= 1000 else "**not met**"
    lines = [f"Hostile requests within the limits ({len(rows)}), through the handler, endpoint call stubbed "
             f"(best of 3): slowest **{slowest:.0f} ms** ({name}); target <= 1,000 ms: {met}.", "",
             "| slowest five | ms |", "| --- | ---: |"]
    return "\n".join(lines + [f"| {row} | {ms:.0f} |" for ms, row in rows[:5]])


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(cold: dict[str, float], hot: dict[str, float], n: int, featurizer_source: str, python: str) -> str:
    init = cold["import"] + cold["featurizer"]
    first = init + cold["client"] + cold["first_request"]
    load_ratio, first_ratio = cold["featurizer"] / cold["boto3"], first / cold["boto3"]
    ratio = lambda key: f"{hot[key] / hot['transform']:.2f}×"  # noqa: E731
    return "\n".join([
        f"Lambda cost; {n:,} IMDB test reviews; featurizer: {featurizer_source}.",
        "",
        f"| cold start (median of {COLD_RUNS} fresh interpreters: `{os.path.relpath(python, REPO)}`) | ms | "
        "× import boto3 |",
        "| --- | ---: | ---: |",
        f"| baseline: import boto3 | {cold['boto3']:.0f} | 1.00× |",
        f"| import lambda_fn.handler (botocore + Powertools + ours) | {cold['import']:.0f} | "
        f"{cold['import'] / cold['boto3']:.2f}× |",
        f"| load featurizer.json | {cold['featurizer']:.0f} | {cold['featurizer'] / cold['boto3']:.2f}× |",
        f"| **cold init: import + featurizer load** (target <= 300) | **{init:.0f}** | "
        f"{init / cold['boto3']:.2f}× |",
        f"| sagemaker-runtime client, created by the first request | {cold['client']:.0f} | "
        f"{cold['client'] / cold['boto3']:.2f}× |",
        f"| the first request (network answered inside botocore) | {cold['first_request']:.0f} | "
        f"{cold['first_request'] / cold['boto3']:.2f}× |",
        f"| **cold init + client + first request** | **{first:.0f}** | **{first_ratio:.2f}×** |",
        "",
        f"Targets: featurizer load <= 0.15× import boto3: {load_ratio:.2f}×, {met(load_ratio <= 0.15)}; "
        f"cold init + first request <= 1.5× import boto3: {first_ratio:.2f}×, {met(first_ratio <= 1.5)}.",
        "",
        "With SnapStart (the stack's default) Lambda runs init and creates the client when it publishes "
        "the version (`lambda_fn/snapshot.py`); an environment restored from the snapshot pays the restore "
        f"(AWS's, not measurable here) and then only the first request: {cold['first_request']:.0f} ms "
        f"= {cold['first_request'] / cold['boto3']:.2f}× import boto3.",
        "",
        "| warm, per review (median request, best of 3 rounds) | ms | × transform |",
        "| --- | ---: | ---: |",
        f"| baseline: Featurizer.transform | {hot['transform']:.3f} | 1.00× |",
        f"| **handler, 1 review, endpoint call stubbed** (target <= 1) | **{hot['stubbed_1']:.3f}** | "
        f"{ratio('stubbed_1')} |",
        f"| handler, 100 reviews per request, endpoint call stubbed | {hot['stubbed_100']:.3f} | "
        f"{ratio('stubbed_100')} |",
        f"| handler, 1 review, only the network stubbed (botocore signs and parses) | {hot['sdk_1']:.3f} | "
        f"{ratio('sdk_1')} |",
        "",
        f"Lambda zip: {zip_bytes():,} bytes (limit in tests: 1,000,000).",
    ])


def headlines(cold: dict[str, float], hot: dict[str, float], worst: list[tuple[float, str]]) -> tuple[Headline, ...]:
    init = cold["import"] + cold["featurizer"]
    first = init + cold["client"] + cold["first_request"]
    boto3, command = cold["boto3"], "python -m benchmarks.bench_lambda"
    return (
        Headline("Lambda cold init (import + featurizer load), on the runtime's Python",
                 f"{init:.0f} ms (`import boto3` alone {boto3:.0f} ms in the same run)",
                 f"≤ 300 ms: {verdict(init <= 300)}", command),
        Headline("featurizer load, fresh interpreter", f"{cold['featurizer']:.0f} ms = "
                 f"{cold['featurizer'] / boto3:.2f}× `import boto3`",
                 f"≤ 0.15×: {verdict(cold['featurizer'] / boto3 <= 0.15)}", command),
        Headline("cold init + client + first request (network answered inside botocore)",
                 f"{first:.0f} ms = {first / boto3:.2f}× `import boto3`", f"≤ 1.5×: {verdict(first / boto3 <= 1.5)}",
                 command),
        Headline("what a SnapStart-restored environment pays after the restore: the first request",
                 f"{cold['first_request']:.0f} ms = {cold['first_request'] / boto3:.2f}× `import boto3` "
                 "(the restore itself is AWS's, not measured)", "—", command),
        Headline("Lambda warm overhead, one review, endpoint stubbed", f"{hot['stubbed_1']:.2f} ms",
                 f"≤ 1 ms: {verdict(hot['stubbed_1'] <= 1)}", command),
        Headline("slowest hostile request within the API's limits, in the handler", f"{worst[0][0]:.0f} ms",
                 f"≤ 1,000 ms: {verdict(worst[0][0] <= 1000)}", command),
        Headline("Lambda zip (`lambda_fn/` + `sentiment/`)", f"{zip_bytes():,} bytes",
                 f"< 1 MB: {verdict(zip_bytes() < 1_000_000)}", command),
    )


def main(argv: list[str] | None = None) -> Section:
    args = parser(__doc__).parse_args(argv)
    featurizer, reviews = setup(args)
    trained = args.model_dir / FEATURIZER_FILE
    with tempfile.TemporaryDirectory() as tmp:
        path = trained if trained.exists() else featurizer.save(Path(tmp) / FEATURIZER_FILE)
        source = f"{path} ({featurizer.vocab_size:,} terms)" if trained.exists() else \
            f"fitted on the training split ({featurizer.vocab_size:,} terms)"
        python = lambda_python()
        cold = cold_init(path, python)
        hot = warm(path, featurizer, reviews)
        worst = hostile(path)
    text = report(cold, hot, len(reviews), source, python) + "\n\n" + report_hostile(worst)
    print(text)
    return Section(text, headlines(cold, hot, worst))


if __name__ == "__main__":
    main()
