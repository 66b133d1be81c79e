"""The drift report (python -m serving.drift) and its measures (sentiment.drift).

The end-to-end cases need the trained default model (artifacts/) and the IMDB data (IMDB_DATA, or
../shared/data/aclImdb_v1_labeled.tar.gz beside the repo); without them they skip.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment import drift
from serving.drift import measure_logs
from tests.support import REPO_ROOT

ARTIFACTS = REPO_ROOT / "artifacts"
DATA = Path(os.environ.get("IMDB_DATA", REPO_ROOT.parent / "shared" / "data" / "aclImdb_v1_labeled.tar.gz"))


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    edges = drift.BINS["probability"]
    same = drift.histogram([i / 1000 for i in range(1000)], edges)
    assert drift.psi(same, same) == 0 and drift.verdict(0.0) == "stable"
    skewed = drift.histogram([0.95] * 900 + [0.05] * 100, edges)
    assert drift.psi(same, skewed) > drift.SHIFTED and drift.verdict(drift.psi(same, skewed)) == "shifted"
    assert drift.verdict(0.15) == "moderate"
    assert drift.histogram([0.0, 1.0, 1.5, -1], edges) == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]  # ends take the rest
    assert drift.histogram([5000], drift.BINS["length"])[-1] == 1  # the open end
    with pytest.raises(ValueError):
        drift.psi([1, 2], [1, 2, 3])


def test_the_baseline_records_each_measure():
    baseline = drift.baseline([10, 200, 300], [0.0, 0.02, 0.5], [0.1, 0.6, 0.9], 0.5)
    assert baseline["n"] == 3 and baseline["positive_rate"] == pytest.approx(2 / 3)
    assert baseline["length"]["mean"] == 170 and baseline["length"]["edges"][-1] is None  # JSON holds no inf
    assert sum(baseline["oov_rate"]["counts"]) == 3 and baseline["probability"]["quantiles"]["p50"] == 0.6
    json.dumps(baseline, allow_nan=False)


def emf(version: str, lengths, oov_percents, probabilities, variant="AllTraffic") -> str:
    """A drift record as the function writes it (Powertools EphemeralMetrics, see lambda_fn.handler)."""
    return json.dumps({"_aws": {"Timestamp": 1796299766132, "CloudWatchMetrics": [{
        "Namespace": "ServerlessSentiment", "Dimensions": [["ModelVersion", "Variant", "service"]],
        "Metrics": [{"Name": "ReviewLength", "Unit": "Count"}, {"Name": "OovRate", "Unit": "Percent"},
                    {"Name": "ProbabilityPositive", "Unit": "None"}]}]},
        "ModelVersion": version, "Variant": variant, "service": "sentiment-api",
        "ReviewLength": lengths, "OovRate": oov_percents, "ProbabilityPositive": probabilities})


def test_the_function_s_log_records_are_read_whatever_the_export_wraps_them_in():
    lines = [
        emf("v1", [100.0, 20.0], [2.5, 0.0], [0.9, 0.2]),
        "2026-12-03T12:00:00.000Z\t" + emf("v1", [300.0], [5.0], [0.6]),  # a timestamp before it
        json.dumps({"timestamp": 1, "message": emf("v2", [50.0], [1.0], [0.4])}),  # filter-log-events JSON
        '{"level":"INFO","message":"request","status":200}',  # the request log line: not a drift record
        "START RequestId: 1 Version: $LATEST",
        emf("v1", [1.0, 2.0], [1.0], [0.5]),  # arrays that disagree: not the function's
    ]
    every = measure_logs(lines)
    assert every.length == [100.0, 20.0, 300.0, 50.0]
    assert every.oov_rate == [0.025, 0.0, 0.05, 0.01] and every.probability == [0.9, 0.2, 0.6, 0.4]
    assert measure_logs(lines, "v2").probability == [0.4]


def run_drift(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "serving.drift", "--model-dir", str(ARTIFACTS), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def imdb_slices(tmp_path_factory) -> tuple[Path, Path]:
    """2,000 held-out IMDB test reviews, and the first sentence of each (one-line reviews)."""
    if not (ARTIFACTS / "metrics.json").is_file() or not DATA.exists():
        pytest.skip("needs the trained default model in artifacts/ and the IMDB data")
    if "baseline" not in json.loads((ARTIFACTS / "metrics.json").read_text()):
        pytest.skip("artifacts/ was trained before drift baselines: retrain")
    from training.data import load_imdb

    sample = random.Random(0).sample(load_imdb(DATA).test.texts, 2000)
    folder = tmp_path_factory.mktemp("drift")
    held_out, one_line = folder / "held_out.jsonl", folder / "one_line.jsonl"
    held_out.write_text("".join(json.dumps({"review": t}) + "\n" for t in sample))
    first_sentences = [re.split(r"(?<=[.!?])\s", t.replace("<br />", " "), maxsplit=1)[0] for t in sample]
    one_line.write_text("".join(json.dumps({"review": t}) + "\n" for t in first_sentences))
    return held_out, one_line


def test_a_held_out_imdb_slice_is_not_flagged(imdb_slices, tmp_path):
    held_out, _ = imdb_slices
    done = run_drift("--input", str(held_out), "--plot", str(tmp_path / "p.png"), "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: no measure shifted" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n"] == 2000 and report["shifted"] == []
    assert all(m["verdict"] == "stable" for m in report["measures"].values())
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_line_reviews_are_flagged(imdb_slices, tmp_path):
    _, one_line = imdb_slices
    done = run_drift("--input", str(one_line), "--report", str(tmp_path / "r.json"), "--plot", str(tmp_path / "p.png"))
    assert done.returncode == 3, done.stdout + done.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert "length" in report["shifted"] and report["measures"]["length"]["psi"] > 1
    assert report["measures"]["length"]["mean"] < report["measures"]["length"]["baseline_mean"] / 5
    assert "SHIFTED (length" in done.stdout and (tmp_path / "p.png").stat().st_size > 10_000


def test_logs_of_the_baseline_s_own_distribution_are_stable_and_of_a_shift_are_flagged(tmp_path):
    if not (ARTIFACTS / "metrics.json").is_file():
        pytest.skip("needs the trained default model in artifacts/")
    baseline = json.loads((ARTIFACTS / "metrics.json").read_text()).get("baseline")
    if baseline is None:
        pytest.skip("artifacts/ was trained before drift baselines: retrain")
    rng = random.Random(1)

    def draw(measure: str, scale: float = 1.0) -> float:  # a value from the baseline's histogram
        edges, counts = drift.edges_of(baseline[measure]), baseline[measure]["counts"]
        i = rng.choices(range(len(counts)), counts)[0]
        high = edges[i + 1] if edges[i + 1] != float("inf") else edges[i] * 1.5
        return rng.uniform(edges[i], high) * scale

    same = [emf("v", [draw("length")], [100 * draw("oov_rate")], [draw("probability")]) for _ in range(3000)]
    (tmp_path / "same.log").write_text("\n".join(same) + "\n")
    shifted = [emf("v", [draw("length")], [100 * min(1.0, draw("oov_rate", 4))], [draw("probability")])
               for _ in range(3000)]
    (tmp_path / "shifted.log").write_text("\n".join(shifted) + "\n")
    assert run_drift("--input", str(tmp_path / "same.log"), "--format", "logs").returncode == 0
    flagged = run_drift("--input", str(tmp_path / "shifted.log"), "--format", "logs")
    assert flagged.returncode == 3 and "SHIFTED (oov_rate)" in flagged.stdout


def test_a_model_folder_without_a_baseline_is_refused(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"model_version": "x"}))
    (tmp_path / "in.txt").write_text("good\n")
    done = subprocess.run([sys.executable, "-m", "serving.drift", "--model-dir", str(tmp_path), "--input",
                           str(tmp_path / "in.txt")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "holds no drift baseline" in done.stderr


def test_data_capture_records_give_their_probabilities_only():
    import base64

    from serving.drift import compare, measure_capture

    def record(probabilities, encoding="JSON"):
        data = json.dumps({"predictions": [{"label": "positive", "probability_positive": p,
                                            "model_version": "v"} for p in probabilities]})
        if encoding == "BASE64":
            data = base64.b64encode(data.encode()).decode()
        return json.dumps({"captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                              "data": '{"fingerprint": "f", "instances": []}', "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": data,
                               "encoding": encoding}}, "eventMetadata": {"eventId": "1"}, "eventVersion": "0"})

    measured = measure_capture([record([0.9, 0.1]), record([0.6], "BASE64"), "not json", '{"captureData": {}}'])
    assert measured.probability == [0.9, 0.1, 0.6] and measured.length == [] and measured.oov_rate == []
    result = compare(drift.baseline([100, 200], [0.01, 0.02], [0.2, 0.8], 0.5), measured)
    assert set(result["measures"]) == {"probability"} and result["n"] == 3
