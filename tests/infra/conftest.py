"""Shared fixtures for the CDK tests: a fake training output and two synthesized apps.

Synthesis goes through jsii (a Node.js process) and takes several seconds, so each app is
synthesized once per session and every test reads the same cloud assembly.
"""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Offline and quiet, as in the Makefile; set before aws_cdk starts its Node.js process.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
os.environ.setdefault("CDK_DISABLE_VERSION_CHECK", "1")

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra import create_app  # noqa: E402
from infra.stack import STACK_ID  # noqa: E402
from sentiment.featurizer import Featurizer, FeaturizerSettings  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_VERSION = "20261128T1810Z-3f2a9c1d"
CANDIDATE_VERSION = "20261201T0900Z-0badc0de"
TRAINING_TEXTS = ("a good film", "a bad film")


def write_fake_artifacts(path: Path, *, version: str = MODEL_VERSION,
                         texts: tuple[str, ...] = TRAINING_TEXTS) -> Path:
    """A training output folder with the right names and a real (tiny) featurizer; no training.

    The featurizer is fitted on ``texts``: the same texts give the same fingerprint.
    """
    path.mkdir(parents=True, exist_ok=True)
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(list(texts))
    featurizer.save(path / "featurizer.json")
    (path / "model.onnx").write_bytes(b"stand-in for an ONNX model")
    (path / "metrics.json").write_text(json.dumps({
        "model_version": version,
        "featurizer_fingerprint": featurizer.fingerprint,
        "validation": {"accuracy": 0.5},
        "test": {"accuracy": 0.5},
    }))
    with tarfile.open(path / "model.tar.gz", "w:gz") as archive:
        archive.add(path / "model.onnx", "model.onnx")
        archive.add(path / "featurizer.json", "featurizer.json")
    # Things a training run may leave that must not be uploaded.
    (path / "training_curves.png").write_bytes(b"\x89PNG stand-in")
    (path / "checkpoints").mkdir(exist_ok=True)
    (path / "checkpoints" / "epoch1.pt").write_bytes(b"stand-in checkpoint")
    return path


def cdk_json_context(**overrides: Any) -> dict[str, Any]:
    """The context `npx cdk` would pass (cdk.json, feature flags included) plus ``overrides``."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context.update(overrides)
    return context


@dataclass
class Synth:
    """One synthesized app: the template as JSON and as an assertions.Template, and its files."""

    app: App
    outdir: Path
    json: dict[str, Any]
    template: Template

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.json["Resources"].items() if r["Type"] == kind}

    def one(self, kind: str) -> dict[str, Any]:
        found = list(self.resources(kind).values())
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]

    def asset_dir(self, asset_hash: str) -> Path:
        return self.outdir / f"asset.{asset_hash}"

    @property
    def assets(self) -> dict[str, Any]:
        return json.loads((self.outdir / f"{STACK_ID}.assets.json").read_text())

    def logical_id(self, kind: str, path_part: str) -> str:
        """The one resource of ``kind`` whose logical id contains ``path_part``."""
        (found,) = [k for k in self.resources(kind) if path_part in k]
        return found

    def staged_upload(self, prefix: str) -> Path:
        """The local copy of the files a BucketDeployment uploads under ``prefix``."""
        (upload,) = [r["Properties"] for r in self.resources("Custom::CDKBucketDeployment").values()
                     if r["Properties"].get("DestinationBucketKeyPrefix") == prefix]
        (key,) = upload["SourceObjectKeys"]
        return self.asset_dir(key.removesuffix(".zip"))

    @staticmethod
    def render(value: Any) -> str:
        """A CloudFormation string as text: Fn::Join is joined, Ref and GetAtt become ${Name}."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(Synth.render(part) for part in parts)
        if isinstance(value, dict) and "Ref" in value:
            return "${%s}" % value["Ref"]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return "${%s}" % ".".join(value["Fn::GetAtt"])
        return "${%s}" % json.dumps(value, sort_keys=True)

    def policy_statements(self, policy_id: str) -> list[dict[str, Any]]:
        statements = self.json["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
        return statements if isinstance(statements, list) else [statements]


def synthesize(outdir: Path, **context: Any) -> Synth:
    """Build and synthesize the app as app.py does (cdk-nag included), with cdk.json's context."""
    app = create_app(outdir=str(outdir), context=cdk_json_context(**context))
    app.synth()
    data = json.loads((outdir / f"{STACK_ID}.template.json").read_text())
    return Synth(app=app, outdir=outdir, json=data, template=Template.from_json(data))


@pytest.fixture(scope="session")
def synthesize_with(fake_artifacts: Path, tmp_path_factory: pytest.TempPathFactory):
    """Synthesize the fake training output with some context keys of a test's own."""
    return lambda **context: synthesize(tmp_path_factory.mktemp("synth") / "cdk.out",
                                        model_dir=str(fake_artifacts), **context)


@pytest.fixture(scope="session")
def make_artifacts():
    """``write_fake_artifacts`` for tests that need a folder of their own to break."""
    return write_fake_artifacts


@pytest.fixture(scope="session")
def cdk_context():
    """``cdk_json_context`` for tests that build an app themselves."""
    return cdk_json_context


@pytest.fixture(scope="session")
def fake_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def serverless(fake_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default deployment: serverless endpoint, retained buckets and logs."""
    return synthesize(tmp_path_factory.mktemp("serverless") / "cdk.out", model_dir=str(fake_artifacts))


@pytest.fixture(scope="session")
def instance(fake_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The other branches at once: instance endpoint, demo teardown, pinned layer, reserved concurrency,
    no firewall, access logs kept for 30 days."""
    return synthesize(tmp_path_factory.mktemp("instance") / "cdk.out", model_dir=str(fake_artifacts),
                      endpoint_mode="instance", instance_type="ml.m5.large", instance_count="2",
                      max_instance_count="4", invocations_per_instance="150",
                      destroy_on_delete="true", powertools_layer_version="40",
                      lambda_reserved_concurrency="5", waf_enabled="false", access_log_retention_days="30")


@pytest.fixture(scope="session")
def candidate_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another training run with the same featurizer as ``fake_artifacts``: a valid candidate."""
    return write_fake_artifacts(tmp_path_factory.mktemp("candidate"), version=CANDIDATE_VERSION)


@pytest.fixture(scope="session")
def everything(fake_artifacts: Path, candidate_artifacts: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every optional feature at once: A/B variants, e-mailed alarms, data capture, batch, schedule;
    a firewall limit of 1000 requests per client and 5 minutes."""
    return synthesize(tmp_path_factory.mktemp("everything") / "cdk.out", model_dir=str(fake_artifacts),
                      endpoint_mode="instance", candidate_model_dir=str(candidate_artifacts),
                      candidate_weight="0.25", alarm_email="ops@example.com", data_capture_percent="20",
                      batch_input="s3://review-inbox/2026/reviews",
                      batch_output="s3://review-results/scored/",
                      active_hours="08-20", active_days="MON-FRI", active_timezone="Europe/Berlin",
                      waf_rate_limit="1000")
