"""SnapStart: init does the first request's work ahead, the hooks drop sockets and reseed ``random``.

Lambda's part is played by hand, in its order: import the handler with
``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`` (init), run the hooks registered with
``snapshot_restore_py`` (the library of Lambda's Python runtimes) before the snapshot, run the
restore hooks, then invoke. S3 and the endpoint are a real HTTP server on loopback that records
every connection, so "no socket in the snapshot" is seen from the other end of it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import snapshot_restore_py

from lambda_fn import endpoint, snapshot
from sentiment.featurizer import Featurizer, FeaturizerSettings
from sentiment.wire import encode_response
from tests.lambda_fn.conftest import BUCKET, CORPUS, ENDPOINT_NAME, KEY, ORIGIN, clear_caches, rest_event

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Aws:
    """A loopback server answering S3 GetObject (the featurizer) and InvokeEndpoint (all positive)."""

    featurizer: Featurizer
    url: str = ""
    opened: list[int] = field(default_factory=list)  # client ports, in order
    closed: list[int] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def aws_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    aws = Aws(Featurizer(FeaturizerSettings(min_df=1)).fit(CORPUS))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: botocore pools the connection

        def setup(self) -> None:
            super().setup()
            with aws.lock:
                aws.opened.append(self.client_address[1])

        def finish(self) -> None:
            super().finish()
            with aws.lock:
                aws.closed.append(self.client_address[1])

        def do_GET(self) -> None:
            aws.requests.append(f"GET {self.path}")
            self.answer(aws.featurizer.to_json().encode() if self.path == f"/{BUCKET}/{KEY}" else b"", 200)

        def do_POST(self) -> None:
            aws.requests.append(f"POST {self.path}")
            rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["instances"]
            self.answer(json.dumps(encode_response([0.9] * len(rows), "test-version")).encode(), 200)

        def answer(self, body: bytes, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None: ...

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    aws.url = f"http://127.0.0.1:{server.server_address[1]}"
    for name, value in {"AWS_ENDPOINT_URL_S3": aws.url, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": aws.url,
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "ENDPOINT_NAME": ENDPOINT_NAME,
                        "FEATURIZER_URI": f"s3://{BUCKET}/{KEY}", "ALLOWED_ORIGINS": ORIGIN}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clear_caches()
    snapshot_restore_py.get_before_snapshot().clear()
    snapshot_restore_py.get_after_restore().clear()
    yield aws
    server.shutdown()
    server.server_close()
    clear_caches()
    snapshot_restore_py.get_before_snapshot().clear()
    snapshot_restore_py.get_after_restore().clear()


def wait_for(condition, what: str) -> None:
    """Poll a server-side observation (its handler thread notices EOF on its own schedule)."""
    for _ in range(500):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"never happened: {what}")


def run_hooks(registry: list) -> None:
    """As Lambda's runtime does: before-snapshot hooks in reverse order of registration, restore in order."""
    for function, args, kwargs in registry:
        function(*args, **kwargs)


def test_snapstart_init_loads_everything_and_the_snapshot_holds_no_socket(aws_server: Aws) -> None:
    assert snapshot.init_ahead("snap-start")
    assert endpoint.load_featurizer.cache_info().currsize == 1  # read from S3 during init
    loaded = endpoint.load_featurizer(f"s3://{BUCKET}/{KEY}")
    assert loaded._vocabulary is not None  # the term list explanations are named from, built ahead
    assert endpoint.sagemaker_runtime.cache_info().currsize == 1
    assert aws_server.requests == [f"GET /{BUCKET}/{KEY}"]
    assert len(aws_server.opened) == 1 and aws_server.closed == []  # the S3 connection is pooled, open

    run_hooks(list(reversed(snapshot_restore_py.get_before_snapshot())))
    wait_for(lambda: aws_server.closed == aws_server.opened, "the pooled S3 connection closed")

    run_hooks(snapshot_restore_py.get_after_restore())
    from lambda_fn.handler import lambda_handler
    from tests.lambda_fn.conftest import FakeLambdaContext

    answer = lambda_handler(rest_event({"review": "a wonderful film"}), FakeLambdaContext())
    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"])["predictions"][0]["label"] == "positive"
    assert aws_server.requests[1:] == [f"POST /endpoints/{ENDPOINT_NAME}/invocations"]  # no second S3 read
    assert len(aws_server.opened) == 2  # a connection of its own, opened after the restore


def test_restored_environments_do_not_share_a_random_sequence(aws_server: Aws) -> None:
    snapshot.init_ahead("snap-start")
    random.seed(7)  # the state every environment restored from one snapshot starts with
    in_snapshot = random.getstate()
    draws = []
    for _ in range(2):  # two environments restored from the same snapshot
        random.setstate(in_snapshot)
        run_hooks(snapshot_restore_py.get_after_restore())
        draws.append(random.random())
    assert draws[0] != draws[1]
    random.setstate(in_snapshot)
    first = random.random()
    random.setstate(in_snapshot)
    assert random.random() == first  # without the hook they would draw the same numbers


def test_a_featurizer_that_fails_during_init_is_tried_again_by_the_first_request(
        aws_server: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURIZER_URI", f"s3://{BUCKET}/missing.json")
    assert snapshot.init_ahead("snap-start")  # init succeeds: a failed publish would block the deploy
    assert endpoint.load_featurizer.cache_info().currsize == 0
    from lambda_fn.handler import lambda_handler
    from tests.lambda_fn.conftest import FakeLambdaContext

    answer = lambda_handler(rest_event({"review": "a wonderful film"}), FakeLambdaContext())
    assert (answer["statusCode"], json.loads(answer["body"])["error"]) == (503, "featurizer_unavailable")
    assert aws_server.requests == [f"GET /{BUCKET}/missing.json"] * 2  # init's try and the request's


@pytest.mark.parametrize("initialization_type", ["on-demand", None])
def test_on_demand_init_leaves_the_work_to_the_first_request(aws_server: Aws, initialization_type) -> None:
    assert not snapshot.init_ahead(initialization_type)
    assert endpoint.load_featurizer.cache_info().currsize == 0 and aws_server.requests == []
    assert snapshot_restore_py.get_before_snapshot() == []


def test_provisioned_concurrency_init_prepares_without_hooks(aws_server: Aws) -> None:
    assert snapshot.init_ahead("provisioned-concurrency")
    assert endpoint.load_featurizer.cache_info().currsize == 1
    assert snapshot_restore_py.get_before_snapshot() == [] == snapshot_restore_py.get_after_restore()


def test_importing_the_handler_under_snapstart_registers_its_hooks(aws_server: Aws) -> None:
    """The wiring itself, in a fresh interpreter, as Lambda imports the handler string."""
    code = ("import snapshot_restore_py as s, lambda_fn.handler, lambda_fn.endpoint as e; "
            "print([f.__qualname__ for f, *_ in s.get_before_snapshot()], "
            "[f.__qualname__ for f, *_ in s.get_after_restore()], e.load_featurizer.cache_info().currsize)")
    env = {**os.environ, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert out.strip() == "['before_snapshot'] ['after_restore'] 1"
