"""Slow and stalled clients against a real ``python -m serving`` over real sockets.

Each test connects more hostile clients than the server has request threads (2 workers x 2
threads = 4), then checks that a normal client is still answered. Those checks are liveness
checks with a generous socket timeout (it must answer at all while the hostile clients are
connected), never measurements of speed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest

from sentiment.wire import encode_request

HOSTILE = 12  # three times workers x threads
LIVENESS_S = 10  # what the normal client allows for each answer
HEAD = b"GET /ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 1000 + b"\r\n\r\n"
STALLED = b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\ngood"


@contextmanager
def hostile(port: int, behave: Callable[[socket.socket, threading.Event], None], n: int = HOSTILE,
            rcvbuf: int | None = None) -> Iterator[list[socket.socket]]:
    """``n`` connections, each run by ``behave(sock, stop)`` on its own thread until the block ends."""
    stop, socks = threading.Event(), []
    for _ in range(n):
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: a small window
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        socks.append(sock)
    threads = [threading.Thread(target=behave, args=(s, stop), daemon=True) for s in socks]
    for t in threads:
        t.start()
    time.sleep(2)  # let every hostile client get going (and, on a threaded server, take a thread)
    try:
        yield socks
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for s in socks:
            s.close()


def trickle_head(sock: socket.socket, stop: threading.Event) -> None:
    """Send a request head one byte every half second (it would take 8 minutes)."""
    for i in range(len(HEAD)):
        if stop.wait(0.5):
            return
        try:
            sock.sendall(HEAD[i:i + 1])
        except OSError:
            return  # the server hung up on it: fine


def stall_body(sock: socket.socket, stop: threading.Event) -> None:
    """Send a head announcing 1,000 bytes of body, 4 of them, then nothing."""
    sock.sendall(STALLED)
    stop.wait(60)


def never_read(sock: socket.socket, stop: threading.Event) -> None:
    """Pipeline requests whose answers (about 1 MB each) are never read."""
    body = b"a good film\n" * 10_000
    request = (b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    try:
        for _ in range(8):
            if stop.is_set():
                return
            sock.sendall(request)
    except OSError:
        pass  # the server stopped reading, or hung up: fine
    stop.wait(60)


def still_answers(server, featurizer) -> None:
    """A normal client gets its /ping and a scored batch, each within LIVENESS_S."""
    client = server.with_timeout(LIVENESS_S)
    status, _, body = client.request("GET", "/ping")
    assert status == 200 and body["status"] == "ok"
    status, _, body = client.invoke(encode_request(featurizer.fingerprint, [featurizer.transform("good")]),
                                    "application/json")
    assert status == 200 and body["predictions"][0]["label"] == "positive"
    status, _, body = client.invoke("a great film\n", "text/plain")
    assert status == 200 and body["predictions"][0]["label"] == "positive"


@pytest.mark.parametrize("behave", [trickle_head, stall_body, never_read],
                         ids=["heads-one-byte-a-half-second", "stalled-bodies", "never-reading-answers"])
def test_slow_clients_do_not_starve_a_normal_one(server, featurizer, behave):
    with hostile(server.port, behave, rcvbuf=4096 if behave is never_read else None):
        still_answers(server, featurizer)
    still_answers(server, featurizer)


def test_all_kinds_of_slow_client_at_once(server, featurizer):
    with hostile(server.port, trickle_head), hostile(server.port, stall_body), \
            hostile(server.port, never_read, rcvbuf=4096):
        still_answers(server, featurizer)


def _read_until_closed(sock: socket.socket, limit_s: float = 30) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``limit_s``)."""
    sock.settimeout(limit_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_head_not_sent_within_the_client_timeout_is_hung_up_on(launch, model_dir):
    server = launch(model_dir, "--workers", "1", "--client-timeout", "2")
    server.wait_ready()
    with socket.create_connection(("127.0.0.1", server.port)) as silent, \
            socket.create_connection(("127.0.0.1", server.port)) as partial:
        partial.sendall(HEAD[:20])
        assert _read_until_closed(silent) == b""  # closed without an answer, within 30 s
        assert _read_until_closed(partial) == b""
    server.wait_ready()


def test_a_body_not_sent_within_the_client_timeout_is_408(launch, model_dir):
    server = launch(model_dir, "--workers", "1", "--client-timeout", "2")
    server.wait_ready()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(STALLED)
        answer = _read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    error = json.loads(body)
    assert error["error"] == "request_timeout" and "2 s" in error["message"] and "--client-timeout" in error["message"]
    server.wait_ready()

