"""``python -m local_stack`` as a user runs it: clear refusals, the printed URLs, a clean shutdown,
``invoke`` and ``generate-event``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests

from local_stack.model_server import REPO_ROOT, ModelServer, free_port
from local_stack.template import load_stack
from tests.local_stack.conftest import add_function, add_route, lambda_integration
from tests.support import POSITIVE_REVIEW, LocalStack, edit_template

pytestmark = pytest.mark.slow  # runs the real `python -m local_stack`

SAMPLE_EVENT = REPO_ROOT / "tests" / "lambda_fn" / "events" / "rest_api_post_predict.json"


def run_cli(*args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "local_stack", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


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


def commands(pids: set[int]) -> list[bytes]:
    found = []
    for pid in pids:
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            continue
    return found


# --- refusals -------------------------------------------------------------------------------------

def test_a_missing_template_says_how_to_make_it(tmp_path):
    result = run_cli("--template", str(tmp_path / "cdk.out" / "ServerlessSentiment.template.json"),
                     "--port", str(free_port()))
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "make demo" in result.stderr and "npx cdk synth" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a JSON CloudFormation template"),
    ('{"Resources": {}}', "one REST API"),
    ('{"Resources": {"Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Body": {}}}}}', "OpenAPI Body"),
])
def test_a_malformed_template_is_refused_with_its_reason(tmp_path, content, message):
    template = tmp_path / "Broken.template.json"
    template.write_text(content)
    result = run_cli("--template", str(template), "--port", "0")
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("which", ["--port", "--api-port"])
def test_a_taken_port_is_reported(template, which):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = free_port()
        ports = ("--port", str(port), "--api-port", str(other)) if which == "--port" else (
            "--port", str(other), "--api-port", str(port))
        result = run_cli("--template", str(template), *ports)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and which in result.stderr


@pytest.mark.parametrize("flag, value", [("--max-restarts", "-1"), ("--restart-window", "0"),
                                         ("--restart-backoff", "-2"), ("--concurrency", "0"), ("--port", "70000"),
                                         ("--server-workers", "0")])
def test_bad_options_are_refused(template, flag, value):
    result = run_cli("--template", str(template), flag, value, timeout=60)
    assert result.returncode == 2 and flag in result.stderr, result.stderr


def test_a_model_that_the_server_cannot_load_is_reported_with_its_output(synthesized, tmp_path):
    copy = tmp_path / "cdk.out"
    shutil.copytree(synthesized.parent, copy)
    archive = load_stack(copy / synthesized.name).endpoint.model_data
    staged = archive.parent
    (staged / "model.onnx").write_bytes(b"this is not an ONNX model")
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("model.onnx", "featurizer.json"):
            tar.add(staged / name, name)
    result = run_cli("--template", str(copy / synthesized.name), "--port", "0")
    assert result.returncode == 1
    assert "the model server (python -m serving) exited with code" in result.stderr
    assert "Its last output:" in result.stderr and "model.onnx" in result.stderr.split("Its last output:")[1]


# --- running ---------------------------------------------------------------------------------------

def test_start_up_says_what_it_runs_and_names_what_it_does_not(stack, template):
    log = stack.log()
    assert f"Sentiment demo ready: open {stack.url}/ (API: POST {stack.api_url}/predict)" in log
    function = load_stack(template).function()
    assert (f"function {function.logical_id}: lambda_fn.handler.lambda_handler, {function.runtime}, "
            f"timeout {function.timeout_s:g} s, {function.memory_mb} MB, reserved concurrency 10") in log
    (line,) = [line for line in log.splitlines() if line.startswith("local_stack: not emulated: ")]
    for named in ("X-Ray tracing", "CloudWatch alarms", "IAM roles (not enforced)", "CloudFront's HTTPS"):
        assert named in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_everything(template, tmp_path, sig):
    stack = LocalStack(template, log_path=tmp_path / "stack.log")
    with stack:
        assert requests.post(f"{stack.api_url}/predict", json={"review": POSITIVE_REVIEW}, timeout=30).ok
        children = descendants(stack.process.pid)
        names = commands(children)
        assert any(b"serving" in c for c in names) and any(b"bootstrap.py" in c for c in names), names
        code = stack.stop(sig)
    assert code == 0, stack.log()
    assert wait_until_gone(children), f"left running: {[p for p in children if alive(p)]}\n{stack.log()}"
    assert stack.log().rstrip().endswith("Stopped.")
    for url in (f"{stack.url}/", f"{stack.api_url}/predict"):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)


def test_no_orphans_even_if_the_stack_is_killed(template, tmp_path):
    """SIGKILL leaves no time to clean up: the model server and every environment must exit by themselves."""
    stack = LocalStack(template, log_path=tmp_path / "stack.log")
    with stack:
        assert requests.post(f"{stack.api_url}/predict", json={"review": POSITIVE_REVIEW}, timeout=30).ok
        children = descendants(stack.process.pid)
        assert any(b"bootstrap.py" in c for c in commands(children))
        stack.process.kill()
        stack.process.wait()
        orphans_gone = wait_until_gone(children)
        for pid in filter(alive, children):  # on failure, do not leave them behind
            os.kill(pid, signal.SIGKILL)
        assert orphans_gone, "a child outlived the killed stack"


def test_a_hanging_handler_is_stopped_when_the_stack_stops(template, tmp_path):
    def hang(data):
        add_function(data, "Faults", timeout=600)
        add_route(data, "faults", lambda_integration("Faults", timeout_ms=200))
    stack = LocalStack(edit_template(template, hang, "Hang"), log_path=tmp_path / "stack.log")
    started = tmp_path / "started"
    with stack:
        body = {"action": "wait", "started": str(started), "release": str(tmp_path / "never")}
        assert requests.post(f"{stack.api_url}/faults", json=body, timeout=60).status_code == 504
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pid = int(started.read_text())
        assert alive(pid)
    assert wait_until_gone({pid}), "the hanging environment outlived the stack"


# --- invoke and generate-event --------------------------------------------------------------------

def handler_answer(template: Path, event_path: Path, tmp_path: Path) -> str:
    """What lambda_fn.handler.lambda_handler returns for the event, called directly in a fresh
    interpreter with the environment the template gives it and a model server of the same model."""
    model = load_stack(template)
    function = model.function()
    from local_stack.template import extract_model

    server = ModelServer(extract_model(model.endpoint.model_data, tmp_path / "model"), free_port())
    code = ("import json, sys\n"
            "from lambda_fn.handler import lambda_handler\n"
            "from local_stack.bootstrap import LambdaContext\n"
            "event = json.load(open(sys.argv[1]))\n"
            "print(json.dumps(lambda_handler(event, LambdaContext('direct', 2**62))))\n")
    env = {"PATH": os.environ["PATH"], **function.environment, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_CONFIG_FILE": os.devnull,
           "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server.url, "PYTHONPATH": str(REPO_ROOT)}
    server.start().wait_ready(120)
    try:
        done = subprocess.run([sys.executable, "-c", code, str(event_path)], cwd=function.code_dir, env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_invoke_prints_exactly_what_the_handler_returns_for_the_sample_event(template, tmp_path):
    result = run_cli("invoke", "--template", str(template), "--event", str(SAMPLE_EVENT))
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    assert printed.endswith("\n") and printed.count("\n") == 1  # one line: the answer, nothing else
    assert printed.rstrip("\n") == handler_answer(template, SAMPLE_EVENT, tmp_path)
    answer = json.loads(printed)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["predictions"][0]["label"] == "positive"
    assert "REPORT RequestId: " in result.stderr and "Init Duration: " in result.stderr  # the log, on stderr


def test_a_template_given_by_a_relative_path_runs(template, tmp_path):
    """As `make demo` gives it (cdk.out/...): the code's folders are found from any working directory."""
    relative = os.path.relpath(template, REPO_ROOT)
    result = run_cli("invoke", "--template", relative, "--event", str(SAMPLE_EVENT))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statusCode"] == 200


