"""The model registry (`register`, `approve`, `reject`, `list`, `fetch`) against moto, and the one-line
errors for missing credentials or region.

moto 5.2 implements model package groups and packages (Create/Describe/List/UpdateModelPackage),
so every call here is answered by it and the packages are read back from it.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from sentiment.artifacts import DEPLOYED_FILES, OPTIONAL_SERVED_FILES, ModelFolder
from tests.support import MODEL_VERSION, write_tiny_model
from training.jobs import cli

REGION = "us-east-2"
BUCKET = "sentiment-registry-test"
GROUP = "serverless-sentiment"


def clear_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                 "SENTIMENT_TRAINING_ROLE_ARN", "SENTIMENT_TRAINING_BUCKET", "SENTIMENT_MODEL_GROUP",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup (no network)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    clear_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield boto3.client("sagemaker", region_name=REGION)


def model(folder: Path, version: str = MODEL_VERSION, accuracy: float = 0.9) -> Path:
    write_tiny_model(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics |= {"model_version": version, "model_kind": "linear",
                "validation": {"accuracy": accuracy, "loss": 0.25, "n": 2500}, "test": {"accuracy": accuracy - 0.01}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def run(*argv: str) -> int:
    return cli.main([*argv, "--bucket", BUCKET])


def test_register_creates_a_pending_package_with_metrics_and_metadata(aws, tmp_path: Path, capsys) -> None:
    folder = model(tmp_path / "m")
    assert run("register", "--model-dir", str(folder)) == 0
    assert aws.describe_model_package_group(ModelPackageGroupName=GROUP)["ModelPackageGroupName"] == GROUP
    (summary,) = aws.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    package = aws.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["ModelPackageVersion"] == 1
    fingerprint = ModelFolder.read(folder).featurizer_fingerprint
    metadata = package["CustomerMetadataProperties"]
    prefix = f"s3://{BUCKET}/registry/{MODEL_VERSION}"
    assert {k: v for k, v in metadata.items() if k != "source"} == {
        "model_version": MODEL_VERSION, "featurizer_fingerprint": fingerprint, "model_kind": "linear",
        "validation_accuracy": "0.9000", "test_accuracy": "0.8900", "model_data": f"{prefix}/model.tar.gz"}
    assert metadata["source"].startswith("local:/")
    assert package["ModelMetrics"] == {"ModelQuality": {"Statistics": {
        "ContentType": "application/json", "S3Uri": f"{prefix}/metrics.json"}}}
    s3 = boto3.client("s3", region_name=REGION)
    uploaded = s3.get_object(Bucket=BUCKET, Key=f"registry/{MODEL_VERSION}/metrics.json")
    assert json.loads(uploaded["Body"].read()) == json.loads((folder / "metrics.json").read_text())
    assert s3.get_object(Bucket=BUCKET, Key=f"registry/{MODEL_VERSION}/model.tar.gz")["Body"].read() == (
        folder / "model.tar.gz").read_bytes()
    assert "InferenceSpecification" not in package  # no image was named
    assert f"registered {MODEL_VERSION} as package 1 of {GROUP}: PendingManualApproval" in capsys.readouterr().out


def test_register_with_the_serving_image_records_the_inference_container(aws, tmp_path: Path) -> None:
    image = "123456789012.dkr.ecr.us-east-2.amazonaws.com/cdk-hnb659fds-container-assets:abc"
    assert run("register", "--model-dir", str(model(tmp_path / "m")), "--serving-image", image) == 0
    (summary,) = aws.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    spec = aws.describe_model_package(ModelPackageName=summary["ModelPackageArn"])["InferenceSpecification"]
    assert spec["Containers"] == [{"Image": image, "ModelDataUrl": f"s3://{BUCKET}/registry/{MODEL_VERSION}/model.tar.gz"}]
    assert "application/json" in spec["SupportedContentTypes"]


def test_a_version_is_registered_once(aws, tmp_path: Path, capsys) -> None:
    folder = model(tmp_path / "m")
    assert run("register", "--model-dir", str(folder)) == 0
    assert run("register", "--model-dir", str(folder)) == 1
    assert f"model {MODEL_VERSION} is registered already, as package 1" in capsys.readouterr().err


def test_an_incomplete_folder_is_refused(aws, tmp_path: Path, capsys) -> None:
    folder = model(tmp_path / "m")
    (folder / "metrics.json").unlink()
    assert run("register", "--model-dir", str(folder)) == 2
    assert "metrics.json not found" in capsys.readouterr().err
    assert aws.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_approval_transitions_and_list(aws, tmp_path: Path, capsys) -> None:
    first, second = "20261201T0900Z-0badc0de", "20261202T0900Z-1badc0de"
    assert run("register", "--model-dir", str(model(tmp_path / "a", first, 0.91))) == 0
    assert run("register", "--model-dir", str(model(tmp_path / "b", second, 0.92))) == 0
    capsys.readouterr()

    assert run("approve", first) == 0
    assert f"package 1 ({first}): PendingManualApproval -> Approved" in capsys.readouterr().out
    assert run("reject", "2", "--note", "worse on the held-out set") == 0
    assert f"package 2 ({second}): PendingManualApproval -> Rejected" in capsys.readouterr().out
    statuses = {s["ModelPackageVersion"]: s["ModelApprovalStatus"]
                for s in aws.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]}
    assert statuses == {1: "Approved", 2: "Rejected"}
    (rejected,) = [s for s in aws.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
                   if s["ModelPackageVersion"] == 2]
    assert aws.describe_model_package(ModelPackageName=rejected["ModelPackageArn"])["ApprovalDescription"] == (
        "worse on the held-out set")
    assert run("approve", second) == 0
    assert f"package 2 ({second}): Rejected -> Approved" in capsys.readouterr().out
    assert run("approve", second) == 0
    assert "is Approved already" in capsys.readouterr().out

    assert run("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["#", "model", "version", "status", "val", "acc", "test", "acc", "featurizer", "created"]
    assert lines[1].split()[:5] == ["2", second, "Approved", "0.9200", "0.9100"]
    assert lines[2].split()[:5] == ["1", first, "Approved", "0.9100", "0.9000"]
    assert run("list", "--status", "PendingManualApproval") == 0
    assert "holds no package PendingManualApproval" in capsys.readouterr().out


def test_an_unknown_version_names_the_known_ones(aws, tmp_path: Path, capsys) -> None:
    assert run("register", "--model-dir", str(model(tmp_path / "m"))) == 0
    assert run("approve", "20990101T0000Z-00000000") == 1
    assert f"it holds: 1 ({MODEL_VERSION})" in capsys.readouterr().err


def test_fetch_approved_writes_a_folder_cdk_deploys(aws, tmp_path: Path, capsys) -> None:
    old, new, pending = "20261201T0900Z-0badc0de", "20261202T0900Z-1badc0de", "20261203T0900Z-2badc0de"
    for version in (old, new, pending):
        assert run("register", "--model-dir", str(model(tmp_path / version, version))) == 0
    assert run("approve", old) == 0 and run("approve", new) == 0
    out = tmp_path / "approved"
    assert run("fetch", "--approved", "--out", str(out)) == 0
    assert ModelFolder.read(out).version == new  # the newest approved, not the newer pending one
    assert set(DEPLOYED_FILES) <= {p.name for p in out.iterdir()} <= set(DEPLOYED_FILES) | set(OPTIONAL_SERVED_FILES)
    assert f"deploy it with: npx cdk deploy -c model_dir={out}" in capsys.readouterr().out
    assert run("fetch", old, "--out", str(tmp_path / "old")) == 0
    assert ModelFolder.read(tmp_path / "old").version == old


def test_fetch_with_nothing_approved_says_how_to_approve(aws, tmp_path: Path, capsys) -> None:
    assert run("register", "--model-dir", str(model(tmp_path / "m"))) == 0
    assert run("fetch", "--approved", "--out", str(tmp_path / "x")) == 1
    assert "approve one with `python -m training.jobs approve VERSION`" in capsys.readouterr().err


def test_register_a_finished_job(aws, tmp_path: Path) -> None:
    folder = model(tmp_path / "m")
    (folder / "model.pt").write_bytes(b"checkpoint stand-in")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for path in sorted(folder.iterdir()):
            archive.add(path, path.name)
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="output/sentiment-j/output/model.tar.gz",
                                                      Body=raw.getvalue())
    aws.create_training_job(
        TrainingJobName="sentiment-j", RoleArn="arn:aws:iam::123456789012:role/r",
        AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 60})
    assert run("register", "--job", "sentiment-j") == 0
    (summary,) = aws.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    metadata = aws.describe_model_package(ModelPackageName=summary["ModelPackageArn"])["CustomerMetadataProperties"]
    assert metadata["source"] == "training-job:sentiment-j" and metadata["model_version"] == MODEL_VERSION


# -- credentials and region ------------------------------------------------------------------------
COMMANDS = [["train", "--data", "x.tar.gz"], ["tune", "--data", "x.tar.gz"], ["list"], ["approve", "1"],
            ["fetch", "--approved"], ["register", "--model-dir", "m"], ["stop", "j"], ["watch", "j"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_no_region_is_one_line_saying_what_to_set(argv, monkeypatch, tmp_path: Path, capsys) -> None:
    clear_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no AWS region: set AWS_REGION")


@pytest.mark.parametrize("argv", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_no_credentials_is_one_line_saying_what_to_set(argv, monkeypatch, tmp_path: Path, capsys) -> None:
    clear_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_REGION", REGION)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no AWS credentials: run `aws configure` or `aws sso login`" in err


def test_an_unknown_profile_is_one_line(monkeypatch, tmp_path: Path, capsys) -> None:
    clear_aws_environment(monkeypatch, tmp_path)
    assert cli.main(["list", "--profile", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuch" in err and "AWS_PROFILE" in err


def test_expired_credentials_say_to_renew_them() -> None:
    from botocore.exceptions import ClientError

    from training.jobs.aws import explain

    error = explain(ClientError({"Error": {"Code": "ExpiredToken", "Message": "The security token included in "
                                           "the request is expired"}}, "CreateTrainingJob"))
    assert error.code == 2 and "renew your credentials" in str(error) and "CreateTrainingJob" in str(error)


@pytest.mark.parametrize("command", ["train", "tune", "watch", "stop", "register", "approve", "reject", "list",
                                     "fetch"])
def test_every_command_has_help(command, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: python -m training.jobs {command}") and "--region" in text


def test_register_records_the_deployed_serving_image_by_default(aws, tmp_path: Path) -> None:
    """The ServerlessSentiment stack's ModelName output names the SageMaker model whose image serves."""
    image = "123456789012.dkr.ecr.us-east-2.amazonaws.com/cdk-hnb659fds-container-assets-123456789012-us-east-2:f00d"
    aws.create_model(ModelName="sentiment-current", ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
                     PrimaryContainer={"Image": image, "ModelDataUrl": "s3://artifacts/models/v/model.tar.gz"})
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"ModelName": {"Value": "sentiment-current"}}}
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName="ServerlessSentiment",
                                                                    TemplateBody=json.dumps(template))
    assert run("register", "--model-dir", str(model(tmp_path / "m"))) == 0
    (summary,) = aws.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    spec = aws.describe_model_package(ModelPackageName=summary["ModelPackageArn"])["InferenceSpecification"]
    assert spec["Containers"][0]["Image"] == image
