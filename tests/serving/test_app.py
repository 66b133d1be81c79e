"""The Flask app before and after its model loads (the window a real server passes through quickly)."""

from __future__ import annotations

import itertools
import math
import threading
import time

import numpy as np
import pytest

from serving.app import create_app
from serving.inputs import Deadline, RequestError, parse_text
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


# -- never a NaN on the wire; a request stops at its deadline -----------------------------------

def _model_answering(model_dir, predict) -> Model:
    """The tiny model with ``predict`` replaced (a model that misbehaves, or takes its time)."""
    real = Model.load(model_dir)

    class Replaced(Model):
        def predict(self, batch):
            return predict(batch)

    return Replaced(real.session, real.featurizer, real.version, real.kind)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1.5])
def test_a_model_answering_a_non_probability_is_a_500_and_never_json_nan(model_dir, value):
    model = _model_answering(model_dir, lambda batch: np.full(len(batch), value, np.float32))
    client = create_app(loader=lambda: model).test_client()
    assert _wait_for(lambda: client.get("/ping").status_code == 200)
    answer = client.post("/invocations", data="a good film\nbad\n", content_type="text/plain")
    assert answer.status_code == 500 and answer.json["error"] == "model_error"
    assert "row 1" in answer.json["message"] and "not a probability" in answer.json["message"]
    for word in ("NaN", "Infinity"):
        assert word not in answer.get_data(as_text=True)


def test_a_request_past_its_deadline_is_503_naming_the_timeout(model_dir):
    def slow(batch):
        time.sleep(0.5)
        return np.full(len(batch), 0.5, np.float32)

    client = create_app(loader=lambda: _model_answering(model_dir, slow), timeout=0.2).test_client()
    assert _wait_for(lambda: client.get("/ping").status_code == 200)
    answer = client.post("/invocations", data="a good film", content_type="text/plain")
    assert answer.status_code == 503 and answer.json["error"] == "timeout"
    assert "0.2 s" in answer.json["message"] and "--timeout" in answer.json["message"]


def test_featurizing_stops_at_the_deadline_between_chunks(model_dir):
    ticks = itertools.count()
    deadline = Deadline(5, clock=lambda: next(ticks))  # every look at the clock is one second later
    with pytest.raises(RequestError) as error:
        parse_text(b"a good film\n" * 10_000, "utf-8", Model.load(model_dir), deadline)
    assert error.value.status == 503 and error.value.code == "timeout"
    assert next(ticks) < 20  # it stopped early, not after featurizing everything
