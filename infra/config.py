"""Typed settings for the stack, read from CDK context (``cdk.json`` or ``-c key=value``).

Every key, its default and what it changes (``cdk.json`` spells out the same defaults):

| key                           | default       | meaning                                               |
| ----------------------------- | ------------- | ----------------------------------------------------- |
| `model_dir`                   | `artifacts`   | training output to deploy (relative to the repo root) |
| `endpoint_mode`               | `serverless`  | `serverless` (pay per request) or `instance`          |
| `serverless_memory_mb`        | `2048`        | serverless memory: 1024..6144, a multiple of 1024     |
| `serverless_max_concurrency`  | `5`           | serverless concurrent invocations: 1..200             |
| `instance_type`               | `ml.c5.large` | instance mode: the hosting instance type              |
| `instance_count`              | `1`           | instance mode: initial count and autoscaling minimum  |
| `max_instance_count`          | `2`           | instance mode: autoscaling maximum                    |
| `invocations_per_instance`    | `300`         | instance mode: scaling target, invocations/minute     |
| `api_rate_limit`              | `10`          | API stage steady-state limit, requests per second     |
| `api_burst_limit`             | `20`          | API stage burst limit, requests                       |
| `lambda_memory_mb`            | `256`         | Lambda memory (CPU scales with it): 128..10240        |
| `lambda_reserved_concurrency` | unset         | cap on concurrent Lambda executions                   |
| `log_retention_days`          | `30`          | retention of every log group of the stack            |
| `powertools_layer_version`    | unset         | pin the Powertools layer's number (see below)         |
| `destroy_on_delete`           | `false`       | `true`: `cdk destroy` deletes buckets and logs too    |

By default the Powertools layer ARN is read at deploy time from AWS's public SSM parameter for
the version pinned in ``requirements/lambda.txt``; ``powertools_layer_version`` pins a layer
number instead, for regions or versions that parameter does not cover.

Values given with ``-c`` arrive as strings; they are converted and checked here, so a typo
fails synth with a message that names the key instead of surfacing later in CloudFormation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Mapping

from aws_cdk import aws_logs as logs


class ConfigError(ValueError):
    """A context value is missing its expected type or range."""


ENDPOINT_MODES = ("serverless", "instance")

RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


@dataclass(frozen=True)
class Settings:
    """The stack's settings; see the module docstring for each key."""

    model_dir: str = "artifacts"
    endpoint_mode: str = "serverless"
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    instance_type: str = "ml.c5.large"
    instance_count: int = 1
    max_instance_count: int = 2
    invocations_per_instance: int = 300
    api_rate_limit: int = 10
    api_burst_limit: int = 20
    lambda_memory_mb: int = 256
    lambda_reserved_concurrency: int | None = None
    log_retention_days: int = 30
    powertools_layer_version: int | None = None
    destroy_on_delete: bool = False

    @property
    def serverless(self) -> bool:
        return self.endpoint_mode == "serverless"

    @property
    def log_retention(self) -> logs.RetentionDays:
        return RETENTION[self.log_retention_days]

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> "Settings":
        """Build settings from the app's context, e.g. ``app.node.get_all_context()``.

        A plain lower-case key that is not a setting is refused: a typo such as
        ``-c endpoint_mod=instance`` would otherwise deploy the default mode without a word.
        CDK's own keys (``@aws-cdk/...``, ``aws:cdk:...``) contain other characters.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in context if re.fullmatch(r"[a-z0-9_]+", k) and k not in known)
        if unknown:
            raise ConfigError(f"unknown context key(s) {', '.join(map(repr, unknown))}; "
                              f"known keys: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = context.get(f.name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw, f.default)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first key whose value is out of range."""
        _check(self.endpoint_mode in ENDPOINT_MODES, "endpoint_mode", self.endpoint_mode,
               f"one of {', '.join(ENDPOINT_MODES)}")
        _check(1024 <= self.serverless_memory_mb <= 6144 and self.serverless_memory_mb % 1024 == 0,
               "serverless_memory_mb", self.serverless_memory_mb, "a multiple of 1024 from 1024 to 6144")
        _check(1 <= self.serverless_max_concurrency <= 200, "serverless_max_concurrency",
               self.serverless_max_concurrency, "between 1 and 200")
        _check(re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", self.instance_type) is not None,
               "instance_type", self.instance_type, "a SageMaker instance type such as ml.c5.large")
        _check(self.instance_count >= 1, "instance_count", self.instance_count, "at least 1")
        _check(self.max_instance_count >= self.instance_count, "max_instance_count",
               self.max_instance_count, f"at least instance_count ({self.instance_count})")
        _check(self.invocations_per_instance >= 1, "invocations_per_instance",
               self.invocations_per_instance, "at least 1")
        _check(self.api_rate_limit >= 1, "api_rate_limit", self.api_rate_limit, "at least 1")
        _check(self.api_burst_limit >= 1, "api_burst_limit", self.api_burst_limit, "at least 1")
        _check(128 <= self.lambda_memory_mb <= 10240, "lambda_memory_mb", self.lambda_memory_mb,
               "between 128 and 10240")
        _check(self.lambda_reserved_concurrency is None or self.lambda_reserved_concurrency >= 1,
               "lambda_reserved_concurrency", self.lambda_reserved_concurrency, "at least 1, or unset")
        _check(self.log_retention_days in RETENTION, "log_retention_days", self.log_retention_days,
               f"one of {', '.join(map(str, RETENTION))}")
        _check(self.powertools_layer_version is None or self.powertools_layer_version >= 1,
               "powertools_layer_version", self.powertools_layer_version, "a layer version number, or unset")


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"context key {key!r} is {value!r}; expected {expected}")


def _convert(key: str, raw: Any, default: Any) -> Any:
    """Turn a context value (JSON from cdk.json, or a string from ``-c``) into the field's type."""
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        if str(raw).strip().lower() in ("true", "1", "yes"):
            return True
        if str(raw).strip().lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"context key {key!r} is {raw!r}; expected true or false")
    if isinstance(default, int) or default is None:  # every optional key is an integer
        if isinstance(raw, bool):
            raise ConfigError(f"context key {key!r} is {raw!r}; expected a whole number")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"context key {key!r} is {raw!r}; expected a whole number") from None
    return str(raw).strip()
