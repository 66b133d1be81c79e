"""Lambda's execution model on one machine: one process per execution environment.

:class:`FunctionPool` runs one function of the template. Each invocation gets an execution
environment that serves one request at a time; an idle one is reused (warm), else a new one is
created on demand (cold: a new ``python local_stack/bootstrap.py`` process that imports the
handler with the function's environment), up to the function's reserved concurrency. Beyond it
Lambda throttles, and so does the pool (:class:`FunctionThrottled`, which API Gateway answers as an
integration failure). ``concurrency`` caps the environments lower for a small machine: then a
request waits for one to be free (bounded by the integration's timeout), since in AWS another
environment would have served it at once.

The template's timeout is enforced: an invocation still running at it is stopped (its process is
killed, and the next request gets a fresh environment, as Lambda resets an environment after a
timeout) and reported as the failed invocation it is in AWS. An environment that dies mid-request
(the OOM killer, ``kill -9``, a crash in native code) fails that request the same way, and is
replaced on demand. Each invocation is logged as in Lambda: START, the function's output, END,
then the REPORT line with its duration, the function's memory size, the environment's peak
memory and, on a cold start, the init duration.

The function sees the environment Lambda gives it: the template's variables (references mapped to
local values by ``local_stack.template``), Lambda's own (``AWS_LAMBDA_FUNCTION_NAME``, ``_HANDLER``,
``LAMBDA_TASK_ROOT``...), dummy credentials, and every AWS endpoint pointed at a closed local port
unless the local stack maps it (the model server), so no call ever leaves this machine.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local_stack.bootstrap import END_MARKER
from local_stack.template import REGION, LambdaFunction

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
MAX_PAYLOAD_BYTES = 6_291_556  # Lambda's limit on a synchronous invocation's event and response
INIT_TIMEOUT_S = 10.0  # Lambda's limit on an on-demand environment's init phase
DEFAULT_CONCURRENCY = 10  # local cap when the function reserves nothing (an account's pool is 1,000)
MAX_MESSAGE_BYTES = 2 * MAX_PAYLOAD_BYTES + (1 << 16)  # one answer from the bootstrap, JSON-escaped, at most
LOG_LINE_BYTES = 1 << 16  # a longer line of the function's output is printed in pieces
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens, a call fails at once
_SIGNAL_WORDS = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGSEGV: "segmentation fault",
                 signal.SIGABRT: "aborted", signal.SIGBUS: "bus error"}


class InvocationRefused(Exception):
    """Lambda did not run the function (API Gateway answers ``INTEGRATION_FAILURE``)."""


class FunctionThrottled(InvocationRefused):
    """Every environment the function may have is busy: Lambda's 429 TooManyRequestsException."""


class IntegrationTimedOut(Exception):
    """No answer within the integration's timeout (API Gateway answers ``INTEGRATION_TIMEOUT``)."""


class FunctionFailed(Exception):
    """The invocation failed: the error payload Lambda returns (``errorMessage``, ``errorType``...)."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(error.get("errorMessage", "the function failed"))
        self.error = error


class _Died(Exception):
    pass


class _TimedOut(Exception):
    pass


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe_exit(code: int | None) -> str:
    """An exit status as Lambda words it: ``signal: killed``, ``exit status 1``."""
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"signal: {_SIGNAL_WORDS.get(signal.Signals(-code), signal.Signals(-code).name)}"
        except ValueError:
            return f"signal: {-code}"
    return f"exit status {code}"


def function_environment(function: LambdaFunction, local: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of ``function``'s processes: Lambda's variables, ``local`` endpoints, the template's."""
    unmapped = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        # Every AWS service at a closed port, unless mapped below; no configuration or credentials
        # of this machine's user are read.
        "AWS_ENDPOINT_URL": CLOSED_PORT_URL,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # X-Ray is not emulated: its SDK is told so, rather than sending segments to no daemon.
        "AWS_XRAY_SDK_ENABLED": "false",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # the task root is read-only in Lambda: cdk.out stays as synthesized
    }
    reserved = {  # the variables Lambda sets itself; a function cannot override them
        "_HANDLER": function.handler,
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local",  # the function's role, in AWS; any signature is fine locally
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "LOCAL_STACK_FUNCTION_ARN": function.arn,
    }
    return {**unmapped, **dict(local or {}), **function.environment, **reserved}


