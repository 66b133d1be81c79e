"""docs/openapi.yaml tells the truth: every documented example is replayed through the handler.

A request example and the response example of the same name go together. Responses that no
request body can provoke (endpoint failures, bodies YAML cannot hold) are provoked below.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from lambda_fn import endpoint
from lambda_fn.validation import MAX_BODY_BYTES, MAX_REVIEW_CHARS

DOC = yaml.safe_load((Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text())
POST = DOC["paths"]["/predict"]["post"]
REQUESTS = {
    name: (content_type, example["value"])
    for content_type, media in POST["requestBody"]["content"].items()
    for name, example in media["examples"].items()
}
RESPONSES = {
    name: (int(status), example["value"])
    for status, response in POST["responses"].items()
    for name, example in response["content"]["application/json"]["examples"].items()
}


def _raise_in_send(exc: Exception) -> Callable[..., None]:
    def hook(**_: Any) -> None:
        raise exc

    events = endpoint.sagemaker_runtime().meta.events
    events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", hook)


class Provoke:
    """How to get each response that has no request example of its own."""

    def __init__(self, make_event: Callable[..., dict], monkeypatch: pytest.MonkeyPatch,
                 stack: contextlib.ExitStack):
        self.make_event, self.monkeypatch, self.stack = make_event, monkeypatch, stack
        self.review = make_event({"review": "a wonderful film"})

    def sagemaker_error(self, **error: Any) -> dict:
        stubber = self.stack.enter_context(Stubber(endpoint.sagemaker_runtime()))
        stubber.add_client_error("invoke_endpoint", **error)
        return self.review

    def event(self, name: str) -> dict:
        m = self.monkeypatch
        match name:
            case "invalidUtf8":
                return self.make_event('{"review": "café"}'.encode("latin-1"))
            case "invalidEvent":
                return {**self.review, "body": {"review": "a wonderful film"}}
            case "reviewTooLong":
                return self.make_event({"review": "a" * (MAX_REVIEW_CHARS + 1)})
            case "payloadTooLarge":
                return self.make_event("a" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "text/plain"})
            case "unsupportedMediaType":
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                return self.make_event("review=great", headers=form)
            case "internalError":
                m.setattr(endpoint, "score_reviews", lambda *_: 1 / 0)
            case "modelError":
                return self.sagemaker_error(service_error_code="ModelError", http_status_code=424,
                                            modeled_fields={"OriginalStatusCode": 500})
            case "featurizerMismatch":
                return self.sagemaker_error(service_error_code="ModelError", http_status_code=424,
                                            modeled_fields={"OriginalStatusCode": 409})
            case "badModelResponse":
                pass  # nothing queued: moto answers the text "body"
            case "endpointUnreachable":
                _raise_in_send(EndpointConnectionError(endpoint_url="https://runtime.sagemaker"))
            case "endpointTimeout":
                _raise_in_send(ReadTimeoutError(endpoint_url="https://runtime.sagemaker"))
            case "endpointBusy":
                return self.sagemaker_error(service_error_code="ThrottlingException", http_status_code=400)
            case "endpointNotFound":
                return self.sagemaker_error(service_error_code="ValidationError", http_status_code=400,
                                            service_message="Endpoint sentiment-test of account 1 not found.")
            case "featurizerUnavailable":
                m.setenv("FEATURIZER_URI", "s3://sentiment-artifacts/no/such/featurizer.json")
            case "notConfigured":
                m.delenv("ENDPOINT_NAME")
            case "explainUnavailable":
                self.stack.enter_context(Stubber(endpoint.sagemaker_runtime())).add_client_error(
                    "invoke_endpoint", service_error_code="ModelError", http_status_code=424,
                    modeled_fields={"OriginalStatusCode": 501})
                return self.make_event({"review": "a wonderful film", "explain": True})
            case _:
                raise KeyError(f"no way to provoke the documented example {name!r}")
        return self.review


def server_prediction(prediction: dict, featurizer) -> dict:
    """The model server's answer for a documented prediction: an explanation's terms by index."""
    if "explanation" not in prediction:
        return prediction
    e = prediction["explanation"]
    index = {term: i for i, term in enumerate(featurizer.vocabulary)}
    return {**prediction, "explanation": {
        "bias": e["bias"], "logit": e["logit"], "indices": [index[t["term"]] for t in e["terms"]],
        "contributions": [t["contribution"] for t in e["terms"]], "omitted": e["omitted"]}}


@pytest.fixture
def provoke(featurizer, make_event, monkeypatch) -> Iterator[Provoke]:
    with contextlib.ExitStack() as stack:
        yield Provoke(make_event, monkeypatch, stack)


def test_the_document_is_openapi_3_with_the_documented_operations() -> None:
    assert DOC["openapi"].startswith("3.")
    assert set(DOC["paths"]) == {"/predict"} and set(DOC["paths"]["/predict"]) == {"post", "options"}
    assert set(POST["requestBody"]["content"]) == {"application/json", "text/plain"}
    codes = DOC["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    for name, (status, body) in RESPONSES.items():
        if status == 200:
            assert set(body) == {"predictions", "variant"}, name
        else:
            assert set(body) == {"error", "message"} and body["error"] in codes, name
    assert set(REQUESTS) <= set(RESPONSES), "every request example needs the response example of its name"


def test_the_document_passes_the_openapi_validator() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(DOC)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_each_documented_example_is_what_the_handler_answers(name, provoke, queue_answers, invoke,
                                                             make_event, featurizer):
    status, expected = RESPONSES[name]
    if name in REQUESTS:
        content_type, value = REQUESTS[name]
        body = value if isinstance(value, str) else json.dumps(value)
        event = make_event(body, headers={"Content-Type": content_type})
    else:
        event = provoke.event(name)
    if status == 200:
        queue_answers({"predictions": [server_prediction(p, featurizer) for p in expected["predictions"]]},
                      variant=expected["variant"])

    answer = invoke(event)

    assert (answer.status, answer.body) == (status, expected)
    assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
    assert answer.headers["vary"] == "Origin"
    if name == "endpointBusy":
        assert answer.headers["retry-after"] == "2"

