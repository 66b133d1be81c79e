"""Featurized rows and the batches cut from them."""

from __future__ import annotations

import numpy as np

from sentiment.featurizer import Featurizer, FeaturizerSettings
from training.sparse import SparseRows

TEXTS = ["A good film, a GOOD film.", "", "bad bad bad plot", "nothing known here at all", "good plot"]


def test_rows_hold_exactly_what_the_featurizer_returns():
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS)
    rows = SparseRows.featurize(featurizer, TEXTS)
    assert len(rows) == len(TEXTS) and rows.vocab_size == featurizer.vocab_size
    assert rows.indices.dtype == rows.indptr.dtype == np.int64 and rows.counts.dtype == np.float32
    for r, text in enumerate(TEXTS):
        expected = featurizer.transform(text)
        span = slice(rows.indptr[r], rows.indptr[r + 1])
        assert rows.indices[span].tolist() == expected.indices
        assert rows.counts[span].tolist() == expected.counts


def test_select_concatenates_the_chosen_rows_in_order():
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS)
    rows = SparseRows.featurize(featurizer, TEXTS)
    chosen = np.array([4, 1, 0])
    indices, counts, offsets = rows.select(chosen).feed().values()
    expected = [featurizer.transform(TEXTS[i]) for i in chosen]
    assert offsets.tolist() == [0, len(expected[0].indices), len(expected[0].indices)]  # row 1 is empty
    assert indices.tolist() == [i for e in expected for i in e.indices]
    assert counts.tolist() == [c for e in expected for c in e.counts]


def test_onnx_inputs_are_the_selected_rows_in_model_onnx_form():
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS)
    rows = SparseRows.featurize(featurizer, TEXTS)
    chosen = np.array([1, 2, 1])  # empty rows first and last
    feed = rows.select(chosen).feed()
    indices, counts, offsets = rows.select(chosen).feed().values()
    assert list(feed) == ["indices", "counts", "offsets"]
    assert feed["offsets"].tolist() == [0, 0, len(featurizer.transform(TEXTS[2]).indices)]
    for name, expected, dtype in (("indices", indices, np.int64), ("counts", counts, np.float32),
                                  ("offsets", offsets, np.int64)):
        assert feed[name].dtype == dtype
        np.testing.assert_array_equal(feed[name], expected)
    assert rows.select(np.array([], np.int64)).feed()["offsets"].shape == (0,)
