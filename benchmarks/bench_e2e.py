"""End to end on the template-driven local stack: one execution environment against environments on demand.

Synthesizes the stack with the trained model (``infra.create_app``, cdk.json's context) with its
limits lifted for a load test (stage throttling far above the load, no firewall: a benchmark from
one address is exactly what they refuse), then starts ``python -m local_stack --template ...``
twice: with ``--concurrency 1`` (one execution environment: every request waits for it, as the
local gateway used to run the handler) and with environments created on demand up to the
function's reserved concurrency. Each run has N asynchronous HTTP clients (aiohttp) posting IMDB
test reviews to ``/prod/predict`` one after another for a fixed time, after a warm-up that also
pays the cold starts. Every non-200 answer counts as an error. The ratio of requests per second,
on demand over one environment, is the figure (target: >= 2x at 8 clients). The CPU each request
costs, by process, says what bounds it: every process shares the machine's cores, the benchmark's
clients included, so no configuration passes cores / (CPU per request).

    python -m benchmarks.bench_e2e [--model-dir artifacts] [--seconds 30] [--clients 8] [--workers 2]
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.common import parser, setup
from benchmarks.headline import Headline, Section, verdict
from tests.support import LocalStack, synthesize

# A load test from one address: lift what would (rightly) refuse it in AWS.
LOAD_TEST_CONTEXT = {"api_rate_limit": 1_000_000, "api_burst_limit": 1_000_000, "waf_enabled": "false"}
CONFIGURATIONS = {"one environment": ("--concurrency", "1"), "on demand": ()}


@dataclass
class LoadResult:
    name: str
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    environments: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds during the run, by process kind

    def percentile(self, q: int) -> float:
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


async def load(name: str, url: str, reviews: list[str], clients: int, seconds: float,
               root: int | None = None) -> LoadResult:
    result = LoadResult(name, clients, seconds)
    cycle = itertools.cycle(reviews)
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm_up = LoadResult(name, clients, 2.0)  # every environment's cold start happens here
        await asyncio.gather(*(_client(session, url, cycle, time.perf_counter() + 2.0, warm_up)
                               for _ in range(clients)))
        before = cpu_by_kind(root) if root else {}
        mine = os.times()
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(_client(session, url, cycle, deadline, result) for _ in range(clients)))
        result.seconds = time.perf_counter() - start
        after, now = (cpu_by_kind(root) if root else {}), os.times()
        result.cpu_s = {kind: after[kind] - before.get(kind, 0.0) for kind in after}
        result.cpu_s["benchmark clients"] = now.user + now.system - mine.user - mine.system
    return result


def _processes(root: int) -> list[int]:
    """``root`` and every process below it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_by_kind(root: int) -> dict[str, float]:
    """CPU seconds used so far by the stack (its gateway), its environments and its model server."""
    totals: dict[str, float] = {}
    for pid in _processes(root):
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
            command = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        kind = ("API Gateway + website" if pid == root else "execution environments" if b"bootstrap.py" in command
                else "model server" if b"serving" in command else "other")
        totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return totals


