"""``python -m serving``: check the artifacts, then run the app under gunicorn.

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
import os
import sys

from gunicorn.app.base import BaseApplication

from serving.model import ArtifactError, read_featurizer

log = logging.getLogger("serving")


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this container may use
    except AttributeError:
        return os.cpu_count() or 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"serving: cannot start: {name} must be an integer, got {value!r}")


class GunicornServer(BaseApplication):
    """gunicorn run from code (no config file); each worker builds its own app after the fork."""

    def __init__(self, options: dict, model_dir: str, intra_op_threads: int):
        self.options, self.model_dir, self.intra_op_threads = options, model_dir, intra_op_threads
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        """Runs in each worker after the fork; the worker accepts connections once this returns."""
        from serving.app import create_app

        app = create_app(self.model_dir, self.intra_op_threads)
        app.extensions["model_slot"].wait()  # on failure, the loader has already exited the worker
        return app


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
    p.add_argument("--timeout", type=int, default=_env_int("SAGEMAKER_MODEL_SERVER_TIMEOUT", 60),
                   help="seconds before a stuck worker is restarted (default: 60, SageMaker's invocation timeout)")
    p.add_argument("--log-level", default=os.environ.get("SERVING_LOG_LEVEL", "info").lower(),
                   choices=["debug", "info", "warning", "error", "critical"])
    args = p.parse_args(argv)
    for name in ("port", "workers", "threads", "intra_op_threads", "timeout"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    try:
        featurizer = read_featurizer(args.model_dir)
    except ArtifactError as exc:
        sys.exit(f"serving: cannot start: {exc}")
    log.info("serving %s (featurizer %s, %d terms) on %s:%d with %d workers x %d threads",
             args.model_dir, featurizer.fingerprint[:12], featurizer.vocab_size,
             args.host, args.port, args.workers, args.threads)
    host = f"[{args.host}]" if ":" in args.host else args.host
    options = {
        "bind": f"{host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": args.threads,
        "timeout": args.timeout,
        "graceful_timeout": 10,
        # Longer than the idle timeout of clients and load balancers in front (60 s), so the
        # server is never the side that closes a pooled connection under a request.
        "keepalive": 75,
        "loglevel": args.log_level,
        "errorlog": "-",
        "proc_name": "serving",
        "control_socket_disable": True,  # no gunicornc socket: several servers may share a host
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
    }
    GunicornServer(options, args.model_dir, args.intra_op_threads).run()
