"""Model.load: good artifacts score exactly; every kind of bad artifact is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.featurizer import Featurizer, FeaturizerSettings, SparseCounts
from sentiment.artifacts import ArtifactError
from sentiment.batch import Batch
from serving.model import Model


def test_loads_and_scores_the_tiny_model(model_dir, featurizer, expected):
    model = Model.load(model_dir)
    assert model.version == "20261128T1810Z-0badc0de"
    assert model.kind == "logistic"
    assert model.fingerprint == featurizer.fingerprint and model.vocab_size == 7
    rows = [featurizer.transform("A good, GREAT film"), featurizer.transform("bad bad plot"), SparseCounts([], [])]
    got = model.predict_rows(rows)
    want = [expected({"good": 1, "great": 1}), expected({"bad": 2}), expected({})]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_repeated_indices_within_a_row_add_up_in_any_order(model_dir, expected):
    model = Model.load(model_dir)
    good, bad = model.featurizer.vocabulary.index("good"), model.featurizer.vocabulary.index("bad")
    rows = [SparseCounts([good, bad, good], [1, 1, 2]), SparseCounts([], []),
            SparseCounts([bad, good], [1, 1])]
    got = model.predict_rows(rows * 50)
    assert got.shape == (150,)
    want = [expected({"good": 3, "bad": 1}), expected({}), expected({"good": 1, "bad": 1})]
    np.testing.assert_allclose(got[:3], want, rtol=1e-5)
    np.testing.assert_array_equal(got, np.tile(got[:3], 50))


def test_batch_from_rows_concatenates_them_and_merges_repeats():
    empty = SparseCounts([], [])
    rows = [empty, SparseCounts([2, 5], [1, 3]), empty, SparseCounts([4, 1, 4], [1, 2, 3])]
    batch = Batch.from_rows(rows)
    assert len(batch) == 4
    assert batch.offsets.tolist() == [0, 0, 2, 2]
    assert batch.indices.tolist() == [2, 5, 1, 4] and batch.counts.tolist() == [1, 3, 2, 4]
    assert (batch.indices.dtype, batch.counts.dtype, batch.offsets.dtype) == (np.int64, np.float32, np.int64)
    rising = Batch.from_rows(rows[:2] + [SparseCounts([0, 1], [1, 1])])  # a row may start below the last
    assert rising.indices.tolist() == [2, 5, 0, 1] and rising.offsets.tolist() == [0, 0, 2]
    assert len(Batch.from_rows([])) == 0


def test_batch_from_dense_keeps_the_non_zero_counts_of_each_row():
    matrix = np.array([[0, 2, 0, 1], [0, 0, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    batch = Batch.from_dense(matrix)
    assert batch.offsets.tolist() == [0, 2, 2, 3]
    assert batch.indices.tolist() == [1, 3, 0] and batch.counts.tolist() == [2, 1, 3]
    assert (batch.indices.dtype, batch.counts.dtype, batch.offsets.dtype) == (np.int64, np.float32, np.int64)


def test_a_model_with_the_old_dense_input_is_refused_as_too_old(dense_model_dir):
    with pytest.raises(ArtifactError, match=r"takes dense counts \['batch', 7\]: it was exported by an older "
                                            r"version of training.*retrain"):
        Model.load(dense_model_dir)


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
        ({"metadata": {"input_format": "sparse-offsets/2"}}, None, "has input_format 'sparse-offsets/2'"),
    ],
    ids=["no-model", "no-featurizer", "corrupt-model", "corrupt-featurizer", "other-featurizer",
         "fingerprint-metadata", "vocab-size", "no-version", "fixed-batch", "input-format"],
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