def report(results: list[LoadResult]) -> str:
    lines = [
        "| execution environments | concurrent clients | requests | p50 ms | p95 ms | p99 ms | requests/s | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.name} ({r.environments} created) | {r.clients} | {len(r.latencies_ms) + r.errors:,} "
            f"| {r.percentile(50):.1f} | {r.percentile(95):.1f} | {r.percentile(99):.1f} | {r.throughput:.0f} "
            f"| {r.errors} |")
    by_clients: dict[int, dict[str, LoadResult]] = {}
    for r in results:
        by_clients.setdefault(r.clients, {})[r.name] = r
    for clients, runs in sorted(by_clients.items()):
        one, many = runs.get("one environment"), runs.get("on demand")
        if one and many and one.throughput:
            ratio = many.throughput / one.throughput
            verdict = "met" if ratio >= 2 and not (one.errors or many.errors) else "not met"
            lines.append(f"\n{clients} clients: on demand / one environment = {ratio:.2f}x requests/s "
                         f"(target >= 2x with 0 errors: {verdict})")
    lines.append("\nCPU per request (ms), where the time goes:\n")
    kinds = sorted({kind for r in results for kind in r.cpu_s})
    lines.append("| run | " + " | ".join(kinds) + " | total | cores' ceiling (requests/s) |")
    lines.append("| --- |" + " ---: |" * (len(kinds) + 2))
    cores = os.cpu_count() or 1
    for r in results:
        done = max(1, len(r.latencies_ms) + r.errors)
        per = [r.cpu_s.get(kind, 0.0) / done * 1000 for kind in kinds]
        total = sum(per) or float("nan")
        cells = " | ".join(f"{v:.2f}" for v in per)
        lines.append(f"| {r.name}, {r.clients} clients | {cells} | {total:.2f} | {cores * 1000 / total:.0f} |")
    return "\n".join(lines)


def plot(results: list[LoadResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.hist(r.latencies_ms, bins=80, histtype="step", label=f"{r.name}, {r.clients} clients", density=True)
    ax.set(xlabel="latency (ms)", ylabel="density", title="Local stack: POST /prod/predict latency", xscale="log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def environments_created(log: str) -> int:
    return log.count("INIT_START")


def headline(results: list[LoadResult]) -> tuple[Headline, ...]:
    runs = {(r.name, r.clients): r for r in results}
    clients = max(r.clients for r in results)
    one, many = runs.get(("one environment", clients)), runs.get(("on demand", clients))
    if not (one and many and one.throughput):
        return ()
    ratio = many.throughput / one.throughput
    done = max(1, len(many.latencies_ms) + many.errors)
    cpu_ms = sum(many.cpu_s.values()) / done * 1000
    return (Headline(
        f"local stack end to end, {clients} clients: one execution environment / environments on demand",
        f"{one.throughput:.0f} / {many.throughput:.0f} requests/s (**{ratio:.2f}×**), p50 {one.percentile(50):.0f} / "
        f"{many.percentile(50):.0f} ms, p99 {one.percentile(99):.0f} / {many.percentile(99):.0f} ms, "
        f"{one.errors + many.errors} errors; {cpu_ms:.1f} ms of CPU per request on {os.cpu_count()} shared cores "
        f"(a ceiling of {(os.cpu_count() or 1) * 1000 / cpu_ms:.0f} requests/s)",
        f"≥ 2×, 0 errors: {verdict(ratio >= 2 and not (one.errors or many.errors))}",
        "python -m benchmarks.bench_e2e"),)


def main(argv: list[str] | None = None) -> Section:
    p = parser(__doc__, reviews=500)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--clients", type=int, nargs="+", default=[8])
    p.add_argument("--workers", type=int, default=2, help="model server workers, the same in both runs (default: 2)")
    p.add_argument("--plot", type=Path, default=Path("benchmarks/latency.png"))
    args = p.parse_args(argv)
    _, reviews = setup(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_e2e-") as scratch:
        template = synthesize(args.model_dir.resolve(), Path(scratch) / "cdk.out", **LOAD_TEST_CONTEXT)
        for name, flags in CONFIGURATIONS.items():
            with LocalStack(template, log_path=Path(scratch) / f"{len(results)}.log",
                            extra_args=(*flags, "--server-workers", str(args.workers))) as stack:
                url = f"{stack.api_url}/predict"
                for clients in args.clients:
                    assert stack.process is not None
                    result = asyncio.run(load(name, url, reviews, clients, args.seconds, stack.process.pid))
                    result.environments = environments_created(stack.log())
                    results.append(result)
    plot(results, args.plot)
    text = report(results) + f"\n\n![latency distribution]({args.plot.name})"
    print(text)
    return Section(text, headline(results))


if __name__ == "__main__":
    main()
