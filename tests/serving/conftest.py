"""Fixtures for the model server: a tiny hand-built model and a real server process.

The model is a logistic regression written by ``tests.support.write_model`` with this file's
weights, so every expected probability is known exactly: sigmoid(counts · WEIGHTS + BIAS).
"""

from __future__ import annotations

import http.client
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sentiment.featurizer import Featurizer
from tests.support import REPO_ROOT, free_port, wait_until_answers, write_model

VOCAB = ["awful", "bad", "boring", "film", "good", "great", "plot"]
WEIGHTS = {"awful": -3.0, "bad": -2.0, "boring": -1.0, "good": 2.0, "great": 3.0}
BIAS = 0.25
MODEL_VERSION = "20261128T1810Z-0badc0de"


def write_artifacts(directory: Path, **options) -> Path:
    """A featurizer.json and a matching model.onnx in ``directory`` (``write_model``'s options:
    ``metadata`` overrides props, ``batch_dim``, ``spin``, ``dense``)."""
    metadata = {"model_version": MODEL_VERSION, "model_kind": "logistic", **options.pop("metadata", {})}
    return write_model(directory, weights=WEIGHTS, vocabulary=VOCAB, bias=BIAS, metadata=metadata, **options)


def expected_probability(counts: dict[str, float]) -> float:
    z = sum(WEIGHTS.get(term, 0.0) * c for term, c in counts.items()) + BIAS
    return 1 / (1 + math.exp(-z))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    write_artifacts(directory)
    return directory


@pytest.fixture
def dense_model_dir(tmp_path) -> Path:
    """Artifacts whose model.onnx has the contract before sparse input (dense ``counts``)."""
    return write_artifacts(tmp_path, dense=True)


@pytest.fixture(scope="session")
def featurizer(model_dir) -> Featurizer:
    return Featurizer.load(model_dir / "featurizer.json")


class Client:
    """A tiny HTTP client for one server: a fresh connection per call keeps tests independent."""

    def __init__(self, port: int, timeout: float = 30):
        self.port, self.timeout = port, timeout

    def with_timeout(self, timeout: float) -> "Client":
        """The same server, with another socket timeout (a liveness bound on each answer)."""
        return Client(self.port, timeout)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body.encode() if isinstance(body, str) else body,
                         headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(data) if data else {}
        finally:
            conn.close()

    def invoke(self, body: bytes | str, content_type: str | None, **headers: str) -> tuple[int, dict, dict]:
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.request("POST", "/invocations", body, headers)


class Server:
    """``python -m serving`` as a subprocess on a free port, its stderr kept in a file."""

    def __init__(self, model_dir: Path, log_path: Path, *extra: str):
        self.port = free_port()
        self.log_path = log_path
        self._log_file = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--model-dir", str(model_dir), "--host", "127.0.0.1",
             "--port", str(self.port), *extra],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=self._log_file,
        )
        self.client = Client(self.port)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> Client:
        """Poll /ping until it answers 200; fail with the server's log if it exits first."""
        wait_until_answers(f"http://127.0.0.1:{self.port}/ping", timeout, exited=self.proc.poll, name="the server",
                           output=lambda: self.log, interval=0.1)
        return self.client

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


@pytest.fixture
def launch(tmp_path):
    """Start servers for one test (``launch(model_dir, *flags)``); all are stopped afterwards."""
    servers: list[Server] = []

    def start(directory: Path, *extra: str) -> Server:
        servers.append(Server(directory, tmp_path / f"server{len(servers)}.log", *extra))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory) -> Client:
    """One real server (2 workers x 2 threads) per test module, ready to score."""
    s = Server(model_dir, tmp_path_factory.mktemp("log") / "server.log", "--workers", "2", "--threads", "2")
    try:
        yield s.wait_ready()
    finally:
        s.stop()


@pytest.fixture
def expected() -> Callable[[dict[str, float]], float]:
    """sigmoid(counts · WEIGHTS + BIAS) for a {term: count} dict: what the tiny model must answer."""
    return expected_probability


@pytest.fixture
def artifacts_factory(tmp_path) -> Callable[..., Path]:
    """``make(**write_artifacts kwargs)`` writes artifacts into a fresh directory and returns it."""
    count = iter(range(1000))

    def make(**kwargs) -> Path:
        directory = tmp_path / f"model{next(count)}"
        write_artifacts(directory, **kwargs)
        return directory

    return make
