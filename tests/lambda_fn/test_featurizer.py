"""Golden tests for the shared featurizer: exact tokens and counts for hand-written reviews."""

import json

import pytest

from lambda_fn.featurizer import Featurizer, FeaturizerError, FeaturizerSettings, SparseCounts, tokenize

GOLDEN_TOKENS = [
    ("This movie was GREAT!!! 10/10", ["this", "movie", "was", "great", "10", "10"]),
    ("<br /><br />I&#39;ve seen better &amp; worse.<i>meh</i>", ["i've", "seen", "better", "worse", "meh"]),
    ("Don\u2019t   waste your time...", ["don't", "waste", "your", "time"]),
    ("Café crème brûlée \u2014 très bon", ["café", "crème", "brûlée", "très", "bon"]),
    ("Cafe\u0301 (decomposed accent)", ["café", "decomposed", "accent"]),
    ("\uff26\uff35\uff2c\uff2c width, Straße, \u0130stanbul", ["full", "width", "straße", "istanbul"]),
    ("1984 was 2x better than 2001: a space odyssey", ["1984", "was", "2x", "better", "than", "2001", "a", "space", "odyssey"]),
    ('AT&T <a href="x">link</a> & co', ["at", "t", "link", "co"]),
    ("rock'n'roll o'neil's 'quoted'", ["rock'n'roll", "o'neil's", "quoted"]),
    ("snake_case hyphen-ated e-mail", ["snake", "case", "hyphen", "ated", "e", "mail"]),
    ("!!!???... --- ***", []),
    ("", []),
    ("   \n\t  ", []),
    ("&lt;script&gt;alert(1)&lt;/script&gt; fine", ["script", "alert", "1", "script", "fine"]),
]


@pytest.mark.parametrize(("text", "expected"), GOLDEN_TOKENS)
def test_tokenize_golden(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


VOCAB = sorted(["bad", "good", "film", "not", "not good", "good film", "10", "very", "very good", "i've"])


@pytest.fixture
def featurizer() -> Featurizer:
    return Featurizer(FeaturizerSettings(ngram_max=2, min_df=1, max_features=100), VOCAB)


def counts_by_term(f: Featurizer, sparse: SparseCounts) -> dict[str, int]:
    return {f.vocabulary[i]: c for i, c in zip(sparse.indices, sparse.counts)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Not good. NOT GOOD!", {"not": 2, "good": 2, "not good": 2}),
        ("A very good film<br />very good", {"very": 2, "good": 2, "film": 1, "very good": 2, "good film": 1}),
        ("I&#39;ve rated it 10/10", {"i've": 1, "10": 2}),
        ("nothing from the vocabulary here", {}),
        ("", {}),
        ("  \t ", {}),
        ("bad bad bad bad", {"bad": 4}),
    ],
)
def test_transform_golden(featurizer: Featurizer, text: str, expected: dict[str, int]) -> None:
    sparse = featurizer.transform(text)
    assert counts_by_term(featurizer, sparse) == expected
    assert sparse.indices == sorted(sparse.indices)
    assert len(set(sparse.indices)) == len(sparse.indices)


def test_trigrams_when_configured() -> None:
    f = Featurizer(FeaturizerSettings(ngram_max=3, min_df=1), ["not very good", "very good", "good"])
    assert counts_by_term(f, f.transform("not very good")) == {"not very good": 1, "very good": 1, "good": 1}


def test_fit_keeps_frequent_terms_only() -> None:
    texts = ["good film", "good movie", "bad film", "good"]
    f = Featurizer(FeaturizerSettings(ngram_max=2, min_df=2, max_features=2)).fit(texts)
    # document frequencies: good 3, film 2; all others 1.
    assert f.vocabulary == ["film", "good"]


def test_fit_is_deterministic_regardless_of_order() -> None:
    texts = ["a good film", "a bad film", "a great film", "good good"]
    s = FeaturizerSettings(min_df=1, max_features=5)
    assert Featurizer(s).fit(texts).fingerprint == Featurizer(s).fit(reversed(texts)).fingerprint


