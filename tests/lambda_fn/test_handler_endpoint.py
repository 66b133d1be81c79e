"""Endpoint failures reach the caller as 502/503/504 with a clear message, and the log names the cause.

moto cannot fail an invocation, so SageMaker's errors come from botocore's Stubber and network
failures are raised inside the client's own send step, where botocore's retries handle them.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from lambda_fn import endpoint

MISMATCH = '{"error":"featurizer_mismatch","message":"featurized with fingerprint 8010ab76..."}'
LOG_STREAM = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/sentiment-test"


@pytest.fixture
def stubber(featurizer) -> Iterator[Stubber]:
    with Stubber(endpoint.sagemaker_runtime()) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def model_error(status: int, message: str) -> dict[str, Any]:
    """A ModelError as SageMaker reports a container's 4xx/5xx answer."""
    return dict(
        service_error_code="ModelError",
        http_status_code=424,
        service_message=f"Received client error ({status}) from primary with message \"{message}\".",
        modeled_fields={"OriginalStatusCode": status, "OriginalMessage": message, "LogStreamArn": LOG_STREAM},
    )


SAGEMAKER_ERRORS = {
    "fingerprint mismatch": (model_error(409, MISMATCH), 502, "featurizer_mismatch"),
    "model server 500": (model_error(500, '{"error":"internal_error"}'), 502, "model_error"),
    "model server 400": (model_error(400, '{"error":"invalid_payload"}'), 502, "model_error"),
    "model server loading": (model_error(503, '{"error":"model_loading"}'), 503, "endpoint_busy"),
    "throttled": (dict(service_error_code="ThrottlingException", http_status_code=400,
                       service_message="Rate exceeded"), 503, "endpoint_busy"),
    "model not ready": (dict(service_error_code="ModelNotReadyException", http_status_code=429,
                             service_message="Model is not ready"), 503, "endpoint_busy"),
    "service unavailable": (dict(service_error_code="ServiceUnavailable", http_status_code=503,
                                 service_message="Service unavailable"), 503, "endpoint_busy"),
    "endpoint not found": (dict(service_error_code="ValidationError", http_status_code=400,
                                service_message="Endpoint sentiment-test of account 123456789012 not found."),
                           503, "endpoint_not_found"),
    "access denied": (dict(service_error_code="AccessDeniedException", http_status_code=400,
                           service_message="User: arn:aws:sts::1:assumed-role/f is not authorized"),
                      502, "endpoint_access_denied"),
    "internal failure": (dict(service_error_code="InternalFailure", http_status_code=500,
                              service_message="An internal failure occurred"), 502, "endpoint_error"),
    "other validation error": (dict(service_error_code="ValidationError", http_status_code=400,
                                    service_message="1 validation error detected"), 502, "endpoint_error"),
    # The local stack calls the model server directly: botocore reports its status as the code.
    "local server 409": (dict(service_error_code="409", http_status_code=409, service_message=MISMATCH),
                         502, "featurizer_mismatch"),
    "local server 503": (dict(service_error_code="503", http_status_code=503,
                              service_message="model_loading"), 503, "endpoint_busy"),
    "local server 415": (dict(service_error_code="415", http_status_code=415, service_message="unsupported"),
                         502, "model_error"),
}


@pytest.mark.parametrize(("error", "status", "code"), SAGEMAKER_ERRORS.values(), ids=SAGEMAKER_ERRORS)
def test_sagemaker_errors_are_mapped(stubber, invoke, make_event, expect_error, logs, api,
                                     error, status, code):
    stubber.add_client_error("invoke_endpoint", **error)
    answer = invoke(make_event({"review": "a wonderful film"}))
    message = expect_error(answer, status, code)

    assert api.endpoint_name not in message and "123456789012" not in message
    [cause, summary] = logs()
    assert cause["level"] == "ERROR" and cause["status"] == status
    assert f"invoke_endpoint({api.endpoint_name})" in cause["message"]
    original = error.get("modeled_fields", {}).get("OriginalMessage", error["service_message"])
    assert original in cause["message"]
    assert (summary["status"], summary["error"]) == (status, code)
    assert answer.headers.get("retry-after") == ("2" if code == "endpoint_busy" else None)


