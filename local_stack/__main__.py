"""``python -m local_stack``: the synthesized stack on one machine, no Docker, no AWS account.

    python -m local_stack [serve] [--template cdk.out/ServerlessSentiment.template.json]
                          [--port 8000] [--api-port 8001] [--host 127.0.0.1] [--concurrency N] ...
    python -m local_stack invoke --event FILE|- [--template ...] [--function LOGICAL_ID]
    python -m local_stack generate-event [--review TEXT | --body TEXT] [--content-type TYPE]
                                         [--origin URL] [--header 'Name: value' ...]

``serve`` (the default) reads the template (``make demo`` synthesizes it first), prints what it
emulates and, in one line, what it does not, starts the template's SageMaker model (``python -m
serving`` on the model data the template deploys, restarted when it dies within
``--max-restarts``), and serves the API on ``--api-port`` as its stage URLs (``/prod/predict``) and
the website on ``--port``, each as the template defines it. Ctrl-C or SIGTERM stops everything.

``invoke`` runs one event through the template's function (its handler, environment, timeout),
with the model server running, and prints the function's answer on stdout exactly as Lambda
returns it; the log goes to stderr. Exit code 0 when the function answered, 1 when it failed
(its Lambda error payload is printed instead), 2 for a bad event file.

``generate-event`` prints an API Gateway REST proxy event for ``POST /predict`` to start from:
``python -m local_stack generate-event --review "Superb." | python -m local_stack invoke --event -``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local_stack.gateway import ApiGateway, build_event
from local_stack.lambda_runtime import FunctionFailed, FunctionPool, InvocationRefused
from local_stack.model_server import ModelServer, ModelServerError, RestartPolicy, Supervisor, free_port
from local_stack.template import Addresses, LocalStackModel, TemplateError, extract_model, load_stack
from local_stack.website import SiteServer
from sentiment.artifacts import SERVED_FILES, ArtifactError, ModelFolder

DEFAULT_TEMPLATE = Path("cdk.out") / "ServerlessSentiment.template.json"
MAX_CONNECTIONS = 128  # per server: more wait in the listen backlog, so threads stay bounded
IDLE_CONNECTION_S = 60.0  # a client that sends nothing for this long is hung up on
COMMANDS = ("serve", "invoke", "generate-event")


class StackError(RuntimeError):
    """A reason the local stack cannot start, worded for the person who ran it."""


def _log(message: str) -> None:
    print(f"local_stack: {message}", file=sys.stderr, flush=True)


# --- arguments ------------------------------------------------------------------------------------

def _template_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE,
                        help=f"the synthesized template, its assets beside it (default: {DEFAULT_TEMPLATE}; "
                             "`make demo` writes it)")


def _endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server-workers", type=int, default=1,
                        help="model server worker processes (default: 1, plenty for one person's page)")
    parser.add_argument("--startup-timeout", type=float, default=120.0,
                        help="seconds to wait for the model server's /ping (default: 120)")


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="Run the synthesized stack on this machine: its API, function, endpoint and website. Other "
                    "commands: `python -m local_stack invoke --help`, `python -m local_stack generate-event --help`.")
    _template_argument(parser)
    parser.add_argument("--port", type=int, default=8000, help="port of the website (default: 8000)")
    parser.add_argument("--api-port", type=int, default=None,
                        help="port of the API (default: the website's port + 1, or any free port with --port 0)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="at most this many execution environments per function (default: the function's "
                             "reserved concurrency, else 10); under the reserved concurrency, requests then wait "
                             "for a free environment instead of being throttled")
    _endpoint_arguments(parser)
    defaults = RestartPolicy()
    parser.add_argument("--max-restarts", type=int, default=defaults.max_restarts,
                        help="restart a model server that dies at most this many times in --restart-window "
                             f"seconds, then stop with an error (0: never; default: {defaults.max_restarts})")
    parser.add_argument("--restart-window", type=float, default=defaults.window_s,
                        help=f"seconds over which restarts are counted (default: {defaults.window_s:g})")
    parser.add_argument("--restart-backoff", type=float, default=defaults.backoff_s,
                        help="seconds before the first restart, doubled for each further one in the window, "
                             f"at most {defaults.max_backoff_s:g} (default: {defaults.backoff_s:g})")
    return parser


def parse_serve(argv: list[str]) -> argparse.Namespace:
    parser = serve_parser()
    args = parser.parse_args(argv)
    if args.max_restarts < 0:
        parser.error("--max-restarts must be 0 or more")
    if not args.restart_window > 0:
        parser.error("--restart-window must be a positive number of seconds")
    if not args.restart_backoff >= 0:
        parser.error("--restart-backoff must be 0 or more seconds")
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    for flag, port in (("--port", args.port), ("--api-port", args.api_port)):
        if port is not None and not 0 <= port <= 65535:
            parser.error(f"{flag} must be a port number, 0 to 65535")
    if args.server_workers < 1:
        parser.error("--server-workers must be at least 1")
    return args


def invoke_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack invoke",
        description="Run one event through the template's function and print its answer (stdout) as Lambda "
                    "returns it; the function's log goes to stderr.")
    parser.add_argument("--event", required=True, help="the event: a JSON file, or - for stdin")
    parser.add_argument("--function", default=None,
                        help="logical id of the function (default: the one function behind the API)")
    _template_argument(parser)
    _endpoint_arguments(parser)
    return parser


def event_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack generate-event",
        description="Print an API Gateway REST proxy event (the kind the API sends the function) for POST /predict.")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--review", default=None, help='the review: the body is {"review": REVIEW}')
    body.add_argument("--body", default=None, help="the raw body (default: a sample review as JSON)")
    parser.add_argument("--content-type", default="application/json", help="(default: application/json)")
    parser.add_argument("--origin", default=None, help="an Origin header, as a browser page would send")
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="another request header (repeatable)")
    parser.add_argument("--method", default="POST", help="(default: POST)")
    parser.add_argument("--path", default="/predict", help="the path after the stage (default: /predict)")
    parser.add_argument("--stage", default="prod", help="(default: prod)")
    parser.add_argument("--template", type=Path, default=None,
                        help="route the path through this template's resources (default: the resource is the path)")
    return parser


# --- shared pieces --------------------------------------------------------------------------------

def reserve_port(host: str, port: int, flag: str) -> socket.socket:
    """Bind and listen on HOST:PORT now, so a taken port is reported before anything starts."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise StackError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Stop the program using that port "
            f"or choose another one (`make demo PORT=8002` or `{flag} 8002`).") from exc


