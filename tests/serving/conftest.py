"""Fixtures for the model server: a tiny hand-built model and a real server process.

The model is a logistic regression written with ``onnx.helper`` (not the training package) to
the sparse input contract, so every expected probability is known exactly:
sigmoid(counts · WEIGHTS + BIAS).
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

from sentiment.featurizer import Featurizer, FeaturizerSettings

REPO = Path(__file__).resolve().parents[2]
VOCAB = ["awful", "bad", "boring", "film", "good", "great", "plot"]
WEIGHTS = {"awful": -3.0, "bad": -2.0, "boring": -1.0, "good": 2.0, "great": 3.0}
BIAS = 0.25
MODEL_VERSION = "20261128T1810Z-0badc0de"


def build_model(path: Path, *, fingerprint: str, vocab_size: int, metadata: dict | None = None,
                batch_dim: str | int = "batch", spin: int = 0) -> Path:
    """Write sigmoid(Σ W[indices] · counts per row + b) with the contract's inputs, output and metadata.

    Per-row sums are differences of a running total at the row starts, as in the trained model:
    empty rows (equal offsets) sum to 0 and score sigmoid(b). ``spin`` > 0 makes a deliberately
    slow model with the same answers: a batch whose largest count is c first runs an empty ONNX
    Loop (c - 1) x spin times (about 1.5 s per million here), so the start-up check (counts of 1)
    stays fast while a request can be made to take as long as a test needs.
    """
    weights = np.array([WEIGHTS.get(t, 0.0) for t in VOCAB][:vocab_size] + [0.0] * (vocab_size - len(VOCAB)),
                       np.float32)
    node = helper.make_node
    slow, slow_init = [], []
    if spin:
        body = helper.make_graph(
            [node("Identity", ["cond_in"], ["cond_out"]), node("Add", ["v_in", "one_f"], ["v_out"])],
            "spin",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])],
            initializer=[numpy_helper.from_array(np.ones(1, np.float32), "one_f")],
        )
        slow = [
            node("Concat", ["counts", "one_f"], ["counts_and_one"], axis=0),  # never empty
            node("ReduceMax", ["counts_and_one"], ["largest"], keepdims=0),
            node("Sub", ["largest", "one_scalar"], ["over_one"]),
            node("Mul", ["over_one", "spin"], ["turns_f"]),
            node("Cast", ["turns_f"], ["turns"], to=TensorProto.INT64),
            node("Loop", ["turns", "true", "zero"], ["spun"], body=body),
            node("Mul", ["spun", "zero"], ["nothing"]),
            node("Add", ["B", "nothing"], ["B_and_nothing"]),  # the answers stay the same
        ]
        slow_init = [numpy_helper.from_array(np.ones(1, np.float32), "one_f"),
                     numpy_helper.from_array(np.array(1, np.float32), "one_scalar"),
                     numpy_helper.from_array(np.array(spin, np.float32), "spin"),
                     numpy_helper.from_array(np.array(True), "true")]
    graph = helper.make_graph(
        slow + [
            node("Gather", ["W", "indices"], ["w"]),
            node("Mul", ["w", "counts"], ["terms"]),
            node("CumSum", ["terms", "axis0"], ["running"]),
            node("Concat", ["zero", "running"], ["totals"], axis=0),  # totals[i] = sum of terms[:i]
            node("Gather", ["totals", "offsets"], ["at_starts"]),
            node("Slice", ["at_starts", "one", "end"], ["later_starts"]),
            node("Slice", ["totals", "minus_one", "end"], ["grand_total"]),
            node("Concat", ["later_starts", "grand_total"], ["at_ends"], axis=0),
            node("Sub", ["at_ends", "at_starts"], ["row_sums"]),
            node("Add", ["row_sums", "B" if not spin else "B_and_nothing"], ["logit"]),
            node("Sigmoid", ["logit"], ["probability"]),
        ],
        "tiny_sentiment",
        [
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["nnz"]),
            helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["nnz"]),
            helper.make_tensor_value_info("offsets", TensorProto.INT64, [batch_dim]),
        ],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [batch_dim])],
        initializer=[
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(np.array([BIAS], np.float32), "B"),
            numpy_helper.from_array(np.array(0, np.int64), "axis0"),
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
            numpy_helper.from_array(np.array([2**62], np.int64), "end"),
        ] + slow_init,
    )
    return _save(graph, path, fingerprint, vocab_size, metadata)


def build_dense_model(path: Path, *, fingerprint: str, vocab_size: int) -> Path:
    """The contract before sparse input: ``counts`` float32 [batch, vocab_size], sigmoid(counts @ W + b)."""
    weights = np.array([WEIGHTS.get(t, 0.0) for t in VOCAB][:vocab_size], np.float32).reshape(-1, 1)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["counts", "W"], ["logit2d"]),
            helper.make_node("Add", ["logit2d", "B"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p2d"]),
            helper.make_node("Reshape", ["p2d", "flat"], ["probability"]),
        ],
        "dense_sentiment",
        [helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["batch", vocab_size])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializer=[
            numpy_helper.from_array(weights, "W"),
            numpy_helper.from_array(np.array([BIAS], np.float32), "B"),
            numpy_helper.from_array(np.array([-1], np.int64), "flat"),
        ],
    )
    return _save(graph, path, fingerprint, vocab_size, None)


def _save(graph: onnx.GraphProto, path: Path, fingerprint: str, vocab_size: int,
          metadata: dict | None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    props = {"model_version": MODEL_VERSION, "featurizer_fingerprint": fingerprint,
             "vocab_size": str(vocab_size), "model_kind": "logistic"}
    props.update(metadata or {})
    helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def write_artifacts(directory: Path, *, metadata: dict | None = None, batch_dim: str | int = "batch",
                    vocab: list[str] = VOCAB, spin: int = 0) -> Featurizer:
    """A featurizer.json and a matching model.onnx in ``directory``; ``metadata`` overrides props."""
    directory.mkdir(parents=True, exist_ok=True)
    featurizer = Featurizer(FeaturizerSettings(min_df=1), vocab)
    featurizer.save(directory / "featurizer.json")
    build_model(directory / "model.onnx", fingerprint=featurizer.fingerprint, vocab_size=len(vocab),
                metadata=metadata, batch_dim=batch_dim, spin=spin)
    return featurizer


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
    featurizer = Featurizer(FeaturizerSettings(min_df=1), VOCAB)
    featurizer.save(tmp_path / "featurizer.json")
    build_dense_model(tmp_path / "model.onnx", fingerprint=featurizer.fingerprint, vocab_size=len(VOCAB))
    return tmp_path


@pytest.fixture(scope="session")
def featurizer(model_dir) -> Featurizer:
    return Featurizer.load(model_dir / "featurizer.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
