"""The handler's success paths, CORS, configuration and logs, with moto for S3 and SageMaker."""

from __future__ import annotations

import json

import boto3
import pytest

from lambda_fn import endpoint

# The conftest featurizer's sorted vocabulary: a=0, a terrible=1, a wonderful=2, acting=3, acting is=4,
# dull=5, film=6, is=7, is dull=8, is superb=9, plot=10, plot is=11, superb=12, terrible=13,
# terrible film=14, the=15, the acting=16, the plot=17, wonderful=18, wonderful film=19.
REVIEW = "A wonderful film, a WONDERFUL film!<br />The acting is superb."
INSTANCE = '{"indices":[0,2,3,4,6,7,9,12,15,16,18,19],"counts":[2,2,1,1,2,1,1,1,1,1,2,2]}'


def test_one_review_is_featurized_sent_and_answered(featurizer, queue_answers, sent, invoke, make_event, api):
    queue_answers({"predictions": [api.prediction(0.93)]}, variant="AllTraffic")
    answer = invoke(make_event({"review": REVIEW}))

    assert answer.status == 200
    assert answer.body == {"predictions": [api.prediction(0.93)], "variant": "AllTraffic"}
    assert answer.headers["content-type"] == "application/json"
    [request] = sent
    assert request.url.endswith(f"/endpoints/{api.endpoint_name}/invocations")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.body == f'{{"fingerprint":"{featurizer.fingerprint}","instances":[{INSTANCE}]}}'.encode()


def test_a_batch_keeps_the_order_of_the_reviews(featurizer, queue_answers, sent, invoke, make_event, api):
    answers = [api.prediction(0.1), api.prediction(0.5), api.prediction(0.99)]
    queue_answers({"predictions": answers})
    answer = invoke(make_event({"reviews": ["the plot is dull", REVIEW, "zzz"]}))

    assert answer.status == 200
    assert answer.body["predictions"] == answers
    instances = json.loads(sent[0].body)["instances"]
    assert instances[0] == {"indices": [5, 7, 8, 10, 11, 15, 17], "counts": [1, 1, 1, 1, 1, 1, 1]}
    assert json.dumps(instances[1], separators=(",", ":")) == INSTANCE
    assert instances[2] == {"indices": [], "counts": []}  # nothing known: the model still answers


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (REVIEW, "text/plain"),
        (REVIEW, "text/plain; charset=UTF-8"),
        (REVIEW.encode(), "text/plain"),  # base64-encoded by API Gateway (binary media type)
        (json.dumps({"review": REVIEW}).encode(), "application/json"),
        (json.dumps({"review": REVIEW}), "Application/JSON;charset=utf-8"),
        (json.dumps({"review": REVIEW}), None),  # no Content-Type: read as JSON
    ],
)
def test_every_accepted_body_sends_the_same_request(
    featurizer, queue_answers, sent, invoke, make_event, api, body, content_type
):
    queue_answers({"predictions": [api.prediction(0.8)]})
    answer = invoke(make_event(body, headers={"Content-Type": content_type}))

    assert answer.status == 200, answer.body
    assert json.loads(sent[0].body)["instances"] == [json.loads(INSTANCE)]


def test_variant_is_null_when_sagemaker_names_none(featurizer, queue_answers, invoke, make_event, api):
    queue_answers({"predictions": [api.prediction(0.2)]}, variant=None)
    answer = invoke(make_event({"review": "dull"}))
    assert answer.body == {"predictions": [api.prediction(0.2)], "variant": None}


def test_the_featurizer_is_loaded_once_and_reused(featurizer, queue_answers, invoke, make_event, api):
    queue_answers({"predictions": [api.prediction(0.9)]}, {"predictions": [api.prediction(0.1)]})
    assert invoke(make_event({"review": "a wonderful film"})).status == 200
    assert invoke(make_event({"review": "a terrible film"})).status == 200
    assert endpoint.load_featurizer.cache_info().misses == 1
    assert endpoint.load_featurizer.cache_info().hits == 1


def test_a_featurizer_that_failed_to_load_is_retried(aws, featurizer, queue_answers, invoke, make_event, api,
                                                      monkeypatch, logs):
    monkeypatch.setenv("FEATURIZER_URI", f"s3://{api.bucket}/missing/featurizer.json")
    failed = invoke(make_event({"review": "a wonderful film"}))
    assert (failed.status, failed.body["error"]) == (503, "featurizer_unavailable")
    [cause] = [line for line in logs() if line["level"] == "ERROR"]
    assert f"s3://{api.bucket}/missing/featurizer.json" in cause["message"]
    assert "NoSuchKey" in cause["message"]

    boto3.client("s3").put_object(Bucket=api.bucket, Key="missing/featurizer.json", Body=featurizer.to_json())
    queue_answers({"predictions": [api.prediction(0.9)]})
    assert invoke(make_event({"review": "a wonderful film"})).status == 200


