"""Drift on the dashboard and its alarms, from the model's baseline in metrics.json (synthesized templates)."""

from __future__ import annotations

import json
import math as m
from pathlib import Path

import pytest

from sentiment.drift import baseline as drift_baseline
from tests.infra.conftest import MODEL_VERSION, synthesize, write_fake_artifacts
from tests.infra.test_monitoring import alarms, dimensions

BASELINE = drift_baseline([200, 240, 260], [0.02, 0.03, 0.025], [0.1, 0.6, 0.8], 0.5)  # means 233.3, 2.5%, 0.5


def with_baseline(path: Path) -> Path:
    folder = write_fake_artifacts(path)
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**metrics, "baseline": BASELINE}))
    return folder


@pytest.fixture(scope="module")
def drifting(tmp_path_factory):
    folder = with_baseline(tmp_path_factory.mktemp("baseline"))
    return synthesize(tmp_path_factory.mktemp("drift") / "cdk.out", model_dir=str(folder))


def parts(alarm):
    (expression,) = [x["Expression"] for x in alarm["Metrics"] if "Expression" in x]
    stats = {x["Id"]: x["MetricStat"] for x in alarm["Metrics"] if "MetricStat" in x}
    return expression, stats


def test_three_drift_alarms_per_variant_from_the_baseline(drifting):
    found = {name: alarm for name, alarm in alarms(drifting).items() if "Drift" in name}
    assert set(found) == {"CurrentDriftReviewLength", "CurrentDriftOovRate", "CurrentDriftProbabilityPositive"}
    length_mean = BASELINE["length"]["mean"]
    expected = {
        "CurrentDriftReviewLength": (f"IF(n >= 50, ABS(LOG(m / {length_mean!r})), 0)", m.log(2)),
        "CurrentDriftOovRate": (f"IF(n >= 50, m / {BASELINE['oov_rate']['mean'] * 100!r}, 0)", 2),
        "CurrentDriftProbabilityPositive": (f"IF(n >= 50, ABS(m - {BASELINE['probability']['mean']!r}), 0)", 0.15),
    }
    for name, alarm in found.items():
        expression, stats = parts(alarm)
        assert expression == expected[name][0] and alarm["Threshold"] == pytest.approx(expected[name][1])
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 3  # three hours in a row
        assert alarm["TreatMissingData"] == "notBreaching"
        assert {s["Stat"] for s in stats.values()} == {"Average", "SampleCount"}
        for stat in stats.values():
            assert stat["Period"] == 3600 and stat["Metric"]["Namespace"] == "ServerlessSentiment"
            assert dimensions(drifting, stat) == {"ModelVersion": MODEL_VERSION, "Variant": "current",
                                                  "service": "sentiment-api"}
        assert "python -m serving.drift" in alarm["AlarmDescription"]


def test_thresholds_come_from_context(tmp_path):
    folder = with_baseline(tmp_path / "a")
    synth = synthesize(tmp_path / "cdk.out", model_dir=str(folder), drift_length_factor=3, drift_oov_factor=1.5,
                       drift_probability_shift=0.2, drift_min_reviews=10, drift_hours=6)
    found = alarms(synth)
    assert found["CurrentDriftReviewLength"]["Threshold"] == pytest.approx(m.log(3))
    assert found["CurrentDriftOovRate"]["Threshold"] == 1.5
    assert found["CurrentDriftProbabilityPositive"]["Threshold"] == 0.2
    assert parts(found["CurrentDriftOovRate"])[0].startswith("IF(n >= 10,")
    assert found["CurrentDriftOovRate"]["EvaluationPeriods"] == 6


def test_the_dashboard_plots_each_measure_against_the_baseline(drifting):
    (dashboard,) = drifting.resources("AWS::CloudWatch::Dashboard").values()
    body = drifting.render(dashboard["Properties"]["DashboardBody"])
    widgets = {w["properties"].get("title"): w["properties"] for w in json.loads(body)["widgets"]}
    for title, mean in (("Review length (tokens), hourly mean", BASELINE["length"]["mean"]),
                        ("Out-of-vocabulary rate (%), hourly mean", BASELINE["oov_rate"]["mean"] * 100),
                        ("Probability of positive, hourly mean", BASELINE["probability"]["mean"])):
        graph = widgets[title]
        assert graph["annotations"]["horizontal"][0]["value"] == pytest.approx(mean)
        assert "baseline" in graph["annotations"]["horizontal"][0]["label"]
        assert any("ServerlessSentiment" in json.dumps(metric) for metric in graph["metrics"])


def test_a_model_without_a_baseline_gets_the_graphs_and_no_drift_alarm(serverless):
    assert not [name for name in alarms(serverless) if "Drift" in name]
