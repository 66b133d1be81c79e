"""``python -m local_stack --model-dir artifacts --port 8000 [--host 127.0.0.1]``

Checks the artifacts and the port, starts the model server on a free port, points the real
Lambda handler at it (boto3's ``sagemaker-runtime`` client, endpoint URL overridden), serves
the page and the API on HOST:PORT, and stops everything on Ctrl-C or SIGTERM. A model server
that dies is restarted on the same port (``--max-restarts`` in ``--restart-window`` seconds,
waiting ``--restart-backoff`` seconds, doubled each time); past that budget the stack stops
with exit code 1 and the reason.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

from local_stack.gateway import LocalGateway
from local_stack.model_server import REPO_ROOT, ModelServer, ModelServerError, RestartPolicy, Supervisor, free_port
from sentiment.artifacts import FEATURIZER_FILE, SERVED_FILES, ArtifactError, ModelFolder

WEB_DIR = REPO_ROOT / "web"


class StackError(RuntimeError):
    """A reason the local stack cannot start, worded for the person who ran it."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="Serve the page and the API on one machine: model server, local API Gateway, real handler.",
    )
    parser.add_argument("--model-dir", type=Path, default=Path("artifacts"),
                        help="folder holding model.onnx and featurizer.json (default: artifacts)")
    parser.add_argument("--port", type=int, default=8000, help="port of the page and the API (default: 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--server-workers", type=int, default=1,
                        help="model server worker processes (default: 1, plenty for one person's page)")
    parser.add_argument("--startup-timeout", type=float, default=120.0,
                        help="seconds to wait for the model server's /ping (default: 120)")
    defaults = RestartPolicy()
    parser.add_argument("--max-restarts", type=int, default=defaults.max_restarts,
                        help="restart a model server that dies at most this many times in --restart-window "
                             f"seconds, then stop with an error (0: never; default: {defaults.max_restarts})")
    parser.add_argument("--restart-window", type=float, default=defaults.window_s,
                        help=f"seconds over which restarts are counted (default: {defaults.window_s:g})")
    parser.add_argument("--restart-backoff", type=float, default=defaults.backoff_s,
                        help="seconds before the first restart, doubled for each further one in the window, "
                             f"at most {defaults.max_backoff_s:g} (default: {defaults.backoff_s:g})")
    args = parser.parse_args(argv)
    if args.max_restarts < 0:
        parser.error("--max-restarts must be 0 or more")
    if not args.restart_window > 0:
        parser.error("--restart-window must be a positive number of seconds")
    if not args.restart_backoff >= 0:
        parser.error("--restart-backoff must be 0 or more seconds")
    return args


def check_artifacts(model_dir: Path) -> Path:
    """The resolved model dir, or StackError naming what is missing or broken."""
    try:
        return ModelFolder.read(model_dir, files=SERVED_FILES).path.resolve()
    except ArtifactError as exc:
        raise StackError(str(exc)) from None


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind and listen on HOST:PORT now, so a taken port is reported before anything starts."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise StackError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Stop the program using that port "
            f"or choose another one (`make demo PORT=8001` or `--port 8001`)."
        ) from exc


def page_origin(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def handler_environment(model_dir: Path, origin: str, port: int, server_url: str) -> dict[str, str]:
    """The handler's environment, as in AWS but aimed at the local server, with dummy credentials."""
    origins = dict.fromkeys([origin, f"http://127.0.0.1:{port}", f"http://localhost:{port}"])
    return {
        "ENDPOINT_NAME": "local",
        "FEATURIZER_URI": str(model_dir / FEATURIZER_FILE),
        "ALLOWED_ORIGINS": ",".join(origins),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": server_url,
        # Dummy credentials: the local server ignores the signature, and no real key is ever used.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # SIGTERM cleans up like Ctrl-C
    model_server: ModelServer | None = None
    supervisor: Supervisor | None = None
    listener: socket.socket | None = None
    gave_up: list[str] = []
    try:
        model_dir = check_artifacts(args.model_dir)
        listener = reserve_port(args.host, args.port)
        port = listener.getsockname()[1]  # the real one when --port 0
        origin = page_origin(args.host, port)

        model_server = ModelServer(model_dir, free_port(), workers=args.server_workers)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
            os.environ.pop(name, None)
        os.environ.update(handler_environment(model_dir, origin, port, model_server.url))
        try:  # after the environment is set: the handler reads it at import
            from lambda_fn.handler import lambda_handler
        except Exception as exc:
            raise StackError(f"cannot import lambda_fn.handler: {type(exc).__name__}: {exc}") from exc

        print(f"Starting the model server on {model_server.url} ...", file=sys.stderr, flush=True)
        model_server.start().wait_ready(args.startup_timeout)

        gateway = LocalGateway(lambda_handler, WEB_DIR, api_url=origin)
        server = make_server(args.host, port, gateway, threaded=True, fd=listener.fileno())
        listener.close()  # the server holds its own duplicate of the socket

        def give_up(message: str) -> None:  # from the supervisor's thread: end serve_forever
            gave_up.append(message)
            threading.Thread(target=server.shutdown, name="shutdown", daemon=True).start()

        policy = RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window,
                               backoff_s=args.restart_backoff)
        supervisor = Supervisor(model_server, policy, give_up, ready_timeout=args.startup_timeout).start()
        print(f"\nSentiment demo ready: open {origin}/ (API: POST {origin}/predict). "
              "Press Ctrl-C to stop.\n", flush=True)
        server.serve_forever()  # returns on Ctrl-C, SIGTERM or give_up, and closes the socket
        if gave_up:
            raise StackError(gave_up[0])
        return 0
    except (StackError, ModelServerError) as exc:
        print(f"local_stack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for sig in previous:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        if listener is not None:
            listener.close()
        if supervisor is not None:
            supervisor.stop()
        elif model_server is not None and model_server.process is not None:
            model_server.stop()
        if model_server is not None and model_server.process is not None:
            print("Stopped.", file=sys.stderr)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
