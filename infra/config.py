"""Typed settings for the stack, read from CDK context (``cdk.json`` or ``-c key=value``).

Every key, its default and what it changes (``cdk.json`` spells out the same defaults):

| key                           | default       | meaning                                               |
| ----------------------------- | ------------- | ----------------------------------------------------- |
| `model_dir`                   | `artifacts`   | training output to deploy (relative to the repo root) |
| `endpoint_mode`               | `serverless`  | `serverless` (pay per request) or `instance`          |
| `serverless_memory_mb`        | `2048`        | serverless memory: 1024..6144, a multiple of 1024     |
| `serverless_max_concurrency`  | `5`           | serverless concurrent invocations: 1..200             |
| `serverless_provisioned_concurrency` | `0`    | serverless: invocations kept warm (no cold start),    |
|                               |               | billed while provisioned; 0 = off, at most the max    |
| `instance_type`               | `ml.c5.large` | instance mode: the hosting instance type              |
| `instance_count`              | `1`           | instance mode: initial count and autoscaling minimum  |
| `max_instance_count`          | `2`           | instance mode: autoscaling maximum                    |
| `invocations_per_instance`    | `300`         | instance mode: scaling target, invocations/minute     |
| `api_rate_limit`              | `10`          | API stage steady-state limit, requests per second     |
| `api_burst_limit`             | `20`          | API stage burst limit, requests                       |
| `lambda_memory_mb`            | `256`         | Lambda memory (CPU scales with it): 128..10240        |
| `lambda_reserved_concurrency` | `auto`        | concurrency reserved for (and capping) the function:  |
|                               |               | `auto` = twice the endpoint's, N, or `none` (below)   |
| `lambda_snapstart`            | `true`        | SnapStart: environments resume from a snapshot taken  |
|                               |               | when a version is published (below)                   |
| `lambda_provisioned_concurrency` | `0`        | environments kept initialized on the `live` alias,    |
|                               |               | billed while provisioned; needs lambda_snapstart=false|
| `waf_enabled`                 | `true`        | a WAF web ACL on the API stage (about $6/month)       |
| `waf_rate_limit`              | `300`         | WAF: requests per client IP per 5 minutes, then 429   |
| `log_retention_days`          | `30`          | retention of every log group of the stack            |
| `access_log_retention_days`   | `90`          | days the access-log bucket keeps S3/CloudFront logs   |
| `powertools_layer_version`    | unset         | pin the Powertools layer's number (see below)         |
| `destroy_on_delete`           | `false`       | `true`: `cdk destroy` deletes buckets and logs too    |
| `candidate_model_dir`         | unset         | instance mode: a 2nd training output, the `candidate` |
| `candidate_weight`            | unset (0.1)   | share of requests the candidate answers: 0 < w < 1    |
| `alarm_email`                 | unset         | e-mail address subscribed to every alarm (SNS)        |
| `alarm_error_percent`         | `5`           | alarm above this % of failed API or model requests    |
| `alarm_latency_p99_ms`        | `5000`        | alarm when the API's p99 latency exceeds this         |
| `alarm_model_latency_p99_ms`  | `1000`        | alarm when a variant's p99 ModelLatency exceeds this  |
| `drift_length_factor`         | `2`           | drift alarm: hourly mean review length (tokens) below |
|                               |               | the baseline's mean / this, or above it x this        |
| `drift_oov_factor`            | `2`           | drift alarm: hourly mean OOV rate above the           |
|                               |               | baseline's mean x this                                |
| `drift_probability_shift`     | `0.15`        | drift alarm: hourly mean probability this far from    |
|                               |               | the baseline's mean                                   |
| `drift_min_reviews`           | `50`          | drift alarms: an hour with fewer reviews never fires  |
| `drift_hours`                 | `3`           | drift alarms fire after this many such hours in a row |
| `data_capture_percent`        | `0`           | instance mode: % of requests captured to S3, 0 = off  |
| `batch_input`                 | unset         | `s3://bucket/folder/` of review files, one per line   |
| `batch_output`                | unset         | `s3://bucket/folder/` Batch Transform writes into     |
| `batch_instance_type`         | `ml.m5.large` | the Batch Transform job's instance type               |
| `active_hours`                | unset         | instance mode: `HH-HH`; one instance outside them     |
| `active_days`                 | `*`           | days with active hours, e.g. `MON-FRI`; `*` every day |
| `active_timezone`             | `UTC`         | time zone of `active_hours`, e.g. `Europe/Berlin`     |

``lambda_reserved_concurrency=auto`` reserves twice what the endpoint serves at once: the
serverless ``serverless_max_concurrency``, or in instance mode 4 requests per instance (the
image's 2 workers x 2 threads on 2 vCPUs) times ``max_instance_count`` per variant. More would
only queue requests the endpoint throttles; the cap keeps a flood from taking the account's
whole Lambda pool. Lambda keeps 10 of an account's concurrency unreserved, so an account whose
quota is 10 (new accounts often are) cannot reserve any: deploy there with
``-c lambda_reserved_concurrency=none``. ``0`` is refused: it would stop the function.

API Gateway invokes the function's ``live`` alias, which points at the version each deploy
publishes. With ``lambda_snapstart`` (the default) Lambda runs the function's init (imports,
the featurizer read from S3, the SageMaker client) once, when the version is published, and
starts every new environment from a snapshot of it. SnapStart and provisioned concurrency are
exclusive in Lambda: ``lambda_provisioned_concurrency`` (N environments initialized ahead and
billed for every second they are kept) needs ``-c lambda_snapstart=false``.

By default the Powertools layer ARN is read at deploy time from AWS's public SSM parameter for
the version pinned in ``requirements/lambda.txt``; ``powertools_layer_version`` pins a layer
number instead, for regions or versions that parameter does not cover.

Values given with ``-c`` arrive as strings; they are converted and checked here, so a typo
fails synth with a message that names the key instead of surfacing later in CloudFormation.
Combinations AWS does not support (serverless endpoints take neither a second production
variant nor data capture, and already scale to zero) fail here too, with the reason.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, get_args, get_type_hints

from aws_cdk import aws_logs as logs


class ConfigError(ValueError):
    """A context value is missing its expected type or range."""


ENDPOINT_MODES = ("serverless", "instance")
DEFAULT_CANDIDATE_WEIGHT = 0.1
SERVERLESS_LIMITS = ("https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html"
                     " (feature exclusions)")
# Requests one instance of the serving image has in flight: gunicorn runs a worker per vCPU
# (2 on ml.c5.large, ml.m5.large) with 2 threads each (serving/server.py).
REQUESTS_PER_INSTANCE = 4
RESERVED_CONCURRENCY_PATTERN = re.compile(r"auto|none|[1-9][0-9]*")
WAF_RATE_LIMITS = (10, 2_000_000_000)  # AWS::WAFv2::WebACL RateBasedStatement Limit

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

_DAY = r"(MON|TUE|WED|THU|FRI|SAT|SUN)"
DAYS_PATTERN = re.compile(rf"\*|{_DAY}(-{_DAY})?(,{_DAY}(-{_DAY})?)*")
HOURS_PATTERN = re.compile(r"(\d{1,2})-(\d{1,2})")
S3_FOLDER_PATTERN = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S*[^/\s]\S*)")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Settings:
    """The stack's settings; see the module docstring for each key."""

    model_dir: str = "artifacts"
    endpoint_mode: str = "serverless"
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    serverless_provisioned_concurrency: int = 0
    instance_type: str = "ml.c5.large"
    instance_count: int = 1
    max_instance_count: int = 2
    invocations_per_instance: int = 300
    api_rate_limit: int = 10
    api_burst_limit: int = 20
    lambda_memory_mb: int = 256
    lambda_reserved_concurrency: str = "auto"
    lambda_snapstart: bool = True
    lambda_provisioned_concurrency: int = 0
    waf_enabled: bool = True
    waf_rate_limit: int = 300
    log_retention_days: int = 30
    access_log_retention_days: int = 90
    powertools_layer_version: int | None = None
    destroy_on_delete: bool = False
    candidate_model_dir: str | None = None
    candidate_weight: float | None = None
    alarm_email: str | None = None
    alarm_error_percent: float = 5.0
    alarm_latency_p99_ms: int = 5000
    alarm_model_latency_p99_ms: int = 1000
    drift_length_factor: float = 2.0
    drift_oov_factor: float = 2.0
    drift_probability_shift: float = 0.15
    drift_min_reviews: int = 50
    drift_hours: int = 3
    data_capture_percent: int = 0
    batch_input: str | None = None
    batch_output: str | None = None
    batch_instance_type: str = "ml.m5.large"
    active_hours: str | None = None
    active_days: str = "*"
    active_timezone: str = "UTC"

    @property
    def serverless(self) -> bool:
        return self.endpoint_mode == "serverless"

    @property
    def endpoint_concurrency(self) -> int:
        """Requests the endpoint serves at once, at most (instance mode: an estimate, see above)."""
        if self.serverless:
            return self.serverless_max_concurrency
        variants = 2 if self.candidate_model_dir is not None else 1
        return variants * self.max_instance_count * REQUESTS_PER_INSTANCE

    @property
    def reserved_concurrency(self) -> int | None:
        """The function's reserved concurrency, or None to reserve nothing."""
        if self.lambda_reserved_concurrency == "none":
            return None
        if self.lambda_reserved_concurrency == "auto":
            return 2 * self.endpoint_concurrency
        return int(self.lambda_reserved_concurrency)

    @property
    def log_retention(self) -> logs.RetentionDays:
        return RETENTION[self.log_retention_days]

    @property
    def candidate_share(self) -> float:
        """The candidate variant's traffic weight (0 without a candidate)."""
        if self.candidate_model_dir is None:
            return 0.0
        return DEFAULT_CANDIDATE_WEIGHT if self.candidate_weight is None else self.candidate_weight

    @property
    def active_window(self) -> tuple[int, int] | None:
        """``active_hours`` as (scale-up hour, scale-down hour), or None without a schedule."""
        if self.active_hours is None:
            return None
        match = HOURS_PATTERN.fullmatch(self.active_hours)
        if match is None:  # from_context has refused it already; a Settings built by hand has not
            raise ConfigError(f"context key 'active_hours' is {self.active_hours!r}; expected HH-HH")
        start, end = match.groups()
        return int(start), int(end)

    @property
    def batch(self) -> bool:
        return self.batch_input is not None

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Settings:
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
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = context.get(f.name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw, hints[f.name])
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
        _check(0 <= self.serverless_provisioned_concurrency <= self.serverless_max_concurrency,
               "serverless_provisioned_concurrency", self.serverless_provisioned_concurrency,
               f"0 (off) to serverless_max_concurrency ({self.serverless_max_concurrency})")
        if self.serverless_provisioned_concurrency and not self.serverless:
            raise ConfigError("context key 'serverless_provisioned_concurrency' needs the serverless endpoint; "
                              "an instance endpoint is always warm (instance_count).")
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
        reserved = self.lambda_reserved_concurrency
        if reserved.lstrip("+-0") == "" and reserved != "":
            raise ConfigError(f"context key 'lambda_reserved_concurrency' is {reserved!r}; 0 would stop the "
                              "function (Lambda throttles every request). Use none to reserve nothing.")
        _check(RESERVED_CONCURRENCY_PATTERN.fullmatch(reserved) is not None, "lambda_reserved_concurrency",
               reserved, "auto, none or a whole number of at least 1")
        self._validate_lambda_start()
        low, high = WAF_RATE_LIMITS
        _check(low <= self.waf_rate_limit <= high, "waf_rate_limit", self.waf_rate_limit,
               f"requests per client IP per 5 minutes, between {low} and {high:,}")
        _check(self.log_retention_days in RETENTION, "log_retention_days", self.log_retention_days,
               f"one of {', '.join(map(str, RETENTION))}")
        _check(self.access_log_retention_days >= 1, "access_log_retention_days",
               self.access_log_retention_days, "at least 1 (days)")
        _check(self.powertools_layer_version is None or self.powertools_layer_version >= 1,
               "powertools_layer_version", self.powertools_layer_version, "a layer version number, or unset")
        self._validate_variants()
        self._validate_monitoring()
        self._validate_batch()
        self._validate_schedule()

    def _validate_lambda_start(self) -> None:
        provisioned = self.lambda_provisioned_concurrency
        _check(provisioned >= 0, "lambda_provisioned_concurrency", provisioned, "0 (off) or more")
        if provisioned and self.lambda_snapstart:
            raise ConfigError("context keys 'lambda_provisioned_concurrency' and 'lambda_snapstart' are exclusive "
                              "(Lambda does not support both on one version): add -c lambda_snapstart=false")
        reserved = self.reserved_concurrency
        if reserved is not None and provisioned > reserved:
            raise ConfigError(f"context key 'lambda_provisioned_concurrency' is {provisioned}, more than the "
                              f"function's reserved concurrency ({reserved}); raise lambda_reserved_concurrency")

    def _validate_variants(self) -> None:
        if self.candidate_weight is not None:
            _check(0 < self.candidate_weight < 1, "candidate_weight", self.candidate_weight,
                   "a fraction between 0 and 1, exclusive (0.1 sends 10% of requests to the candidate)")
            if self.candidate_model_dir is None:
                raise ConfigError("context key 'candidate_weight' is set but 'candidate_model_dir' is "
                                  "not: give the candidate's training output folder with "
                                  "-c candidate_model_dir=DIR, or drop candidate_weight.")
        if self.candidate_model_dir is not None and self.serverless:
            raise ConfigError(
                "a candidate variant needs -c endpoint_mode=instance: SageMaker serverless endpoints "
                f"serve one production variant only, see {SERVERLESS_LIMITS}. Deploy with "
                "-c endpoint_mode=instance, or test the candidate alone with -c model_dir=DIR.")

    def _validate_monitoring(self) -> None:
        _check(self.alarm_email is None or EMAIL_PATTERN.fullmatch(self.alarm_email) is not None,
               "alarm_email", self.alarm_email, "an e-mail address such as ops@example.com")
        _check(0 < self.alarm_error_percent <= 100, "alarm_error_percent", self.alarm_error_percent,
               "a percentage above 0 and at most 100")
        _check(self.alarm_latency_p99_ms >= 1, "alarm_latency_p99_ms", self.alarm_latency_p99_ms,
               "at least 1")
        _check(self.alarm_model_latency_p99_ms >= 1, "alarm_model_latency_p99_ms",
               self.alarm_model_latency_p99_ms, "at least 1")
        for key in ("drift_length_factor", "drift_oov_factor"):
            _check(getattr(self, key) > 1, key, getattr(self, key), "a factor above 1")
        _check(0 < self.drift_probability_shift < 1, "drift_probability_shift", self.drift_probability_shift,
               "a shift of mean probability between 0 and 1")
        _check(self.drift_min_reviews >= 1, "drift_min_reviews", self.drift_min_reviews, "at least 1")
        _check(1 <= self.drift_hours <= 24, "drift_hours", self.drift_hours, "1 to 24 hours")
        _check(0 <= self.data_capture_percent <= 100, "data_capture_percent", self.data_capture_percent,
               "a whole percentage from 0 (off) to 100")
        if self.data_capture_percent > 0 and self.serverless:
            raise ConfigError(
                "data capture needs -c endpoint_mode=instance: SageMaker serverless endpoints do not "
                f"support it, see {SERVERLESS_LIMITS}. Deploy with -c endpoint_mode=instance, or set "
                "-c data_capture_percent=0.")

    def _validate_batch(self) -> None:
        for key in ("batch_input", "batch_output"):
            value = getattr(self, key)
            _check(value is None or S3_FOLDER_PATTERN.fullmatch(value) is not None, key, value,
                   "an S3 folder such as s3://my-bucket/reviews/")
        if (self.batch_input is None) != (self.batch_output is None):
            given, missing = (("batch_input", "batch_output") if self.batch_output is None
                              else ("batch_output", "batch_input"))
            raise ConfigError(f"context key {given!r} is set but {missing!r} is not: a Batch Transform "
                              "job needs both an input and an output S3 folder.")
        if self.batch:
            inp, out = s3_folder(self.batch_input), s3_folder(self.batch_output)
            if out[0] == inp[0] and (out[1].startswith(inp[1]) or inp[1].startswith(out[1])):
                raise ConfigError(f"batch_output {self.batch_output!r} overlaps batch_input "
                                  f"{self.batch_input!r}: the next job would read the last one's "
                                  "results as input. Use separate folders.")
        _check(re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", self.batch_instance_type) is not None,
               "batch_instance_type", self.batch_instance_type,
               "a SageMaker instance type such as ml.m5.large")

    def _validate_schedule(self) -> None:
        hours = self.active_hours
        match = HOURS_PATTERN.fullmatch(hours) if hours is not None else None
        _check(hours is None or (match is not None and all(int(h) <= 23 for h in match.groups())
                                 and int(match.group(1)) != int(match.group(2))),
               "active_hours", hours, "two different hours 0..23 such as 08-20 (scale up at 08:00, "
                                      "down to one instance at 20:00)")
        _check(DAYS_PATTERN.fullmatch(self.active_days) is not None, "active_days", self.active_days,
               "* or days such as MON-FRI or MON,WED,FRI")
        zones = zoneinfo.available_timezones()  # empty where the OS has no time zone database
        known = (self.active_timezone in zones if zones
                 else re.fullmatch(r"UTC|[A-Za-z_]+(/[A-Za-z0-9_+-]+)+", self.active_timezone) is not None)
        _check(known, "active_timezone", self.active_timezone,
               "an IANA time zone such as Europe/Berlin or UTC")
        if hours is None:
            return
        if self.serverless:
            raise ConfigError("context key 'active_hours' needs -c endpoint_mode=instance: a serverless "
                              "endpoint already scales to zero and costs nothing between requests.")
        if self.max_instance_count == 1:
            raise ConfigError("context key 'active_hours' would change nothing: the endpoint already "
                              "runs one instance at most (instance_count=max_instance_count=1). A "
                              "SageMaker instance endpoint cannot scale to zero; use the serverless "
                              "mode to pay nothing while idle.")