def test_the_featurizer_can_be_a_local_file(featurizer, queue_answers, invoke, make_event, api, tmp_path,
                                            monkeypatch):
    monkeypatch.setenv("FEATURIZER_URI", str(featurizer.save(tmp_path / "featurizer.json")))
    queue_answers({"predictions": [api.prediction(0.9)]})
    assert invoke(make_event({"review": "a wonderful film"})).status == 200


@pytest.mark.parametrize("content", ['{"format": "sentiment-featurizer/1"}', "not json", ""])
def test_a_broken_featurizer_file_is_a_503_naming_the_cause(aws, invoke, make_event, tmp_path, monkeypatch,
                                                           logs, content):
    path = tmp_path / "featurizer.json"
    path.write_text(content)
    monkeypatch.setenv("FEATURIZER_URI", str(path))
    answer = invoke(make_event({"review": "fine"}))
    assert (answer.status, answer.body["error"]) == (503, "featurizer_unavailable")
    assert str(tmp_path) not in answer.body["message"]  # paths go to the log only
    assert str(path) in logs()[0]["message"]


@pytest.mark.parametrize("variable", ["ENDPOINT_NAME", "FEATURIZER_URI"])
def test_missing_configuration_is_a_503_naming_the_variable(featurizer, invoke, make_event, monkeypatch,
                                                            variable):
    monkeypatch.delenv(variable)
    answer = invoke(make_event({"review": "fine"}))
    assert answer.status == 503
    assert answer.body == {"error": "not_configured",
                           "message": f"the service is not configured: {variable} is not set"}


# -- CORS ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("origin_attr", ["origin", "other_origin"])
def test_an_allowed_origin_is_echoed(featurizer, queue_answers, invoke, make_event, api, origin_attr):
    origin = getattr(api, origin_attr)
    queue_answers({"predictions": [api.prediction(0.9)]})
    answer = invoke(make_event({"review": "fine"}, headers={"Origin": origin}))
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == origin
    assert answer.headers["access-control-expose-headers"] == "Retry-After"
    assert answer.headers["vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.example.com.evil.example", "null",
                                    "http://app.example.com", None])
def test_other_origins_get_no_cors_headers(featurizer, queue_answers, invoke, make_event, api, origin):
    queue_answers({"predictions": [api.prediction(0.9)]})
    answer = invoke(make_event({"review": "fine"}, headers={"Origin": origin}))
    assert answer.status == 200
    assert not [name for name in answer.headers if name.startswith("access-control-")]
    assert answer.headers["vary"] == "Origin"


