"""The page in headless Chromium against the template-driven local stack (tiny model, exact labels).

The page comes from the template's website (the distribution's files and its response headers
policy, so the template's CSP is enforced on top of the page's own) and calls the API on its own
origin, as CloudFront and API Gateway serve them: every POST is a real cross-origin request with
its CORS preflight, answered by the function.
"""

from __future__ import annotations

import pytest

from local_stack.model_server import REPO_ROOT
from local_stack.template import Addresses, load_stack
from tests.support import MODEL_VERSION, NEGATIVE_REVIEW, POSITIVE_REVIEW, free_port
from tests.web.pages import open_page, save_screenshot, submit, wait_for_result

pytestmark = pytest.mark.slow  # runs the real `python -m local_stack`

# Written on every run; docs/screenshot.png (the README's) is a copy of it, refreshed by hand.
SCREENSHOT = REPO_ROOT / "test-results" / "screenshot.png"
XSS_REVIEW = 'Superb! <img src=x onerror="window.__xss = 1"> <script>window.__xss = 2</script>'


def test_positive_and_negative_reviews_are_labelled(page, stack):
    open_page(page, stack)
    submit(page, POSITIVE_REVIEW)
    assert wait_for_result(page) == "Positive"
    assert page.locator("#result-version").inner_text() == MODEL_VERSION
    assert page.locator("#result-review").inner_text() == POSITIVE_REVIEW
    assert "% probability that the review is positive" in page.locator("#result-probability").inner_text()

    submit(page, NEGATIVE_REVIEW)
    page.wait_for_function("() => document.getElementById('result-label').textContent === 'Negative'")
    bar = page.locator("#result-bar")
    assert float(bar.get_attribute("aria-valuenow")) < 50
    assert page.locator("#error").inner_text() == ""
    assert page.console.errors == []


def test_an_empty_review_gets_a_clear_message_and_no_request(page, stack):
    open_page(page, stack)
    submit(page, "   \n ")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "empty" in error.inner_text()
    assert page.locator("#result").is_hidden()
    assert not [url for url in page.console.requests if url.endswith("/predict")]
    assert page.evaluate("document.activeElement.id") == "review"  # back to the box to type
    assert page.console.errors == []


def test_markup_in_a_review_is_shown_as_text_and_never_run(page, stack):
    open_page(page, stack)
    submit(page, XSS_REVIEW)
    assert wait_for_result(page) == "Positive"
    assert page.locator("#result-review").inner_text() == XSS_REVIEW  # shown literally
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0 and page.locator("#status script").count() == 0
    assert not [url for url in page.console.requests if url.endswith("/x")]  # no image was ever fetched
    assert page.console.errors == []


def test_an_api_refusal_shows_the_apis_message(page, stack):
    open_page(page, stack)
    submit(page, "good " * 10_001)  # 50,005 characters: over the API's limit per review
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.inner_text() == "'review' is 50,005 characters; the limit is 50,000"
    assert page.locator("#result").is_hidden()
    assert page.locator("#submit").is_enabled()
    # Chromium logs every 4xx response itself; nothing else may reach the console.
    assert page.console.errors == ["Failed to load resource: the server responded with a status of 413 "
                                   "(REQUEST ENTITY TOO LARGE)"]


def test_an_unreachable_api_is_reported(page, stack):
    open_page(page, stack)
    page.route("**/predict", lambda route: route.abort("connectionrefused"))
    submit(page, POSITIVE_REVIEW)
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith(f"Could not reach the API at {stack.api_url}")
    assert all("ERR_CONNECTION_REFUSED" in e for e in page.console.errors)


def test_a_missing_config_is_reported_and_blocks_submitting(page, stack):
    page.route("**/config.json", lambda route: route.fulfill(status=404, body="not found"))
    page.goto(f"{stack.url}/")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "config.json" in error.inner_text() and "HTTP 404" in error.inner_text()
    assert page.locator("#submit").is_disabled()
    assert all("status of 404" in e for e in page.console.errors)


def test_the_keyboard_alone_is_enough(page, stack):
    open_page(page, stack)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "review"
    page.keyboard.type(NEGATIVE_REVIEW)
    page.keyboard.press("Control+Enter")
    assert wait_for_result(page) == "Negative"
    assert page.console.errors == []


def test_loading_state_disables_the_button_and_sets_aria_busy(page, stack):
    open_page(page, stack)
    page.evaluate("""() => {
        const submit = document.getElementById('submit');
        window.__states = [];
        new MutationObserver(() => window.__states.push(
            [submit.disabled, document.getElementById('status').getAttribute('aria-busy'), submit.textContent]
        )).observe(document.body, {attributes: true, subtree: true, childList: true, characterData: true});
    }""")
    submit(page, POSITIVE_REVIEW)
    wait_for_result(page)
    states = page.evaluate("window.__states")
    assert [True, "true", "Analysing…"] in states
    assert states[-1] == [False, "false", "Analyse review"]
    assert page.console.errors == []


@pytest.mark.parametrize("sample, label", [("Glowing", "Positive"), ("Scathing", "Negative")])
def test_sample_buttons_fill_and_submit(page, stack, sample, label):
    open_page(page, stack)
    button = page.get_by_role("button", name=sample)
    button.click()
    assert wait_for_result(page) == label
    assert page.get_by_label("Your review").input_value() == button.get_attribute("data-review")
    assert page.console.errors == []


def test_the_page_fits_a_phone_screen(page, stack):
    page.set_viewport_size({"width": 360, "height": 740})
    open_page(page, stack)
    submit(page, POSITIVE_REVIEW)
    wait_for_result(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    assert page.console.errors == []


def test_the_page_is_served_with_the_templates_headers_policy(page, stack, template):
    response = page.goto(f"{stack.url}/")
    site = load_stack(template, Addresses(site_origin=stack.url, api_origin=stack.api_origin)).website
    policy = {rule.name.lower(): rule.value for rule in site.headers}
    assert "content-security-policy" in policy and "strict-transport-security" in policy
    for name, value in policy.items():
        assert response.headers[name] == value, name
    assert f"connect-src 'self' {stack.api_origin};" in response.headers["content-security-policy"]


def test_the_templates_csp_is_enforced_beyond_the_pages_own(page, stack):
    """The page's meta CSP allows any http://127.0.0.1 port; the template's allows only the API."""
    open_page(page, stack)
    elsewhere = f"http://127.0.0.1:{free_port()}/steal"
    outcome = page.evaluate("""async (url) => {
        const violations = [];
        document.addEventListener('securitypolicyviolation', (e) => violations.push(e.effectiveDirective));
        let fetched;
        try { await fetch(url); fetched = 'fetched'; } catch (err) { fetched = 'blocked'; }
        await new Promise((resolve) => setTimeout(resolve, 50));
        return {fetched, violations};
    }""", elsewhere)
    assert outcome == {"fetched": "blocked", "violations": ["connect-src"]}
    assert any("Refused to connect" in e and "Content Security Policy" in e for e in page.console.errors)


def test_screenshot(page, stack, tmp_path):
    """The README's screenshot: a sample review and its verdict."""
    open_page(page, stack)
    page.emulate_media(reduced_motion="reduce")  # no bar animation: the shot shows the final state
    page.get_by_role("button", name="Mixed, leaning good").click()
    assert wait_for_result(page) == "Positive"
    save_screenshot(page, tmp_path, SCREENSHOT)
    assert page.console.errors == []
