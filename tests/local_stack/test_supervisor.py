"""The local stack restarts a model server that dies, within a budget, and gives up loudly.

The restart budget is plain logic on a fake clock; the rest kills the real ``python -m serving``
child of a real ``python -m local_stack`` and watches ``/predict`` (no timed assertions: every
wait below is a generous bound on a hang).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local_stack.model_server import REPO_ROOT, RestartBudget, RestartPolicy
from tests.support import POSITIVE_REVIEW, LocalStack, children

HANG_BOUND_S = 120.0  # a bound on a hang, not a timing


# -- the budget ----------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_backoff_doubles_up_to_its_cap_then_the_budget_is_spent():
    clock = Clock()
    budget = RestartBudget(RestartPolicy(max_restarts=5, window_s=300, backoff_s=1, max_backoff_s=5), clock)
    delays = []
    for _ in range(5):
        delays.append(budget.death())
        clock.now += 10
    assert delays == [1, 2, 4, 5, 5]
    assert budget.death() is None  # the sixth death within 300 s


def test_deaths_older_than_the_window_are_forgotten():
    clock = Clock()
    budget = RestartBudget(RestartPolicy(max_restarts=2, window_s=60, backoff_s=1, max_backoff_s=30), clock)
    assert budget.death() == 1
    clock.now += 30
    assert budget.death() == 2
    clock.now += 31  # the first death is now over 60 s old
    assert budget.death() == 2
    clock.now += 100  # both old: a fresh start, and the backoff with it
    assert budget.death() == 1


def test_no_restarts_allowed_gives_up_at_the_first_death():
    assert RestartBudget(RestartPolicy(max_restarts=0), Clock()).death() is None


# -- the real stack ------------------------------------------------------------------------------


def model_server_pid(stack: LocalStack) -> int:
    [pid] = [p for p in children(stack.process.pid)
             if b"serving" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return pid


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == pgid and alive(int(entry.name)):
                    members.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return members


def served_model_dir(pid: int) -> Path:
    """The --model-dir of the model server ``pid`` (the model data the stack unpacked from the template)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return Path(argv[argv.index(b"--model-dir") + 1].decode())


def predict(stack: LocalStack) -> int:
    try:
        return requests.post(f"{stack.api_url}/predict", json={"review": POSITIVE_REVIEW}, timeout=30).status_code
    except requests.ConnectionError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["process group", "master only"])
def test_a_killed_model_server_is_restarted_and_predict_recovers(template, tmp_path, kill):
    stack = LocalStack(template, log_path=tmp_path / "stack.log", extra_args=("--restart-backoff", "0.1"))
    with stack:
        assert predict(stack) == 200
        first = model_server_pid(stack)
        workers = set(group_members(first)) - {first}
        if kill == "process group":
            os.killpg(first, signal.SIGKILL)
        else:  # the gunicorn master alone: its orphaned workers still hold the port
            os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + HANG_BOUND_S
        while not ("answering again" in stack.log() and predict(stack) == 200):
            assert stack.process.poll() is None, stack.log()
            assert time.monotonic() < deadline, f"/predict never recovered:\n{stack.log()}"
            time.sleep(0.2)
        second = model_server_pid(stack)
        assert second != first
        assert not any(alive(pid) for pid in workers), "the dead server's workers were left running"
        log = stack.log()
        assert f"the model server (pid {first}) was killed by SIGKILL" in log
        assert "restarting it in 0.1 s (restart 1 of at most 5 in 300 s)" in log
        assert "Its last output:" in log
        assert stack.stop() == 0
    assert not group_members(second), "the restarted server outlived the stack"


@pytest.mark.slow
def test_a_restarted_server_still_exits_if_the_stack_is_killed(template, tmp_path):
    """The restart comes from another thread than the first start: PR_SET_PDEATHSIG, which fires
    when the forking *thread* exits, must still take the new server down with a killed stack."""
    stack = LocalStack(template, log_path=tmp_path / "stack.log", extra_args=("--restart-backoff", "0"))
    with stack:
        os.killpg(model_server_pid(stack), signal.SIGKILL)
        deadline = time.monotonic() + HANG_BOUND_S
        while "answering again" not in stack.log():
            assert stack.process.poll() is None and time.monotonic() < deadline, stack.log()
            time.sleep(0.2)
        second = model_server_pid(stack)
        assert predict(stack) == 200 and alive(second)
        stack.process.kill()
        stack.process.wait()
        while group_members(second) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = group_members(second)
        for pid in left:  # on failure, do not leave them behind
            os.kill(pid, signal.SIGKILL)
        assert not left, "the restarted model server outlived the killed stack"


@pytest.mark.slow
def test_it_gives_up_when_the_server_keeps_dying(template, tmp_path):
    stack = LocalStack(template, log_path=tmp_path / "stack.log",
                       extra_args=("--max-restarts", "2", "--restart-backoff", "0.1"))
    with stack:
        assert predict(stack) == 200
        first = model_server_pid(stack)
        model = served_model_dir(first)
        (model / "model.onnx").write_bytes(b"this is not an ONNX model")  # every restart now dies at start
        os.killpg(first, signal.SIGKILL)
        try:
            code = stack.process.wait(timeout=HANG_BOUND_S)
        except Exception:
            pytest.fail(f"the stack never gave up:\n{stack.log()}")
    log = stack.log()
    assert code == 1, log
    assert log.count("restarting it in") == 2
    assert "local_stack: error: the model server died 3 times in 300 s" in log
    assert "giving up" in log and "model.onnx" in log.split("giving up")[1]
    assert log.rstrip().endswith("Stopped.")


def test_restart_options_are_checked(template):
    for flag, value in [("--max-restarts", "-1"), ("--restart-window", "0"), ("--restart-backoff", "-2")]:
        done = subprocess.run([sys.executable, "-m", "local_stack", "--template", str(template), flag, value],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and flag in done.stderr, done.stderr

