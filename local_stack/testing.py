"""Helpers for tests and smoke checks: a tiny hand-weighted model, and the stack as a subprocess.

The model is a logistic regression over a dozen words, built with ``onnx.helper`` to the
artifact contract (sparse inputs ``indices`` int64 [nnz], ``counts`` float32 [nnz], ``offsets``
int64 [batch]; output ``probability`` [batch]; the contract's metadata), so tests need no
trained model and every label is known in advance: ``sigmoid(sum of WEIGHTS of the words in
the review, each times its count)``. Needs ``onnx`` and ``numpy`` (dev
dependencies); nothing in the running stack imports this module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from local_stack.model_server import REPO_ROOT, free_port
from sentiment.featurizer import Featurizer, FeaturizerSettings

WEIGHTS = {
    "superb": 3.0, "brilliant": 3.0, "great": 2.0, "good": 2.0, "loved": 2.0, "best": 2.0,
    "beautifully": 2.0, "warm": 1.0, "funny": 1.0, "gorgeous": 1.0,
    "awful": -3.0, "worst": -3.0, "waste": -3.0, "bad": -2.0, "dull": -2.0, "boring": -2.0,
    "lazy": -2.0, "predictable": -1.0, "drags": -1.0,
}
VOCABULARY = sorted([*WEIGHTS, "film", "movie", "plot", "the"])
MODEL_VERSION = "20261128T1810Z-0c0ffee0"
POSITIVE_REVIEW = "A superb film with a great cast: I loved it."
NEGATIVE_REVIEW = "An awful, boring waste of time: the worst plot of the year."


def write_tiny_model(model_dir: str | Path) -> Path:
    """Write ``featurizer.json`` and a matching ``model.onnx`` into ``model_dir``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    featurizer = Featurizer(FeaturizerSettings(ngram_max=1, min_df=1), VOCABULARY)
    featurizer.save(model_dir / "featurizer.json")

    weights = np.array([WEIGHTS.get(term, 0.0) for term in VOCABULARY], np.float32)
    node = helper.make_node
    # Each row's sum is the difference of a running total at its start and at the next row's.
    graph = helper.make_graph(
        [
            node("Gather", ["weights", "indices"], ["weight"]),
            node("Mul", ["weight", "counts"], ["terms"]),
            node("CumSum", ["terms", "axis0"], ["running"]),
            node("Concat", ["zero", "running"], ["totals"], axis=0),
            node("Gather", ["totals", "offsets"], ["at_starts"]),
            node("Slice", ["at_starts", "one", "end"], ["later_starts"]),
            node("Slice", ["totals", "minus_one", "end"], ["grand_total"]),
            node("Concat", ["later_starts", "grand_total"], ["at_ends"], axis=0),
            node("Sub", ["at_ends", "at_starts"], ["logit"]),
            node("Sigmoid", ["logit"], ["probability"]),
        ],
        "tiny_sentiment",
        [
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["nnz"]),
            helper.make_tensor_value_info("counts", TensorProto.FLOAT, ["nnz"]),
            helper.make_tensor_value_info("offsets", TensorProto.INT64, ["batch"]),
        ],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        initializer=[
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.array(0, np.int64), "axis0"),
            numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
            numpy_helper.from_array(np.array([1], np.int64), "one"),
            numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
            numpy_helper.from_array(np.array([2**62], np.int64), "end"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {
        "model_version": MODEL_VERSION,
        "featurizer_fingerprint": featurizer.fingerprint,
        "vocab_size": str(featurizer.vocab_size),
        "model_kind": "tiny-logistic",
        "input_format": "sparse-offsets/1",
    })
    onnx.checker.check_model(model)
    onnx.save(model, model_dir / "model.onnx")
    return model_dir


class LocalStack:
    """``python -m local_stack`` on a free port, as a context manager; output goes to ``log_path``."""

    def __init__(self, model_dir: str | Path, port: int | None = None, log_path: str | Path | None = None,
                 timeout: float = 120.0, extra_args: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "local_stack", "--model-dir", str(model_dir),
                        "--port", str(self.port), *extra_args]
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="local_stack_", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> LocalStack:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"local stack exited with code {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/config.json", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local stack not ready within {self.timeout:.0f} s:\n{self.log()}")
            time.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` (SIGTERM as a service manager would, SIGINT as Ctrl-C); return the exit code.

        The stack stops its model server itself; a stack that ignores ``sig`` is killed after
        ``timeout`` s.
        """
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