def test_save_load_roundtrip(tmp_path, featurizer: Featurizer) -> None:
    path = featurizer.save(tmp_path / "featurizer.json")
    loaded = Featurizer.load(path)
    assert loaded.fingerprint == featurizer.fingerprint
    assert loaded.vocabulary == featurizer.vocabulary
    assert loaded.transform("not good film") == featurizer.transform("not good film")


def test_fingerprint_depends_on_settings_and_vocabulary(featurizer: Featurizer) -> None:
    other_settings = Featurizer(FeaturizerSettings(ngram_max=3, min_df=1, max_features=100), VOCAB)
    other_vocab = Featurizer(featurizer.settings, VOCAB[:-1])
    assert len({featurizer.fingerprint, other_settings.fingerprint, other_vocab.fingerprint}) == 3
    assert len(featurizer.fingerprint) == 64


def test_tampered_file_is_refused(tmp_path, featurizer: Featurizer) -> None:
    doc = json.loads(featurizer.to_json())
    doc["vocabulary"][0] = "tampered"
    path = tmp_path / "featurizer.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FeaturizerError, match="fingerprint mismatch"):
        Featurizer.load(path)


@pytest.mark.parametrize("content", ["not json", "[]", '{"format": "other/1"}', '{"format": "sentiment-featurizer/1"}'])
def test_malformed_file_is_refused(tmp_path, content: str) -> None:
    path = tmp_path / "featurizer.json"
    path.write_text(content)
    with pytest.raises(FeaturizerError):
        Featurizer.load(path)


def test_missing_file_names_the_path(tmp_path) -> None:
    with pytest.raises(FeaturizerError, match="nope.json"):
        Featurizer.load(tmp_path / "nope.json")


def test_oversized_featurizer_is_refused(tmp_path) -> None:
    vocab = [f"term{i:07d}-{'x' * 40}" for i in range(120_000)]
    with pytest.raises(FeaturizerError, match="budget"):
        Featurizer(FeaturizerSettings(max_features=len(vocab)), vocab).save(tmp_path / "f.json")


def test_duplicate_vocabulary_is_refused() -> None:
    with pytest.raises(FeaturizerError, match="duplicate"):
        Featurizer(vocabulary=["a", "a"])


# -- properties: the fast paths give exactly what the plain definitions give -------------------
from collections import Counter  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lambda_fn.featurizer import _TOKEN, clean, ngrams  # noqa: E402

ascii_text = st.text(alphabet=st.sampled_from(list("abcXYZ019 '_-.,!?<>&;#\n\t\"`")), max_size=80)


@settings(max_examples=400, deadline=None)
@given(ascii_text)
def test_ascii_fast_path_matches_the_regex_definition(text: str) -> None:
    assert tokenize(text) == _TOKEN.findall(clean(text))


words = st.sampled_from(["good", "bad", "not", "film", "very", "it's", "10", "zzz"])


@settings(max_examples=200, deadline=None)
@given(st.lists(words, max_size=30), st.integers(min_value=1, max_value=3))
def test_transform_matches_naive_ngram_counting(tokens: list[str], ngram_max: int) -> None:
    vocab = ["good", "bad", "not", "film", "it's", "not good", "very good", "good film", "not very good", "10 10"]
    vocab = [t for t in vocab if len(t.split()) <= ngram_max]
    f = Featurizer(FeaturizerSettings(ngram_max=ngram_max, min_df=1), vocab)
    expected = Counter(g for g in ngrams(tokens, ngram_max) if g in vocab)
    sparse = f.transform(" ".join(tokens))
    assert counts_by_term(f, sparse) == dict(expected)


@pytest.mark.parametrize("term", ["too many words", "double  space", " leading", "trailing "])
def test_terms_that_are_not_ngrams_of_the_settings_are_refused(term: str) -> None:
    with pytest.raises(FeaturizerError, match="is not a 1..2-gram"):
        Featurizer(FeaturizerSettings(ngram_max=2), ["good", term])
