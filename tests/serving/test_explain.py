"""The server's explanations (explain.onnx, asked for with "explain") and the uncertain band."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

# The models here are trained and exported with torch: the main suite runs this file, the second run
# on the serving image's Python (no torch there, as in the image) skips it.
torch = pytest.importorskip("torch", reason="trains its models with torch, which the image's Python lacks")

from sentiment.featurizer import Featurizer, FeaturizerSettings  # noqa: E402
from sentiment.wire import decode_response, encode_request, name_terms  # noqa: E402
from serving.app import create_app  # noqa: E402
from serving.model import Model  # noqa: E402
from tests.training.test_export import FIXTURE_ARCHIVE, varied_reviews  # noqa: E402
from training.data import load_imdb  # noqa: E402
from training.export import export_explainer, export_onnx, model_version  # noqa: E402
from training.model import ModelSettings, SentimentModel  # noqa: E402

BAND = (0.4, 0.6)


def write_explainable(folder: Path, kind: str = "linear", band=BAND) -> Path:
    """model.onnx, explain.onnx and featurizer.json of a model with random weights on the fixture's terms."""
    imdb = load_imdb(FIXTURE_ARCHIVE)
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(imdb.train.texts)
    torch.manual_seed(0)
    model = SentimentModel(featurizer.vocab_size, ModelSettings(kind=kind, hidden=8))
    with torch.no_grad():
        model.input_weight.normal_(0, 2.0)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    featurizer.save(folder / "featurizer.json")
    version = model_version(model)
    export_onnx(model, folder / "model.onnx", version=version, featurizer_fingerprint=featurizer.fingerprint,
                uncertain_band=band)
    export_explainer(model, folder / "explain.onnx", version=version, featurizer_fingerprint=featurizer.fingerprint)
    return folder


@pytest.fixture(scope="module", params=["linear", "mlp"])
def folder(request, tmp_path_factory) -> Path:
    return write_explainable(tmp_path_factory.mktemp(f"explainable-{request.param}"), request.param)


@pytest.fixture(scope="module")
def client(folder):
    app = create_app(folder)
    slot = app.extensions["model_slot"]
    assert slot.wait() is not None
    return app.test_client(), slot.model


def post(client, featurizer, reviews, **options):
    body = encode_request(featurizer.fingerprint, featurizer.transform_many(reviews), **options)
    return client.post("/invocations", data=body, content_type="application/json")


def test_explanations_add_up_to_the_logit_and_leave_the_prediction_as_it_is(client):
    app, model = client
    reviews = varied_reviews()
    plain, explained = post(app, model.featurizer, reviews), post(app, model.featurizer, reviews, explain=True)
    assert plain.status_code == explained.status_code == 200
    for before, after, review in zip(plain.json["predictions"], explained.json["predictions"], reviews, strict=True):
        assert "explanation" not in before
        e = after.pop("explanation")
        assert after == before  # label, probability, version and uncertain: the same as without explain
        assert e["bias"] + sum(e["contributions"]) == pytest.approx(e["logit"], abs=1e-5)
        assert 1 / (1 + np.exp(-e["logit"])) == pytest.approx(before["probability_positive"], abs=1e-6)
        row = model.featurizer.transform(review)
        assert sorted(e["indices"]) == row.indices and e["omitted"] == {"count": 0, "contribution": 0.0}
        magnitudes = [abs(c) for c in e["contributions"]]
        assert magnitudes == sorted(magnitudes, reverse=True)


def test_a_limit_keeps_the_largest_terms_and_says_what_it_left_out(client):
    app, model = client
    review = varied_reviews()[0]
    full = post(app, model.featurizer, [review], explain=True).json["predictions"][0]["explanation"]
    top = post(app, model.featurizer, [review], explain=3).json["predictions"][0]["explanation"]
    assert top["indices"] == full["indices"][:3] and top["contributions"] == full["contributions"][:3]
    assert top["omitted"]["count"] == len(full["indices"]) - 3
    assert top["bias"] + sum(top["contributions"]) + top["omitted"]["contribution"] == pytest.approx(
        top["logit"], abs=1e-5)


def test_the_lambda_reads_the_explanation_and_names_its_terms(client):
    app, model = client
    answer = post(app, model.featurizer, ["A great film, truly great.", "Dull."], explain=True)
    predictions = decode_response(answer.data, 2, model.featurizer.vocab_size)
    named = name_terms(predictions[0]["explanation"], model.featurizer.vocabulary)
    terms = {t["term"] for t in named["terms"]}
    assert {"great", "film", "a great"} <= terms and all(isinstance(t["contribution"], float) for t in named["terms"])
    # without a vocabulary size, decode_response reads no explanation: the request asked for none
    assert "explanation" not in decode_response(answer.data, 2)[0]


