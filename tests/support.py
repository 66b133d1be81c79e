"""What the tests (and ``benchmarks/bench_e2e.py``) share: one builder of hand-weighted models,
one "wait until it answers" poll, the stack synthesized, and the local stack as a subprocess.

``write_model`` writes a model folder (``featurizer.json`` and a matching ``model.onnx``) for
given weights, vocabulary and metadata: a logistic regression built with ``onnx.helper`` (not
the training package) to the sparse input contract (``indices`` int64 [nnz], ``counts``
float32 [nnz], ``offsets`` int64 [batch]; output ``probability`` [batch]), so every expected
probability is known exactly: ``sigmoid(sum of the weights of the review's terms, each times its
count, + bias)``. ``write_tiny_model`` is the model the local stack, the browser and the batch
tests serve; ``tests/serving/conftest.py`` writes its own with other weights. The builder needs
``onnx`` and ``numpy`` (dev dependencies), imported when it runs, so ``LocalStack`` needs neither.

``synthesize`` runs the CDK app (``infra.create_app``, as ``app.py`` does, with cdk.json's context)
in a child process and returns the template path; ``edit_template`` writes a changed copy beside
it, so the copy's assets are the same. ``LocalStack`` runs ``python -m local_stack --template ...``.

Import it as ``tests.support`` (pytest's ``pythonpath = ["."]``; a benchmark runs from the
repository root).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from local_stack.model_server import REPO_ROOT, free_port, wait_until_answers
from sentiment.featurizer import Featurizer, FeaturizerSettings

__all__ = ["MODEL_VERSION", "NEGATIVE_REVIEW", "POSITIVE_REVIEW", "REPO_ROOT", "STACK", "VOCABULARY", "WEIGHTS",
           "LocalStack", "edit_template", "free_port", "synthesize", "wait_until_answers", "write_model",
           "write_tiny_model"]

# -- the tiny model ------------------------------------------------------------------------------
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


def write_tiny_model(model_dir: str | Path, training_output: bool = True, *,
                     weights: Mapping[str, float] | None = None, ngram_max: int = 1,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """The tiny model (unigrams of ``VOCABULARY``, ``WEIGHTS``, no bias) in ``model_dir``, with its
    explain.onnx; returns it. ``weights`` (their terms the vocabulary), ``ngram_max`` and ``metadata``
    (e.g. an uncertain band) make another one.

    With ``training_output`` it is a whole training output, as ``cdk synth`` wants one: also
    ``metrics.json`` (model version and featurizer fingerprint) and ``model.tar.gz``.
    """
    weights = WEIGHTS if weights is None else weights
    vocabulary = VOCABULARY if weights is WEIGHTS else sorted(weights)
    folder = write_model(model_dir, weights=weights, vocabulary=vocabulary,
                         settings=FeaturizerSettings(ngram_max=ngram_max, min_df=1),
                         metadata={"model_version": MODEL_VERSION, "model_kind": "tiny-logistic",
                                   "input_format": "sparse-offsets/1", **(metadata or {})}, explain=True)
    if training_output:
        featurizer = Featurizer.load(folder / "featurizer.json")
        (folder / "metrics.json").write_text(json.dumps({"model_version": MODEL_VERSION,
                                                         "featurizer_fingerprint": featurizer.fingerprint}))
        with tarfile.open(folder / "model.tar.gz", "w:gz") as archive:
            for name in ("model.onnx", "featurizer.json", "explain.onnx"):
                archive.add(folder / name, name)
    return folder


# -- the one builder -----------------------------------------------------------------------------
def write_model(directory: str | Path, *, weights: Mapping[str, float], vocabulary: Sequence[str],
                metadata: Mapping[str, str | None], settings: FeaturizerSettings | None = None,
                bias: float = 0.0, batch_dim: str | int = "batch", spin: int = 0, dense: bool = False,
                explain: bool = False) -> Path:
    """Write ``featurizer.json`` and a matching ``model.onnx`` into ``directory``; return it.

    The featurizer has ``settings`` (default ``FeaturizerSettings(min_df=1)``) and ``vocabulary``;
    term ``vocabulary[i]`` weighs ``weights.get(term, 0)``. The model's metadata is the
    featurizer's ``featurizer_fingerprint`` and ``vocab_size`` updated with ``metadata``, where a
    value of None removes the key (a broken model is one override away).

    Per-row sums are differences of a running total at the row starts, as in the trained model:
    empty rows (equal offsets) sum to 0 and score sigmoid(bias). ``batch_dim`` names (or fixes)
    the batch dimension of ``offsets`` and ``probability``. ``spin`` > 0 makes a deliberately
    slow model with the same answers: a batch whose largest count is c first runs an empty ONNX
    Loop (c - 1) x spin times (about 1.5 s per million), so the start-up check (counts of 1)
    stays fast while a request can be made to take as long as a test needs. ``dense`` writes
    the contract before sparse input instead: ``counts`` float32 [batch, vocab_size],
    sigmoid(counts @ W + bias). ``explain`` also writes ``explain.onnx``: the same graph with the
    outputs ``logit``, ``contribution`` (each entry's weight × count) and ``bias``.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    featurizer = Featurizer(settings or FeaturizerSettings(min_df=1), list(vocabulary))
    featurizer.save(directory / "featurizer.json")
    w = np.array([weights.get(term, 0.0) for term in vocabulary], np.float32)
    node, value = helper.make_node, helper.make_tensor_value_info
    constants = [numpy_helper.from_array(np.array([bias], np.float32), "B")]

    if dense:
        if spin or batch_dim != "batch":
            raise ValueError("the dense model has neither spin nor another batch dimension")
        graph = helper.make_graph(
            [
                node("MatMul", ["counts", "W"], ["logit2d"]),
                node("Add", ["logit2d", "B"], ["z"]),
                node("Sigmoid", ["z"], ["p2d"]),
                node("Reshape", ["p2d", "flat"], ["probability"]),
            ],
            "dense_sentiment",
            [value("counts", TensorProto.FLOAT, ["batch", len(vocabulary)])],
            [value("probability", TensorProto.FLOAT, ["batch"])],
            initializer=[numpy_helper.from_array(w.reshape(-1, 1), "W"), *constants,
                         numpy_helper.from_array(np.array([-1], np.int64), "flat")],
        )
    else:
        slow, bias_name = [], "B"
        if spin:
            body = helper.make_graph(
                [node("Identity", ["cond_in"], ["cond_out"]), node("Add", ["v_in", "one_f"], ["v_out"])],
                "spin",
                [value("i", TensorProto.INT64, []), value("cond_in", TensorProto.BOOL, []),
                 value("v_in", TensorProto.FLOAT, [1])],
                [value("cond_out", TensorProto.BOOL, []), value("v_out", TensorProto.FLOAT, [1])],
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
            bias_name = "B_and_nothing"
            constants += [numpy_helper.from_array(np.ones(1, np.float32), "one_f"),
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
                node("Add", ["row_sums", bias_name], ["logit"]),
                node("Sigmoid", ["logit"], ["probability"]),
            ],
            "tiny_sentiment",
            [
                value("indices", TensorProto.INT64, ["nnz"]),
                value("counts", TensorProto.FLOAT, ["nnz"]),
                value("offsets", TensorProto.INT64, [batch_dim]),
            ],
            [value("probability", TensorProto.FLOAT, [batch_dim])],
            initializer=[
                numpy_helper.from_array(w, "W"),
                numpy_helper.from_array(np.array(0, np.int64), "axis0"),
                numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
                numpy_helper.from_array(np.array([1], np.int64), "one"),
                numpy_helper.from_array(np.array([-1], np.int64), "minus_one"),
                numpy_helper.from_array(np.array([2**62], np.int64), "end"),
                *constants,
            ],
        )

    props: dict[str, str | None] = {"featurizer_fingerprint": featurizer.fingerprint,
                                    "vocab_size": str(featurizer.vocab_size), **metadata}
    graphs = {"model.onnx": graph}
    if explain:
        if dense:
            raise ValueError("only the sparse model explains")
        explainer = onnx.GraphProto()
        explainer.CopyFrom(graph)
        explainer.node.extend([node("Shape", ["offsets"], ["batch_shape"]),
                               node("Expand", [bias_name, "batch_shape"], ["bias"]),
                               node("Identity", ["terms"], ["contribution"])])
        explainer.output.extend([value("logit", TensorProto.FLOAT, [batch_dim]),
                                 value("contribution", TensorProto.FLOAT, ["nnz"]),
                                 value("bias", TensorProto.FLOAT, [batch_dim])])
        graphs["explain.onnx"] = explainer
    for name, each in graphs.items():
        model = helper.make_model(each, opset_imports=[helper.make_opsetid("", 17)])
        helper.set_model_props(model, {k: v for k, v in props.items() if v is not None})
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, directory / name)
    return directory


