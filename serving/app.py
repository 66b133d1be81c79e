"""The Flask app: SageMaker's ``GET /ping`` and ``POST /invocations``, plus the path boto3 calls.

``create_app`` returns at once and loads the model on a background thread; until it is
loaded, ``/ping`` and ``/invocations`` answer 503. Under gunicorn each worker builds its own
app (and ONNX Runtime session) after the fork and waits for the model before accepting
connections, so traffic never reaches a worker that cannot score yet. Every error is JSON
``{"error", "message"}``.

A request has until its deadline (``timeout`` seconds, or the ``Deadline`` the front put in
the environ under ``DEADLINE_KEY``): it is checked between pieces of parsing and before and
after the model runs, and a request past it is a 503 ``timeout``. A model answer that is not a
probability for every row (NaN, infinite, outside [0, 1], wrong length) is a 500
``model_error``: never a NaN in the JSON.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from sentiment.batch import Batch
from sentiment.wire import Explain, encode_response
from serving.inputs import PARSERS, Deadline, ExplainedBatch, RequestError
from serving.model import Model

log = logging.getLogger("serving")

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit
# What is left of an oversized body is read and dropped, up to this much, so that a client
# still sending it reads the 413 instead of a reset (gunicorn closes a connection that has
# more than 64 kB of unread body).
MAX_DISCARD_BYTES = 64 * 1024 * 1024
JSON = "application/json"
# gunicorn's exit code for "worker failed to boot": the master then stops instead of respawning.
WORKER_BOOT_ERROR = 3
DEADLINE_KEY = "serving.deadline"  # the environ key of a request's Deadline, set by the front


class ModelSlot:
    """Holds the model once a background thread has loaded it; ``model`` is None until then."""

    def __init__(self, loader: Callable[[], Model], on_error: Callable[[Exception], None]):
        self.model: Model | None = None
        self._loader, self._on_error = loader, on_error
        self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._thread.start()

    def wait(self) -> Model | None:
        """Block until loading has finished; the model, or None when it failed."""
        self._thread.join()
        return self.model

    def _load(self) -> None:
        try:
            self.model = self._loader()
        except Exception as exc:
            self._on_error(exc)
            return
        log.info("model %s (%s) loaded, vocabulary of %d terms, pid %d",
                 self.model.version, self.model.kind, self.model.vocab_size, os.getpid())


def _exit_worker(exc: Exception) -> None:
    """A worker that cannot load the model must not answer 503 forever: stop the server."""
    log.critical("cannot load the model: %s", exc)
    logging.shutdown()
    os._exit(WORKER_BOOT_ERROR)


def _json(body: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), status, headers, mimetype=JSON)


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": code, "message": message}, status)


def _read_body() -> bytes:
    """The request body, or 413 past MAX_BODY_BYTES, whether sized by Content-Length or chunked."""
    body = request.get_data(cache=False)  # raises 413 itself when Content-Length is over the limit
    # A chunked body is cut at the limit without an error: look for one byte more.
    if len(body) >= MAX_BODY_BYTES and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return body


def _discard_body() -> None:
    stream, dropped = request.environ["wsgi.input"], 0
    while dropped < MAX_DISCARD_BYTES and (chunk := stream.read(64 * 1024)):
        dropped += len(chunk)


def _checked(probabilities: np.ndarray, rows: int) -> list[float]:
    """The model's answers as floats, or a 500 ``model_error`` naming the first one that is wrong."""
    if probabilities.shape != (rows,):
        raise RequestError(500, "model_error", f"the model answered shape {probabilities.shape} for {rows} rows; "
                                               "redeploy a model that follows the contract")
    wrong = ~((probabilities >= 0) & (probabilities <= 1))  # NaN fails both comparisons
    if wrong.any():
        row = int(np.argmax(wrong))
        raise RequestError(500, "model_error", f"the model's answer for row {row + 1} is {float(probabilities[row])}, "
                                               "not a probability in [0, 1]; the model is faulty")
    return probabilities.tolist()


def explain_batch(model: Model, batch: Batch, explain: Explain) -> tuple[np.ndarray, list[dict]]:
    """explain.onnx's probabilities for a batch, and each review's explanation (``sentiment.wire``)."""
    try:
        return model.explained(batch, explain)
    except ValueError as exc:
        raise RequestError(500, "model_error", str(exc)) from None


def create_app(
    model_dir: str | Path | None = None,
    intra_op_threads: int = 1,
    loader: Callable[[], Model] | None = None,
    on_load_error: Callable[[Exception], None] = _exit_worker,
    timeout: float | None = None,
) -> Flask:
    """Build the app and start loading the model (from ``model_dir``, or by calling ``loader``).

    ``timeout``: seconds one request may take, when the front did not set its deadline.
    """
    if loader is None:
        if model_dir is None:
            raise ValueError("create_app needs a model_dir or a loader")
        loader = lambda: Model.load(model_dir, intra_op_threads)  # noqa: E731
    app = Flask("serving")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    slot = ModelSlot(loader, on_load_error)
    app.extensions["model_slot"] = slot

    @app.get("/ping")
    def ping() -> Response:
        if slot.model is None:
            return _error(503, "model_loading", "the model is still loading")
        return _json({"status": "ok", "model_version": slot.model.version})

    @app.post("/invocations")
    @app.post("/endpoints/<name>/invocations")
    def invocations(name: str | None = None) -> Response:
        """Score a batch. ``name`` (boto3's path) is ignored: this server is the endpoint."""
        deadline = request.environ.get(DEADLINE_KEY) or Deadline(timeout)
        # Read the body first, so that a client still sending a large one reads the error
        # below instead of a connection reset.
        body = _read_body()
        model = slot.model
        if model is None:
            raise RequestError(503, "model_loading", "the model is still loading; retry shortly")
        accept = request.accept_mimetypes
        if accept and not accept.best_match([JSON]):
            raise RequestError(406, "not_acceptable",
                               f"cannot answer in {request.headers['Accept']!r}; this server answers {JSON}")
        parse = PARSERS.get(request.mimetype)
        if parse is None:
            got = request.mimetype or "no Content-Type"
            raise RequestError(415, "unsupported_media_type",
                               f"cannot read {got}; send one of {', '.join(PARSERS)}")
        batch = parse(body, request.mimetype_params.get("charset", "utf-8"), model, deadline)
        deadline.check()
        if isinstance(batch, ExplainedBatch):
            probabilities, explained = explain_batch(model, batch, batch.explain)
        else:
            probabilities, explained = model.predict(batch), None
        deadline.check()  # ONNX Runtime cannot be stopped mid-run; its answer is dropped when late
        answer = encode_response(_checked(probabilities, len(batch)), model.version, model.band, explained)
        return _json(answer, headers={"X-Model-Version": model.version})

    @app.errorhandler(RequestError)
    def request_error(exc: RequestError) -> Response:
        (log.error if exc.status >= 500 else log.warning)(
            "%s %s -> %d %s: %s", request.method, request.path, exc.status, exc.code, exc.message)
        return _error(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        log.warning("%s %s -> %d %s", request.method, request.path, exc.code, code)
        if exc.code == 413:
            _discard_body()
            message = f"the body is over {MAX_BODY_BYTES:,} bytes, SageMaker's real-time payload limit"
        else:
            message = exc.description or code
        return _error(exc.code or 500, code, message)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, "internal_error", f"the server failed to score the request: {type(exc).__name__}")

    return app
