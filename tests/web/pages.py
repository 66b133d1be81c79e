"""What the browser tests do to the page: open it, ask about a review, wait for the answer, take a shot.

wait_for_function gets arrow functions, never bare expressions: Playwright would eval() those on
every poll, which the page's CSP (no 'unsafe-eval') rightly refuses.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def open_page(page, stack) -> None:
    page.goto(f"{stack.url}/")
    page.wait_for_function("() => !document.getElementById('submit').disabled")  # config.json read


def submit(page, review: str) -> None:
    page.get_by_label("Your review").fill(review)
    page.get_by_role("button", name="Analyse review").click()


def wait_for_result(page) -> str:
    """The verdict's label, once the answer is shown and the page is no longer busy."""
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_function("() => document.getElementById('status').getAttribute('aria-busy') === 'false'")
    return page.locator("#result-label").inner_text()


def analyse(page, review: str) -> str:
    submit(page, review)
    return wait_for_result(page)


def save_screenshot(page, tmp_path: Path, target: Path) -> None:
    """The whole page, with no hover highlight, written to ``target`` (README's copy is refreshed by hand)."""
    page.mouse.move(0, 0)
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, target)
