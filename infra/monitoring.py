"""CloudWatch alarms and one dashboard: the API, the function, each endpoint variant, and drift.

Every alarm treats missing data as fine: an idle serverless service emits no metrics at all.
Error alarms watch rates (the Average of a metric that is 1 per failed request and 0 per good
one) in two of three 5-minute periods: how often requests fail, not how busy the service is,
and one bad minute alone pages no one.

Drift: the function emits, per review, ``ReviewLength`` (tokens), ``OovRate`` (%) and
``ProbabilityPositive`` by ``ModelVersion`` and ``Variant`` (``lambda_fn.handler``). The dashboard
plots each variant's hourly means against its model's baseline (metrics.json's, from the
validation split), and three alarms per variant fire when an hourly mean stays off it for
``drift_hours`` hours in a row: length below the baseline mean / ``drift_length_factor`` or above
it x the factor; OOV rate above the baseline mean x ``drift_oov_factor``; probability more than
``drift_probability_shift`` from the baseline mean. An hour with fewer than ``drift_min_reviews``
reviews never counts. A model trained before baselines gets the graphs and no drift alarm.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Aws, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.api import METRICS_NAMESPACE, SERVICE_NAME
from infra.config import Settings
from sentiment.artifacts import METRICS_FILE, ModelFolder

PERIOD = Duration.minutes(5)
DRIFT_PERIOD = Duration.hours(1)
SAGEMAKER = "AWS/SageMaker"
# (metric, baseline measure, how the baseline mean is scaled to the metric's unit, graph title)
DRIFT_METRICS = (("ReviewLength", "length", 1.0, "Review length (tokens), hourly mean"),
                 ("OovRate", "oov_rate", 100.0, "Out-of-vocabulary rate (%), hourly mean"),
                 ("ProbabilityPositive", "probability", 1.0, "Probability of positive, hourly mean"))


@dataclass(frozen=True)
class DriftBaseline:
    """A variant, the model version it serves, and that model's baseline means (None: no baseline)."""

    variant: str
    model_version: str
    means: dict[str, float] | None

    @classmethod
    def of(cls, variant: str, folder: ModelFolder) -> DriftBaseline:
        metrics: dict[str, Any] = json.loads((folder.path / METRICS_FILE).read_text(encoding="utf-8"))
        baseline = metrics.get("baseline")
        means = None
        if isinstance(baseline, dict):
            means = {measure: float(baseline[measure]["mean"]) * scale for _, measure, scale, _ in DRIFT_METRICS}
        return cls(variant, folder.version, means)


def _math(expression: str, label: str, **metrics: cw.IMetric) -> cw.MathExpression:
    """A metric math expression over ``metrics`` (their names must be unique in a graph)."""
    return cw.MathExpression(expression=expression, label=label, period=PERIOD, using_metrics=metrics)


