"""explain.onnx: each term's signed contribution, adding up with the bias to the logit, on real reviews."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sentiment.wire import explanation
from tests.training.test_export import spread_out_model, varied_reviews
from training.export import export_explainer, export_onnx, model_version
from training.model import SentimentModel
from training.sparse import SparseRows

OUTPUTS = ["probability", "logit", "contribution", "bias"]


@pytest.fixture(scope="module", params=["linear", "mlp"])
def explained(request, tmp_path_factory):
    """A spread-out model (test_export's), exported twice; and its featurized reviews."""
    model, featurizer = spread_out_model(request.param)
    folder = tmp_path_factory.mktemp(f"explain-{request.param}")
    version = model_version(model)
    export_onnx(model, folder / "model.onnx", version=version, featurizer_fingerprint=featurizer.fingerprint)
    export_explainer(model, folder / "explain.onnx", version=version, featurizer_fingerprint=featurizer.fingerprint)
    sessions = [ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
                for name in ("model.onnx", "explain.onnx")]
    return model, sessions, SparseRows.featurize(featurizer, varied_reviews())


@pytest.mark.parametrize("batch", [1, 64])
def test_bias_plus_contributions_is_the_logit_on_real_reviews(explained, batch):
    _, (model_session, explain_session), rows = explained
    for start in range(0, len(rows), batch):
        feed = rows.select(np.arange(start, min(start + batch, len(rows)))).feed()
        probability, logit, contribution, bias = explain_session.run(OUTPUTS, feed)
        assert contribution.shape == feed["indices"].shape and bias.shape == logit.shape == feed["offsets"].shape
        ends = np.append(feed["offsets"][1:], len(feed["indices"]))
        sums = np.array([contribution[a:b].astype(np.float64).sum() for a, b in zip(feed["offsets"], ends)])
        np.testing.assert_allclose(bias + sums, logit, rtol=0, atol=1e-5)
        # the explainer's probability is the model's, and the logit is its logit
        np.testing.assert_allclose(probability, model_session.run(["probability"], feed)[0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(1 / (1 + np.exp(-logit.astype(np.float64))), probability, rtol=0, atol=1e-6)


def test_linear_contributions_are_each_terms_weight_times_its_feature(explained):
    """For the linear model the contribution is exact: w_j × tf × term weight / the review's norm, from numpy."""
    model, (_, explain_session), rows = explained
    if model.settings.kind != "linear":
        pytest.skip("exact per-term contributions are the linear model's")
    feed = rows.select(np.arange(len(rows))).feed()
    _, _, contribution, bias = explain_session.run(OUTPUTS, feed)
    w = model.input_weight.detach().numpy()[:, 0].astype(np.float64)
    term_weight = model.term_weight.numpy().astype(np.float64)
    ends = np.append(feed["offsets"][1:], len(feed["indices"]))
    for a, b in zip(feed["offsets"], ends):
        x = np.minimum(feed["counts"][a:b], 1.0) * term_weight[feed["indices"][a:b]]
        expected = w[feed["indices"][a:b]] * x / max(np.sqrt((x * x).sum()), 1e-12)
        np.testing.assert_allclose(contribution[a:b], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, model.input_bias.item(), rtol=0, atol=1e-7)


def test_wire_explanation_sorts_cuts_and_still_adds_up(explained):
    _, (_, explain_session), rows = explained
    feed = rows.select(np.arange(3)).feed()
    _, logit, contribution, bias = explain_session.run(OUTPUTS, feed)
    n = int(feed["offsets"][1])
    indices, values = feed["indices"][:n].tolist(), contribution[:n].tolist()
    full = explanation(indices, values, bias[0], logit[0])
    magnitudes = [abs(c) for c in full["contributions"]]
    assert magnitudes == sorted(magnitudes, reverse=True) and sorted(full["indices"]) == sorted(indices)
    assert full["omitted"] == {"count": 0, "contribution": 0.0}
    top = explanation(indices, values, bias[0], logit[0], 5)
    assert top["indices"] == full["indices"][:5] and top["omitted"]["count"] == n - 5
    for e in (full, top):
        total = e["bias"] + sum(e["contributions"]) + e["omitted"]["contribution"]
        assert total == pytest.approx(e["logit"], abs=1e-5)


def test_explainer_metadata_and_signature(explained, tmp_path):
    model, (model_session, explain_session), _ = explained
    assert [o.name for o in explain_session.get_outputs()] == OUTPUTS
    assert [i.name for i in explain_session.get_inputs()] == ["indices", "counts", "offsets"]
    meta, model_meta = (s.get_modelmeta().custom_metadata_map for s in (explain_session, model_session))
    assert meta["model_version"] == model_meta["model_version"] and meta["model_kind"] == model.settings.kind
    # model.onnx is untouched by the explainer: one output, as before
    assert [o.name for o in model_session.get_outputs()] == ["probability"]


def test_explain_needs_evaluation_mode():
    model = SentimentModel(10).train()
    with pytest.raises(RuntimeError, match="evaluation mode"):
        model.explain(torch.tensor([1]), torch.ones(1), torch.tensor([0]))
