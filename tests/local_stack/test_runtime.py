"""Lambda's execution model, locally: real environment processes running the hostile handler.

No timed assertions: a request that must be in flight signals it with a file (``started``) and
waits for one (``release``); every wait below is a generous bound on a hang.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from local_stack.lambda_runtime import (
    CLOSED_PORT_URL,
    FunctionFailed,
    FunctionPool,
    FunctionThrottled,
    IntegrationTimedOut,
    InvocationRefused,
)
from local_stack.template import LambdaFunction
from tests.local_stack.conftest import HANDLERS

HANG_BOUND_S = 60.0


def function(**overrides) -> LambdaFunction:
    settings = dict(logical_id="Faults", name="faults", handler="faults.handler", runtime="python3.11", timeout_s=20,
                    memory_mb=128, reserved_concurrency=None, code_dir=HANDLERS,
                    environment={"FROM_TEMPLATE": "yes"}, log_group="/aws/lambda/faults")
    settings.update(overrides)
    return LambdaFunction(**settings)


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def matching(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


@pytest.fixture
def pool_of():
    pools = []

    def make(log=None, **kwargs):
        concurrency = kwargs.pop("concurrency", None)
        local = kwargs.pop("local", None)
        pool = FunctionPool(function(**kwargs), local, concurrency=concurrency, log=log or Log())
        pools.append(pool)
        return pool
    yield make
    for pool in pools:
        pool.close()


def call(pool, action="ok", request_id="r", **fields):
    payload = pool.invoke({"body": json.dumps({"action": action, **fields})}, request_id=request_id)
    return json.loads(json.loads(payload)["body"])


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + HANG_BOUND_S
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


class InFlight:
    """A request in its own thread that has started (its ``started`` file exists) and waits for ``release``."""

    def __init__(self, pool, tmp_path: Path, name: str, **fields):
        self.started, self.release = tmp_path / f"{name}.started", tmp_path / f"{name}.release"
        self.result: object = None
        body = {"action": "wait", "started": str(self.started), "release": str(self.release), **fields}

        def run():
            try:
                self.result = pool.invoke({"body": json.dumps(body)}, request_id=name)
            except Exception as exc:  # handed to the test
                self.result = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        wait_for(self.started)
        self.pid = int(self.started.read_text())

    def finish(self):
        self.release.touch()
        self.thread.join(HANG_BOUND_S)
        assert not self.thread.is_alive()
        return self.result


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone(pid: int) -> bool:
    """Dead with every thread (a zombie whose other threads still exit is not yet waitable)."""
    try:
        return not alive(pid) and os.listdir(f"/proc/{pid}/task") == [str(pid)]
    except OSError:
        return True


# --- cold and warm ----------------------------------------------------------------------------------

def test_a_cold_start_then_warm_invocations_in_the_same_environment(pool_of):
    log = Log()
    pool = pool_of(log)
    first, second = call(pool, request_id="one"), call(pool, request_id="two")
    assert first["pid"] == second["pid"] and (first["calls"], second["calls"]) == (1, 2)
    assert pool.cold_starts == 1 and pool.environments == 1
    (init,) = log.matching("INIT_START")
    assert init.startswith("[lambda 1] INIT_START Runtime Version: python3.11") and f"pid {first['pid']}" in init
    one, two = log.matching("REPORT RequestId: one")[0], log.matching("REPORT RequestId: two")[0]
    assert "Init Duration: " in one and "Init Duration" not in two  # Lambda reports init on a cold start only
    for line in (one, two):
        assert "\tDuration: " in line and "Billed Duration: " in line and "Memory Size: 128 MB" in line
        assert "Max Memory Used: " in line
    assert log.matching("faults: ok (call 1")  # the handler's own output is the function's log
    # Lambda's order for each invocation: START, the function's output, END, REPORT.
    order = [next(i for i, line in enumerate(log.lines) if text in line)
             for text in ("START RequestId: one Version: $LATEST", "faults: ok (call 1", "END RequestId: one",
                          "REPORT RequestId: one")]
    assert order == sorted(order), log.lines


def test_concurrent_requests_get_environments_of_their_own_up_to_the_reserved_concurrency(pool_of, tmp_path):
    pool = pool_of(reserved_concurrency=3)
    flights = [InFlight(pool, tmp_path, f"r{i}") for i in range(3)]
    assert len({f.pid for f in flights}) == 3 and pool.environments == 3
    with pytest.raises(FunctionThrottled, match="reserved concurrency"):
        call(pool)  # Lambda throttles at once: no queue
    for flight in flights:
        assert isinstance(flight.finish(), str)
    assert call(pool)["pid"] in {f.pid for f in flights}  # warm again, no fourth environment
    assert pool.cold_starts == 3


def test_under_a_local_cap_requests_wait_for_a_free_environment(pool_of, tmp_path):
    pool = pool_of(reserved_concurrency=10, concurrency=1)
    assert (pool.limit, pool.throttles) == (1, False)
    flight = InFlight(pool, tmp_path, "first")
    waiting: list = []
    second = threading.Thread(target=lambda: waiting.append(call(pool, request_id="second")), daemon=True)
    second.start()
    flight.finish()
    second.join(HANG_BOUND_S)
    assert waiting and waiting[0]["pid"] == flight.pid  # served by the same environment, once it was free
    assert pool.environments == 1


def test_a_request_waiting_for_a_capped_environment_gives_up_at_the_integration_timeout(pool_of, tmp_path):
    pool = pool_of(concurrency=1)
    flight = InFlight(pool, tmp_path, "first")
    with pytest.raises(IntegrationTimedOut):
        pool.invoke({"body": "{}"}, request_id="late", integration_timeout_s=0.2)
    flight.finish()


# --- hostile handlers ---------------------------------------------------------------------------------

def test_a_handler_past_its_timeout_is_stopped_and_its_environment_replaced(pool_of, tmp_path):
    log = Log()
    pool = pool_of(log, timeout_s=1)
    started = tmp_path / "started"
    with pytest.raises(FunctionFailed) as failure:
        call(pool, "wait", request_id="slow", started=str(started), release=str(tmp_path / "never"))
    assert failure.value.error["errorType"] == "Sandbox.Timedout"
    assert "slow Task timed out after 1.00 seconds" in failure.value.error["errorMessage"]
    pid = int(started.read_text())
    assert not alive(pid)  # stopped, not left running
    assert "Status: timeout" in log.matching("REPORT RequestId: slow")[0]
    assert call(pool)["pid"] != pid and pool.cold_starts == 2  # a fresh environment


def test_an_integration_that_gives_up_first_leaves_the_function_running_to_its_own_timeout(pool_of, tmp_path):
    pool = pool_of(timeout_s=30, reserved_concurrency=1)
    started, release = tmp_path / "started", tmp_path / "release"
    body = json.dumps({"action": "wait", "started": str(started), "release": str(release)})
    call(pool)  # warm: the timeout race starts with the handler
    with pytest.raises(IntegrationTimedOut):
        pool.invoke({"body": body}, request_id="long", integration_timeout_s=0.5)
    wait_for(started)
    with pytest.raises(FunctionThrottled):
        call(pool)  # the environment is still busy with the abandoned request, as in AWS
    release.touch()
    deadline = time.monotonic() + HANG_BOUND_S
    while True:
        try:
            assert call(pool)["pid"] == int(started.read_text())
            break
        except FunctionThrottled:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.parametrize("action, error_type", [
    ("crash", "RuntimeError"),
    ("unserializable", "Runtime.MarshalError"),
    ("huge", "Function.ResponseSizeTooLarge"),
])
def test_a_handler_error_is_the_error_payload_and_the_environment_stays_warm(pool_of, action, error_type):
    log = Log()
    pool = pool_of(log)
    pid = call(pool)["pid"]
    with pytest.raises(FunctionFailed) as failure:
        call(pool, action, request_id="bad")
    assert failure.value.error["errorType"] == error_type
    if action == "crash":
        assert failure.value.error["errorMessage"] == "the handler crashed on purpose"
        assert any("faults.py" in frame for frame in failure.value.error["stackTrace"])
    assert "Status: error" in log.matching("REPORT RequestId: bad")[0]
    assert call(pool)["pid"] == pid


@pytest.mark.parametrize("how", ["kills itself", "killed from outside", "exits"])
def test_an_environment_that_dies_mid_request_fails_that_request_and_is_replaced(pool_of, tmp_path, how):
    log = Log()
    pool = pool_of(log)
    if how == "killed from outside":
        flight = InFlight(pool, tmp_path, "victim")
        os.kill(flight.pid, signal.SIGKILL)
        flight.thread.join(HANG_BOUND_S)
        failure, pid = flight.result, flight.pid
    else:
        pid = call(pool)["pid"]
        try:
            call(pool, "kill" if how == "kills itself" else "exit", request_id="victim")
            failure = None
        except FunctionFailed as exc:
            failure = exc
    assert isinstance(failure, FunctionFailed), failure
    assert failure.error["errorType"] == "Runtime.ExitError"
    expected = "signal: killed" if how != "exits" else "exit status 3"
    assert f"RequestId: victim Error: Runtime exited with error: {expected}" == failure.error["errorMessage"]
    assert call(pool)["pid"] != pid and pool.environments == 1


def test_an_idle_environment_killed_between_requests_is_replaced_unnoticed(pool_of):
    pool = pool_of()
    pid = call(pool)["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + HANG_BOUND_S
    while not gone(pid):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert call(pool)["pid"] != pid


@pytest.mark.parametrize("handler, error_type, message", [
    ("broken_import.handler", "KeyError", "a setting the module needs at import"),
    ("syntax_error.handler", "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax_error'"),
    ("no_such_module.handler", "Runtime.ImportModuleError", "Unable to import module 'no_such_module'"),
    ("faults.no_such_function", "Runtime.HandlerNotFound", "Handler 'no_such_function' missing on module 'faults'"),
    ("handler", "Runtime.MalformedHandlerName", "Bad handler 'handler'"),
])
def test_an_init_failure_fails_the_request_and_is_tried_again_next_time(pool_of, handler, error_type, message):
    log = Log()
    pool = pool_of(log, handler=handler)
    for attempt in range(2):
        with pytest.raises(FunctionFailed) as failure:
            call(pool, request_id=f"attempt{attempt}")
        assert failure.value.error["errorType"] == error_type and message in failure.value.error["errorMessage"]
    assert pool.cold_starts == 2 and pool.environments == 0
    assert len(log.matching("INIT_REPORT Phase: init\tStatus: error")) == 2


def test_an_event_over_lambdas_payload_limit_is_refused_before_any_environment(pool_of):
    pool = pool_of()
    with pytest.raises(InvocationRefused, match="payload limit"):
        pool.invoke({"body": "x" * (6_291_556 + 1)}, request_id="big")
    assert pool.environments == 0


# --- what the function sees ---------------------------------------------------------------------------

def test_the_function_sees_lambdas_environment_and_the_templates_not_this_process(pool_of, monkeypatch):
    monkeypatch.setenv("LOCAL_STACK_TEST_SECRET", "must not leak")
    monkeypatch.setenv("AWS_PROFILE", "someone")
    pool = pool_of(memory_mb=512, timeout_s=7, local={"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:1"})
    seen = call(pool, "env", request_id="look")
    env = seen["environ"]
    assert "LOCAL_STACK_TEST_SECRET" not in env and "AWS_PROFILE" not in env
    assert env["FROM_TEMPLATE"] == "yes" and env["_HANDLER"] == "faults.handler"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "faults" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["LAMBDA_TASK_ROOT"] == str(HANDLERS) and env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_ENDPOINT_URL"] == CLOSED_PORT_URL  # no AWS call leaves this machine
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://127.0.0.1:1"
    assert env["AWS_CONFIG_FILE"] == os.devnull and env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert seen["cwd"] == str(HANDLERS) and seen["sys_path"][0] == str(HANDLERS)
    assert not any(path.endswith("local_stack") for path in seen["sys_path"])
    context = seen["context"]
    assert context["aws_request_id"] == "look" and context["memory_limit_in_mb"] == "512"
    assert context["function_name"] == "faults" and context["arn"].endswith(":function:faults")
    assert 0 < context["remaining_ms"] <= 7000 and context["log_group_name"] == "/aws/lambda/faults"


def test_close_stops_busy_and_idle_environments(pool_of, tmp_path):
    pool = pool_of(reserved_concurrency=2)
    idle = call(pool)["pid"]
    flight = InFlight(pool, tmp_path, "busy")
    pool.close()
    assert not alive(idle) and not alive(flight.pid)
    flight.thread.join(HANG_BOUND_S)
    assert isinstance(flight.result, FunctionFailed)
    with pytest.raises(InvocationRefused):
        call(pool)
