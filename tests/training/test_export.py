"""ONNX export: one file, sparse inputs with dynamic axes, metadata, and parity with torch on real reviews."""

from __future__ import annotations

import re
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sentiment.artifacts import INPUT_FORMAT
from sentiment.featurizer import Featurizer, FeaturizerSettings
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


def spread_out_model(kind: str) -> tuple[SentimentModel, Featurizer]:
    """A ``kind`` model fitted to the fixture, then given large random weights: its probabilities are
    far from 0.5, so a parity check on them is a real one."""
    imdb = load_imdb(FIXTURE_ARCHIVE)
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(imdb.train.texts)
    torch.manual_seed(0)
    model = SentimentModel(featurizer.vocab_size, ModelSettings(kind=kind, hidden=16))
    train_rows = SparseRows.featurize(featurizer, imdb.train.texts)
    model.fit_term_weights(to_batch(train_rows, np.arange(len(train_rows))), torch.tensor(imdb.train.labels))
    with torch.no_grad():
        model.input_weight.normal_(0, 3.0)
        model.input_bias.fill_(0.1)
    model.eval()
    return model, featurizer


@pytest.fixture(scope="module", params=["linear", "mlp"])
def exported(request, tmp_path_factory):
    """A spread-out model, exported; and its featurized reviews."""
    model, featurizer = spread_out_model(request.param)
    path = tmp_path_factory.mktemp(f"onnx-{request.param}") / "model.onnx"
    version = model_version(model)
    export_onnx(model, path, version=version, featurizer_fingerprint=featurizer.fingerprint)
    rows = SparseRows.featurize(featurizer, varied_reviews())
    return model, path, featurizer, version, rows


def torch_probabilities(model: SentimentModel, feed: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        inputs = (torch.from_numpy(feed[name]) for name in ("indices", "counts", "offsets"))
        return ProbabilityModel(model)(*inputs).numpy()


def onnx_probabilities(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["probability"], feed)[0]


@pytest.mark.parametrize("batch", [1, 64])
def test_onnxruntime_matches_torch_on_real_reviews(exported, batch):
    model, path, _, _, rows = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    chunks = [np.arange(i, min(i + batch, len(rows))) for i in range(0, len(rows), batch)]
    got = np.concatenate([session.run(["probability"], rows.select(c).feed())[0] for c in chunks])
    expected = np.concatenate([torch_probabilities(model, rows.select(c).feed()) for c in chunks])
    assert expected.std() > 0.1, "the check is only meaningful when probabilities vary"
    assert got.shape == (64,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("position", ["first", "middle", "last", "alone"])
def test_an_empty_review_scores_the_bias_alone_in_any_position(exported, position):
    model, path, _, _, rows = exported
    empty = 60  # varied_reviews()[60] is "": no known term
    assert rows.indptr[empty] == rows.indptr[empty + 1]
    others = [0, 45, 7]  # two fixture reviews and one of 5,000 characters
    selection = {"first": [empty, *others], "middle": [0, 45, empty, 7], "last": [*others, empty],
                 "alone": [empty]}[position]
    feed = rows.select(np.array(selection)).feed()
    got = onnx_probabilities(path, feed)
    np.testing.assert_allclose(got, torch_probabilities(model, feed), rtol=0, atol=1e-5)
    with torch.no_grad():
        bias_only = torch.sigmoid(model.head(model.input_bias.unsqueeze(0))).item()
    assert got[selection.index(empty)] == pytest.approx(bias_only, abs=1e-6)
    if position != "alone":  # and the empty row does not disturb its neighbours
        without = onnx_probabilities(path, rows.select(np.array(others)).feed())
        np.testing.assert_allclose(np.delete(got, selection.index(empty)), without, rtol=0, atol=1e-6)


def test_inputs_are_sparse_with_named_dynamic_axes(exported):
    _, path, _, _, rows = exported
    proto = onnx.load(path)
    def signature(value):
        tensor = value.type.tensor_type
        return value.name, onnx.TensorProto.DataType.Name(tensor.elem_type), [d.dim_param or d.dim_value
                                                                              for d in tensor.shape.dim]

    assert [signature(v) for v in proto.graph.input] == [
        ("indices", "INT64", ["nnz"]), ("counts", "FLOAT", ["nnz"]), ("offsets", "INT64", ["batch"])]
    assert [signature(v) for v in proto.graph.output] == [("probability", "FLOAT", ["batch"])]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in (1, 3, 17, 64):
        assert session.run(None, rows.select(np.arange(size)).feed())[0].shape == (size,)
    empty_reviews = {"indices": np.zeros(0, np.int64), "counts": np.zeros(0, np.float32),
                     "offsets": np.zeros(5, np.int64)}  # nnz = 0
    assert session.run(None, empty_reviews)[0].shape == (5,)


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
        "input_format": INPUT_FORMAT,
    }


def test_model_version_format_and_dependence_on_the_weights():
    model = SentimentModel(20)
    when = datetime(2026, 11, 28, 18, 10, 59, tzinfo=UTC)
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
