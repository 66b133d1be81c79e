"""The model server (``python -m serving``) as a child process: start, wait for /ping, stop.

The child runs in its own process group, so stopping it also stops any workers it forked,
and on Linux it is told to exit if this process dies without cleaning up (PR_SET_PDEATHSIG).
Its output is echoed with a ``[serving]`` prefix and the last lines are kept, so a server that
dies at start-up is reported with the reason it printed.
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ModelServerError(RuntimeError):
    """The model server did not start, or stopped answering."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _exit_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ModelServer:
    """``python -m serving --model-dir DIR --host HOST --port PORT --workers N`` as a child process."""

    def __init__(self, model_dir: str | Path, port: int, host: str = "127.0.0.1", workers: int = 1,
                 tail_lines: int = 40):
        self.model_dir = Path(model_dir)
        self.workers = workers
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.process: subprocess.Popen[str] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._pump: threading.Thread | None = None

    def start(self) -> "ModelServer":
        command = [sys.executable, "-m", "serving", "--model-dir", str(self.model_dir),
                   "--host", self.host, "--port", str(self.port), "--workers", str(self.workers)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, text=True, errors="replace",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_exit_with_parent,
        )
        self._pump = threading.Thread(target=self._echo_output, name="serving-output", daemon=True)
        self._pump.start()
        return self

    def _echo_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._tail.append(line)
            sys.stderr.write(f"[serving] {line}")

    def output_tail(self) -> str:
        if self._pump is not None:
            self._pump.join(timeout=2)  # let the last lines of a dead server arrive
        return "".join(self._tail).rstrip() or "(no output)"

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll ``GET /ping`` until it answers 200; raise with the server's output if it dies."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ModelServerError(
                    f"the model server (python -m serving) exited with code {code} before it was ready. "
                    f"Its last output:\n{self.output_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or still loading the model
            if time.monotonic() > deadline:
                raise ModelServerError(
                    f"the model server did not answer GET {self.url}/ping within {timeout:.0f} s. "
                    f"Its last output:\n{self.output_tail()}"
                )
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server's process group, then SIGKILL whatever is left after ``grace`` s."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session made the child its group's leader
        try:
            if self.process.poll() is None:
                os.killpg(pgid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
            os.killpg(pgid, signal.SIGKILL)  # workers the server left behind, if any
        except ProcessLookupError:
            pass  # the whole group has already exited
        self.process.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)
