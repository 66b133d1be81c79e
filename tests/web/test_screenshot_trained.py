"""README's screenshot: the page on the trained default model (artifacts/), a review explained.

Skipped when artifacts/ holds no trained model with its explain.onnx (a fresh clone before
`make train`); the shot is written to test-results/screenshot-trained.png and docs/screenshot.png
is a copy of it, refreshed by hand.
"""

from __future__ import annotations

import json

import pytest

from local_stack.model_server import REPO_ROOT
from sentiment.artifacts import DEPLOYED_FILES, EXPLAIN_FILE
from tests.support import LocalStack, synthesize
from tests.web.pages import analyse, open_page, save_screenshot

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "artifacts"
SCREENSHOT = REPO_ROOT / "test-results" / "screenshot-trained.png"
REVIEW = ("The first half drags and the dialogue is clumsy, but the ending is brilliant and the lead "
          "performance is one of the best I have seen this year. Not a perfect film, yet a moving one.")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not all((ARTIFACTS / name).is_file() for name in (*DEPLOYED_FILES, EXPLAIN_FILE)):
        pytest.skip("artifacts/ holds no trained model with explain.onnx: `make train` first")
    template = synthesize(ARTIFACTS, tmp_path_factory.mktemp("synth") / "cdk.out")
    with LocalStack(template, log_path=tmp_path_factory.mktemp("stack") / "local_stack.log") as running:
        yield running


def test_screenshot_of_the_trained_model_explaining_a_review(page, stack, tmp_path):
    metrics = json.loads((ARTIFACTS / "metrics.json").read_text())
    open_page(page, stack)
    page.emulate_media(reduced_motion="reduce")
    analyse(page, REVIEW)
    assert page.locator("#result-version").inner_text() == metrics["model_version"]
    assert page.locator("#result-review mark").count() >= 5
    assert page.locator("#terms-positive li").count() == page.locator("#terms-negative li").count() == 5
    save_screenshot(page, tmp_path, SCREENSHOT)
    assert page.console.errors == []
