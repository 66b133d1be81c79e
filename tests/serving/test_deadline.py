"""``--timeout`` bounds one request on a real server: the client is answered 503 at the deadline,
and a worker still busy with the request after that is replaced.

The model is the tiny one made deliberately slow (``spin`` in tests.support.write_model): a count of
1,001 keeps ONNX Runtime busy for about 25 minutes, far past any deadline here.
"""

from __future__ import annotations

import threading
import time

from sentiment.featurizer import SparseCounts
from sentiment.wire import encode_request

GOOD = 4  # the index of "good" in the tiny vocabulary


def _wait_for(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


def test_a_request_past_the_timeout_is_503_and_the_stuck_worker_is_replaced(launch, artifacts_factory, featurizer):
    server = launch(artifacts_factory(spin=1_000_000), "--workers", "1", "--threads", "2", "--timeout", "2")
    server.wait_ready()
    stuck = encode_request(featurizer.fingerprint, [SparseCounts([GOOD], [1001])])
    answers: list = []
    caller = threading.Thread(target=lambda: answers.append(
        server.client.with_timeout(30).invoke(stuck, "application/json")))
    caller.start()
    time.sleep(0.5)  # the stuck request is being scored
    status, _, body = server.client.with_timeout(10).request("GET", "/ping")
    assert status == 200  # the other thread still answers meanwhile
    caller.join(40)
    assert answers, "the stuck request got no answer within 30 s"
    status, _, body = answers[0]
    assert status == 503 and body["error"] == "timeout", body
    assert "2 s" in body["message"] and "--timeout" in body["message"]
    # Its worker cannot stop ONNX Runtime mid-run: it is replaced, and the new one scores.
    assert _wait_for(lambda: "replacing this worker" in server.log), server.log
    client = server.wait_ready()
    status, _, body = client.invoke(encode_request(featurizer.fingerprint, [SparseCounts([GOOD], [1])]),
                                    "application/json")
    assert status == 200 and body["predictions"][0]["label"] == "positive"


def test_a_request_within_the_timeout_is_answered(launch, artifacts_factory, featurizer, expected):
    server = launch(artifacts_factory(spin=1_000_000), "--workers", "1", "--timeout", "30")
    client = server.wait_ready()
    status, _, body = client.invoke(encode_request(featurizer.fingerprint, [SparseCounts([GOOD], [2])]),
                                    "application/json")  # about 1.5 s of work
    assert status == 200 and abs(body["predictions"][0]["probability_positive"] - expected({"good": 2})) < 1e-6
