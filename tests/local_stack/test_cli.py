"""``python -m local_stack`` as a user runs it: clear refusals, the printed URL, a clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local_stack.model_server import REPO_ROOT, free_port
from tests.support import LocalStack, write_tiny_model

pytestmark = pytest.mark.slow  # runs the real `python -m local_stack`


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "local_stack", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=180)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited while we looked
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until_gone(pids: set[int], deadline_s: float = 60.0) -> bool:
    """Whether every process in ``pids`` has exited within ``deadline_s`` (a generous bound, not a timing)."""
    deadline = time.monotonic() + deadline_s
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_missing_model_dir_says_to_train(tmp_path):
    result = run_cli("--model-dir", str(tmp_path / "artifacts"), "--port", str(free_port()))
    assert result.returncode == 1
    assert "artifacts does not exist" in result.stderr and "make train" in result.stderr


def test_missing_artifacts_are_named(tmp_path):
    (tmp_path / "featurizer.json").write_text("{}")
    result = run_cli("--model-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 1
    assert "missing model.onnx" in result.stderr and "make train" in result.stderr


def test_a_broken_featurizer_is_reported(tmp_path):
    write_tiny_model(tmp_path)
    (tmp_path / "featurizer.json").write_text('{"format": "something else"}')
    result = run_cli("--model-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 1
    assert "featurizer.json is broken" in result.stderr and "unknown featurizer format" in result.stderr


def test_a_taken_port_is_reported(model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--model-dir", str(model_dir), "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_a_model_server_that_dies_is_reported_with_its_output(tmp_path):
    write_tiny_model(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"this is not an ONNX model")
    result = run_cli("--model-dir", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 1
    assert "the model server (python -m serving) exited with code" in result.stderr
    assert "Its last output:" in result.stderr and "model.onnx" in result.stderr.split("Its last output:")[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_everything(model_dir, tmp_path, sig):
    stack = LocalStack(model_dir, log_path=tmp_path / "stack.log")
    with stack:
        assert requests.get(f"{stack.url}/config.json", timeout=30).status_code == 200
        children = descendants(stack.process.pid)
        assert children, "the model server should run as a child process"
        code = stack.stop(sig)
    assert code == 0, stack.log()
    assert wait_until_gone(children), f"left running: {[p for p in children if alive(p)]}\n{stack.log()}"
    log = stack.log()
    assert f"Sentiment demo ready: open {stack.url}/" in log and log.rstrip().endswith("Stopped.")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.url}/config.json", timeout=5)


def test_no_orphans_even_if_the_stack_is_killed(model_dir, tmp_path):
    """SIGKILL leaves no time to clean up: the model server must notice and exit by itself."""
    stack = LocalStack(model_dir, log_path=tmp_path / "stack.log")
    with stack:
        children = descendants(stack.process.pid)
        assert children
        stack.process.kill()
        stack.process.wait()
        orphans_gone = wait_until_gone(children)
        for pid in filter(alive, children):  # on failure, do not leave them behind
            os.kill(pid, signal.SIGKILL)
        assert orphans_gone, "the model server outlived the killed stack"