def test_preflight_lists_the_allowed_method_and_headers(aws, invoke, make_event, api):
    answer = invoke(make_event(None, method="OPTIONS", headers={
        "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}))
    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == api.origin
    assert answer.headers["access-control-allow-methods"] == "OPTIONS,POST"
    assert "Content-Type" in answer.headers["access-control-allow-headers"].split(",")
    assert answer.headers["access-control-max-age"] == "600"
    assert answer.headers["vary"] == "Origin"


def test_a_wildcard_is_honoured_only_when_configured(aws, invoke, make_event, monkeypatch):
    preflight = make_event(None, method="OPTIONS", headers={"Origin": "https://anywhere.example"})
    assert "access-control-allow-origin" not in invoke(preflight).headers
    monkeypatch.setenv("ALLOWED_ORIGINS", "*")
    assert invoke(preflight).headers["access-control-allow-origin"] == "*"


def test_no_allowed_origins_means_no_cross_origin_access(aws, invoke, make_event, api, monkeypatch):
    monkeypatch.delenv("ALLOWED_ORIGINS")
    answer = invoke(make_event(None, method="OPTIONS", headers={"Origin": api.origin}))
    assert "access-control-allow-origin" not in answer.headers


# -- events that are not quite the usual ---------------------------------------------------------
def test_an_event_without_headers_is_read_as_json(featurizer, queue_answers, invoke, make_event, api):
    event = make_event({"review": "fine"})
    event["headers"] = event["multiValueHeaders"] = None
    queue_answers({"predictions": [api.prediction(0.9)]})
    answer = invoke(event)
    assert answer.status == 200
    assert answer.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({}, "'httpMethod' is missing"),
        ({"Records": []}, "'httpMethod' is missing"),
        ({"httpMethod": "POST"}, "'path' is missing"),
        (None, "the event is null, not an object"),
        ([], "the event is a list, not an object"),
        ("POST /predict", "the event is a string, not an object"),
    ],
)
def test_an_event_that_is_not_from_api_gateway_is_refused(aws, invoke, event, problem):
    answer = invoke(event)
    assert answer.status == 400
    assert answer.body == {"error": "invalid_event", "message": f"not an API Gateway REST proxy event: {problem}"}
    assert answer.headers["vary"] == "Origin"


def test_an_unexpected_failure_is_a_500_without_internals(featurizer, invoke, make_event, monkeypatch, logs):
    def explode(*_args):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(endpoint, "score_reviews", explode)
    answer = invoke(make_event({"review": "fine"}))
    assert answer.status == 500
    assert answer.body == {"error": "internal_error", "message": "internal error; it has been logged"}
    assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
    [error, _] = logs()
    assert error["message"] == "unhandled error"
    assert "secret internal detail" in error["exception"] and "Traceback" in error["exception"]


# -- logs and metrics -----------------------------------------------------------------------------
def test_one_structured_log_line_per_request_without_the_review(featurizer, queue_answers, invoke, make_event,
                                                                api, logs):
    queue_answers({"predictions": [api.prediction(0.9), api.prediction(0.2)]})
    event = make_event({"reviews": ["zyzzyva wonderful", "quokka terrible"]})
    assert invoke(event).status == 200
    assert invoke(make_event({"reviews": ["zyzzyva"] * 101})).status == 413

    assert "zyzzyva" not in json.dumps(logs()) and "quokka" not in json.dumps(logs())
    ok, refused = logs()
    assert ok["correlation_id"] == event["requestContext"]["requestId"]
    assert ok["function_request_id"] == "52fdfc07-2182-454f-963f-5f0f9a621d72"
    assert (ok["method"], ok["path"], ok["status"], ok["review_count"]) == ("POST", "/predict", 200, 2)
    assert ok["latency_ms"] >= ok["endpoint_ms"] > 0 and ok["featurize_ms"] > 0
    assert ok["variant"] == "AllTraffic" and "error" not in ok
    assert (refused["status"], refused["error"]) == (413, "too_many_reviews")
    assert "review_count" not in refused  # state does not leak from one request to the next


def test_reviews_scored_metric_when_a_namespace_is_set(featurizer, queue_answers, invoke, make_event, api,
                                                        monkeypatch, capsys, logs):
    from lambda_fn.handler import metrics

    monkeypatch.setattr(metrics, "namespace", "SentimentApi")  # read from the environment at import
    queue_answers({"predictions": [api.prediction(0.9)] * 3})
    assert invoke(make_event({"reviews": ["a", "b", "c"]})).status == 200
    emf, _drift = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SentimentApi"
    assert emf["ReviewsScored"] == [3.0]


def test_drift_metrics_per_review_by_model_version_and_variant_and_never_text(
        featurizer, queue_answers, invoke, make_event, api, monkeypatch, capsys):
    from lambda_fn.handler import metrics

    monkeypatch.setattr(metrics, "namespace", "SentimentApi")
    reviews = ["A good film.", "Zyxwv qwertzu good", "great great plot and a good cast"]
    queue_answers({"predictions": [api.prediction(p) for p in (0.9, 0.2, 0.75)]}, variant="candidate")
    assert invoke(make_event({"reviews": reviews})).status == 200
    out = capsys.readouterr().out
    _, drift = [json.loads(line) for line in out.splitlines()]
    [directive] = drift["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "SentimentApi"
    assert set(directive["Dimensions"][0]) == {"ModelVersion", "Variant", "service"}
    assert (drift["ModelVersion"], drift["Variant"]) == (api.model_version, "candidate")
    measured = [featurizer.transform_measured(r)[1:] for r in reviews]
    assert drift["ReviewLength"] == [float(tokens) for tokens, _ in measured] == [3.0, 3.0, 7.0]
    assert drift["OovRate"] == [pytest.approx(100 * oov / tokens, abs=1e-3) for tokens, oov in measured]
    assert drift["ProbabilityPositive"] == [0.9, 0.2, 0.75]
    for word in ("good", "Zyxwv", "plot", "cast"):
        assert word not in out