def s3_folder(uri: str | None) -> tuple[str, str]:
    """``s3://bucket/some/folder`` → (``bucket``, ``some/folder/``): always a folder, slash-terminated."""
    match = S3_FOLDER_PATTERN.fullmatch(uri or "")
    if match is None:
        raise ConfigError(f"{uri!r} is not an S3 folder URI, s3://bucket/folder")
    bucket, key = match.groups()
    return bucket, key.strip("/") + "/"


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"context key {key!r} is {value!r}; expected {expected}")


def _convert(key: str, raw: Any, kind: Any) -> Any:
    """Turn a context value (JSON from cdk.json, or a string from ``-c``) into the field's type."""
    kind = next((t for t in get_args(kind) if t is not type(None)), kind)  # `int | None` -> int
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).strip().lower() in ("true", "1", "yes"):
            return True
        if str(raw).strip().lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"context key {key!r} is {raw!r}; expected true or false")
    if kind in (int, float):
        expected = "a whole number" if kind is int else "a number"
        if isinstance(raw, bool):
            raise ConfigError(f"context key {key!r} is {raw!r}; expected {expected}")
        try:
            value = kind(str(raw).strip())
        except ValueError:
            raise ConfigError(f"context key {key!r} is {raw!r}; expected {expected}") from None
        if not math.isfinite(value):
            raise ConfigError(f"context key {key!r} is {raw!r}; expected {expected}")
        return value
    return str(raw).strip()
