"""The model server (``python -m serving``) as a child process: start, wait for /ping, stop,
and restart it when it dies.

The child runs in its own process group, so stopping it also stops any workers it forked,
and on Linux it is told to exit if this process dies without cleaning up (PR_SET_PDEATHSIG).
Its output is echoed with a ``[serving]`` prefix and the last lines are kept, so a server that
dies is reported with the reason it printed.

``Supervisor`` watches the child: when it dies (a crash, the OOM killer, ``kill -9``) it kills
what is left of its process group (orphaned workers would keep the port), logs the exit code
or signal and the last output, and starts it again on the same port, so the handler's endpoint
URL stays valid. Restarts back off exponentially and are bounded by a ``RestartPolicy``; once
the budget is spent it reports, and the stack exits with an error.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ModelServerError(RuntimeError):
    """The model server did not start, or stopped answering."""


def wait_until_answers(url: str, timeout: float, *, exited: Callable[[], int | None] = lambda: None,
                       output: Callable[[], str] = lambda: "", name: str = "the server",
                       cancel: threading.Event | None = None, interval: float = 0.2) -> None:
    """Poll ``GET url`` until it answers 200: the one "start a server and wait for it" of the project.

    Raise ModelServerError, with ``output()`` (the server's last output), when ``exited()``
    reports an exit status first, nothing answers 200 within ``timeout`` s, or ``cancel`` is set.
    """
    deadline = time.monotonic() + timeout
    while True:
        code = exited()
        if code is not None:
            raise ModelServerError(f"{name} {describe_exit(code)} before it was ready. Its last output:\n{output()}")
        try:
            with urllib.request.urlopen(url, timeout=max(1.0, min(10.0, deadline - time.monotonic()))) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException):
            pass  # not listening yet, or still loading the model
        if time.monotonic() > deadline:
            raise ModelServerError(f"{name} did not answer GET {url} within {timeout:g} s. "
                                   f"Its last output:\n{output()}")
        if cancel is not None and cancel.wait(interval):
            raise ModelServerError(f"stopped while waiting for {name}")
        elif cancel is None:
            time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _exit_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(code: int) -> str:
    """``exited with code 3`` or ``was killed by SIGKILL`` for a Popen return code."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ModelServer:
    """``python -m serving --model-dir DIR --host HOST --port PORT --workers N`` as a child process.

    ``code_dir`` holds the ``serving`` package (the image's build context, or this repository) and
    is the process's working directory; ``environment`` adds the container's variables.
    """

    def __init__(self, model_dir: str | Path, port: int, host: str = "127.0.0.1", workers: int = 1,
                 tail_lines: int = 40, code_dir: str | Path = REPO_ROOT, environment: Mapping[str, str] | None = None):
        self.model_dir = Path(model_dir)
        self.code_dir = Path(code_dir)
        self.environment = dict(environment or {})
        self.workers = workers
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.process: subprocess.Popen[str] | None = None
        self._tail_lines = tail_lines
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._pump: threading.Thread | None = None

    def start(self) -> ModelServer:
        """Start a new server process (the last one, if any, must have been stopped or reaped)."""
        command = [sys.executable, "-m", "serving", "--model-dir", str(self.model_dir),
                   "--host", self.host, "--port", str(self.port), "--workers", str(self.workers)]
        env = dict(os.environ, **self.environment, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.code_dir), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            command, cwd=self.code_dir, env=env, text=True, errors="replace",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_exit_with_parent,
        )
        self._tail = collections.deque(maxlen=self._tail_lines)  # this process's output only
        self._pump = threading.Thread(target=self._echo_output, args=(self.process, self._tail),
                                      name="serving-output", daemon=True)
        self._pump.start()
        return self

    @staticmethod
    def _echo_output(process: subprocess.Popen[str], tail: collections.deque[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line)
            sys.stderr.write(f"[serving] {line}")

    def output_tail(self, lines: int | None = None) -> str:
        """The last ``lines`` lines the current (or last) process printed."""
        if self._pump is not None:
            self._pump.join(timeout=2)  # let the last lines of a dead server arrive
        kept = list(self._tail)[-lines:] if lines else list(self._tail)
        return "".join(kept).rstrip() or "(no output)"

    @property
    def pid(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.pid

    def returncode(self) -> int | None:
        """The exit status once the server has exited (negative: the signal that killed it), else
        None; the process is not reaped, so its group id cannot be reused before ``reap``."""
        assert self.process is not None, "start() first"
        if self.process.returncode is not None or not hasattr(os, "waitid"):
            return self.process.poll()
        try:
            info = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped by another thread meanwhile
            return self.process.poll()
        if info is None or info.si_pid == 0:
            return None
        return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status

    def reap(self) -> int:
        """After the server exited: SIGKILL what is left of its process group (workers orphaned
        by a killed master still hold the port), collect its status and let its output drain."""
        assert self.process is not None, "start() first"
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # nothing left in the group
        code = self.process.wait()
        if self._pump is not None:
            self._pump.join(timeout=2)
        return code

    def wait_ready(self, timeout: float = 120.0, cancel: threading.Event | None = None) -> None:
        """Poll ``GET /ping`` until it answers 200; raise with the server's output if it dies,
        does not answer within ``timeout`` s, or ``cancel`` is set."""
        assert self.process is not None, "start() first"
        wait_until_answers(f"{self.url}/ping", timeout, exited=self.returncode, output=self.output_tail,
                           name="the model server (python -m serving)", cancel=cancel)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server's process group, then SIGKILL whatever is left after ``grace`` s."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session made the child its group's leader
        try:
            if self.returncode() is None:
                os.killpg(pgid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        except ProcessLookupError:
            pass  # the whole group has already exited
        self.reap()  # workers the server left behind, if any


@dataclass(frozen=True)
class RestartPolicy:
    """At most ``max_restarts`` restarts in any ``window_s`` seconds; the first after
    ``backoff_s``, each further one after twice the last wait, at most ``max_backoff_s``."""

    max_restarts: int = 5
    window_s: float = 300.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


class RestartBudget:
    """The deaths within the policy's window, and how long to wait before the next restart."""

    def __init__(self, policy: RestartPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy, self.clock = policy, clock
        self.deaths: collections.deque[float] = collections.deque()

    def death(self) -> float | None:
        """Record a death now: the seconds to wait before restarting, or None when the budget is spent.

        Deaths older than the window are forgotten, and the backoff starts over with them."""
        now = self.clock()
        self.deaths.append(now)
        while self.deaths[0] <= now - self.policy.window_s:
            self.deaths.popleft()
        if len(self.deaths) > self.policy.max_restarts:
            return None
        return min(self.policy.backoff_s * 2 ** (len(self.deaths) - 1), self.policy.max_backoff_s)


def _log(message: str) -> None:
    print(f"local_stack: {message}", file=sys.stderr, flush=True)


class Supervisor:
    """Restarts ``server`` on the same port when it dies, within ``policy``; once the budget is
    spent it calls ``on_give_up(message)`` and stops watching.

    Restarts are started from this one thread, and it outlives each server it starts: Linux's
    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process.
    """

    POLL_S = 0.2

    def __init__(self, server: ModelServer, policy: RestartPolicy, on_give_up: Callable[[str], None],
                 ready_timeout: float = 120.0, log: Callable[[str], None] = _log):
        self.server, self.policy, self.on_give_up = server, policy, on_give_up
        self.ready_timeout, self.log = ready_timeout, log
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # held while a server is started, so stop() never misses one
        self._thread = threading.Thread(target=self._watch, name="model-server-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop watching, then stop the current server (no restart can begin after this)."""
        self._stopping.set()
        with self._lock:
            self.server.stop(grace)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        budget = RestartBudget(self.policy)
        window = f"{self.policy.window_s:g} s"
        while not self._stopping.wait(self.POLL_S):
            if self.server.returncode() is None:
                continue
            with self._lock:
                if self._stopping.is_set():
                    return
                pid, code = self.server.pid, self.server.reap()
            tail = self.server.output_tail(lines=15)
            delay = budget.death()
            if delay is None:
                self.on_give_up(f"the model server died {len(budget.deaths)} times in {window} (the last, pid {pid}, "
                                f"{describe_exit(code)}); giving up after {self.restarts} restart(s). "
                                f"Its last output:\n{tail}")
                return
            self.log(f"the model server (pid {pid}) {describe_exit(code)}; restarting it in {delay:g} s "
                     f"(restart {len(budget.deaths)} of at most {self.policy.max_restarts} in {window}). "
                     f"Its last output:\n{tail}")
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.server.start()
                self.restarts += 1
            try:
                self.server.wait_ready(self.ready_timeout, cancel=self._stopping)
            except ModelServerError:
                if self.server.returncode() is None and not self._stopping.is_set():
                    self.log(f"the model server did not answer within {self.ready_timeout:g} s; killing it")
                    with self._lock, contextlib.suppress(ProcessLookupError):
                        os.killpg(self.server.pid, signal.SIGKILL)
                continue  # the next poll finds it dead and counts it
            self.log(f"the model server is answering again on {self.server.url} (pid {self.server.pid})")
