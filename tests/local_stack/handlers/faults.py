"""A Lambda handler that misbehaves on request: the hostile function of the local stack's tests.

The template's function points at this folder (its code) and ``faults.handler`` (its handler) in
the tests that need it. The request body (or the event itself, when invoked directly) says what
to do: ``{"action": "ok" | "sleep" | "wait" | "crash" | "exit" | "kill" | "bad_proxy" |
"unserializable" | "huge" | "env"}``; ``started`` names a file written (with this process's id)
once the handler runs, ``release`` a file it waits for (``wait``), so tests never rely on timing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

IMPORTED_AT = time.time()
CALLS = 0


def _request(event):
    if isinstance(event, dict) and isinstance(event.get("body"), str):
        try:
            return json.loads(event["body"])
        except ValueError:
            return {}
    return event if isinstance(event, dict) else {}


def handler(event, context):
    global CALLS
    CALLS += 1
    request = _request(event)
    action = request.get("action", "ok")
    if request.get("started"):  # written whole, then renamed: a reader never sees it half written
        started = Path(request["started"])
        partial = started.with_name(started.name + ".partial")
        partial.write_text(str(os.getpid()))
        partial.rename(started)
    print(f"faults: {action} (call {CALLS} of pid {os.getpid()})")
    if action == "sleep":
        time.sleep(float(request["seconds"]))
    elif action == "wait":  # until the test creates the release file (bounded by the function's timeout)
        while not Path(request["release"]).exists():
            time.sleep(0.02)
    elif action == "crash":
        raise RuntimeError("the handler crashed on purpose")
    elif action == "exit":
        os._exit(3)
    elif action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "bad_proxy":
        return {"statusCode": "two hundred", "body": 42}
    elif action == "unserializable":
        return {"statusCode": 200, "body": object()}
    elif action == "huge":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    elif action == "status":
        return {"statusCode": int(request["status"]), "headers": {"Content-Type": "application/json"},
                "body": json.dumps(request.get("answer", {}))}
    elif action == "env":
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({
            "environ": dict(os.environ), "cwd": os.getcwd(), "sys_path": sys.path, "pid": os.getpid(),
            "calls": CALLS, "imported_at": IMPORTED_AT, "event": event,
            "context": {"function_name": context.function_name, "memory_limit_in_mb": context.memory_limit_in_mb,
                        "aws_request_id": context.aws_request_id, "arn": context.invoked_function_arn,
                        "remaining_ms": context.get_remaining_time_in_millis(),
                        "log_group_name": context.log_group_name}})}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"action": action, "pid": os.getpid(), "calls": CALLS})}
