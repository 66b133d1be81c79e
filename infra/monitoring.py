"""CloudWatch alarms and one dashboard: the API, the function and each endpoint variant.

Every alarm treats missing data as fine: an idle serverless service emits no metrics at all.
Error alarms watch rates (the Average of a metric that is 1 per failed request and 0 per good
one) in two of three 5-minute periods: how often requests fail, not how busy the service is,
and one bad minute alone pages no one.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, Duration, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import Settings

PERIOD = Duration.minutes(5)
SAGEMAKER = "AWS/SageMaker"


def _math(expression: str, label: str, **metrics: cw.IMetric) -> cw.MathExpression:
    """A metric math expression over ``metrics`` (their names must be unique in a graph)."""
    return cw.MathExpression(expression=expression, label=label, period=PERIOD, using_metrics=metrics)


class Monitoring(Construct):
    """Alarms (optionally e-mailed through SNS) and a dashboard for the whole request path."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, api: apigw.RestApi,
                 function: lambda_.IFunction, endpoint_name: str, variants: list[str]) -> None:
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
            [cw.AlarmStatusWidget(title="Alarms", width=24, alarms=self.alarms)],
        ])
        self.dashboard_url = (f"https://{Aws.REGION}.console.{Aws.URL_SUFFIX}/cloudwatch/home?"
                              f"region={Aws.REGION}#dashboards:name={self.dashboard.dashboard_name}")

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
