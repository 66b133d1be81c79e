"""Featurize reviews and score them on the SageMaker endpoint: every AWS call of the function.

The featurizer and the botocore clients are created once per execution environment and
reused; a featurizer that failed to load is not cached, so the next request tries again.
Every failure becomes an ApiError whose message suits the caller and whose detail, for
the log, names the cause.
"""

from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lambda_fn.validation import ApiError
from sentiment.featurizer import Featurizer, FeaturizerError
from sentiment.wire import CONTENT_TYPE, Explain, PayloadError, decode_response, encode_request, name_terms

# A serverless endpoint that has scaled to zero starts its container for the first request and
# keeps starting it when a client gives up, so a second attempt finds it (nearly) ready: two
# attempts of 11 s wait through a cold start of up to about 24 s. Worst case per request:
# 2 x (2 s connect + 11 s read) + under 1 s of backoff = 27 s, inside the function's 28 s
# timeout and API Gateway's 29 s, so a slow endpoint gets our 504 rather than API Gateway's.
CONNECT_TIMEOUT_S, READ_TIMEOUT_S, MAX_ATTEMPTS = 2, 11, 2
RETRY_AFTER_S = 2
BUSY = ("ThrottlingException", "ModelNotReadyException", "ServiceUnavailable")  # worth a retry later
_CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    # "total_max_attempts" counts the first attempt; "max_attempts" would not.
    retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
)


class Measured(NamedTuple):
    """What drift monitoring sees of one review (``sentiment.drift``): never any of its text."""

    tokens: int
    oov: int  # tokens whose unigram is not in the vocabulary


class Scored(NamedTuple):
    """The 200 body for the caller, where the time went, and each review's measures."""

    body: dict[str, Any]
    featurize_ms: float
    endpoint_ms: float
    measured: list[Measured] = []


# boto3.client() returns these same botocore clients, but importing boto3 also loads
# s3transfer, which this function never uses: tens of milliseconds of every cold start.
@functools.cache
def sagemaker_runtime() -> Any:
    """The ``sagemaker-runtime`` client (honours ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``)."""
    return botocore.session.get_session().create_client("sagemaker-runtime", config=_CLIENT_CONFIG)


@functools.cache
def _s3() -> Any:
    return botocore.session.get_session().create_client("s3", config=_CLIENT_CONFIG)


def close_connections() -> None:
    """Close the pooled connections of the clients created so far; they reconnect on their next call.

    A SnapStart snapshot must hold no open socket: every environment restored from it would
    share the same connection, long closed by the other end.
    """
    for client in (sagemaker_runtime, _s3):
        if client.cache_info().currsize:
            client().close()


@functools.cache
def load_featurizer(uri: str) -> Featurizer:
    """The featurizer at ``s3://bucket/key`` or a local path; cached per URI, failures are not."""
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return Featurizer.from_json(_s3().get_object(Bucket=bucket, Key=key)["Body"].read())
    return Featurizer.load(uri)


def featurizer(uri: str | None) -> Featurizer:
    """The configured featurizer, or a 503 that tells the operator what to fix."""
    if not uri:
        raise ApiError(
            503, "not_configured", "the service is not configured: FEATURIZER_URI is not set",
            detail="FEATURIZER_URI is not set; point it at featurizer.json (s3://bucket/key or a path)",
        )
    try:
        return load_featurizer(uri)
    except (FeaturizerError, ClientError, BotoCoreError) as exc:
        raise ApiError(
            503, "featurizer_unavailable",
            "the featurizer could not be loaded from FEATURIZER_URI; the function's log names the cause",
            detail=f"cannot load the featurizer from {uri}: {exc}",
        ) from exc


