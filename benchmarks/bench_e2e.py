"""End to end on the local stack: latency percentiles and throughput under concurrent clients.

Starts ``python -m local_stack`` on a free port with the trained model, then for each level of
concurrency runs that many asynchronous HTTP clients (aiohttp) for a fixed time, each posting
IMDB test reviews to ``/predict`` one after another. Every non-200 answer counts as an error.

    python -m benchmarks.bench_e2e [--model-dir artifacts] [--seconds 30] [--clients 1 8 32]
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.common import parser, setup
from tests.support import LocalStack


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1] if self.latencies_ms else 0.0

    @property
    def throughput(self) -> float:
        return (len(self.latencies_ms) + self.errors) / self.seconds


async def _client(session: aiohttp.ClientSession, url: str, reviews, deadline: float, result: LoadResult) -> None:
    while time.perf_counter() < deadline:
        review = next(reviews)
        start = time.perf_counter()
        try:
            async with session.post(url, json={"review": review}) as response:
                await response.read()
                ok = response.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            result.latencies_ms.append((time.perf_counter() - start) * 1e3)
        else:
            result.errors += 1


async def load(url: str, reviews: list[str], clients: int, seconds: float) -> LoadResult:
    result = LoadResult(clients, seconds)
    cycle = itertools.cycle(reviews)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _client(session, url, cycle, time.perf_counter() + 1.0, LoadResult(1, 1.0))  # warm-up
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(_client(session, url, cycle, deadline, result) for _ in range(clients)))
        result.seconds = time.perf_counter() - start
    return result


def report(results: list[LoadResult]) -> str:
    lines = [
        "| concurrent clients | requests | p50 ms | p95 ms | p99 ms | requests/s | errors |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.clients} | {len(r.latencies_ms) + r.errors:,} | {r.percentile(50):.1f} | {r.percentile(95):.1f} "
            f"| {r.percentile(99):.1f} | {r.throughput:.0f} | {r.errors} |"
        )
    return "\n".join(lines)


def plot(results: list[LoadResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.hist(r.latencies_ms, bins=80, histtype="step", label=f"{r.clients} clients", density=True)
    ax.set(xlabel="latency (ms)", ylabel="density", title="Local stack: POST /predict latency", xscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> str:
    p = parser(__doc__, reviews=500)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--plot", type=Path, default=Path("benchmarks/latency.png"))
    args = p.parse_args(argv)
    _, reviews = setup(args)
    with LocalStack(args.model_dir) as stack:
        url = f"{stack.url}/predict"
        results = [asyncio.run(load(url, reviews, n, args.seconds)) for n in args.clients]
    plot(results, args.plot)
    text = report(results) + f"\n\n![latency distribution]({args.plot.name})"
    print(text)
    return text


if __name__ == "__main__":
    main()
