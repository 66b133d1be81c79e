"""The page's explanations in headless Chromium: words highlighted by contribution (bigrams on both of
their words, direction shown without colour, described to screen readers), the top terms, the
uncertain band, markup still shown as text; and a model that cannot explain.

The stack runs a hand-weighted uni+bigram model with its explain.onnx and an uncertain band of
[0.4, 0.6], so every contribution and highlight is known.
"""

from __future__ import annotations

import json

import pytest

from tests.support import LocalStack, synthesize, write_tiny_model
from tests.web.pages import analyse, open_page

pytestmark = pytest.mark.slow  # runs the real `python -m local_stack`

WEIGHTS = {"not good": -2.0, "good": 0.4, "dull": -1.5, "superb": 2.0, "cast": 0.3, "fine": 0.2,
           "film": 0.0, "not": 0.0, "a": 0.0}
BAND = {"uncertain_low": "0.4", "uncertain_high": "0.6"}
MIXED = "Not good: a dull film, not good at all. Superb cast though."


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    model_dir = write_tiny_model(tmp_path_factory.mktemp("bigram_model"), weights=WEIGHTS, ngram_max=2,
                                 metadata=BAND)
    template = synthesize(model_dir, tmp_path_factory.mktemp("synth") / "cdk.out")
    with LocalStack(template, log_path=tmp_path_factory.mktemp("stack") / "local_stack.log") as running:
        yield running


def marks(page) -> list[tuple[str, str, str]]:
    """(word, direction, strength) of every highlighted word, in order."""
    return page.evaluate("""() => [...document.querySelectorAll('#result-review mark')].map(m => [
        m.textContent, m.classList.contains('pushes-positive') ? '+' : '-',
        [...m.classList].find(c => c.startsWith('strength-'))])""")


def test_words_are_highlighted_by_contribution_and_bigrams_mark_both_words(page, stack):
    open_page(page, stack)
    assert analyse(page, MIXED) == "Negative"
    assert page.locator("#result-review").inner_text() == MIXED  # the review itself, every character
    found = marks(page)
    words = [(w, d) for w, d, _ in found]
    # "not good" (-2.0 per count, twice: -4.0) gives each of its 4 words -1.0; "good" nets 0.4 - 1.0
    assert words == [("Not", "-"), ("good", "-"), ("dull", "-"), ("not", "-"), ("good", "-"),
                     ("Superb", "+"), ("cast", "+")]
    assert dict((w, s) for w, _, s in found)["dull"] == "strength-3"  # -1.5: the strongest push
    # only text inside the marks: no element the review could have smuggled in
    assert page.evaluate("() => [...document.querySelectorAll('#result-review *')].every("
                         "e => e.tagName === 'MARK' && e.children.length === 0)")
    # direction without colour: underline style and a +/- mark, the mark spoken to screen readers
    styles = page.evaluate("""() => ['pushes-positive', 'pushes-negative'].map(c => {
        const m = document.querySelector('#result-review mark.' + c);
        return [getComputedStyle(m).textDecorationStyle, getComputedStyle(m, '::after').content]; })""")
    assert styles[0][0] == "solid" and "pushes positive" in styles[0][1] and "+" in styles[0][1]
    assert styles[1][0] == "dashed" and "pushes negative" in styles[1][1] and "\u2212" in styles[1][1]
    title = page.locator("#result-review mark").first.get_attribute("title")
    assert title == "\u22121.00 (not good)"  # "not good" twice: -4.0 (the tiny model counts), 4 words
    # the top terms, by direction, as lists
    assert page.locator("#terms-positive li .term").all_inner_texts() == ["superb", "good", "cast"]
    assert page.locator("#terms-negative li .term").all_inner_texts() == ["not good", "dull"]
    assert page.locator("#terms-negative li").first.inner_text() == "not good \u22124.00"
    assert page.locator("#result-why").is_visible() and page.locator("#result-unsure").is_hidden()
    assert page.console.errors == []


def test_a_verdict_inside_the_uncertain_band_reads_as_leaning(page, stack):
    open_page(page, stack)
    assert analyse(page, "A fine film.") == "Leaning positive"  # sigmoid(0.2) = 0.55, inside [0.4, 0.6]
    assert page.locator("#result-unsure").is_visible()
    assert page.locator(".verdict").inner_text() == "Leaning positive: the model is unsure"
    assert "uncertain" in page.locator("#result-fill").get_attribute("class")
    assert analyse(page, "Superb.") == "Positive"
    assert page.locator("#result-unsure").is_hidden()
    assert page.console.errors == []


def test_markup_in_a_highlighted_review_is_shown_as_text(page, stack):
    open_page(page, stack)
    review = 'Superb <img src=x onerror="window.__xss = 1"> <b>dull</b> <script>window.__xss = 2</script>'
    analyse(page, review)
    assert page.locator("#result-review").inner_text() == review
    assert [w for w, _, _ in marks(page)] == ["Superb", "dull"]
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0 and page.locator("#status script, #status b").count() == 0
    assert page.console.errors == []


def test_a_model_that_cannot_explain_still_gets_its_verdict(page, stack):
    """A deployment whose model has no explain.onnx answers 501 to "explain": the page asks again without."""
    bodies = []

    def old_model(route):
        body = json.loads(route.request.post_data or "{}")
        bodies.append(body)
        if "explain" in body:
            route.fulfill(status=501, content_type="application/json",
                          headers={"Access-Control-Allow-Origin": stack.url},
                          body=json.dumps({"error": "explain_unavailable", "message": "cannot explain"}))
        else:
            route.continue_()

    page.route("**/predict", lambda route: old_model(route) if route.request.method == "POST" else route.continue_())
    open_page(page, stack)
    assert analyse(page, "Superb cast.") == "Positive"
    assert [set(b) for b in bodies] == [{"review", "explain"}, {"review"}]
    assert page.locator("#result-review mark").count() == 0 and page.locator("#result-why").is_hidden()
    assert page.locator("#result-review").inner_text() == "Superb cast."
    assert page.locator("#error").inner_text() == ""
