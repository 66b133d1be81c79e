"""The Flask app behind gunicorn's asyncio worker: no request thread ever waits on the network.

gunicorn's threaded worker gives each connection a thread while it reads the request and
writes the answer, so a few clients that send slowly, stall, or never read their answers hold
every thread and starve everyone else. Here the event loop does all the network I/O: it reads
the whole body (at most ``max_body`` bytes, within ``client_timeout`` seconds, else a 408),
runs the WSGI app on one of ``threads`` request threads with the body in memory, and writes
the whole answer from the loop, however slowly the client reads it. (asgiref's and a2wsgi's
WSGI adapters stream the body into the thread and send the answer from it, which is exactly
what must not happen here, so this bridge is this project's own.)

Each request has a ``Deadline`` of ``timeout`` seconds from the moment its body is in: the app
checks it between pieces of work (a 503 ``timeout``). A request still waiting for a thread at
its deadline is answered 503 and dropped; one whose thread is still busy ``GRACE`` seconds past
it is stuck where Python cannot stop it (inside ONNX Runtime): it is answered 503 and
``on_stuck`` is called, which retires this worker process so that gunicorn starts a fresh one.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from serving.app import DEADLINE_KEY, MAX_DISCARD_BYTES
from serving.inputs import Deadline

log = logging.getLogger("serving")

GRACE = 1.0  # seconds past its deadline before a request's busy thread is taken to be stuck

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def json_answer(status: int, code: str, message: str, close: bool = False) -> Answer:
    body = json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    return status, headers, body


class BufferedWSGI:
    """An ASGI app that runs ``wsgi_app`` on whole requests and answers (see the module docstring)."""

    def __init__(self, wsgi_app: Callable, *, threads: int, timeout: float, client_timeout: float,
                 max_body: int, on_stuck: Callable[[str], None] | None = None):
        self.wsgi_app, self.timeout, self.client_timeout, self.max_body = wsgi_app, timeout, client_timeout, max_body
        self.on_stuck = on_stuck or (lambda message: None)
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="request")

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"this server speaks HTTP only, not {scope['type']}")
        declared = _content_length(scope)
        body: bytes | None
        if declared is not None and declared > self.max_body:
            # Too large by its own account: the app answers 413 from the length alone.
            body, complete, length = b"", False, declared
        else:
            body, complete = await self._read_body(receive)
            length = len(body) if body is not None else 0
        if body is None:
            log.warning("%s %s -> 408: the body did not arrive within %g s (--client-timeout)",
                        scope["method"], scope["path"], self.client_timeout)
            answer = json_answer(408, "request_timeout",
                                 f"the request body did not arrive within {self.client_timeout:g} s, this "
                                 "server's --client-timeout", close=True)
        else:
            answer = await self._run(scope, body, length)
        status, headers, content = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        if body is not None and not complete:
            await self._discard(receive)

    async def _read_body(self, receive: Callable) -> tuple[bytes | None, bool]:
        """(body, whether it was read to its end): at most max_body + 1 bytes; (None, False) if late."""
        chunks, size, more = [], 0, True
        try:
            async with asyncio.timeout(self.client_timeout):
                while more and size <= self.max_body:
                    message = await receive()
                    if message["type"] == "http.disconnect":  # gone, or stalled past gunicorn's own wait
                        return None, False
                    chunk = message.get("body", b"")
                    chunks.append(chunk)
                    size += len(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            return None, False
        return b"".join(chunks), not more

    async def _discard(self, receive: Callable) -> None:
        """Read and drop the rest of an oversized body, so that the client reads its 413, not a reset."""
        dropped = 0
        try:
            async with asyncio.timeout(self.client_timeout):
                while dropped < MAX_DISCARD_BYTES:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    dropped += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            pass  # the connection is closed: its body was not read to the end

    async def _run(self, scope: dict, body: bytes, length: int) -> Answer:
        deadline = Deadline(self.timeout)
        job: Future = self.pool.submit(self._call, _environ(scope, body, length, deadline))
        await asyncio.wait([asyncio.wrap_future(job)], timeout=max(deadline.remaining(), 0) + GRACE)
        if job.cancel():  # still queued behind other requests
            return json_answer(503, "timeout", f"the request waited longer than {self.timeout:g} s, this server's "
                                               "--timeout, for a free request thread; the server is busy, retry")
        if not job.done():
            self.on_stuck(f"a request to {scope['path']} is still running past its --timeout of {self.timeout:g} s, "
                          "inside code that cannot be interrupted (such as an ONNX Runtime run)")
            late = deadline.error()
            return json_answer(late.status, late.code, late.message)
        return job.result()

    def _call(self, environ: dict) -> Answer:
        """Run the WSGI app on a request thread; its whole answer, never an exception."""
        try:
            reply: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
                reply["status"], reply["headers"] = int(status.split(" ", 1)[0]), headers
                return lambda data: reply.setdefault("written", []).append(data)

            iterable = self.wsgi_app(environ, start_response)
            try:
                content = b"".join([*reply.get("written", []), *iterable])
            finally:
                if hasattr(iterable, "close"):
                    iterable.close()
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply["headers"]]
            return reply["status"], headers, content
        except Exception as exc:
            log.exception("the app failed on %s", environ.get("PATH_INFO"))
            return json_answer(500, "internal_error", f"the server failed: {type(exc).__name__}")


def _content_length(scope: dict) -> int | None:
    """The Content-Length the client declared (gunicorn has checked that it is a number), if any."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value)
    return None


def _environ(scope: dict, body: bytes, length: int, deadline: Deadline) -> dict:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope; ``body`` is whole unless ``length`` says more."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(length),  # the body is whole (or too long), however it was framed
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        DEADLINE_KEY: deadline,
    }
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue
        key = key if key == "CONTENT_TYPE" else f"HTTP_{key}"
        value = value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ
