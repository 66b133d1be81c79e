"""Context keys: defaults, conversion of `-c key=value` strings, and errors that name the key."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from infra import config
from infra.config import ConfigError, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cdk_json_spells_out_every_default() -> None:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    ours = {k: v for k, v in context.items() if not k.startswith("@")}
    assert ours == asdict(Settings())
    assert Settings.from_context(context) == Settings()


def test_cdk_json_runs_the_app_with_the_project_virtualenv() -> None:
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["app"] == ".venv/bin/python app.py"


def test_every_key_is_documented() -> None:
    for f in fields(Settings):
        assert f"`{f.name}`" in config.__doc__, f"{f.name} missing from infra/config.py's table"


def test_cli_strings_are_converted() -> None:
    settings = Settings.from_context({
        "endpoint_mode": "instance", "instance_count": "2", "max_instance_count": "3",
        "destroy_on_delete": "true", "lambda_reserved_concurrency": "7", "api_rate_limit": " 50 ",
    })
    assert settings.endpoint_mode == "instance" and not settings.serverless
    assert (settings.instance_count, settings.max_instance_count) == (2, 3)
    assert settings.destroy_on_delete is True
    assert settings.lambda_reserved_concurrency == 7
    assert settings.api_rate_limit == 50


@pytest.mark.parametrize("key, value, expected", [
    ("endpoint_mode", "gpu", "one of serverless, instance"),
    ("serverless_memory_mb", "1500", "a multiple of 1024"),
    ("serverless_memory_mb", 8192, "6144"),
    ("serverless_max_concurrency", "0", "between 1 and 200"),
    ("instance_type", "c5.large", "SageMaker instance type"),
    ("max_instance_count", "0", "at least instance_count"),
    ("api_rate_limit", "ten", "whole number"),
    ("destroy_on_delete", "maybe", "true or false"),
    ("log_retention_days", "31", "one of 1, 3, 5"),
    ("lambda_memory_mb", "64", "between 128 and 10240"),
    ("lambda_reserved_concurrency", True, "whole number"),
])
def test_bad_values_name_the_key(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_context({key: value})
    assert repr(key) in str(err.value) and expected in str(err.value)


def test_a_misspelt_key_is_refused_but_cdk_keys_pass() -> None:
    with pytest.raises(ConfigError, match="unknown context key.*'endpoint_mod'"):
        Settings.from_context({"endpoint_mod": "instance"})
    Settings.from_context({"@aws-cdk/core:target-partitions": ["aws"], "aws:cdk:enable-path-metadata": True})
