"""Fixtures for the browser tests: the local stack with a tiny model, and headless Chromium.

Chromium is Debian's ``chromium`` package (``make browser`` installs it); Playwright drives it
through ``executable_path`` because ``playwright install`` cannot download browsers here.
Without it the tests skip, loudly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        reason = (f"BROWSER TESTS SKIPPED: {CHROMIUM} not found. Install Debian's chromium package "
                  "(`make browser`, or `apt-get install chromium`) to run them.")
        warnings.warn(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """Console errors and uncaught exceptions of one page, plus the URLs it requested."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("request", lambda request: self.requests.append(request.url))


@pytest.fixture
def page(browser, stack):
    """A fresh page on the stack's URL, with its console watched (``page.console``)."""
    context = browser.new_context(viewport={"width": 1024, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.console = Console(page)
    yield page
    context.close()
