"""The optional training stack (infra/training_jobs.py): least privilege, cdk-nag and cfn-lint clean,
nothing of the serving stack changed, and a model fetched from the registry deploys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra import create_app
from infra.config import ConfigError
from infra.stack import STACK_ID
from infra.training_jobs import GROUP_NAME
from infra.training_jobs import STACK_ID as TRAINING_STACK
from infra.training_jobs import create_app as create_training_app

REPO_ROOT = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def cdk_context(**overrides: Any) -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"] | overrides


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], Path]:
    """`npx cdk synth --app "python -m infra.training_jobs"`: the training stack alone, no model needed."""
    outdir = tmp_path_factory.mktemp("training") / "cdk.out"
    app = create_training_app(outdir=str(outdir), context=cdk_context())
    app.synth()
    return app, json.loads((outdir / f"{TRAINING_STACK}.template.json").read_text()), outdir


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(render(part) for part in value["Fn::Join"][1])
    if isinstance(value, dict) and "Ref" in value:
        return "${%s}" % value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${%s}" % ".".join(value["Fn::GetAtt"])
    return json.dumps(value)


def test_cdk_nag_finds_nothing_unacknowledged(alone) -> None:
    app, _, _ = alone
    report = AwsSolutionsChecks().validate_scope(app)
    assert report.success and not report.violations, [v.rule_name for v in report.violations]


def test_cfn_lint_is_clean(alone) -> None:
    _, _, outdir = alone
    result = subprocess.run([str(CFN_LINT), "--format", "json", str(outdir / f"{TRAINING_STACK}.template.json")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_job_role_is_least_privilege(alone) -> None:
    _, template, _ = alone
    (role,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]

    granted: dict[str, set[str]] = {}
    for statement in statements(template):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, action  # no wildcard action
            for resource in as_list(statement["Resource"]):
                granted.setdefault(action, set()).add(render(resource))
        if statement["Resource"] == "*":
            assert set(as_list(statement["Action"])) <= {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
        if "cloudwatch:PutMetricData" in as_list(statement["Action"]):
            assert statement["Condition"]["StringLike"]["cloudwatch:namespace"]
    bucket = "${JobsBucket5EADC5CA.Arn}"
    assert granted["s3:GetObject"] == {f"{bucket}/input/*", f"{bucket}/code/*", f"{bucket}/checkpoints/*"}
    assert granted["s3:PutObject"] == {f"{bucket}/output/*", f"{bucket}/checkpoints/*"}
    assert granted["s3:ListBucket"] == {bucket}
    assert not {a for a in granted if a.startswith("s3:")} - {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    logs = {a: r for a, r in granted.items() if a.startswith("logs:")}
    assert all(all(":log-group:/aws/sagemaker/TrainingJobs:" in x for x in r) for r in logs.values())
    assert granted["ecr:BatchGetImage"] == {"arn:${AWS::Partition}:ecr:${AWS::Region}:763104351884:"
                                            "repository/pytorch-training"}
    assert not any(a.startswith(("sagemaker:", "iam:", "kms:")) for a in granted)


def test_the_bucket_is_private_and_logged(alone) -> None:
    _, template, _ = alone
    checked = Template.from_json(template)
    checked.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "LoggingConfiguration": {"LogFilePrefix": "jobs-bucket/"},
    })
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::S3::Bucket":
            assert resource["DeletionPolicy"] == "Retain"
    checked.has_resource_properties("AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": GROUP_NAME})
    assert set(template["Outputs"]) == {"TrainingRoleArn", "TrainingBucketName", "ModelPackageGroupName"}


def test_the_outputs_are_the_names_the_cli_reads() -> None:
    from training.jobs import aws

    source = (REPO_ROOT / "training" / "jobs" / "aws.py").read_text()
    assert aws.TRAINING_STACK == TRAINING_STACK and aws.DEFAULT_GROUP == GROUP_NAME
    for output in ("TrainingRoleArn", "TrainingBucketName", "ModelPackageGroupName"):
        assert f'"{output}"' in source


# -- the switch in the main app ----------------------------------------------------------------------
def test_the_switch_adds_the_stack_and_changes_nothing_of_the_serving_stack(fake_artifacts, tmp_path: Path) -> None:
    # Both synthesized here, back to back: the session's `serverless` fixture may predate an edit of
    # lambda_fn/ or serving/ made while the suite runs, which would change its asset hashes.
    templates = {}
    for switch in ("false", "true"):
        outdir = tmp_path / switch / "cdk.out"
        app = create_app(outdir=str(outdir), context=cdk_context(model_dir=str(fake_artifacts), training_jobs=switch))
        app.synth()
        templates[switch] = json.loads((outdir / f"{STACK_ID}.template.json").read_text())
        assert (outdir / f"{TRAINING_STACK}.template.json").is_file() == (switch == "true")
    assert templates["true"] == templates["false"]  # the serving stack, byte for byte the default one
    report = AwsSolutionsChecks().validate_scope(app)
    assert report.success and not report.violations


def test_by_default_there_is_no_training_stack(serverless) -> None:
    assert not (serverless.outdir / f"{TRAINING_STACK}.template.json").exists()
    assert TRAINING_STACK not in {c.node.id for c in serverless.app.node.children}


def test_a_bad_switch_value_names_the_key(fake_artifacts, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'training_jobs' is 'maybe'; expected true or false"):
        create_app(outdir=str(tmp_path), context=cdk_context(model_dir=str(fake_artifacts), training_jobs="maybe"))


# -- done when: a model fetched from the registry deploys with -c model_dir= ---------------------------
def test_a_model_fetched_from_the_registry_deploys(tmp_path: Path, monkeypatch) -> None:
    import boto3
    from moto import mock_aws

    from serving.model import Model
    from tests.support import MODEL_VERSION, write_tiny_model
    from training.jobs import cli

    version = MODEL_VERSION  # also in the tiny model.onnx's metadata: what the server answers with
    folder = write_tiny_model(tmp_path / "trained")
    metrics = json.loads((folder / "metrics.json").read_text()) | {
        "validation": {"accuracy": 0.9}, "test": {"accuracy": 0.89}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SENTIMENT_MODEL_GROUP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    fetched = tmp_path / "approved"
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="jobs")
        assert cli.main(["register", "--model-dir", str(folder), "--bucket", "jobs"]) == 0
        assert cli.main(["approve", version, "--bucket", "jobs"]) == 0
        assert cli.main(["fetch", "--approved", "--out", str(fetched), "--bucket", "jobs"]) == 0
    outdir = tmp_path / "cdk.out"
    create_app(outdir=str(outdir), context=cdk_context(model_dir=str(fetched))).synth()  # offline: no AWS call
    template = json.loads((outdir / f"{STACK_ID}.template.json").read_text())
    assert template["Outputs"]["ModelVersion"]["Value"] == version
    models = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    assert models and f"models/{version}/" in json.dumps(models)
    assert Model.load(fetched).version == version  # the model_version every prediction of the API carries
    # Deployed as the local stack deploys the template: the API's answers carry the fetched version.
    import requests

    from tests.support import LocalStack

    with LocalStack(outdir / f"{STACK_ID}.template.json", log_path=tmp_path / "stack.log") as stack:
        answer = requests.post(f"{stack.api_url}/predict", json={"review": "A wonderful film."}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["model_version"] == version


def test_the_real_cdk_cli_synthesizes_the_training_app_alone(tmp_path: Path) -> None:
    """README's command, `npx cdk synth --app ".venv/bin/python -m infra.training_jobs"`, offline."""
    import os
    import shutil

    if shutil.which("npx") is None or not (REPO_ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.skip("the pinned CDK CLI is not installed (make install)")
    env = os.environ | {"CDK_DISABLE_CLI_TELEMETRY": "true", "CDK_DISABLE_VERSION_CHECK": "1",
                        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    app = f"{sys.executable} -m infra.training_jobs"
    result = subprocess.run(["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "--app", app,
                             "-o", str(tmp_path / "cdk.out")], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "cdk.out" / f"{TRAINING_STACK}.template.json").is_file()
