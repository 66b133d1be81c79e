"""Fixtures shared by the local-stack and browser tests: a tiny model, the stack synthesized with
it, and the local stack running that template.

``tests/serving`` defines its own ``model_dir`` (a model whose probabilities it computes), which
takes precedence there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import LocalStack, edit_template, synthesize, write_tiny_model

# The tests send bursts of requests from one address that the deployed limits (10 requests/s, a
# burst of 20, 300 per address in 5 minutes) would rightly refuse; throttling and the firewall are
# tested on purpose with templates of their own (tests/local_stack/test_errors.py).
TEST_RATE, TEST_BURST, TEST_WAF_LIMIT = 10_000.0, 10_000, 2_000_000_000


def relax_limits(template: dict) -> None:
    """The template's stage throttling and firewall limit raised for tests (everything else as synthesized)."""
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ApiGateway::Stage":
            for setting in resource["Properties"].get("MethodSettings", []):
                setting.update(ThrottlingRateLimit=TEST_RATE, ThrottlingBurstLimit=TEST_BURST)
        if resource["Type"] == "AWS::WAFv2::WebACL":
            for rule in resource["Properties"]["Rules"]:
                rule["Statement"]["RateBasedStatement"]["Limit"] = TEST_WAF_LIMIT


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def synthesized(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stack as `npx cdk synth` makes it from cdk.json (the tiny model as its model): the template's path."""
    return synthesize(model_dir, tmp_path_factory.mktemp("synth") / "cdk.out")


@pytest.fixture(scope="session")
def template(synthesized: Path) -> Path:
    """The synthesized template with the limits a test's bursts need (``relax_limits``)."""
    return edit_template(synthesized, relax_limits, "Tests")


@pytest.fixture(scope="module")
def stack(template: Path, tmp_path_factory: pytest.TempPathFactory):
    """``python -m local_stack --template ...`` on free ports, started once per test module."""
    log = tmp_path_factory.mktemp("stack") / "local_stack.log"
    with LocalStack(template, log_path=log) as running:
        yield running
