"""Fixtures for the Lambda handler tests: real-shaped API Gateway events, moto S3 and SageMaker."""

from __future__ import annotations

import base64
import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from moto import mock_aws

from lambda_fn import endpoint
from sentiment.featurizer import Featurizer, FeaturizerSettings

EVENTS = Path(__file__).parent / "events"
SAMPLE_EVENT = json.loads((EVENTS / "rest_api_post_predict.json").read_text())
ORIGIN = "https://app.example.com"  # the sample event's Origin
OTHER_ORIGIN = "https://dev.example.com"
ALLOWED_ORIGINS = f"{ORIGIN}, {OTHER_ORIGIN}/"  # spaces and a trailing slash are tolerated
ENDPOINT_NAME = "sentiment-test"
BUCKET, KEY = "sentiment-artifacts", "models/featurizer.json"
CORPUS = ["a wonderful film", "a terrible film", "the acting is superb", "the plot is dull"]
MOTO_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "sentiment-api"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sentiment-api"
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"


@dataclass
class Answer:
    """A proxy response, decoded: multiValueHeaders flattened (lower-case names), body parsed."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]


def rest_event(
    body: str | bytes | dict | list | None = None,
    *,
    method: str = "POST",
    path: str = "/predict",
    headers: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event shaped like the sample one.

    ``body``: a dict/list is sent as JSON text, bytes go base64-encoded (isBase64Encoded).
    ``headers`` are merged into the sample's (matched case-insensitively); None removes one.
    """
    event = copy.deepcopy(SAMPLE_EVENT)
    for name, value in (headers or {}).items():
        for key in [k for k in event["headers"] if k.lower() == name.lower()]:
            del event["headers"][key], event["multiValueHeaders"][key]
        if value is not None:
            event["headers"][name], event["multiValueHeaders"][name] = value, [value]
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    event["isBase64Encoded"] = isinstance(body, bytes)
    event["body"] = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    event["requestContext"]["path"] = f"/prod{path}"
    resource = "/predict" if path == "/predict" else "/{proxy+}"
    event["resource"] = event["requestContext"]["resourcePath"] = resource
    return event


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    return rest_event


@pytest.fixture
def invoke() -> Callable[[dict[str, Any]], Answer]:
    """Call the real handler with an event; return its decoded response."""
    from lambda_fn.handler import lambda_handler

    def call(event: dict[str, Any]) -> Answer:
        raw = lambda_handler(event, FakeLambdaContext())
        assert set(raw) >= {"statusCode", "body", "isBase64Encoded", "multiValueHeaders"}
        headers = {name.lower(): ",".join(values) for name, values in raw["multiValueHeaders"].items()}
        body = json.loads(raw["body"]) if raw["body"] else None
        return Answer(raw["statusCode"], headers, body, raw)

    return call


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The handler's JSON log lines so far (its logger writes to the stdout it saw at import)."""
    from lambda_fn.handler import logger

    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.registered_handler.setStream(previous)


@pytest.fixture
def expect_error() -> Callable[[Answer, int, str], str]:
    """Check an error answer: status, ``{"error", "message"}`` body, CORS headers; return the message."""

    def check(answer: Answer, status: int, code: str) -> str:
        assert (answer.status, answer.body.get("error")) == (status, code), answer.body
        assert set(answer.body) == {"error", "message"} and answer.body["message"]
        assert "Traceback" not in answer.body["message"] and 'File "' not in answer.body["message"]
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert answer.headers["vary"] == "Origin"
        return answer.body["message"]

    return check


def clear_caches() -> None:
    for cached in (endpoint.sagemaker_runtime, endpoint._s3, endpoint.load_featurizer):
        cached.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dummy credentials, the function's environment, and moto for every AWS call."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                 "AWS_ENDPOINT_URL_S3", "POWERTOOLS_LOGGER_LOG_EVENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ENDPOINT_NAME", ENDPOINT_NAME)
    monkeypatch.setenv("FEATURIZER_URI", f"s3://{BUCKET}/{KEY}")
    monkeypatch.setenv("ALLOWED_ORIGINS", ALLOWED_ORIGINS)
    clear_caches()
    with mock_aws():
        yield
    clear_caches()


@pytest.fixture
def featurizer(aws: None) -> Featurizer:
    """A tiny fitted featurizer, uploaded to the moto bucket that FEATURIZER_URI names."""
    import boto3

    fitted = Featurizer(FeaturizerSettings(min_df=1)).fit(CORPUS)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=fitted.to_json().encode())
    return fitted


@dataclass(frozen=True)
class Api:
    """What the tests know about the function's configuration (conftest is not importable)."""

    origin: str = ORIGIN
    other_origin: str = OTHER_ORIGIN
    endpoint_name: str = ENDPOINT_NAME
    featurizer_uri: str = f"s3://{BUCKET}/{KEY}"
    bucket: str = BUCKET
    model_version: str = "20261128T1810Z-3f2a9c1d"

    def prediction(self, probability: float) -> dict[str, Any]:
        """One prediction as the model server returns it."""
        label = "positive" if probability >= 0.5 else "negative"
        return {"label": label, "probability_positive": probability, "model_version": self.model_version}


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def queue_answers(aws: None) -> Callable[..., None]:
    """Queue endpoint answers in moto; each is a response body (a dict is sent as JSON)."""

    def queue(*bodies: dict | str, variant: str | None = "AllTraffic") -> None:
        results = [
            {"Body": body if isinstance(body, str) else json.dumps(body), "ContentType": "application/json",
             **({"InvokedProductionVariant": variant} if variant else {})}
            for body in bodies
        ]
        requests.post(MOTO_RESULTS, json={"results": results}, timeout=5).raise_for_status()

    return queue


@pytest.fixture
def sent(aws: None) -> list[Any]:
    """Every HTTP request the handler's sagemaker-runtime client signs (what reaches the wire)."""
    requests_seen: list[Any] = []
    endpoint.sagemaker_runtime().meta.events.register(
        "before-sign.sagemaker-runtime.InvokeEndpoint", lambda request, **_: requests_seen.append(request)
    )
    return requests_seen