def origin(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def read_model(template: Path, addresses: Addresses) -> LocalStackModel:
    try:
        return load_stack(template, addresses)
    except TemplateError as exc:
        raise StackError(str(exc)) from None


def describe(model: LocalStackModel) -> list[str]:
    """What the local stack runs, read from the template: a few lines for the terminal."""
    api = model.api
    lines = [f"{model.stack_name} from {model.path}"]
    routes = " ".join(f"{'|'.join(methods)} {path}" for path, methods in api.resources.items() if methods)
    for stage in api.stages.values():
        default = stage.throttles.get(("*", "*"))
        parts = [f"API {api.name}, stage {stage.name}: {routes}"]
        if default is not None:
            parts.append(f"throttle {default.rate:g}/s, burst {default.burst}")
        if stage.firewall is not None:
            parts += [f"web ACL rule {r.name}: {r.limit} requests per address in {r.window_s} s"
                      for r in stage.firewall.rules]
        lines.append("; ".join(parts))
    for function in model.functions.values():
        reserved = (f"reserved concurrency {function.reserved_concurrency}"
                    if function.reserved_concurrency is not None else "no reserved concurrency")
        lines.append(f"function {function.logical_id}: {function.handler}, {function.runtime}, "
                     f"timeout {function.timeout_s:g} s, {function.memory_mb} MB, {reserved}, "
                     f"code {function.code_dir.name}")
    if model.endpoint is not None:
        lines.append(f"endpoint {model.endpoint.name} (variant {model.endpoint.variant}): "
                     f"{model.endpoint.model_data.parent.name}/{model.endpoint.model_data.name}, "
                     f"server code {model.endpoint.code_dir.name}")
    if model.website is not None:
        site = model.website
        headers = ", ".join(h.name for h in site.headers) or "(none)"
        lines.append(f"website {site.logical_id}: {len(site.objects)} objects, root object "
                     f"{site.default_root_object or '(none)'}, headers {headers}")
    return lines


class Endpoint:
    """The template's SageMaker endpoint: its model data unpacked, the server started from its code."""

    def __init__(self, model: LocalStackModel, scratch: Path, workers: int, timeout: float):
        self.server: ModelServer | None = None
        self.model, self.scratch, self.workers, self.timeout = model, scratch, workers, timeout

    def start(self) -> dict[str, str]:
        """Start it; the environment variables that point a function's boto3 at it."""
        endpoint = self.model.endpoint
        if endpoint is None:
            return {}
        try:
            model_dir = extract_model(endpoint.model_data, self.scratch / "opt-ml-model")
            ModelFolder.read(model_dir, files=SERVED_FILES)
        except (TemplateError, ArtifactError) as exc:
            raise StackError(f"the endpoint's model {endpoint.model_data}: {exc}") from None
        self.server = ModelServer(model_dir, free_port(), workers=self.workers, code_dir=endpoint.code_dir,
                                  environment=endpoint.environment)
        _log(f"starting the model server for endpoint {endpoint.name} on {self.server.url} ...")
        self.server.start().wait_ready(self.timeout)
        return {"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.server.url}


class BoundedServer(ThreadedWSGIServer):
    """werkzeug's threaded server with at most MAX_CONNECTIONS connections served at once."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()  # the accept loop waits: new connections queue in the backlog
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            socketserver.ThreadingMixIn.process_request_thread(self, request, client_address)
        finally:
            self._slots.release()


class _Handler(WSGIRequestHandler):
    timeout = IDLE_CONNECTION_S  # socket timeout: a silent client cannot hold a thread for ever

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the function's REPORT lines and the API's logs say what happened


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- serve ----------------------------------------------------------------------------------------

def serve(argv: list[str]) -> int:
    args = parse_serve(argv)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # SIGTERM cleans up like Ctrl-C
    scratch = Path(tempfile.mkdtemp(prefix="local_stack-"))
    listeners: list[socket.socket] = []
    servers: list[BoundedServer] = []
    pools: list[FunctionPool] = []
    endpoint: Endpoint | None = None
    supervisor: Supervisor | None = None
    model: LocalStackModel | None = None
    stop = threading.Event()
    gave_up: list[str] = []
    try:
        site_listener = reserve_port(args.host, args.port, "--port")
        listeners.append(site_listener)
        site_port = site_listener.getsockname()[1]
        api_port = args.api_port if args.api_port is not None else (site_port + 1 if args.port else 0)
        api_listener = reserve_port(args.host, api_port, "--api-port")
        listeners.append(api_listener)
        api_port = api_listener.getsockname()[1]
        addresses = Addresses(site_origin=origin(args.host, site_port), api_origin=origin(args.host, api_port))

        model = read_model(args.template, addresses)
        for line in describe(model):
            _log(line)
        if model.not_emulated:
            _log("not emulated: " + "; ".join(model.not_emulated))

        endpoint = Endpoint(model, scratch, args.server_workers, args.startup_timeout)
        local = endpoint.start()
        pools = [FunctionPool(function, local, concurrency=args.concurrency) for function in model.functions.values()]
        for pool in pools:
            kind = "reserved concurrency: beyond it, throttled" if pool.throttles else "local cap: beyond it, queued"
            _log(f"function {pool.function.logical_id}: up to {pool.limit} execution environments ({kind})")
        gateway = ApiGateway(model.api, {pool.function.logical_id: pool for pool in pools}, log=_log)
        apps: list[tuple[socket.socket, Any]] = [(api_listener, gateway)]
        if model.website is not None:
            apps.append((site_listener, SiteServer(model.website)))
        for listener, app in apps:
            server = BoundedServer(args.host, listener.getsockname()[1], app, handler=_Handler, fd=listener.fileno())
            threading.Thread(target=server.serve_forever, name=f"serve-{server.port}", daemon=True).start()
            servers.append(server)  # only a running server can be shut down
        for listener in listeners:
            listener.close()  # each server holds its own duplicate of its socket
        listeners.clear()

        if endpoint.server is not None:
            def give_up(message: str) -> None:  # from the supervisor's thread
                gave_up.append(message)
                stop.set()

            policy = RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window,
                                   backoff_s=args.restart_backoff)
            supervisor = Supervisor(endpoint.server, policy, give_up, ready_timeout=args.startup_timeout).start()
        api_url = model.api_url
        if model.website is not None:
            print(f"\nSentiment demo ready: open {addresses.site_origin}/ (API: POST {api_url}/predict). "
                  "Press Ctrl-C to stop.\n", flush=True)
        else:
            print(f"\nLocal stack ready: API at {api_url}/. Press Ctrl-C to stop.\n", flush=True)
        while not stop.wait(0.5):
            pass
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
        for listener in listeners:
            listener.close()
        for server in servers:
            server.shutdown()
            server.server_close()
        for pool in pools:
            pool.close()
        started = endpoint is not None and endpoint.server is not None and endpoint.server.process is not None
        if supervisor is not None:
            supervisor.stop()
        elif started:
            assert endpoint is not None and endpoint.server is not None
            endpoint.server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if model is not None and model.scratch_dir is not None:
            shutil.rmtree(model.scratch_dir, ignore_errors=True)
        if started or pools:
            print("Stopped.", file=sys.stderr)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- invoke ---------------------------------------------------------------------------------------

def invoke(argv: list[str]) -> int:
    args = invoke_parser().parse_args(argv)
    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"local_stack invoke: error: cannot read the event {args.event}: {exc}", file=sys.stderr)
        return 2
    try:
        event = json.loads(text)
    except ValueError as exc:
        print(f"local_stack invoke: error: the event {args.event} is not JSON: {exc}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    scratch = Path(tempfile.mkdtemp(prefix="local_stack-invoke-"))
    endpoint: Endpoint | None = None
    pool: FunctionPool | None = None
    model: LocalStackModel | None = None
    try:
        model = read_model(args.template, Addresses())
        function = model.function(args.function)
        endpoint = Endpoint(model, scratch, args.server_workers, args.startup_timeout)
        pool = FunctionPool(function, endpoint.start(), concurrency=1, log=lambda m: print(m, file=sys.stderr))
        request_id = str(uuid.uuid4())
        try:
            payload = pool.invoke(event, request_id=request_id)
        except FunctionFailed as exc:
            print(json.dumps(exc.error))
            return 1
        except InvocationRefused as exc:
            print(json.dumps({"errorType": "RequestEntityTooLargeException", "errorMessage": str(exc)}))
            return 1
        print(payload)
        return 0
    except (TemplateError, StackError, ModelServerError) as exc:
        print(f"local_stack invoke: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if pool is not None:
            pool.close()
        if endpoint is not None and endpoint.server is not None:
            endpoint.server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if model is not None and model.scratch_dir is not None:
            shutil.rmtree(model.scratch_dir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


# --- generate-event ---------------------------------------------------------------------------------

SAMPLE_REVIEW = "A wonderful, moving film: the acting is superb."


def generate_event(argv: list[str]) -> int:
    parser = event_parser()
    args = parser.parse_args(argv)
    if not args.path.startswith("/"):
        parser.error("--path must start with /")
    headers: dict[str, str] = {}
    for header in args.header:
        name, colon, value = header.partition(":")
        if not colon or not name.strip():
            parser.error(f"--header {header!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    if args.body is not None:
        body = args.body.encode()
    else:
        body = json.dumps({"review": args.review if args.review is not None else SAMPLE_REVIEW}).encode()
    if args.content_type:
        headers.setdefault("Content-Type", args.content_type)
    if args.origin:
        headers["Origin"] = args.origin
    headers.setdefault("Host", "localhost")
    resource, parameters = args.path, None
    if args.template is not None:
        try:
            matched = read_model(args.template, Addresses()).api.match(args.path)
        except StackError as exc:
            print(f"local_stack generate-event: error: {exc}", file=sys.stderr)
            return 1
        if matched is None:
            print(f"local_stack generate-event: error: {args.path} matches no resource of the template's API "
                  "(API Gateway would answer 403 Missing Authentication Token)", file=sys.stderr)
            return 1
        resource, parameters = matched
    environ = EnvironBuilder(path=f"/{args.stage}{args.path}", method=args.method.upper(),
                             headers=list(headers.items()), data=body, base_url="http://localhost").get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    request = Request(environ)
    event = build_event(request, body, resource=resource, path=args.path, path_parameters=parameters,
                        stage=args.stage, api_id="local", request_id=str(uuid.uuid4()))
    print(json.dumps(event, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else "serve"
    rest = argv[1:] if argv and argv[0] in COMMANDS else argv
    return {"serve": serve, "invoke": invoke, "generate-event": generate_event}[command](rest)


if __name__ == "__main__":
    sys.exit(main())
