"""The Flask app before and after its model loads (the window a real server passes through quickly)."""

from __future__ import annotations

import threading
import time

from serving.app import create_app
from serving.model import Model


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_ping_is_503_until_the_model_has_loaded_then_200(model_dir):
    release = threading.Event()

    def slow_loader() -> Model:
        release.wait(10)
        return Model.load(model_dir)

    client = create_app(loader=slow_loader).test_client()
    ping = client.get("/ping")
    assert ping.status_code == 503 and ping.json["error"] == "model_loading"
    early = client.post("/invocations", data="a good film", content_type="text/plain")
    assert early.status_code == 503 and early.json["error"] == "model_loading"

    release.set()
    assert _wait_for(lambda: client.get("/ping").status_code == 200)
    assert client.get("/ping").json["model_version"] == "20261128T1810Z-0badc0de"
    scored = client.post("/invocations", data="a good film", content_type="text/plain")
    assert scored.status_code == 200 and scored.json["predictions"][0]["label"] == "positive"


def test_a_failed_load_is_reported_and_ping_stays_503(tmp_path):
    errors: list[Exception] = []
    client = create_app(tmp_path / "missing", on_load_error=errors.append).test_client()
    assert _wait_for(lambda: errors)
    assert "does not exist" in str(errors[0])
    assert client.get("/ping").status_code == 503
