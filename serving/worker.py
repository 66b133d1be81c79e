"""gunicorn's asyncio worker with the deadlines a public endpoint needs, and JSON errors.

gunicorn's ``asgi`` worker reads and writes every connection on one event loop, so a slow
client costs a connection, not a request thread (``serving.bridge`` runs the app on whole
requests). What it lacks, ``ServingProtocol`` adds, each bound by ``--client-timeout``:

- a request head (from the connection's opening, or the first byte of a later request) must
  be complete in time, or the connection is closed without an answer;
- a client that stops reading its answer is hung up on;
- at most ``worker_connections`` connections per worker; the next ones get a 503 ``busy``.

gunicorn's own error answers (malformed request line, oversized headers...) are JSON
``{"error", "message"}`` like the app's. ``ServingWorker.retire`` is the bridge's
``on_stuck``: the worker stops accepting, closes its idle kept-alive connections, lets its other
requests finish (``graceful_timeout``), and exits without waiting for the thread that is stuck,
so that gunicorn starts a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
from http import HTTPStatus

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

log = logging.getLogger("serving")


class ServingProtocol(ASGIProtocol):
    """One HTTP/1.1 connection, with head and write deadlines (see the module docstring)."""

    def connection_made(self, transport) -> None:
        self._head_timer = self._write_timer = None
        self.worker.connections.add(self)
        super().connection_made(transport)
        if self.worker.nr_conns > self.worker.worker_connections:
            self._send_error_response(503, f"this worker holds {self.worker.worker_connections} connections, "
                                           "its most; retry shortly")
            self._hang_up()
            return
        self._arm_head_timer()

    @property
    def _client_timeout(self) -> float:
        return self.worker.client_timeout

    def _arm_head_timer(self) -> None:
        self._head_timer = self.worker.loop.call_later(self._client_timeout, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        log.warning("hung up on %s: no complete request head within %g s (--client-timeout)",
                    self.transport.get_extra_info("peername"), self._client_timeout)
        self._hang_up()

    def _hang_up(self) -> None:
        self._keepalive_timeout()  # gunicorn's: close the transport and wake the connection's task

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self._current_request is None and not self._closed:
            self._arm_head_timer()  # the first bytes of a request after an idle kept-alive spell
        super().data_received(data)

    def _feed_callback_parser(self, data: bytes) -> bool:
        try:
            return super()._feed_callback_parser(data)
        except ValueError as exc:
            # gunicorn 27.0.1's parser calls int() on a Content-Length of any length: past Python's
            # digit limit that raises here, and asyncio would drop the connection with a traceback.
            self._send_error_response(400, "malformed request head: a number in it is too long to read"
                                      if "integer string conversion" in str(exc) else f"malformed request head: {exc}")
            self._close_transport()
            return False

    def _on_headers_complete(self):
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        return super()._on_headers_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.worker.loop.call_later(self._client_timeout, self._reader_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _reader_late(self) -> None:
        self._write_timer = None
        log.warning("hung up on %s: it read none of its answer for %g s (--client-timeout)",
                    self.transport.get_extra_info("peername"), self._client_timeout)
        self.transport.abort()  # close() would wait for the unread answer to drain

    @property
    def idle(self) -> bool:
        """Kept alive after an answer, with no byte of a next request yet."""
        return self._awaiting_request and self.req_count > 1 and self._head_timer is None

    def connection_lost(self, exc) -> None:
        self.worker.connections.discard(self)
        for timer in (self._head_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._write_timer = None
        super().connection_lost(exc)
        if self._flow_control is not None:
            self._flow_control.resume_writing()  # release a send() waiting to write: it sees the close

    def _send_error_response(self, status: int, message: str, extra_headers=()) -> None:
        """gunicorn's own error answers, as JSON ``{"error", "message"}`` like the app's."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        code = "busy" if status == 503 else phrase.lower().replace(" ", "_").replace("-", "_")
        body = json.dumps({"error": code, "message": message or phrase}, separators=(",", ":")).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"{extra}Connection: close\r\n\r\n")
        self._safe_write(head.encode("latin-1") + body)


class ServingWorker(gasgi.ASGIWorker):
    """gunicorn's asyncio worker serving ``ServingProtocol`` connections."""

    stuck = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections: set[ServingProtocol] = set()

    def init_process(self) -> None:
        # gunicorn's worker builds its connections from this module-level name; this process only.
        gasgi.ASGIProtocol = ServingProtocol
        self.client_timeout = self.app.client_timeout
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.asgi.on_stuck = self.retire

    def retire(self, reason: str) -> None:
        """A request thread is stuck: stop taking requests, finish the others, and exit (see run)."""
        if not self.stuck:
            log.error("%s; replacing this worker (pid %d)", reason, os.getpid())
        self.stuck, self.alive = True, False
        # Idle kept-alive connections would hold the exit for graceful_timeout: their clients
        # reconnect, to another worker or to this one's successor.
        for connection in [c for c in self.connections if c.idle]:
            connection._hang_up()

    def run(self) -> None:
        super().run()
        if self.stuck:
            # A normal exit would wait for the stuck thread (Python joins request threads at exit).
            log.info("worker %d exits, leaving its stuck request thread behind", os.getpid())
            logging.shutdown()
            os._exit(0)