def test_the_skew_message_tells_the_operator_what_to_do(stubber, invoke, make_event, expect_error):
    stubber.add_client_error("invoke_endpoint", **model_error(409, MISMATCH))
    message = expect_error(invoke(make_event({"review": "a wonderful film"})), 502, "featurizer_mismatch")
    assert message == (
        "the model endpoint refused the request: the function's featurizer (FEATURIZER_URI) and the deployed "
        "model come from different training runs; deploy both from the same run"
    )


URL = "https://runtime.sagemaker.us-east-1.amazonaws.com"
NETWORK_ERRORS = {
    "read timeout": (ReadTimeoutError(endpoint_url=URL), 504, "endpoint_timeout"),
    "connect timeout": (ConnectTimeoutError(endpoint_url=URL), 504, "endpoint_timeout"),
    "no connection": (EndpointConnectionError(endpoint_url=URL), 502, "endpoint_unreachable"),
}


@pytest.mark.parametrize(("exc", "status", "code"), NETWORK_ERRORS.values(), ids=NETWORK_ERRORS)
def test_network_failures_are_retried_then_mapped(featurizer, invoke, make_event, expect_error, logs,
                                                  exc, status, code):
    attempts: list[Any] = []

    def fail(request: Any, **_: Any) -> None:
        attempts.append(request)
        raise exc

    events = endpoint.sagemaker_runtime().meta.events
    events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", fail)
    expect_error(invoke(make_event({"review": "a wonderful film"})), status, code)
    assert len(attempts) == endpoint.MAX_ATTEMPTS == 2
    assert str(exc) in logs()[0]["message"]


def test_timeouts_stay_under_the_functions_28_seconds(aws) -> None:
    """Inside the function's timeout (infra/api.py, 28 s), which is inside API Gateway's 29 s."""
    config = endpoint.sagemaker_runtime().meta.config
    attempts = config.retries["total_max_attempts"]
    backoff = sum(2**n for n in range(attempts - 1))  # standard mode: at most 1 s, 2 s, ... between attempts
    assert attempts * (config.connect_timeout + config.read_timeout) + backoff <= 27
    assert config.read_timeout >= 10  # a serverless cold start of several seconds fits in one attempt


@pytest.mark.parametrize(
    "answer",
    [
        None,  # nothing queued: moto answers with the text "body"
        {"predictions": []},
        {"predictions": [{"label": "negative", "probability_positive": 0.9, "model_version": "v1"}]},
        {"predictions": [{"label": "positive", "probability_positive": 1.5, "model_version": "v1"}]},
        {"predictions": [{"label": "positive", "probability_positive": "0.9", "model_version": "v1"}]},
        {"predictions": [{"label": "positive", "probability_positive": True, "model_version": "v1"}]},
        {"predictions": [{"label": "positive", "probability_positive": 0.9}]},
        {"predictions": [{"label": "positive", "probability_positive": 0.9, "model_version": ""}]},
        {"predictions": [{"label": "yes", "probability_positive": 0.9, "model_version": "v1"}]},
        {"predictions": [None]},
        {"predictions": {"label": "positive"}},
        {"outputs": [0.9]},
        '{"predictions": [{"label": "positive", "probability_positive": NaN, "model_version": "v1"}]}',
        "[]",
        "null",
    ],
)
def test_an_unexpected_endpoint_answer_is_not_passed_on(featurizer, queue_answers, invoke, make_event,
                                                        expect_error, logs, answer):
    if answer is not None:
        queue_answers(answer)
    message = expect_error(invoke(make_event({"review": "a wonderful film"})), 502, "bad_model_response")
    assert message == "the model endpoint answered with an unexpected response"
    assert logs()[0]["message"].startswith("endpoint response rejected")


def test_extra_fields_from_the_endpoint_are_dropped(featurizer, queue_answers, invoke, make_event, api):
    queue_answers({"predictions": [{**api.prediction(1), "debug": "internal"}], "timings": {"ms": 3}})
    answer = invoke(make_event({"review": "a wonderful film"}))
    assert answer.body == {"predictions": [{**api.prediction(1), "probability_positive": 1.0}],
                           "variant": "AllTraffic"}
    assert json.loads(answer.raw["body"])["predictions"][0]["probability_positive"] == 1.0
