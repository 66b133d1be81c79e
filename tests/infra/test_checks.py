"""The template's checkers: cdk-nag (AwsSolutions), cfn-lint, and the real CDK CLI, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from infra import create_app
from infra.stack import STACK_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
OFFLINE_ENV = {
    **os.environ,
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "CDK_DISABLE_VERSION_CHECK": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}


def describe(report) -> str:
    return "\n".join(f"{v.rule_name} at {', '.join(r.construct_path for r in v.violating_resources)}"
                     for v in report.violations)


# --- cdk-nag -----------------------------------------------------------------------------------

def test_no_unacknowledged_aws_solutions_findings(serverless, instance, everything) -> None:
    for synth in (serverless, instance, everything):
        report = AwsSolutionsChecks().validate_scope(synth.app)
        assert report.success and not report.violations, describe(report)


def test_every_acknowledgment_has_a_specific_reason(serverless, instance, everything) -> None:
    acknowledged = {}
    for synth in (serverless, instance, everything):
        for construct in synth.app.node.find_all():
            for entry in construct.node.metadata:
                if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    for rule, reason in entry.data.items():
                        acknowledged[(construct.node.path, rule)] = reason
    assert len(acknowledged) >= 15
    for (path, rule), reason in acknowledged.items():
        assert rule.removeprefix("Annotation::").startswith("AwsSolutions-"), (path, rule)
        assert len(reason) >= 40, f"{path} {rule}: reason too vague: {reason!r}"
    assert len(set(acknowledged.values())) >= 15, "reasons are copied, not specific"


def test_synth_fails_on_a_new_finding(fake_artifacts, cdk_context, tmp_path: Path) -> None:
    """The check is wired into the app itself: `cdk synth` stops on anything not acknowledged."""
    app = create_app(outdir=str(tmp_path / "cdk.out"), context=cdk_context(model_dir=str(fake_artifacts)))
    s3.Bucket(app.node.find_child(STACK_ID), "Careless")  # no SSL enforcement, no access logs
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "cdk.out" / "validation-report.json").read_text())
    found = {(v["ruleName"], c["constructPath"]) for plugin in report["pluginReports"]
             for v in plugin["violations"] for c in v["violatingConstructs"]}
    assert found == {("AwsSolutions-S1", f"{STACK_ID}/Careless/Resource"),
                     ("AwsSolutions-S10", f"{STACK_ID}/Careless/Resource")}


# --- cfn-lint ----------------------------------------------------------------------------------

def cfn_lint(template: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CFN_LINT), "--format", "json", str(template)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cfn_lint_is_clean_with_the_repo_config(serverless, instance, everything) -> None:
    for synth in (serverless, instance, everything):
        result = cfn_lint(synth.outdir / f"{STACK_ID}.template.json", cwd=REPO_ROOT)  # reads .cfnlintrc
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout) == []


def test_cfn_lint_ignores_only_the_rule_named_in_cfnlintrc(serverless, instance, everything,
                                                          tmp_path: Path) -> None:
    assert "- W3005" in (REPO_ROOT / ".cfnlintrc").read_text()
    for synth in (serverless, instance, everything):
        result = cfn_lint(synth.outdir / f"{STACK_ID}.template.json", cwd=tmp_path)  # no config here
        rules = {finding["Rule"]["Id"] for finding in json.loads(result.stdout)}
        assert rules <= {"W3005"}, result.stdout  # no error, and no other warning left unreviewed


# --- the CDK CLI -------------------------------------------------------------------------------

def cdk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["npx", "--no-install", "cdk", *args, "--no-notices"], cwd=REPO_ROOT,
                          env=OFFLINE_ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cdk_cli_synth_writes_the_template(fake_artifacts, tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    result = cdk("synth", "--quiet", "-c", f"model_dir={fake_artifacts}", "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((out / f"{STACK_ID}.template.json").read_text())
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {
        "AWS::S3::Bucket", "Custom::CDKBucketDeployment", "AWS::IAM::Role",
        "AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint",
        "AWS::Lambda::Function", "AWS::Logs::LogGroup",
        "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Method", "AWS::ApiGateway::Stage",
        "AWS::CloudFront::Distribution", "AWS::CloudFront::OriginAccessControl",
        "AWS::CloudFront::ResponseHeadersPolicy",
    } <= kinds
    assert {"ApiUrl", "WebsiteUrl", "EndpointName", "ArtifactsBucketName"} <= set(template["Outputs"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"][STACK_ID]["type"] == "aws:cloudformation:stack"


@pytest.mark.slow
def test_cdk_cli_synth_without_artifacts_says_to_train(tmp_path: Path) -> None:
    result = cdk("synth", "--quiet", "-c", f"model_dir={tmp_path / 'nothing'}", "-o", str(tmp_path / "out"))
    assert result.returncode != 0
    assert "does not exist" in result.stderr and "make train" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
