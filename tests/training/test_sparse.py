"""Featurized rows and the batches cut from them."""

from __future__ import annotations

import numpy as np

from lambda_fn.featurizer import Featurizer, FeaturizerSettings
from training.sparse import SparseRows

TEXTS = ["A good film, a GOOD film.", "", "bad bad bad plot", "nothing known here at all", "good plot"]


def test_rows_hold_exactly_what_the_featurizer_returns():
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS)
    rows = SparseRows.featurize(featurizer, TEXTS)
    assert len(rows) == len(TEXTS)
    dense = rows.dense(np.arange(len(TEXTS)))
    assert dense.shape == (len(TEXTS), featurizer.vocab_size) and dense.dtype == np.float32
    for r, text in enumerate(TEXTS):
        expected = np.zeros(featurizer.vocab_size, np.float32)
        sparse = featurizer.transform(text)
        expected[sparse.indices] = sparse.counts
        np.testing.assert_array_equal(dense[r], expected)


def test_select_concatenates_the_chosen_rows_in_order():
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS)
    rows = SparseRows.featurize(featurizer, TEXTS)
    chosen = np.array([4, 1, 0])
    indices, offsets, counts = rows.select(chosen)
    expected = [featurizer.transform(TEXTS[i]) for i in chosen]
    assert offsets.tolist() == [0, len(expected[0].indices), len(expected[0].indices)]  # row 1 is empty
    assert indices.tolist() == [i for e in expected for i in e.indices]
    assert counts.tolist() == [c for e in expected for c in e.counts]
