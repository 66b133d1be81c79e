"""Golden tests for the shared featurizer: exact tokens and counts for hand-written reviews."""

import json

import pytest

from sentiment.featurizer import Featurizer, FeaturizerError, FeaturizerSettings, SparseCounts, tokenize

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
    doc["words"] = doc["words"].replace(featurizer.vocabulary[0], "tampered", 1)
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

from sentiment.featurizer import _TOKEN, clean, ngrams  # noqa: E402

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


# -- hostile input: linear time, no exception, one answer whatever the path ------------------
import html  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import unicodedata  # noqa: E402
from pathlib import Path  # noqa: E402

from sentiment import featurizer as featurizer_module  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each is repeated to about n characters. The first four took 0.5-2.4 s at 50,000 characters
# (quadratic in the length) before the tag search and the apostrophe stripping were made linear.
HOSTILE_PATTERNS = [
    "<", "'", "<a", "<!--", "a'''''''", "x '' ", "&", "&#", "&#9", "&#x", "&lt", "&a;", "&amp",
    "<<>>", "\u0301\u0316", "a\u0301\u0316\u0301\u0316", "\ufdfa", "\u3300", "\ufb03 ", "\uff21",
    "\u2019", "\u00e9<", "\u00e9'", "\u00e9<a", "\u00e9&#", "!?", "\u00e9" + "\u0316" * 40, "1 ",
]


def test_hostile_inputs_finish_in_linear_time() -> None:
    """A liveness check, not a timing one: each input is 1,000,000 characters, 20 times the API's
    limit, which a linear featurizer handles in well under a second and the quadratic one of
    before needed about an hour for; the generous timeout only catches the second case."""
    script = textwrap.dedent(f"""
        from sentiment.featurizer import Featurizer, FeaturizerSettings
        f = Featurizer(FeaturizerSettings(min_df=1), ["a", "x", "a x", "1"])
        for pattern in {HOSTILE_PATTERNS!r}:
            print(repr(pattern), flush=True)
            f.transform((pattern * (1_000_000 // len(pattern) + 1))[:1_000_000])
        print("done")
    """)
    try:
        run = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=300)
    except subprocess.TimeoutExpired as exc:
        last = (exc.stdout or b"").decode().strip().splitlines()[-1:]
        pytest.fail(f"the featurizer did not finish {last} * 1,000,000 characters within 300 s")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "done"


@pytest.mark.parametrize(("text", "expected"), [
    ("&#" + "9" * 4301, []),  # past Python's int-string digit limit: U+FFFD, as html.unescape says
    ("&#" + "9" * 4301 + ";ok", ["ok"]),
    ("&#" + "0" * 5000 + "65; b", ["a", "b"]),  # leading zeros: still the letter A
    ("&#00000065;", ["a"]),
    ("&#1114111;x &#1114112;y", ["x", "y"]),
    ("&#x" + "f" * 5000 + ";z", ["z"]),
])
def test_long_character_references_decode_as_html_says(featurizer: Featurizer, text: str,
                                                       expected: list[str]) -> None:
    assert tokenize(text) == expected
    featurizer.transform(text)  # no ValueError


@pytest.mark.parametrize(("text", "expected"), [
    ("&lt;b&gt;bold&lt;/b&gt; ok", ["b", "bold", "b", "ok"]),
    ("&lt;b&gt;bold&lt;/b&gt; ok \u00e9", ["b", "bold", "b", "ok", "\u00e9"]),  # once stripped twice
    ("\u210c\U0001d400 \u2167", ["ha", "viii"]),  # NFKC before lowering: no capital letter survives
    ("a" + "'" * 100 + " " + "'" * 100 + "b", ["a", "b"]),
    ("\u00e9" + "a" + "'" * 100, ["\u00e9a"]),
])
def test_both_paths_give_one_answer(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def plain_tokens(text: str) -> list[str]:
    """The featurizer's cleaning and tokenizing written as plainly as possible (slow on long text)."""
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"&#[0-9]+", lambda m: "&#" + (m.group()[2:].lstrip("0") or "0")[:8], text)
    text = html.unescape(text)
    limit = 2 * len(text) + 100
    run = re.compile(r"(?<![^\w\s])[^\w\s]{31,}")
    text = run.sub(lambda m: "\u034f".join(m.group()[i:i + 30] for i in range(0, len(m.group()), 30)), text)
    text = unicodedata.normalize("NFKC", text)[:limit].lower()
    text = re.sub("[\u0300-\u036f]", "", text)
    for apostrophe in "\u2019\u2018\u02bc":
        text = text.replace(apostrophe, "'")
    return re.findall(r"[^\W_]+(?:'+[^\W_]+)*", text)


MARKUP = ["<", ">", "<b>", "</i>", "<br />", "&", "#", ";", "&lt;", "&gt;", "&lt;i&gt;", "&amp;", "&amp", "&#39;", "&#x27;",
          "&#0065;", "&#" + "9" * 12, "&eacute;", "&nbsp;", "'", "\u2019", "\u02bc", " ", "\n", "\u0301",
          "\u0316", "\u034f", "\ufdfa", "\ufb01", "\uff21", "\u0130", "\u00df", "\u2167", "_", "-"]
hostile_text = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(MARKUP)), max_size=25).map("".join)


@settings(max_examples=1500, deadline=None)
@given(hostile_text)
def test_tokenize_matches_the_plain_definition_on_any_text(text: str) -> None:
    assert tokenize(text) == plain_tokens(text)


@settings(max_examples=500, deadline=None)
@given(hostile_text)
def test_the_ascii_and_unicode_paths_agree(text: str) -> None:
    """Appending a non-ASCII word moves any text onto the unicode path; the rest must not change."""
    tokens = tokenize(text)
    assert tokenize(text + " \u00e9") == tokens + ["\u00e9"]
    assert all(token == token.lower() for token in tokens)


def test_every_combining_mark_is_neither_word_nor_space() -> None:
    """_LONG_SYMBOL_RUN finds runs of marks as runs of characters that are neither."""
    word_or_space = re.compile(r"[\w\s]")
    marks = [chr(c) for c in range(0x110000) if unicodedata.combining(chr(c))]
    assert marks and not [hex(ord(m)) for m in marks if word_or_space.match(m)]


def test_normalizing_in_pieces_equals_normalizing_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(featurizer_module, "NFKC_PIECE", 64)
    words = ["cafe\u0301", "\ufb01lm", "\uff26\uff35\uff2c\uff2c", "\u1100\u1161", "n\u0303o", "plain", "\u00e9"]
    text = " ".join(words[i % len(words)] for i in range(2_000))
    assert featurizer_module._nfkc(text) == unicodedata.normalize("NFKC", text)


def test_expansion_is_capped_at_twice_the_length() -> None:
    text = "\ufdfa" * 10_000  # 18 characters each under NFKC
    assert len(clean(text)) == 2 * len(text) + featurizer_module.EXPANSION_SLACK
    assert clean("\ufdfa") == unicodedata.normalize("NFKC", "\ufdfa")  # short texts expand in full