class Monitoring(Construct):
    """Alarms (optionally e-mailed through SNS) and a dashboard for the whole request path."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, api: apigw.RestApi,
                 function: lambda_.IFunction, endpoint_name: str, variants: list[str],
                 drift: list[DriftBaseline] | None = None) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.topic = self._topic(settings.alarm_email) if settings.alarm_email else None
        self.alarms: list[cw.Alarm] = []
        stage = api.deployment_stage

        api_errors = _math("100 * api_errors", "API 5XX (% of requests)",
                           api_errors=stage.metric_server_error(statistic="Average", period=PERIOD))
        api_p99 = stage.metric_latency(statistic="p99", period=PERIOD, label="API latency p99 (ms)")
        self._alarm("Api5xxRate", api_errors, settings.alarm_error_percent,
                    f"Over {settings.alarm_error_percent:g}% of POST /predict requests answered 5XX.")
        self._alarm("ApiLatencyP99", api_p99, settings.alarm_latency_p99_ms,
                    f"The API's p99 latency is over {settings.alarm_latency_p99_ms} ms.")
        # Any error the handler did not turn into a JSON answer (crash, timeout) is a bug.
        function_errors = function.metric_errors(statistic="Sum", period=PERIOD)
        function_throttles = function.metric_throttles(statistic="Sum", period=PERIOD)
        self._alarm("FunctionErrors", function_errors, 0, "The predict function failed (crash or timeout).",
                    periods=(1, 1))
        self._alarm("FunctionThrottles", function_throttles, 0,
                    "The predict function was throttled: requests were refused.", periods=(1, 1))

        model_errors, model_p99 = {}, {}
        for variant in variants:
            errors = self._metric("InvocationModelErrors", variant, "Average")
            latency = self._metric("ModelLatency", variant, "p99")  # in microseconds
            model_errors[variant] = _math(f"100 * {variant}_errors", f"{variant}: model errors (%)",
                                          **{f"{variant}_errors": errors})
            model_p99[variant] = _math(f"{variant}_latency / 1000", f"{variant}: model latency p99 (ms)",
                                       **{f"{variant}_latency": latency})
            title = variant.capitalize()
            self._alarm(f"{title}ModelErrorRate", model_errors[variant], settings.alarm_error_percent,
                        f"Over {settings.alarm_error_percent:g}% of invocations of the {variant} variant "
                        "failed in the model container (4XX, 5XX or timeout).")
            self._alarm(f"{title}ModelLatencyP99", model_p99[variant], settings.alarm_model_latency_p99_ms,
                        f"The {variant} variant's p99 model latency is over "
                        f"{settings.alarm_model_latency_p99_ms} ms.")

        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.hours(3), widgets=[
            [cw.GraphWidget(title="API requests and 5XX %", width=12,
                            left=[stage.metric_count(statistic="Sum", period=PERIOD, label="requests")],
                            right=[api_errors]),
             cw.GraphWidget(title="API latency (ms)", width=12, left=[
                 stage.metric_latency(statistic="p50", period=PERIOD, label="p50"), api_p99,
                 stage.metric_integration_latency(statistic="p99", period=PERIOD,
                                                  label="integration p99")])],
            [cw.GraphWidget(title="Function invocations, errors, throttles", width=12, left=[
                function.metric_invocations(statistic="Sum", period=PERIOD),
                function_errors, function_throttles]),
             cw.GraphWidget(title="Function duration (ms)", width=12, left=[
                 function.metric_duration(statistic="p50", period=PERIOD, label="p50"),
                 function.metric_duration(statistic="p99", period=PERIOD, label="p99")])],
            [cw.GraphWidget(title="Endpoint invocations per variant", width=8, left=[
                self._metric("Invocations", v, "Sum") for v in variants]),
             cw.GraphWidget(title="Model errors: % (left), 4XX and 5XX counts (right)", width=8,
                            left=list(model_errors.values()),
                            right=[self._metric(name, v, "Sum") for v in variants
                                   for name in ("Invocation4XXErrors", "Invocation5XXErrors")]),
             cw.GraphWidget(title="Model latency p99 (ms)", width=8, left=list(model_p99.values()))],
            self._drift(settings, drift or []),
            [cw.AlarmStatusWidget(title="Alarms", width=24, alarms=self.alarms)],
        ])
        self.dashboard_url = (f"https://{Aws.REGION}.console.{Aws.URL_SUFFIX}/cloudwatch/home?"
                              f"region={Aws.REGION}#dashboards:name={self.dashboard.dashboard_name}")

    def _drift(self, settings: Settings, sources: list[DriftBaseline]) -> list[cw.IWidget]:
        """The drift graphs (each variant's hourly means against its baseline) and the drift alarms."""
        graphs: dict[str, list[cw.IMetric]] = {name: [] for name, *_ in DRIFT_METRICS}
        lines: dict[str, list[cw.HorizontalAnnotation]] = {name: [] for name, *_ in DRIFT_METRICS}
        for source in sources:
            title = source.variant.capitalize()
            for name, measure, _, _ in DRIFT_METRICS:
                mean, count = (cw.Metric(
                    namespace=METRICS_NAMESPACE, metric_name=name, statistic=statistic, period=DRIFT_PERIOD,
                    dimensions_map={"ModelVersion": source.model_version, "Variant": source.variant,
                                    "service": SERVICE_NAME},
                    label=f"{source.variant}: {name}") for statistic in ("Average", "SampleCount"))
                graphs[name].append(mean)
                if source.means is None:
                    continue
                base = source.means[measure]
                lines[name].append(cw.HorizontalAnnotation(value=base, label=f"{source.variant} baseline {base:.3g}"))
                gate = f"IF(n >= {settings.drift_min_reviews}, {{}}, 0)"
                if name == "ReviewLength":
                    expression, threshold = f"ABS(LOG(m / {base!r}))", math.log(settings.drift_length_factor)
                    what = (f"outside [{base / settings.drift_length_factor:.0f}, "
                            f"{base * settings.drift_length_factor:.0f}] tokens")
                elif name == "OovRate":
                    expression, threshold = f"m / {base!r}", settings.drift_oov_factor
                    what = f"above {base * settings.drift_oov_factor:.2f}%"
                else:
                    expression, threshold = f"ABS(m - {base!r})", settings.drift_probability_shift
                    what = (f"outside [{base - settings.drift_probability_shift:.3f}, "
                            f"{base + settings.drift_probability_shift:.3f}]")
                shift = cw.MathExpression(expression=gate.format(expression), period=DRIFT_PERIOD,
                                          label=f"{source.variant}: {name} shift",
                                          using_metrics={"m": mean, "n": count})
                self._alarm(f"{title}Drift{name}", shift, threshold,
                            f"Drift: the {source.variant} variant's (model {source.model_version}) hourly mean {name} "
                            f"was {what} (baseline mean {base:.4g}, from its validation split) for "
                            f"{settings.drift_hours} hours in a row, over at least {settings.drift_min_reviews} "
                            "reviews an hour. Compare with `python -m serving.drift`.",
                            periods=(settings.drift_hours, settings.drift_hours))
        return [cw.GraphWidget(title=title, width=8, left=graphs[name], left_annotations=lines[name])
                for name, _, _, title in DRIFT_METRICS]

    def _metric(self, name: str, variant: str, statistic: str) -> cw.Metric:
        """A SageMaker invocation metric of one variant of this endpoint."""
        return cw.Metric(namespace=SAGEMAKER, metric_name=name, statistic=statistic, period=PERIOD,
                         dimensions_map={"EndpointName": self.endpoint_name, "VariantName": variant},
                         label=f"{variant}: {name}")

    def _alarm(self, construct_id: str, metric: cw.IMetric, threshold: float, description: str,
               periods: tuple[int, int] = (2, 3)) -> cw.Alarm:
        """Alarm when ``metric`` exceeds ``threshold`` in ``periods[0]`` of the last ``periods[1]``."""
        alarm = cw.Alarm(self, construct_id, metric=metric, threshold=threshold,
                         comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                         datapoints_to_alarm=periods[0], evaluation_periods=periods[1],
                         treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                         alarm_description=description)
        if self.topic is not None:
            action = cw_actions.SnsAction(self.topic)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        self.alarms.append(alarm)
        return alarm

    def _topic(self, email: str) -> sns.Topic:
        """An SNS topic e-mailing ``email`` (who must confirm the subscription once)."""
        topic = sns.Topic(self, "AlarmTopic", display_name="Sentiment API alarms", enforce_ssl=True)
        topic.add_subscription(subscriptions.EmailSubscription(email))
        # The topic policy CDK writes for enforce_ssl replaces SNS's default one, which let
        # CloudWatch publish; allow it again, for this account's alarms only.
        alarms = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
        topic.add_to_resource_policy(iam.PolicyStatement(
            actions=["sns:Publish"], principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            resources=[topic.topic_arn], conditions={"ArnLike": {"aws:SourceArn": alarms}}))
        Validations.of(topic).acknowledge(Acknowledgment(
            id="AwsSolutions-SNS2",
            reason="CloudWatch alarms cannot publish to a topic encrypted with SNS's AWS-managed key, "
                   "and a customer-managed key costs $1/month for messages holding only alarm names "
                   "and metric values, never review text."))
        return topic