def test_uncertain_marks_the_predictions_inside_the_band(client):
    app, model = client
    assert model.band == BAND
    for p in post(app, model.featurizer, varied_reviews()).json["predictions"]:
        assert p["uncertain"] == (BAND[0] <= p["probability_positive"] <= BAND[1])


@pytest.mark.parametrize("value", ["yes", 0, -1, 1.5, 100_001, None, [], {}])
def test_a_malformed_explain_option_is_a_400(client, value):
    app, model = client
    body = json.loads(encode_request(model.featurizer.fingerprint, [model.featurizer.transform("good")]))
    body["explain"] = value
    answer = app.post("/invocations", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 400 and '"explain" must be' in answer.json["message"]


def test_explain_false_is_no_explanation(client):
    app, model = client
    body = json.loads(encode_request(model.featurizer.fingerprint, [model.featurizer.transform("good")]))
    body["explain"] = False
    answer = app.post("/invocations", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200 and "explanation" not in answer.json["predictions"][0]


def test_a_model_without_explain_onnx_serves_predictions_and_refuses_explanations(folder, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / "explain.onnx").unlink()
    app = create_app(old)
    model = app.extensions["model_slot"].wait()
    assert model is not None and model.explainer is None
    client = app.test_client()
    assert post(client, model.featurizer, ["good"]).status_code == 200
    refused = post(client, model.featurizer, ["good"], explain=True)
    assert refused.status_code == 501 and refused.json["error"] == "explain_unavailable"


def test_a_model_without_a_band_marks_nothing(tmp_path):
    folder = write_explainable(tmp_path / "m", band=None)
    model = Model.load(folder)
    app = create_app(loader=lambda: model)
    app.extensions["model_slot"].wait()
    answer = post(app.test_client(), model.featurizer, ["good"])
    assert model.band is None and "uncertain" not in answer.json["predictions"][0]


def test_an_explainer_from_another_run_is_refused(tmp_path, folder):
    other = write_explainable(tmp_path / "other", kind="mlp" if Model.load(folder).kind == "linear" else "linear")
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    shutil.copy(other / "explain.onnx", mixed / "explain.onnx")
    from sentiment.artifacts import ArtifactError

    with pytest.raises(ArtifactError, match="explain.onnx is model version"):
        Model.load(mixed)


# -- serving.batch --explain ---------------------------------------------------------------------

def run_batch(*args: str):
    import subprocess
    import sys

    from tests.support import REPO_ROOT

    return subprocess.run([sys.executable, "-m", "serving.batch", "--quiet", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_batch_explain_writes_named_terms_that_add_up(folder, tmp_path):
    reviews = varied_reviews()[:5] + ["", "A great film."]
    (tmp_path / "in.txt").write_text("\n".join(r.replace("\n", " ") or " " for r in reviews) + "\n")
    plain = run_batch("--model-dir", str(folder), "--input", str(tmp_path / "in.txt"), "--output", "-")
    done = run_batch("--model-dir", str(folder), "--input", str(tmp_path / "in.txt"), "--output", "-", "--explain")
    top = run_batch("--model-dir", str(folder), "--input", str(tmp_path / "in.txt"), "--output", "-",
                    "--explain", "2")
    assert plain.returncode == done.returncode == top.returncode == 3  # the blank line is an error record
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"a", "great", "film", "a great"} <= {t["term"] for t in lines[-1]["explanation"]["terms"]}
    for before, after, cut in zip(map(json.loads, plain.stdout.splitlines()), lines,
                                  map(json.loads, top.stdout.splitlines()), strict=True):
        if "error" in before:
            assert after == before == cut
            continue
        e, c = after.pop("explanation"), cut.pop("explanation")
        assert after == before == cut and "uncertain" in before
        assert e["bias"] + sum(t["contribution"] for t in e["terms"]) == pytest.approx(e["logit"], abs=1e-5)
        assert c["terms"] == e["terms"][:2] and c["omitted"]["count"] == len(e["terms"]) - 2


def test_batch_explain_needs_an_explainer_and_a_sound_number(folder, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / "explain.onnx").unlink()
    (tmp_path / "in.txt").write_text("good\n")
    refused = run_batch("--model-dir", str(old), "--input", str(tmp_path / "in.txt"), "--output",
                        str(tmp_path / "out.jsonl"), "--explain")
    assert refused.returncode == 2 and "has no explain.onnx" in refused.stderr
    assert not (tmp_path / "out.jsonl").exists()
    bad = run_batch("--model-dir", str(folder), "--input", str(tmp_path / "in.txt"), "--output", "-",
                    "--explain", "0")
    assert bad.returncode == 2 and "--explain takes no value" in bad.stderr