class ExecutionEnvironment:
    """One environment: a bootstrap process, its two pipes, and its log echoed with a prefix."""

    def __init__(self, number: int, function: LambdaFunction, environment: Mapping[str, str],
                 log: Callable[[str], None], python: str):
        self.number, self.function, self.environment = number, function, dict(environment)
        self.log, self.python = log, python
        self.process: subprocess.Popen[bytes] | None = None
        self._requests = self._responses = -1
        self._buffer = b""
        self._pump: threading.Thread | None = None
        self._ends: dict[str, threading.Event] = {}  # request id -> its output has all been printed
        self.init_ms: float | None = None

    @property
    def started(self) -> bool:
        return self.process is not None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sound(self) -> bool:
        """Whether this idle environment can take a request: running, and its answers' pipe not at
        its end (an idle bootstrap writes nothing, so anything readable is the end of a dead one)."""
        if not self.alive:
            return False
        try:
            return not select.select([self._responses], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        child_requests, self._requests = os.pipe()
        self._responses, child_responses = os.pipe()
        env = dict(self.environment, AWS_LAMBDA_LOG_STREAM_NAME=f"local/environment-{self.number}")
        try:
            self.process = subprocess.Popen(
                [self.python, str(BOOTSTRAP), str(child_requests), str(child_responses)],
                cwd=self.function.code_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, pass_fds=(child_requests, child_responses), start_new_session=True)
        finally:
            os.close(child_requests)
            os.close(child_responses)
        self.log(f"INIT_START Runtime Version: {self.function.runtime} (here: Python {self.function.python_version})"
                 f"\tEnvironment: {self.number} (pid {self.process.pid})")
        self._pump = threading.Thread(target=self._echo, args=(self.process,), name=f"lambda-{self.number}-log",
                                      daemon=True)
        self._pump.start()

    def _echo(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        stdout = process.stdout
        for line in iter(lambda: stdout.readline(LOG_LINE_BYTES), b""):  # a line without end is cut, not hoarded
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text.startswith(END_MARKER):
                ended = self._ends.pop(text.removeprefix(END_MARKER), None)
                if ended is not None:
                    ended.set()
                continue
            self.log(text)

    def output_printed(self, request_id: str) -> threading.Event:
        """An event set once everything the invocation ``request_id`` printed has been logged."""
        return self._ends.setdefault(request_id, threading.Event())

    def init(self, deadline: float) -> float:
        """Wait for the handler's import; its duration in ms, or FunctionFailed with Lambda's init error."""
        try:
            message = self._read(deadline)
        except _TimedOut:
            self.kill()
            raise FunctionFailed({"errorType": "Runtime.InitTimeout",
                                  "errorMessage": f"init did not finish within {INIT_TIMEOUT_S:g} s"}) from None
        except _Died as exc:
            self.kill()
            raise FunctionFailed({"errorType": "Runtime.ExitError",
                                  "errorMessage": f"Runtime exited with error: {exc}"}) from None
        if message.get("type") != "ready":
            error = message.get("error") or {"errorType": "Runtime.Unknown", "errorMessage": "init failed"}
            self.log(f"INIT_REPORT Phase: init\tStatus: error\tError Type: {error.get('errorType')}")
            self.log(json.dumps(error))
            self.kill()
            raise FunctionFailed(error)
        self.init_ms = float(message["initMs"])
        return self.init_ms

    def invoke(self, request: bytes, deadline: float) -> dict[str, Any]:
        """Send one invocation (a JSON line) and wait for its answer until ``deadline`` (monotonic)."""
        view = memoryview(request)
        try:
            while view:
                ready = select.select([], [self._requests], [], max(0.0, deadline - time.monotonic()))[1]
                if not ready:
                    raise _TimedOut()
                view = view[os.write(self._requests, view[: 1 << 16]):]
        except OSError:  # the read end is gone: the process died
            raise _Died(describe_exit(self._exit_code())) from None
        return self._read(deadline)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TimedOut()
            if not select.select([self._responses], [], [], remaining)[0]:
                continue
            chunk = os.read(self._responses, 1 << 16)
            if not chunk:
                raise _Died(describe_exit(self._exit_code()))
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE_BYTES:  # the bootstrap never sends this much: a broken one
                raise _Died("an answer larger than any Lambda may give")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _exit_code(self) -> int | None:
        assert self.process is not None
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        """Kill the environment's processes, leaving its pipes to the thread that uses them (which
        then sees the end of the answers' pipe): closing a descriptor another thread waits on could
        hand that thread whatever is opened next under the same number."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """Stop the environment and whatever it started (its own process group), and close its pipes:
        only by the thread that owns the environment (the one invoking it, or the pool when idle)."""
        if self.process is None:
            return
        self.terminate()
        self.process.wait()
        for fd in (self._requests, self._responses):
            try:
                os.close(fd)
            except OSError:
                pass
        self._requests = self._responses = -1
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(timeout=2)


class FunctionPool:
    """The execution environments of one function, created on demand up to its concurrency."""

    def __init__(self, function: LambdaFunction, local_endpoints: Mapping[str, str] | None = None, *,
                 concurrency: int | None = None, log: Callable[[str], None] = _log, python: str | None = None):
        self.function = function
        self.environment = function_environment(function, local_endpoints or {})
        reserved = function.reserved_concurrency
        caps = [c for c in (concurrency, reserved) if c is not None]
        self.limit = min(caps) if caps else DEFAULT_CONCURRENCY
        if self.limit < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.limit}")
        # At the reserved concurrency Lambda throttles; under a local cap a request waits instead.
        self.throttles = reserved is not None and self.limit == reserved
        self.log, self.python = log, python or function.python
        self.cold_starts = 0
        self._cond = threading.Condition()
        self._idle: list[ExecutionEnvironment] = []
        self._all: set[ExecutionEnvironment] = set()
        self._numbers = 0
        self._closed = False

    @property
    def environments(self) -> int:
        """How many environments exist now (busy or idle)."""
        with self._cond:
            return len(self._all)

    def pids(self) -> list[int]:
        with self._cond:
            return [env.pid for env in self._all if env.started]

    def invoke(self, event: Any, *, request_id: str, integration_timeout_s: float | None = None) -> str:
        """Run one invocation; the handler's return value as Lambda serializes it (JSON text).

        Raises FunctionFailed (the error payload), FunctionThrottled or InvocationRefused (Lambda
        did not run it), IntegrationTimedOut (no answer within ``integration_timeout_s``).
        """
        started = time.monotonic()
        give_up = math.inf if integration_timeout_s is None else started + integration_timeout_s
        body = json.dumps(event)
        if len(body.encode()) > MAX_PAYLOAD_BYTES:
            raise InvocationRefused(f"the event is over Lambda's {MAX_PAYLOAD_BYTES:,}-byte payload limit")
        env = self._acquire(give_up)
        warm_and_in_time = env.started and time.monotonic() + self.function.timeout_s <= give_up
        if give_up == math.inf or warm_and_in_time:  # the function's own timeout comes first
            return self._run(env, request_id, body)
        # The integration may give up first: API Gateway answers 504 while the function goes on
        # (and keeps its environment busy) until it returns or reaches its own timeout.
        future: concurrent.futures.Future[str] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(self._run(env, request_id, body))
            except BaseException as exc:  # handed to the waiting request
                future.set_exception(exc)

        threading.Thread(target=run, name=f"invoke-{request_id[:8]}", daemon=True).start()
        try:
            return future.result(timeout=max(0.0, give_up - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise IntegrationTimedOut(request_id) from None

    def _acquire(self, give_up: float) -> ExecutionEnvironment:
        with self._cond:
            while True:
                if self._closed:
                    raise InvocationRefused("the local stack is stopping")
                while self._idle:
                    env = self._idle.pop()  # the most recently used: Lambda favours warm environments
                    if env.sound():
                        return env
                    env.kill()  # died while idle: replaced, as Lambda would
                    self._all.discard(env)
                if len(self._all) < self.limit:
                    self._numbers += 1
                    env = ExecutionEnvironment(self._numbers, self.function, self.environment,
                                               self._prefixed(self._numbers), self.python)
                    self._all.add(env)
                    return env
                if self.throttles:
                    raise FunctionThrottled(f"{self.function.logical_id} is at its reserved concurrency "
                                            f"({self.limit})")
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    raise IntegrationTimedOut("no environment became free in time")
                self._cond.wait(min(remaining, 1.0))

    def _release(self, env: ExecutionEnvironment) -> None:
        with self._cond:
            if env.alive and not self._closed:
                self._idle.append(env)
            else:
                if env.started and env.alive:
                    env.kill()
                self._all.discard(env)
            self._cond.notify()

    def _prefixed(self, number: int) -> Callable[[str], None]:
        return lambda message: self.log(f"[lambda {number}] {message}")

    def _run(self, env: ExecutionEnvironment, request_id: str, event: str) -> str:
        try:
            init_ms = None
            if not env.started:
                self.cold_starts += 1
                env.start()
                init_ms = env.init(time.monotonic() + INIT_TIMEOUT_S)
            return self._call(env, request_id, event, init_ms)
        finally:
            self._release(env)

    def _call(self, env: ExecutionEnvironment, request_id: str, event: str, init_ms: float | None) -> str:
        timeout = self.function.timeout_s
        deadline = time.monotonic() + timeout
        header = json.dumps({"requestId": request_id, "deadlineMs": int((time.time() + timeout) * 1000),
                             "functionArn": self.function.arn})
        request = f'{header[:-1]}, "event": {event}}}\n'.encode()
        printed = env.output_printed(request_id)
        env.log(f"START RequestId: {request_id} Version: $LATEST")
        try:
            reply = env.invoke(request, deadline)
        except _TimedOut:
            env.kill()  # Lambda stops the run and resets the environment
            self._report(env, request_id, timeout * 1000, None, init_ms, "timeout")
            message = f"{time.strftime('%Y-%m-%dT%H:%M:%S')}Z {request_id} Task timed out after {timeout:.2f} seconds"
            env.log(message)
            raise FunctionFailed({"errorType": "Sandbox.Timedout", "errorMessage": message}) from None
        except _Died as exc:
            env.kill()
            self._report(env, request_id, None, None, init_ms, "error")
            message = f"RequestId: {request_id} Error: Runtime exited with error: {exc}"
            env.log(message)
            raise FunctionFailed({"errorType": "Runtime.ExitError", "errorMessage": message}) from None
        printed.wait(1.0)  # the function's output first, then its REPORT line, as in Lambda's log
        duration = float(reply.get("durationMs", 0.0))
        rss_mb = int(reply.get("maxRssKb", 0)) / 1024
        if reply.get("type") != "result":
            error = reply.get("error") or {"errorType": "Runtime.Unknown", "errorMessage": "no result"}
            self._report(env, request_id, duration, rss_mb, init_ms, "error")
            env.log(json.dumps({**error, "requestId": request_id}))
            raise FunctionFailed(error)
        payload = str(reply["payload"])
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            self._report(env, request_id, duration, rss_mb, init_ms, "error")
            raise FunctionFailed({"errorType": "Function.ResponseSizeTooLarge",
                                  "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                                                  f"({MAX_PAYLOAD_BYTES} bytes)."})
        self._report(env, request_id, duration, rss_mb, init_ms, None)
        return payload

    def _report(self, env: ExecutionEnvironment, request_id: str, duration_ms: float | None, rss_mb: float | None,
                init_ms: float | None, status: str | None) -> None:
        env.log(f"END RequestId: {request_id}")
        parts = [f"REPORT RequestId: {request_id}"]
        if duration_ms is not None:
            parts += [f"Duration: {duration_ms:.2f} ms", f"Billed Duration: {math.ceil(duration_ms)} ms"]
        parts.append(f"Memory Size: {self.function.memory_mb} MB")
        if rss_mb is not None:
            parts.append(f"Max Memory Used: {math.ceil(rss_mb)} MB")
        if init_ms is not None:
            parts.append(f"Init Duration: {init_ms:.2f} ms")
        if status:
            parts.append(f"Status: {status}")
        env.log("\t".join(parts))
        if rss_mb is not None and rss_mb > self.function.memory_mb:
            env.log(f"WARNING: environment {env.number} uses {rss_mb:.0f} MB, over the function's "
                    f"{self.function.memory_mb} MB: Lambda would stop it")

    def close(self) -> None:
        """Stop every environment, busy or idle; later invocations are refused."""
        with self._cond:
            self._closed = True
            idle, busy = list(self._idle), [env for env in self._all if env not in self._idle]
            self._idle.clear()
            self._cond.notify_all()
        for env in idle:
            env.kill()
        for env in busy:  # their invocations fail (the runtime exited) and release them
            env.terminate()
        for env in busy:
            if env.process is not None:
                try:
                    env.process.wait(timeout=10)  # SIGKILL: a bound on the kernel, not on the handler
                except subprocess.TimeoutExpired:
                    pass
