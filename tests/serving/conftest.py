"""Fixtures for the model server: a tiny hand-built model and a real server process.

The model is a logistic regression written with ``onnx.helper`` (not the training package),
so every expected probability is known exactly: sigmoid(counts · WEIGHTS + BIAS).
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lambda_fn.featurizer import Featurizer, FeaturizerSettings

REPO = Path(__file__).resolve().parents[2]
VOCAB = ["awful", "bad", "boring", "film", "good", "great", "plot"]
WEIGHTS = {"awful": -3.0, "bad": -2.0, "boring": -1.0, "good": 2.0, "great": 3.0}
BIAS = 0.25
MODEL_VERSION = "20261128T1810Z-0badc0de"


def build_model(path: Path, *, fingerprint: str, vocab_size: int, metadata: dict | None = None,
                batch_dim: str | int = "batch") -> Path:
    """Write sigmoid(counts @ W + b) reshaped to [batch], with the contract's names and metadata."""
    weights = np.array([WEIGHTS.get(t, 0.0) for t in VOCAB][:vocab_size] + [0.0] * (vocab_size - len(VOCAB)),
                       np.float32).reshape(-1, 1)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["counts", "W"], ["logit2d"]),
            helper.make_node("Add", ["logit2d", "B"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p2d"]),
            helper.make_node("Reshape", ["p2d", "flat"], ["probability"]),
        ],
        "tiny_sentiment",
        [helper.make_tensor_value_info("counts", TensorProto.FLOAT, [batch_dim, vocab_size])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [batch_dim])],
        initializer=[
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(np.array([BIAS], np.float32), "B"),
            numpy_helper.from_array(np.array([-1], np.int64), "flat"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    props = {"model_version": MODEL_VERSION, "featurizer_fingerprint": fingerprint,
             "vocab_size": str(vocab_size), "model_kind": "logistic"}
    props.update(metadata or {})
    helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_artifacts(directory: Path, *, metadata: dict | None = None, batch_dim: str | int = "batch",
                    vocab: list[str] = VOCAB) -> Featurizer:
    """A featurizer.json and a matching model.onnx in ``directory``; ``metadata`` overrides props."""
    directory.mkdir(parents=True, exist_ok=True)
    featurizer = Featurizer(FeaturizerSettings(min_df=1), vocab)
    featurizer.save(directory / "featurizer.json")
    build_model(directory / "model.onnx", fingerprint=featurizer.fingerprint, vocab_size=len(vocab),
                metadata=metadata, batch_dim=batch_dim)
    return featurizer


def expected_probability(counts: dict[str, float]) -> float:
    z = sum(WEIGHTS.get(term, 0.0) * c for term, c in counts.items()) + BIAS
    return 1 / (1 + math.exp(-z))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    write_artifacts(directory)
    return directory


@pytest.fixture(scope="session")
def featurizer(model_dir) -> Featurizer:
    return Featurizer.load(model_dir / "featurizer.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A tiny HTTP client for one server: a fresh connection per call keeps tests independent."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
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
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=self._log_file,
        )
        self.client = Client(self.port)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> Client:
        """Poll /ping until it answers 200; fail with the server's log if it exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                if self.client.request("GET", "/ping")[0] == 200:
                    return self.client
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer /ping with 200 within {timeout} s:\n{self.log}")

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
