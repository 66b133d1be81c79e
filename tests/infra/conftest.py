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
from lambda_fn.featurizer import Featurizer, FeaturizerSettings  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_VERSION = "20261128T1810Z-3f2a9c1d"


def write_fake_artifacts(path: Path, *, version: str = MODEL_VERSION) -> Path:
    """A training output folder with the right names and a real (tiny) featurizer; no training."""
    path.mkdir(parents=True, exist_ok=True)
    featurizer = Featurizer(FeaturizerSettings(min_df=1)).fit(["a good film", "a bad film"])
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


def synthesize(outdir: Path, **context: Any) -> Synth:
    """Build and synthesize the app as app.py does (cdk-nag included), with cdk.json's context."""
    app = create_app(outdir=str(outdir), context=cdk_json_context(**context))
    app.synth()
    data = json.loads((outdir / f"{STACK_ID}.template.json").read_text())
    return Synth(app=app, outdir=outdir, json=data, template=Template.from_json(data))


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
    """The other branches at once: instance endpoint, demo teardown, pinned layer, reserved concurrency."""
    return synthesize(tmp_path_factory.mktemp("instance") / "cdk.out", model_dir=str(fake_artifacts),
                      endpoint_mode="instance", instance_type="ml.m5.large", instance_count="2",
                      max_instance_count="4", invocations_per_instance="150",
                      destroy_on_delete="true", powertools_layer_version="40",
                      lambda_reserved_concurrency="5")
