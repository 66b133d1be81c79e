"""``python -m serving``: check the artifacts, then run the app under gunicorn.

gunicorn runs its asyncio worker (``serving.worker``), so the network is read and written on
an event loop and a slow or stalled client holds no request thread; the Flask app runs on
``--threads`` threads per worker on whole requests (``serving.bridge``). ``--timeout`` bounds
one request, ``--client-timeout`` how long a client may take to send one or to read its answer.

The master checks the files and the featurizer before binding the port (exit code 1 and a
message when they are wrong); each worker then loads the ONNX model, checks it against the
featurizer, and on failure stops the whole server (gunicorn exits with code 3, the message in
the log) rather than respawning in a loop. The master never imports onnxruntime. Workers
default to one per CPU (SageMaker's ``SAGEMAKER_MODEL_SERVER_WORKERS`` overrides), each with
a couple of threads so that parsing one request overlaps with scoring another, and one
single-threaded ONNX Runtime session.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys

from gunicorn.app.base import BaseApplication

from sentiment.artifacts import ArtifactError
from serving.model import read_featurizer

log = logging.getLogger("serving")

# Connections one worker holds at once (each may buffer a 6 MB body and a ~1 MB answer); the
# next ones get a 503 "busy" until some close.
WORKER_CONNECTIONS = 256


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this container may use
    except AttributeError:
        return os.cpu_count() or 1


def _env_int(name: str, default: int) -> int:
    return int(_env(name, default, int, "an integer"))


def _env_seconds(name: str, default: float) -> float:
    return _env(name, default, float, "a number of seconds")


def _env(name: str, default: float, kind: type[int] | type[float], what: str) -> float:
    """The environment variable ``name`` as ``kind``, ``default`` when unset; exit naming it when not."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        sys.exit(f"serving: cannot start: {name} must be {what}, got {value!r}")


class GunicornServer(BaseApplication):
    """gunicorn run from code (no config file); each worker builds its own app after the fork."""

    def __init__(self, options: dict, args: argparse.Namespace):
        self.options, self.model_dir, self.intra_op_threads = options, args.model_dir, args.intra_op_threads
        self.threads, self.timeout, self.client_timeout = args.threads, args.timeout, args.client_timeout
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        """Runs in each worker after the fork; the worker accepts connections once this returns."""
        from serving.app import MAX_BODY_BYTES, create_app
        from serving.bridge import BufferedWSGI

        app = create_app(self.model_dir, self.intra_op_threads, timeout=self.timeout)
        app.extensions["model_slot"].wait()  # on failure, the loader has already exited the worker
        return BufferedWSGI(app, threads=self.threads, timeout=self.timeout, client_timeout=self.client_timeout,
                            max_body=MAX_BODY_BYTES)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m serving", description="The SageMaker model server (ONNX Runtime).")
    p.add_argument("--model-dir", default="/opt/ml/model",
                   help="directory holding model.onnx and featurizer.json (default: /opt/ml/model)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=_env_int("SAGEMAKER_BIND_TO_PORT", 8080),
                   help="default 8080, or SAGEMAKER_BIND_TO_PORT when SageMaker sets it")
    p.add_argument("--workers", type=int, default=_env_int("SAGEMAKER_MODEL_SERVER_WORKERS", _cpus()),
                   help="worker processes (default: SAGEMAKER_MODEL_SERVER_WORKERS or one per CPU)")
    p.add_argument("--threads", type=int, default=_env_int("SERVING_THREADS", 2),
                   help="request threads per worker (default: SERVING_THREADS or 2)")
    p.add_argument("--intra-op-threads", type=int, default=_env_int("SERVING_INTRA_OP_THREADS", 1),
                   help="ONNX Runtime threads per session (default: SERVING_INTRA_OP_THREADS or 1)")
    p.add_argument("--timeout", type=float, default=_env_seconds("SAGEMAKER_MODEL_SERVER_TIMEOUT", 60),
                   help="the most one request may take, in seconds, from its whole body's arrival to its answer; "
                        "later it is a 503 'timeout', and a worker whose request is still running a second "
                        "past it is replaced (default: SAGEMAKER_MODEL_SERVER_TIMEOUT or 60, SageMaker's "
                        "invocation limit)")
    p.add_argument("--client-timeout", type=float, default=_env_seconds("SERVING_CLIENT_TIMEOUT", 60),
                   help="seconds a client may take to send a request's head (else the connection is closed), "
                        "then its body (else a 408), and may leave its answer unread before it is hung up on "
                        "(default: SERVING_CLIENT_TIMEOUT or 60)")
    p.add_argument("--log-level", default=os.environ.get("SERVING_LOG_LEVEL", "info").lower(),
                   choices=["debug", "info", "warning", "error", "critical"])
    args = p.parse_args(argv)
    for name in ("port", "workers", "threads", "intra_op_threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    for name in ("timeout", "client_timeout"):
        if not 0 < getattr(args, name) < math.inf:
            p.error(f"--{name.replace('_', '-')} must be a positive number of seconds")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    try:
        featurizer = read_featurizer(args.model_dir)
    except ArtifactError as exc:
        sys.exit(f"serving: cannot start: {exc}")
    log.info("serving %s (featurizer %s, %d terms) on %s:%d with %d workers x %d threads, "
             "--timeout %g s, --client-timeout %g s", args.model_dir, featurizer.fingerprint[:12],
             featurizer.vocab_size, args.host, args.port, args.workers, args.threads, args.timeout,
             args.client_timeout)
    host = f"[{args.host}]" if ":" in args.host else args.host
    options = {
        "bind": f"{host}:{args.port}",
        "workers": args.workers,
        "worker_class": "serving.worker.ServingWorker",
        # gunicorn's heartbeat: a worker whose event loop stops for this long is killed. It is
        # also gunicorn's own wait for each piece of a body, so never shorter than --client-timeout.
        "timeout": math.ceil(max(30, args.client_timeout)),
        "graceful_timeout": 10,
        "worker_connections": WORKER_CONNECTIONS,
        "asgi_lifespan": "off",
        # Longer than the idle timeout of clients and load balancers in front (60 s), so the
        # server is never the side that closes a pooled connection under a request.
        "keepalive": 75,
        "loglevel": args.log_level,
        "errorlog": "-",
        "proc_name": "serving",
        "control_socket_disable": True,  # no gunicornc socket: several servers may share a host
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
    }
    GunicornServer(options, args).run()
