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
    assert settings.reserved_concurrency == 7
    assert settings.api_rate_limit == 50


@pytest.mark.parametrize("key, value, expected", [
    ("endpoint_mode", "gpu", "one of serverless, instance"),
    ("serverless_memory_mb", "1500", "a multiple of 1024"),
    ("serverless_memory_mb", 8192, "6144"),
    ("serverless_max_concurrency", "0", "between 1 and 200"),
    ("serverless_provisioned_concurrency", "6", "0 (off) to serverless_max_concurrency (5)"),
    ("serverless_provisioned_concurrency", "-1", "0 (off) to serverless_max_concurrency"),
    ("instance_type", "c5.large", "SageMaker instance type"),
    ("max_instance_count", "0", "at least instance_count"),
    ("api_rate_limit", "ten", "whole number"),
    ("destroy_on_delete", "maybe", "true or false"),
    ("log_retention_days", "31", "one of 1, 3, 5"),
    ("lambda_memory_mb", "64", "between 128 and 10240"),
    ("lambda_reserved_concurrency", True, "auto, none or a whole number"),
    ("lambda_reserved_concurrency", "-1", "auto, none or a whole number"),
    ("lambda_reserved_concurrency", "0", "0 would stop the function"),
    ("lambda_reserved_concurrency", "off", "auto, none or a whole number"),
    ("waf_enabled", "maybe", "true or false"),
    ("waf_rate_limit", "9", "between 10 and 2,000,000,000"),
    ("waf_rate_limit", "1e3", "whole number"),
    ("access_log_retention_days", "0", "at least 1"),
])
def test_bad_values_name_the_key(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_context({key: value})
    assert repr(key) in str(err.value) and expected in str(err.value)


def test_reserved_concurrency_is_twice_the_endpoints_unless_told() -> None:
    assert Settings().lambda_reserved_concurrency == "auto"
    assert Settings().reserved_concurrency == 2 * 5  # serverless_max_concurrency
    assert Settings.from_context({"serverless_max_concurrency": "20"}).reserved_concurrency == 40
    # Instance mode: 4 requests in flight per instance (the image's 2 workers x 2 threads on 2 vCPUs).
    instance = {"endpoint_mode": "instance", "max_instance_count": "3"}
    assert Settings.from_context(instance).reserved_concurrency == 2 * 3 * 4
    with_candidate = {**instance, "candidate_model_dir": "artifacts-new"}
    assert Settings.from_context(with_candidate).reserved_concurrency == 2 * 2 * 3 * 4
    # Accounts whose concurrency quota is 10 cannot reserve any: `none` reserves nothing.
    assert Settings.from_context({"lambda_reserved_concurrency": "none"}).reserved_concurrency is None
    assert Settings.from_context({"lambda_reserved_concurrency": 12}).reserved_concurrency == 12


def test_the_firewall_and_access_log_keys() -> None:
    assert (Settings().waf_enabled, Settings().waf_rate_limit, Settings().access_log_retention_days) == (
        True, 300, 90)
    settings = Settings.from_context({"waf_enabled": "false", "waf_rate_limit": "100",
                                      "access_log_retention_days": "7"})
    assert (settings.waf_enabled, settings.waf_rate_limit, settings.access_log_retention_days) == (
        False, 100, 7)


def test_a_misspelt_key_is_refused_but_cdk_keys_pass() -> None:
    with pytest.raises(ConfigError, match="unknown context key.*'endpoint_mod'"):
        Settings.from_context({"endpoint_mod": "instance"})
    Settings.from_context({"@aws-cdk/core:target-partitions": ["aws"], "aws:cdk:enable-path-metadata": True})


# --- Lifecycle keys: variants, monitoring, batch, schedule -----------------------------------------

def test_lifecycle_strings_are_converted() -> None:
    settings = Settings.from_context({
        "endpoint_mode": "instance", "candidate_model_dir": "artifacts-new", "candidate_weight": "0.2",
        "alarm_error_percent": "2.5", "data_capture_percent": "10", "active_hours": "7-19",
        "active_timezone": "Europe/Berlin",
        "batch_input": "s3://in-bucket/a", "batch_output": "s3://out-bucket/b/"})
    assert settings.candidate_share == 0.2
    assert settings.alarm_error_percent == 2.5
    assert settings.data_capture_percent == 10
    assert settings.active_window == (7, 19)
    assert settings.batch


def test_a_candidate_gets_a_tenth_of_requests_unless_told() -> None:
    assert Settings().candidate_share == 0
    settings = Settings.from_context({"endpoint_mode": "instance", "candidate_model_dir": "artifacts-new"})
    assert settings.candidate_share == 0.1


@pytest.mark.parametrize("key, value, expected", [
    ("candidate_weight", "0", "between 0 and 1, exclusive"),
    ("candidate_weight", "1", "between 0 and 1, exclusive"),
    ("candidate_weight", "nan", "a number"),
    ("candidate_weight", "ten percent", "a number"),
    ("alarm_email", "ops-at-example", "an e-mail address"),
    ("alarm_error_percent", "0", "above 0"),
    ("data_capture_percent", "101", "from 0 (off) to 100"),
    ("batch_input", "https://bucket/reviews", "an S3 folder"),
    ("batch_input", "s3://bucket", "an S3 folder"),
    ("batch_output", "s3://bucket//", "an S3 folder"),
    ("batch_instance_type", "m5.large", "SageMaker instance type"),
    ("active_hours", "8", "two different hours"),
    ("active_hours", "08-24", "two different hours"),
    ("active_hours", "08-08", "two different hours"),
    ("active_days", "weekdays", "MON-FRI"),
    ("active_timezone", "Mars/Olympus", "IANA time zone"),
])
def test_bad_lifecycle_values_name_the_key(key: str, value: object, expected: str) -> None:
    context = {"endpoint_mode": "instance", "candidate_model_dir": "artifacts-new", key: value}
    with pytest.raises(ConfigError) as err:
        Settings.from_context(context)
    assert repr(key) in str(err.value) and expected in str(err.value)


def test_a_weight_without_a_candidate_is_refused() -> None:
    with pytest.raises(ConfigError, match="'candidate_weight' is set but 'candidate_model_dir' is not"):
        Settings.from_context({"endpoint_mode": "instance", "candidate_weight": "0.1"})


@pytest.mark.parametrize("key, value, feature", [
    ("candidate_model_dir", "artifacts-new", "a candidate variant"),
    ("data_capture_percent", "5", "data capture"),
])
def test_serverless_refuses_what_sagemaker_serverless_does_not_support(key: str, value: str,
                                                                       feature: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_context({key: value})
    message = str(err.value)
    assert message.startswith(f"{feature} needs -c endpoint_mode=instance")
    assert "serverless-endpoints.html" in message  # where AWS lists the exclusions


def test_a_schedule_is_refused_where_it_would_change_nothing() -> None:
    with pytest.raises(ConfigError, match="already scales to zero"):
        Settings.from_context({"active_hours": "08-20"})  # serverless
    with pytest.raises(ConfigError, match="cannot scale to zero"):
        Settings.from_context({"endpoint_mode": "instance", "active_hours": "08-20",
                               "max_instance_count": "1"})


def test_batch_needs_both_folders_apart() -> None:
    with pytest.raises(ConfigError, match="'batch_input' is set but 'batch_output' is not"):
        Settings.from_context({"batch_input": "s3://bucket/in/"})
    with pytest.raises(ConfigError, match="'batch_output' is set but 'batch_input' is not"):
        Settings.from_context({"batch_output": "s3://bucket/out/"})
    with pytest.raises(ConfigError, match="overlaps batch_input"):
        Settings.from_context({"batch_input": "s3://bucket/in", "batch_output": "s3://bucket/in/scored"})
    Settings.from_context({"batch_input": "s3://bucket/in", "batch_output": "s3://bucket/input-scored"})


def test_s3_folders_are_normalised() -> None:
    assert config.s3_folder("s3://my-bucket/a/b") == ("my-bucket", "a/b/")
    assert config.s3_folder("s3://my-bucket/a/b/") == ("my-bucket", "a/b/")


def test_serverless_provisioned_concurrency_needs_the_serverless_endpoint() -> None:
    assert Settings().serverless_provisioned_concurrency == 0  # off: the endpoint scales to zero
    assert Settings.from_context({"serverless_provisioned_concurrency": "5"}).serverless_provisioned_concurrency == 5
    with pytest.raises(ConfigError, match="needs the serverless endpoint"):
        Settings.from_context({"endpoint_mode": "instance", "serverless_provisioned_concurrency": "1"})


def test_snapstart_by_default_and_exclusive_with_provisioned_concurrency() -> None:
    assert Settings().lambda_snapstart and Settings().lambda_provisioned_concurrency == 0
    off = Settings.from_context({"lambda_snapstart": "false", "lambda_provisioned_concurrency": "4"})
    assert (off.lambda_snapstart, off.lambda_provisioned_concurrency) == (False, 4)
    with pytest.raises(ConfigError, match="exclusive.*lambda_snapstart=false"):
        Settings.from_context({"lambda_provisioned_concurrency": "1"})
    with pytest.raises(ConfigError, match="'lambda_provisioned_concurrency'.*0 \\(off\\) or more"):
        Settings.from_context({"lambda_snapstart": "false", "lambda_provisioned_concurrency": "-1"})
    with pytest.raises(ConfigError, match="more than the function's reserved concurrency \\(10\\)"):
        Settings.from_context({"lambda_snapstart": "false", "lambda_provisioned_concurrency": "11"})
    assert Settings.from_context({"lambda_snapstart": "false", "lambda_provisioned_concurrency": "11",
                                  "lambda_reserved_concurrency": "none"}).lambda_provisioned_concurrency == 11
