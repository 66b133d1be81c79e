"""POST /predict with "explain": the terms named through the featurizer, the option checked, old models."""

from __future__ import annotations

import json

import pytest

from sentiment.wire import explanation
from tests.lambda_fn.test_handler_endpoint import model_error, stubber  # noqa: F401 (a fixture)


def explained_prediction(api, featurizer, review: str, probability: float, weights: dict[str, float],
                         bias: float = 0.1, top: bool | int = True) -> dict:
    """The server's answer for one review: each term's contribution from ``weights`` (by term)."""
    row = featurizer.transform(review)
    vocabulary = featurizer.vocabulary
    contributions = [weights.get(vocabulary[i], 0.0) for i in row.indices]
    return {**api.prediction(probability), "uncertain": False,
            "explanation": explanation(row.indices, contributions, bias, bias + sum(contributions), top)}


def test_explain_true_names_every_term_and_they_add_up(featurizer, queue_answers, invoke, make_event, api, sent):
    review = "A wonderful film, the acting is superb."
    weights = {"wonderful": 1.5, "superb": 1.2, "a wonderful": 0.4, "film": 0.05, "the acting": 0.2}
    queue_answers({"predictions": [explained_prediction(api, featurizer, review, 0.95, weights)]})
    answer = invoke(make_event({"review": review, "explain": True}))
    assert answer.status == 200, answer.body
    [prediction] = answer.body["predictions"]
    e = prediction["explanation"]
    assert prediction["uncertain"] is False
    assert [t["term"] for t in e["terms"][:3]] == ["wonderful", "superb", "a wonderful"]
    assert {t["term"] for t in e["terms"]} == {featurizer.vocabulary[i] for i in featurizer.transform(review).indices}
    assert e["bias"] + sum(t["contribution"] for t in e["terms"]) == pytest.approx(e["logit"], abs=1e-9)
    assert json.loads(sent[0].body)["explain"] is True  # the option went to the endpoint


def test_without_explain_the_request_to_the_endpoint_is_as_before(featurizer, queue_answers, invoke, make_event,
                                                                   api, sent):
    queue_answers({"predictions": [api.prediction(0.9)]})
    assert invoke(make_event({"review": "a wonderful film"})).status == 200
    assert set(json.loads(sent[0].body)) == {"fingerprint", "instances"}


def test_explain_a_number_sends_the_limit(featurizer, queue_answers, invoke, make_event, api, sent):
    review = "the plot is dull"
    queue_answers({"predictions": [explained_prediction(api, featurizer, review, 0.1, {"dull": -2.0}, top=2)]})
    answer = invoke(make_event({"review": review, "explain": 2}))
    assert answer.status == 200
    e = answer.body["predictions"][0]["explanation"]
    assert len(e["terms"]) == 2 and e["terms"][0] == {"term": "dull", "contribution": -2.0}
    assert e["omitted"]["count"] == len(featurizer.transform(review).indices) - 2
    assert json.loads(sent[0].body)["explain"] == 2


@pytest.mark.parametrize("value", ["yes", 0, -3, 1.5, 12345678901234567890, None, [True]])
def test_a_malformed_explain_is_a_400(featurizer, invoke, make_event, expect_error, value):
    message = expect_error(invoke(make_event({"review": "a film", "explain": value})), 400, "invalid_request")
    assert '"explain" must be true, false or a number of terms' in message


def test_an_explanation_missing_from_the_answer_is_a_bad_model_response(featurizer, queue_answers, invoke,
                                                                         make_event, api, expect_error):
    queue_answers({"predictions": [api.prediction(0.9)]})
    expect_error(invoke(make_event({"review": "a film", "explain": True})), 502, "bad_model_response")


def test_a_model_that_cannot_explain_is_a_501(stubber, invoke, make_event, expect_error):
    stubber.add_client_error("invoke_endpoint", **model_error(501, '{"error":"explain_unavailable"}'))
    message = expect_error(invoke(make_event({"review": "a film", "explain": True})), 501, "explain_unavailable")
    assert "without \"explain\"" in message