# -- the stack, synthesized ----------------------------------------------------------------------
STACK = "ServerlessSentiment"
_SYNTH = """
import json, sys
from infra import create_app
create_app(outdir=sys.argv[1], context=json.loads(sys.argv[2])).synth()
"""


def synthesize(model_dir: str | Path, outdir: str | Path, timeout: float = 600, **context: Any) -> Path:
    """Synthesize the app as ``npx cdk synth`` would (cdk.json's context, ``context`` on top) into
    ``outdir``; the template's path. Runs in a child process, so no test process loads jsii."""
    settings = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    settings.update({"model_dir": str(model_dir), **{k: str(v) for k, v in context.items()}})
    env = dict(os.environ, JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20", CDK_DISABLE_CLI_TELEMETRY="true",
               CDK_DISABLE_VERSION_CHECK="1")
    done = subprocess.run([sys.executable, "-c", _SYNTH, str(outdir), json.dumps(settings)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"synthesis failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(outdir) / f"{STACK}.template.json"


def edit_template(template: str | Path, edit: Callable[[dict[str, Any]], Any], name: str) -> Path:
    """A copy of ``template`` changed by ``edit`` (in place, on its JSON), written beside it as
    ``<name>.template.json`` so that it finds the same staged assets."""
    template = Path(template)
    data = json.loads(template.read_text())
    edit(data)
    copy = template.with_name(f"{name}.template.json")
    copy.write_text(json.dumps(data, indent=1))
    return copy


# -- the local stack as a subprocess -------------------------------------------------------------
class LocalStack:
    """``python -m local_stack --template T`` on free ports, as a context manager; output goes to ``log_path``.

    ``url`` is the website's origin, ``api_url`` the API's first stage (``http://127.0.0.1:P/prod``).
    """

    def __init__(self, template: str | Path, port: int | None = None, log_path: str | Path | None = None,
                 timeout: float = 120.0, extra_args: tuple[str, ...] = (), api_port: int | None = None):
        self.template = Path(template)
        self.port = port or free_port()
        self.api_port = api_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        stages = [r["Properties"].get("StageName", name.lower())
                  for name, r in json.loads(self.template.read_text()).get("Resources", {}).items()
                  if r.get("Type") == "AWS::ApiGateway::Stage"] if self.template.is_file() else []
        self.api_origin = f"http://127.0.0.1:{self.api_port}"
        self.api_url = f"{self.api_origin}/{stages[0] if stages else 'prod'}"
        self.command = [sys.executable, "-m", "local_stack", "--template", str(template),
                        "--port", str(self.port), "--api-port", str(self.api_port), *extra_args]
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
        while " ready: " not in self.log():  # "Sentiment demo ready: ..." once both servers listen
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local stack did not start (exit code {self.process.returncode}). "
                                   f"Its output:\n{self.log()}")
            time.sleep(0.2)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` (SIGTERM as a service manager would, SIGINT as Ctrl-C); return the exit code.

        The stack stops its model server and execution environments itself; a stack that ignores
        ``sig`` is killed after ``timeout`` s.
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


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def readme_error_rows() -> list[tuple[str, str, str]]:
    """(status, code cell, when) for every row of README's error tables in "The API"."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**Errors**"):text.index("**CORS**")]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("status", "---"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows
