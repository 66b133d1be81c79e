"""Fixtures for the shared package's tests: a tiny fitted featurizer, no AWS."""

from __future__ import annotations

import pytest

from sentiment.featurizer import Featurizer, FeaturizerSettings

CORPUS = ["a wonderful film", "a terrible film", "the acting is superb", "the plot is dull"]


@pytest.fixture
def featurizer() -> Featurizer:
    return Featurizer(FeaturizerSettings(min_df=1)).fit(CORPUS)
