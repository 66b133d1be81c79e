"""ONNX export: one file, dynamic batch, names, metadata, and parity with torch on real reviews."""

from __future__ import annotations

import re
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lambda_fn.featurizer import Featurizer, FeaturizerSettings
from training.data import load_imdb
from training.export import OPSET, export_onnx, model_version, write_model_tarball
from training.model import ModelSettings, ProbabilityModel, SentimentModel
from training.sparse import SparseRows
from training.train import to_batch

FIXTURE_ARCHIVE = Path(__file__).resolve().parents[1] / "fixtures" / "imdb_tiny" / "aclImdb_tiny.tar.gz"


def varied_reviews() -> list[str]:
    """64 real reviews from one sentence to several thousand characters, plus edge cases."""
    imdb = load_imdb(FIXTURE_ARCHIVE)
    reviews = imdb.test.texts + imdb.train.texts  # 40, from 240 to 1,300 characters
    reviews += [" ".join(reviews[i : i + k]) for i, k in zip(range(0, 40, 2), range(2, 22))]  # up to ~15k
    reviews += ["", "<br /><br />", "Good.", reviews[0][:60]]
    assert len(reviews) == 64
    return reviews


@pytest.fixture(scope="module", params=["linear", "mlp"])
def exported(request, tmp_path_factory):
    """A model fitted to the fixture with spread-out weights, exported; and its featurized reviews."""
    imdb = load_imdb(FIXTURE_ARCHIVE)
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(imdb.train.texts)
    torch.manual_seed(0)
    model = SentimentModel(featurizer.vocab_size, ModelSettings(kind=request.param, hidden=16))
    train_rows = SparseRows.featurize(featurizer, imdb.train.texts)
    model.fit_term_weights(to_batch(train_rows, np.arange(len(train_rows))), torch.tensor(imdb.train.labels))
    with torch.no_grad():  # large random weights: probabilities far from 0.5, so parity is a real check
        model.input_weight.normal_(0, 3.0)
        model.input_bias.fill_(0.1)
    model.eval()
    path = tmp_path_factory.mktemp(f"onnx-{request.param}") / "model.onnx"
    version = model_version(model)
    export_onnx(model, path, version=version, featurizer_fingerprint=featurizer.fingerprint)
    rows = SparseRows.featurize(featurizer, varied_reviews())
    return model, path, featurizer, version, rows.dense(np.arange(len(rows)))


def torch_probabilities(model: SentimentModel, counts: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return ProbabilityModel(model)(torch.from_numpy(counts)).numpy()


@pytest.mark.parametrize("batch", [1, 64])
def test_onnxruntime_matches_torch_on_real_reviews(exported, batch):
    model, path, _, _, counts = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = torch_probabilities(model, counts)
    assert expected.std() > 0.1, "the check is only meaningful when probabilities vary"
    runs = [session.run(["probability"], {"counts": counts[i : i + batch]})[0] for i in range(0, 64, batch)]
    got = np.concatenate(runs)
    assert got.shape == (64,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_batch_axis_is_dynamic_and_named(exported):
    model, path, featurizer, _, counts = exported
    proto = onnx.load(path)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("counts", "probability")
    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert dims(inp) == ["batch", featurizer.vocab_size]
    assert dims(out) == ["batch"]
    assert inp.type.tensor_type.elem_type == out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in (1, 3, 17, 64):
        assert session.run(None, {"counts": counts[:size]})[0].shape == (size,)


def test_single_file_with_opset_and_metadata(exported):
    model, path, featurizer, version, _ = exported
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no external data file
    proto = onnx.load(path, load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}[""] == OPSET
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert metadata == {
        "model_version": version,
        "featurizer_fingerprint": featurizer.fingerprint,
        "vocab_size": str(featurizer.vocab_size),
        "model_kind": model.settings.kind,
    }


def test_model_version_format_and_dependence_on_the_weights():
    model = SentimentModel(20)
    when = datetime(2026, 11, 28, 18, 10, 59, tzinfo=timezone.utc)
    version = model_version(model, when)
    assert re.fullmatch(r"20261128T1810Z-[0-9a-f]{8}", version)
    assert model_version(model, when) == version
    with torch.no_grad():
        model.input_weight[0, 0] += 1
    assert model_version(model, when) != version


def test_tarball_holds_exactly_the_model_and_featurizer_at_its_root(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"onnx bytes")
    (tmp_path / "featurizer.json").write_text("{}")
    members = {"model.onnx": tmp_path / "m.onnx", "featurizer.json": tmp_path / "featurizer.json"}
    target = write_model_tarball(tmp_path / "model.tar.gz", members)
    with tarfile.open(target) as archive:
        assert archive.getnames() == ["model.onnx", "featurizer.json"]
        assert archive.extractfile("model.onnx").read() == b"onnx bytes"
    with pytest.raises(ValueError, match="exactly model.onnx, featurizer.json"):
        write_model_tarball(tmp_path / "x.tar.gz", {"model.onnx": tmp_path / "m.onnx"})
