"""The runtime inside one local execution environment: what Lambda's Python bootstrap does.

Run by ``local_stack.lambda_runtime`` as ``python bootstrap.py REQUESTS_FD RESPONSES_FD`` in a
process of its own, with the function's environment and ``LAMBDA_TASK_ROOT`` (its staged code) as
the working directory. It imports the handler named by ``_HANDLER`` once (the init phase), then
answers one invocation at a time: a JSON line ``{"requestId", "deadlineMs", "event"}`` in, one
JSON line out, either ``{"type": "result", "payload": <the handler's return value as Lambda
serializes it>}`` or ``{"type": "error", "error": {"errorMessage", "errorType", "stackTrace"}}``,
each with the duration and the peak memory of the process. The handler's own output (print,
logging) goes to stdout and stderr, which the parent prints as the function's log.

Standard library only, and the function's code comes first on ``sys.path``: the handler sees the
packages of its zip and of this interpreter, as in Lambda it sees its zip, its layers and the
runtime. The process exits when its parent does (it watches its parent id), so a killed stack
leaves no environment behind, even one whose handler never returns.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback
from typing import Any

MAX_RESPONSE_BYTES = 6_291_556  # Lambda's limit on a synchronous invocation's response
END_MARKER = "\x00local_stack end "  # on stdout after an invocation's output, so the log keeps its order


class LambdaContext:
    """The context object of Lambda's Python runtime (the attributes handlers and Powertools read)."""

    def __init__(self, request_id: str, deadline_ms: int, function_arn: str | None = None):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")  # a string, as in Lambda
        self.invoked_function_arn = function_arn or os.environ.get("LOCAL_STACK_FUNCTION_ARN", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_payload(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    """An exception as Lambda reports it to the caller."""
    return {
        "errorMessage": message if message is not None else str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": [line.rstrip("\n") for line in traceback.format_tb(exc.__traceback__)],
    }


def load_handler(name: str) -> Any:
    """The handler function named ``module.function``, or an exception typed as Lambda types it."""
    module_name, _, function_name = name.rpartition(".")
    if not module_name or not function_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{name}': not enough values to unpack "
                                                          "(expected 2, got 1)")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except SyntaxError as exc:
        raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}") from exc
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


class _InitError(Exception):
    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


def _max_rss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kilobytes on Linux


def _watch_parent(parent: int) -> None:
    """Exit when the stack that started this environment is gone (it never reads our answers again)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def main(argv: list[str]) -> int:
    requests_fd, responses_fd = int(argv[1]), int(argv[2])
    sys.path[0] = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())  # the code, not this script's folder
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    out = os.fdopen(responses_fd, "wb", buffering=0)

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message).encode() + b"\n")

    started = time.perf_counter()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except _InitError as exc:
        send({"type": "initError", "error": error_payload(exc, exc.error_type, str(exc)), "maxRssKb": _max_rss_kb()})
        return 1
    except Exception as exc:  # the module raised while it was imported
        send({"type": "initError", "error": error_payload(exc), "maxRssKb": _max_rss_kb()})
        return 1
    send({"type": "ready", "initMs": (time.perf_counter() - started) * 1000, "maxRssKb": _max_rss_kb()})

    with os.fdopen(requests_fd, "rb") as requests:
        for line in requests:
            message = json.loads(line)
            context = LambdaContext(message["requestId"], int(message["deadlineMs"]), message.get("functionArn"))
            began = time.perf_counter()
            try:
                result = handler(message["event"], context)
                try:
                    payload = json.dumps(result)
                    reply: dict[str, Any] = {"type": "result", "payload": payload}
                except (TypeError, ValueError) as exc:
                    reply = {"type": "error", "error": error_payload(
                        exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")}
                if reply["type"] == "result" and len(payload.encode()) > MAX_RESPONSE_BYTES:
                    reply = {"type": "error", "error": {  # checked here, so no oversized answer crosses the pipe
                        "errorType": "Function.ResponseSizeTooLarge", "stackTrace": [],
                        "errorMessage": f"Response payload size exceeded maximum allowed payload size "
                                        f"({MAX_RESPONSE_BYTES} bytes)."}}
            except Exception as exc:
                print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                reply = {"type": "error", "error": error_payload(exc)}
            reply.update(durationMs=(time.perf_counter() - began) * 1000, maxRssKb=_max_rss_kb())
            sys.stderr.flush()
            print(f"{END_MARKER}{message['requestId']}", flush=True)
            send(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
