"""Alarms, the optional SNS topic and the dashboard, read from the synthesized templates."""

from __future__ import annotations

import json
from typing import Any

ALARMS = {"Api5xxRate", "ApiLatencyP99", "FunctionErrors", "FunctionThrottles",
          "CurrentModelErrorRate", "CurrentModelLatencyP99"}
CANDIDATE_ALARMS = {"CandidateModelErrorRate", "CandidateModelLatencyP99"}


def alarms(synth) -> dict[str, dict[str, Any]]:
    """Alarms by construct id (the logical id without the Monitoring prefix and hash)."""
    return {logical_id.removeprefix("Monitoring")[:-8]: resource["Properties"]
            for logical_id, resource in synth.resources("AWS::CloudWatch::Alarm").items()}


def math(alarm: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An alarm's expression and the one metric it reads."""
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    (metric,) = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    return expression["Expression"], metric


def dimensions(synth, metric: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: synth.render(d["Value"]) for d in metric["Metric"]["Dimensions"]}


def test_one_alarm_per_signal_and_per_variant(serverless, everything) -> None:
    assert set(alarms(serverless)) == ALARMS
    assert set(alarms(everything)) == ALARMS | CANDIDATE_ALARMS


def test_every_alarm_ignores_silence_and_names_its_cause(serverless, everything) -> None:
    for synth in (serverless, everything):
        for name, alarm in alarms(synth).items():
            assert alarm["TreatMissingData"] == "notBreaching", name  # idle serverless = no data
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold", name
            assert len(alarm["AlarmDescription"]) > 30, name
            assert "AlarmName" not in alarm, name  # generated, so CloudFormation can replace it


def test_api_5xx_rate_and_p99_latency(serverless) -> None:
    found = alarms(serverless)
    expression, metric = math(found["Api5xxRate"])
    assert metric["Metric"]["Namespace"] == "AWS/ApiGateway"
    assert metric["Metric"]["MetricName"] == "5XXError"
    assert metric["Stat"] == "Average"  # 1 per 5XX answer, 0 otherwise: the rate
    assert expression == "100 * api_errors" and found["Api5xxRate"]["Threshold"] == 5
    api_name = serverless.one("AWS::ApiGateway::RestApi")["Properties"]["Name"]
    stage = "${%s}" % next(iter(serverless.resources("AWS::ApiGateway::Stage")))  # Ref = "prod"
    assert dimensions(serverless, metric) == {"ApiName": api_name, "Stage": stage}
    assert api_name == "ServerlessSentiment-api"  # the stack's own, not shared with other APIs
    ((latency,),) = [[m["MetricStat"] for m in found["ApiLatencyP99"]["Metrics"]]]
    assert (latency["Metric"]["MetricName"], latency["Stat"]) == ("Latency", "p99")
    assert found["ApiLatencyP99"]["Threshold"] == 5000
    assert dimensions(serverless, latency) == {"ApiName": api_name, "Stage": stage}
    assert (found["Api5xxRate"]["DatapointsToAlarm"], found["Api5xxRate"]["EvaluationPeriods"]) == (2, 3)


def test_function_errors_and_throttles(serverless) -> None:
    found = alarms(serverless)
    (function_id,) = [k for k, f in serverless.resources("AWS::Lambda::Function").items()
                      if f["Properties"].get("Handler") == "lambda_fn.handler.lambda_handler"]
    for name, metric in (("FunctionErrors", "Errors"), ("FunctionThrottles", "Throttles")):
        alarm = found[name]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", metric, "Sum")
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        assert alarm["Threshold"] == 0 and alarm["EvaluationPeriods"] == 1  # the first one counts


def test_endpoint_alarms_per_variant_use_sagemaker_names_and_units(everything) -> None:
    found = alarms(everything)
    endpoint_id = next(iter(everything.resources("AWS::SageMaker::Endpoint")))
    for variant in ("current", "candidate"):
        title = variant.capitalize()
        expression, metric = math(found[f"{title}ModelErrorRate"])
        assert (metric["Metric"]["Namespace"], metric["Metric"]["MetricName"], metric["Stat"]) == (
            "AWS/SageMaker", "InvocationModelErrors", "Average")
        assert expression == f"100 * {variant}_errors"
        assert dimensions(everything, metric) == {"EndpointName": f"${{{endpoint_id}.EndpointName}}",
                                                  "VariantName": variant}
        expression, metric = math(found[f"{title}ModelLatencyP99"])
        assert (metric["Metric"]["MetricName"], metric["Stat"]) == ("ModelLatency", "p99")
        assert expression == f"{variant}_latency / 1000"  # microseconds → milliseconds
        assert found[f"{title}ModelLatencyP99"]["Threshold"] == 1000  # ms, like the expression


def test_no_topic_and_no_actions_without_an_email(serverless) -> None:
    serverless.template.resource_count_is("AWS::SNS::Topic", 0)
    for name, alarm in alarms(serverless).items():
        assert "AlarmActions" not in alarm, name
    assert "AlarmTopicArn" not in serverless.json["Outputs"]


def test_alarms_email_through_an_ssl_only_topic(everything) -> None:
    (topic_id,) = everything.resources("AWS::SNS::Topic")
    everything.template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": {"Ref": topic_id}})
    for name, alarm in alarms(everything).items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_id}], name
    (policy,) = everything.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == {"Ref": topic_id}
    assert everything.render(allow["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(
        ":${AWS::AccountId}:alarm:*")
    assert everything.json["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_one_dashboard_with_every_signal(serverless, everything) -> None:
    for synth, variants in ((serverless, ["current"]), (everything, ["current", "candidate"])):
        (dashboard_id, dashboard), = synth.resources("AWS::CloudWatch::Dashboard").items()
        assert "DashboardName" not in dashboard["Properties"]
        body = json.loads(synth.render(dashboard["Properties"]["DashboardBody"]))
        text = json.dumps(body)
        for metric in ("5XXError", "Latency", "IntegrationLatency", "Errors", "Throttles", "Duration",
                       "Invocations", "InvocationModelErrors", "Invocation4XXErrors",
                       "Invocation5XXErrors", "ModelLatency"):
            assert f'"{metric}"' in text, metric
        for variant in variants:
            assert f'"VariantName", "{variant}"' in text, variant
        assert sum(w["type"] == "alarm" for w in body["widgets"]) == 1
        url = synth.render(synth.json["Outputs"]["DashboardUrl"]["Value"])
        assert url.endswith(f"#dashboards:name=${{{dashboard_id}}}")