def score_reviews(reviews: list[str], endpoint_name: str | None, featurizer_uri: str | None,
                  explain: Explain = False) -> Scored:
    """Featurize ``reviews``, score them on the endpoint, and return the checked predictions.

    With ``explain``, each prediction also holds its explanation, the terms named through the
    featurizer's vocabulary (``sentiment.wire.name_terms``); without it the request is as before.
    """
    if not endpoint_name:
        raise ApiError(
            503, "not_configured", "the service is not configured: ENDPOINT_NAME is not set",
            detail="ENDPOINT_NAME is not set; set it to the SageMaker endpoint's name",
        )
    started = time.perf_counter()
    feat = featurizer(featurizer_uri)
    rows, measured = [], []
    for review in reviews:
        row, tokens, oov = feat.transform_measured(review)
        rows.append(row)
        measured.append(Measured(tokens, oov))
    body = encode_request(feat.fingerprint, rows, explain)
    featurized = time.perf_counter()
    call = f"invoke_endpoint({endpoint_name})"
    try:
        response = sagemaker_runtime().invoke_endpoint(
            EndpointName=endpoint_name, Body=body, ContentType=CONTENT_TYPE, Accept=CONTENT_TYPE
        )
        payload = response["Body"].read()
    except ClientError as exc:
        raise _client_error(exc, endpoint_name) from exc
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        raise ApiError(504, "endpoint_timeout", "the model endpoint did not answer in time; retry shortly",
                       detail=f"{call} timed out after {MAX_ATTEMPTS} attempts: {exc}") from exc
    except (EndpointConnectionError, ConnectionClosedError) as exc:
        raise ApiError(502, "endpoint_unreachable", "could not connect to the model endpoint",
                       detail=f"{call} could not connect: {exc}") from exc
    except BotoCoreError as exc:
        raise ApiError(502, "endpoint_error", "the call to the model endpoint failed",
                       detail=f"{call} failed: {type(exc).__name__}: {exc}") from exc
    predictions = _predictions(payload, len(reviews), feat.vocab_size if explain is not False else None)
    if explain is not False:
        vocabulary = feat.vocabulary  # built on the first explanation, then kept with the featurizer
        for entry in predictions:
            entry["explanation"] = name_terms(entry["explanation"], vocabulary)
    done = time.perf_counter()
    return Scored(
        {"predictions": predictions, "variant": response.get("InvokedProductionVariant")},
        featurize_ms=(featurized - started) * 1000,
        endpoint_ms=(done - featurized) * 1000,
        measured=measured,
    )


def _client_error(exc: ClientError, endpoint_name: str) -> ApiError:
    """Map an endpoint's error response to the caller's status and code."""
    error = exc.response.get("Error", {})
    code, text = error.get("Code", ""), error.get("Message", "")
    # The model server's own status: wrapped in a ModelError by SageMaker, or bare when
    # the server is called directly (the local stack), where botocore reports it as the code.
    http_status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    status = exc.response.get("OriginalStatusCode") or http_status
    original = exc.response.get("OriginalMessage")
    detail = f"invoke_endpoint({endpoint_name}) failed: {code} (HTTP {status}): {original or text}"
    if status == 409:
        return ApiError(
            502, "featurizer_mismatch",
            "the model endpoint refused the request: the function's featurizer (FEATURIZER_URI) and the "
            "deployed model come from different training runs; deploy both from the same run",
            detail=detail,
        )
    if status == 501:
        return ApiError(
            501, "explain_unavailable",
            "the deployed model cannot explain its predictions (it was trained before explanations); "
            "ask without \"explain\", or retrain and deploy", detail=detail,
        )
    if code in BUSY or status in (429, 503):
        return ApiError(
            503, "endpoint_busy", "the model endpoint is busy or starting; retry in a few seconds",
            headers={"Retry-After": str(RETRY_AFTER_S)}, detail=detail,
        )
    if code == "ValidationError" and "not found" in text.lower():
        return ApiError(
            503, "endpoint_not_found",
            "the SageMaker endpoint named by ENDPOINT_NAME does not exist in this account and region",
            detail=detail,
        )
    if code in ("AccessDeniedException", "AccessDenied") or status == 403:
        return ApiError(502, "endpoint_access_denied",
                        "the function is not allowed to invoke the model endpoint; check its IAM role",
                        detail=detail)
    if code == "ModelError" or code.isdigit():
        return ApiError(502, "model_error", "the model server failed to score the reviews", detail=detail)
    return ApiError(502, "endpoint_error", "the call to the model endpoint failed", detail=detail)


def _predictions(payload: bytes, count: int, vocab_size: int | None = None) -> list[dict[str, Any]]:
    """The endpoint's predictions, checked against the wire format before they reach the caller."""
    try:
        return decode_response(payload, count, vocab_size)
    except PayloadError as exc:
        raise ApiError(
            502, "bad_model_response", "the model endpoint answered with an unexpected response",
            detail=f"endpoint response rejected ({exc}): {payload[:200]!r}",
        ) from None
