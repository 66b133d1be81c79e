"""featurizer.json, format 2: the lookup tables themselves, so a load is a few C-level calls.

A saved featurizer loads back to the same transform, fingerprint and vocabulary; an older
format, a malformed file and one whose tables disagree are refused with a message naming why.
"""

from __future__ import annotations

import json
import random

import pytest

from sentiment import featurizer as featurizer_module
from sentiment.featurizer import FORMAT, Featurizer, FeaturizerError, FeaturizerSettings, _fingerprint

TEXTS = ["a good film, a very good film", "not good at all", "the plot is dull and the acting worse",
         "I've seen better; it's not the worst", "good good good bad", "an ending I didn't see coming"]


def random_vocabulary(seed: int, n_max: int) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(300)] + ["don't", "naïve", "ünïcode", "10"]
    terms = set(rng.sample(words, 200))
    while len(terms) < 1_000:
        terms.add(" ".join(rng.choice(words) for _ in range(rng.randint(2, n_max))))
    return sorted(terms)


@pytest.mark.parametrize("n_max", [1, 2, 3])
def test_a_saved_featurizer_loads_back_the_same(n_max: int, tmp_path) -> None:
    settings = FeaturizerSettings(ngram_max=n_max, min_df=1, max_features=2_000)
    vocabulary = random_vocabulary(n_max, n_max) if n_max > 1 else [f"w{i}" for i in range(50)]
    original = Featurizer(settings, vocabulary)
    loaded = Featurizer.load(original.save(tmp_path / "featurizer.json"))
    assert loaded.fingerprint == original.fingerprint and loaded.vocab_size == len(vocabulary)
    assert loaded.vocabulary == vocabulary  # rebuilt from the tables, in index order
    text = " ".join(random.Random(0).choices([t.split(" ")[0] for t in vocabulary] + ["zzz"], k=400))
    assert loaded.transform(text) == original.transform(text)


def test_a_fitted_featurizer_round_trips_and_is_one_json_document(tmp_path) -> None:
    fitted = Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS)
    data = fitted.save(tmp_path / "featurizer.json").read_bytes()
    doc = json.loads(data)
    assert doc["format"] == FORMAT and doc["fingerprint"] == fitted.fingerprint
    loaded = Featurizer.from_json(data)
    for text in TEXTS:
        assert loaded.transform(text) == fitted.transform(text)


def test_a_loaded_featurizer_builds_its_term_list_only_when_asked(tmp_path) -> None:
    fitted = Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS)
    loaded = Featurizer.from_json(fitted.to_json())
    loaded.transform(TEXTS[0])
    assert loaded._vocabulary is None  # the load and the transform never needed the terms as text
    assert loaded.vocabulary == fitted.vocabulary


def test_the_older_format_says_to_retrain() -> None:
    old = json.dumps({"format": "sentiment-featurizer/1", "settings": {}, "fingerprint": "0" * 64,
                      "vocabulary": ["a", "b"]})
    with pytest.raises(FeaturizerError, match=r"older version of this project; retrain \(make retrain"):
        Featurizer.from_json(old)


def resigned(doc: dict) -> str:
    """The document with a fingerprint that matches its (altered) content: only the checks can refuse it."""
    payload = {k: v for k, v in doc.items() if k != "fingerprint"}
    try:
        fingerprint = _fingerprint(payload)
    except (KeyError, TypeError):  # too broken to hash: the load must refuse it all the same
        fingerprint = doc["fingerprint"]
    return json.dumps({"fingerprint": fingerprint, **payload})


def repeat_first_key(doc: dict) -> None:
    keys = featurizer_module._unpack(doc["ngrams"]["2"]["keys"])
    doc["ngrams"]["2"]["keys"] = featurizer_module._pack([keys[0]] * len(keys))


@pytest.mark.parametrize(("alter", "cause"), [
    (lambda d: d.update(vocab_size=d["vocab_size"] + 1), "vocab_size says"),
    (lambda d: d.update(words=d["words"] + "\nextra"), "unigram ids for"),
    (repeat_first_key, "the 2-gram table repeats a key"),
    (lambda d: d["ngrams"]["2"].update(indices=featurizer_module._pack(
        [*featurizer_module._unpack(d["ngrams"]["2"]["indices"])[:-1], d["vocab_size"]])),
     "an index is outside"),
    (lambda d: d["ngrams"]["2"].update(keys=featurizer_module._pack([1])), "malformed featurizer file"),
    (lambda d: d.update(unigram_ids="i:not base64!"), "malformed featurizer file"),
    (lambda d: d.update(unigram_ids="x:" + d["unigram_ids"][2:]), "unknown type 'x'"),
    (lambda d: d.update(unigram_ids=d["unigram_ids"][:-2]), "malformed featurizer file"),  # not whole int32s
    (lambda d: d.update(words=5), "expected a string"),
    (lambda d: d.pop("ngrams"), "missing or bad field"),
    (lambda d: d.update(settings={"ngram_max": 2, "colour": "red"}), "malformed featurizer file"),
])
def test_a_file_whose_tables_disagree_is_refused_naming_why(alter, cause: str) -> None:
    doc = json.loads(Featurizer(FeaturizerSettings(min_df=1)).fit(TEXTS).to_json())
    alter(doc)
    with pytest.raises(FeaturizerError, match=cause):
        Featurizer.from_json(resigned(doc))


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"format": 3}', b'{"format": "sentiment-featurizer/2"}',
                                     "\u00e9".encode("latin-1")])
def test_malformed_files_are_refused(content: bytes) -> None:
    with pytest.raises(FeaturizerError):
        Featurizer.from_json(content)
