"""Model.load: good artifacts score exactly; every kind of bad artifact is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from lambda_fn.featurizer import Featurizer, FeaturizerSettings, SparseCounts
from serving.model import ArtifactError, Model


def test_loads_and_scores_the_tiny_model(model_dir, featurizer, expected):
    model = Model.load(model_dir)
    assert model.version == "20261128T1810Z-0badc0de"
    assert model.kind == "logistic"
    assert model.fingerprint == featurizer.fingerprint and model.vocab_size == 7
    rows = [featurizer.transform("A good, GREAT film"), featurizer.transform("bad bad plot"), SparseCounts([], [])]
    got = model.predict_sparse(rows)
    want = [expected({"good": 1, "great": 1}), expected({"bad": 2}), expected({})]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sparse_rows_are_densified_in_chunks_and_repeated_indices_add_up(model_dir, expected):
    model = Model.load(model_dir)
    good = model.featurizer.vocabulary.index("good")
    rows = [SparseCounts([good, good], [1, 2])] * 150  # more than two chunks of 64
    got = model.predict_sparse(rows)
    assert got.shape == (150,)
    np.testing.assert_allclose(got, expected({"good": 3}), rtol=1e-5)


def _remove(name):
    return lambda d: (d / name).unlink()


@pytest.mark.parametrize(
    "kwargs, damage, message",
    [
        ({}, _remove("model.onnx"), "model.onnx not found"),
        ({}, _remove("featurizer.json"), "featurizer.json not found"),
        ({}, lambda d: (d / "model.onnx").write_bytes(b"not a model"), "is not a model ONNX Runtime can load"),
        ({}, lambda d: (d / "featurizer.json").write_text("{"), "malformed featurizer file"),
        ({}, lambda d: Featurizer(FeaturizerSettings(min_df=1), list("abcdefg")).save(d / "featurizer.json"),
         "was trained with featurizer fingerprint"),
        ({"metadata": {"featurizer_fingerprint": "f" * 64}}, None, "was trained with featurizer fingerprint ffff"),
        ({"metadata": {"vocab_size": "8"}}, None, "metadata says vocab_size 8"),
        ({"metadata": {"model_version": None}}, None, "no 'model_version'"),
        ({"batch_dim": 1}, None, "fails on a batch of 2 rows"),
    ],
    ids=["no-model", "no-featurizer", "corrupt-model", "corrupt-featurizer", "other-featurizer",
         "fingerprint-metadata", "vocab-size", "no-version", "fixed-batch"],
)
def test_bad_artifacts_are_refused_with_the_cause(artifacts_factory, kwargs, damage, message):
    directory = artifacts_factory(**kwargs)
    if damage:
        damage(directory)
    with pytest.raises(ArtifactError, match=message):
        Model.load(directory)


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(ArtifactError, match=f"model directory {tmp_path / 'nope'} does not exist"):
        Model.load(tmp_path / "nope")