def test_generate_event_piped_into_invoke(template, tmp_path):
    event = run_cli("generate-event", "--review", POSITIVE_REVIEW, "--origin", "http://127.0.0.1:8000",
                    "--header", "X-Trace: abc", "--template", str(template))
    assert event.returncode == 0, event.stderr
    generated = json.loads(event.stdout)
    assert generated["httpMethod"] == "POST" and generated["path"] == "/predict" and generated["resource"] == "/predict"
    assert json.loads(generated["body"]) == {"review": POSITIVE_REVIEW}
    assert generated["headers"]["Origin"] == "http://127.0.0.1:8000" and generated["headers"]["X-Trace"] == "abc"
    assert generated["requestContext"]["stage"] == "prod" and generated["requestContext"]["path"] == "/prod/predict"
    result = run_cli("invoke", "--template", str(template), "--event", "-", stdin=event.stdout)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["statusCode"] == 200
    assert answer["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["http://127.0.0.1:8000"]  # the mapped site


def test_generate_event_routes_other_paths_through_the_template(template):
    event = json.loads(run_cli("generate-event", "--path", "/predict/extra", "--method", "GET",
                               "--template", str(template)).stdout)
    assert event["resource"] == "/predict/{proxy+}" and event["pathParameters"] == {"proxy": "extra"}
    result = run_cli("generate-event", "--header", "no colon")
    assert result.returncode == 2 and "--header" in result.stderr


@pytest.mark.parametrize("content, message", [("{not json", "is not JSON"), (None, "cannot read the event")])
def test_invoke_refuses_a_bad_event_clearly(template, tmp_path, content, message):
    event = tmp_path / "event.json"
    if content is not None:
        event.write_text(content)
    result = run_cli("invoke", "--template", str(template), "--event", str(event))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_invoke_of_a_failing_function_prints_lambdas_error_and_exits_1(template, tmp_path):
    def broken(data):
        add_function(data, "Faults", timeout=1)
        add_route(data, "faults", lambda_integration("Faults"))
    edited = edit_template(template, broken, "Invoke")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "wait", "release": str(tmp_path / "never")}))
    result = run_cli("invoke", "--template", str(edited), "--function", "Faults", "--event", str(event))
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["errorType"] == "Sandbox.Timedout" and "Task timed out after 1.00 seconds" in error["errorMessage"]
    ambiguous = run_cli("invoke", "--template", str(edited), "--event", str(event))
    assert ambiguous.returncode == 1 and "--function" in ambiguous.stderr
