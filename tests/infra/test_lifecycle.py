"""The deployment lifecycle in the template: versions, A/B variants, data capture, batch, schedule, teardown.

`everything` is one synth with every optional feature on (see conftest); `serverless` and
`instance` are the two plain modes. Errors that stop synth are tested without synthesizing.
"""

from __future__ import annotations

import json
import re
import shlex
import tarfile
from pathlib import Path

import pytest

from infra import create_app
from sentiment.artifacts import ArtifactError
from sentiment.featurizer import Featurizer

MODEL_VERSION = "20261128T1810Z-3f2a9c1d"  # conftest's fake training output
CANDIDATE_VERSION = "20261201T0900Z-0badc0de"  # conftest's candidate, same featurizer
VARIANT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # SageMaker's pattern


def variants(synth) -> dict[str, dict]:
    config = synth.one("AWS::SageMaker::EndpointConfig")["Properties"]
    return {v["VariantName"]: v for v in config["ProductionVariants"]}


def model_of(synth, variant: dict) -> dict:
    """The AWS::SageMaker::Model a production variant serves."""
    model_id = variant["ModelName"]["Fn::GetAtt"][0]
    return synth.json["Resources"][model_id]["Properties"]


def predict_function_env(synth) -> dict:
    (function,) = [f["Properties"] for f in synth.resources("AWS::Lambda::Function").values()
                   if f["Properties"].get("Handler") == "lambda_fn.handler.lambda_handler"]
    return function["Environment"]["Variables"]


def archived_fingerprint(archive: Path) -> str:
    with tarfile.open(archive, "r:gz") as tar:
        return Featurizer.from_json(tar.extractfile("featurizer.json").read()).fingerprint


# --- Versions ------------------------------------------------------------------------------------

def test_each_version_is_uploaded_under_its_own_prefix_and_kept(everything) -> None:
    for version in (MODEL_VERSION, CANDIDATE_VERSION):
        staged = everything.staged_upload(f"models/{version}/")
        assert json.loads((staged / "metrics.json").read_text())["model_version"] == version
    uploads = [r["Properties"] for r in everything.resources("Custom::CDKBucketDeployment").values()
               if r["Properties"].get("DestinationBucketKeyPrefix", "").startswith("models/")]
    assert len(uploads) == 2
    # A later deploy of another version (or a cdk destroy) leaves these objects in place.
    assert all(upload["RetainOnDelete"] is True for upload in uploads)


def test_outputs_name_the_versions_and_the_model(serverless, everything) -> None:
    assert serverless.json["Outputs"]["ModelVersion"]["Value"] == MODEL_VERSION
    assert "CandidateModelVersion" not in serverless.json["Outputs"]
    outputs = everything.json["Outputs"]
    assert outputs["ModelVersion"]["Value"] == MODEL_VERSION
    assert outputs["CandidateModelVersion"]["Value"] == CANDIDATE_VERSION
    assert "0.75" in outputs["ModelVersion"]["Description"]
    assert "0.25" in outputs["CandidateModelVersion"]["Description"]
    current_model = variants(everything)["current"]["ModelName"]
    assert outputs["ModelName"]["Value"] == current_model


# --- Routing between variants ----------------------------------------------------------------------

def test_one_variant_named_current_without_a_candidate(serverless, instance) -> None:
    assert list(variants(serverless)) == ["current"]
    assert variants(instance)["current"]["InitialVariantWeight"] == 1


def test_candidate_gets_its_own_model_and_its_share_of_requests(everything) -> None:
    found = variants(everything)
    assert list(found) == ["current", "candidate"]
    assert all(VARIANT_NAME.fullmatch(name) for name in found)
    assert found["current"]["InitialVariantWeight"] == 0.75
    assert found["candidate"]["InitialVariantWeight"] == 0.25
    current, candidate = model_of(everything, found["current"]), model_of(everything, found["candidate"])
    assert current["PrimaryContainer"]["Image"] == candidate["PrimaryContainer"]["Image"]  # one image
    assert everything.render(current["PrimaryContainer"]["ModelDataUrl"]).endswith(
        f"/models/{MODEL_VERSION}/model.tar.gz")
    assert everything.render(candidate["PrimaryContainer"]["ModelDataUrl"]).endswith(
        f"/models/{CANDIDATE_VERSION}/model.tar.gz")
    # The candidate starts at one instance: it answers a share of the requests.
    assert (found["current"]["InitialInstanceCount"], found["candidate"]["InitialInstanceCount"]) == (1, 1)


def test_sagemaker_role_reads_both_model_archives_only(everything) -> None:
    role_policy = everything.logical_id("AWS::IAM::Policy", "SentimentEndpointExecutionRole")
    (reads,) = [s for s in everything.policy_statements(role_policy) if s["Action"] == "s3:GetObject"]
    assert sorted(everything.render(r).split("}")[-1] for r in reads["Resource"]) == [
        f"/models/{MODEL_VERSION}/model.tar.gz", f"/models/{CANDIDATE_VERSION}/model.tar.gz"]


def test_each_variant_scales_on_its_own(everything) -> None:
    targets = {everything.render(t["Properties"]["ResourceId"]).rsplit("/", 1)[-1]: t["Properties"]
               for t in everything.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()}
    assert set(targets) == {"current", "candidate"}
    policies = everything.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    scaled = {p["Properties"]["ScalingTargetId"]["Ref"] for p in policies}
    assert len(scaled) == 2  # a target-tracking policy per variant


def test_a_request_is_never_scored_with_another_models_vocabulary(everything) -> None:
    """Follow the bytes: the featurizer the function loads is the one inside every variant's model.

    The function featurizes each request with FEATURIZER_URI and cannot choose the variant
    that answers; each variant's server refuses requests featurized by another featurizer.
    """
    uri = everything.render(predict_function_env(everything)["FEATURIZER_URI"])
    assert uri.startswith("s3://") and uri.endswith(f"/models/{MODEL_VERSION}/featurizer.json")
    loaded = Featurizer.load(everything.staged_upload(f"models/{MODEL_VERSION}/") / "featurizer.json")
    for name, variant in variants(everything).items():
        url = everything.render(model_of(everything, variant)["PrimaryContainer"]["ModelDataUrl"])
        prefix = url[url.index("/models/") + 1:].removesuffix("model.tar.gz")
        served = archived_fingerprint(everything.staged_upload(prefix) / "model.tar.gz")
        assert served == loaded.fingerprint, name


def test_a_candidate_with_another_featurizer_stops_synth(fake_artifacts, make_artifacts, cdk_context,
                                                         tmp_path: Path) -> None:
    other = make_artifacts(tmp_path / "retrained", version=CANDIDATE_VERSION,
                           texts=("an entirely new vocabulary", "of other words"))
    current_fp = Featurizer.load(fake_artifacts / "featurizer.json").fingerprint
    other_fp = Featurizer.load(other / "featurizer.json").fingerprint
    assert current_fp != other_fp
    with pytest.raises(ArtifactError) as err:
        create_app(outdir=str(tmp_path / "cdk.out"), context=cdk_context(
            model_dir=str(fake_artifacts), endpoint_mode="instance", candidate_model_dir=str(other)))
    message = str(err.value)
    assert current_fp in message and other_fp in message
    assert "Retrain the candidate with the current featurizer" in message
    assert f"promote it alone: cdk deploy -c model_dir={other}" in message
    assert not (tmp_path / "cdk.out" / "ServerlessSentiment.template.json").exists()


def test_the_current_model_as_its_own_candidate_is_refused(fake_artifacts, cdk_context, tmp_path) -> None:
    with pytest.raises(ArtifactError, match="holds the current model itself"):
        create_app(outdir=str(tmp_path / "cdk.out"), context=cdk_context(
            model_dir=str(fake_artifacts), endpoint_mode="instance", candidate_model_dir=str(fake_artifacts)))


def test_changing_mode_or_instance_type_replaces_the_endpoint(serverless, instance, everything) -> None:
    """SageMaker cannot update instance → serverless, nor an autoscaled variant's instance type."""
    ids = [next(iter(s.resources("AWS::SageMaker::Endpoint"))) for s in (serverless, instance, everything)]
    assert len(set(ids)) == 3
    assert "mlm5large" in ids[1] and "mlc5large" in ids[2]


# --- Data capture ------------------------------------------------------------------------------------

def test_data_capture_is_off_by_default(serverless, instance) -> None:
    for synth in (serverless, instance):
        assert "DataCaptureConfig" not in synth.one("AWS::SageMaker::EndpointConfig")["Properties"]
        assert "DataCaptureUri" not in synth.json["Outputs"]


def test_data_capture_samples_requests_and_responses_into_the_artifacts_bucket(everything) -> None:
    capture = everything.one("AWS::SageMaker::EndpointConfig")["Properties"]["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 20
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert capture["CaptureContentTypeHeader"]["JsonContentTypes"] == ["application/json"]
    bucket = everything.logical_id("AWS::S3::Bucket", "ModelArtifactsBucket")
    assert everything.render(capture["DestinationS3Uri"]) == f"s3://${{{bucket}}}/datacapture"
    role_policy = everything.logical_id("AWS::IAM::Policy", "SentimentEndpointExecutionRole")
    writes = [s for s in everything.policy_statements(role_policy)
              if "s3:PutObject" in json.dumps(s["Action"])]
    assert [(w["Action"], everything.render(w["Resource"])) for w in writes] == [
        ("s3:PutObject", f"${{{bucket}.Arn}}/datacapture/*")]


# --- Batch Transform ---------------------------------------------------------------------------------

def test_no_batch_permissions_without_batch_folders(serverless, instance) -> None:
    for synth in (serverless, instance):
        assert "BatchTransformCommand" not in synth.json["Outputs"]
        assert not [k for k in synth.resources("AWS::IAM::Policy") if "BatchTransform" in k]


def test_batch_command_runs_the_current_model_on_raw_text(everything) -> None:
    command = everything.render(everything.json["Outputs"]["BatchTransformCommand"]["Value"])
    args = shlex.split(command.replace("$(date -u +%Y%m%d-%H%M%S)", "20261128-181000"))
    assert args[:3] == ["aws", "sagemaker", "create-transform-job"]
    options = dict(zip(args[3::2], args[4::2]))
    model_id = variants(everything)["current"]["ModelName"]["Fn::GetAtt"][0]
    assert options["--model-name"] == f"${{{model_id}.ModelName}}"
    assert options["--region"] == "${AWS::Region}"
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", options["--transform-job-name"])
    assert options["--batch-strategy"] == "MultiRecord"
    assert int(options["--max-payload-in-mb"]) <= 6  # the server's body limit
    source = json.loads(options["--transform-input"])
    assert source == {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                      "S3Uri": "s3://review-inbox/2026/reviews/"}},
                      "ContentType": "text/plain", "SplitType": "Line"}
    output = json.loads(options["--transform-output"])
    assert output == {"S3OutputPath": "s3://review-results/scored/", "Accept": "application/json",
                      "AssembleWith": "Line"}
    assert json.loads(options["--transform-resources"]) == {"InstanceType": "ml.m5.large", "InstanceCount": 1}


def test_batch_role_reads_the_input_folder_and_writes_the_output_folder(everything) -> None:
    policy_id = everything.logical_id("AWS::IAM::Policy", "BatchTransformAccess")
    role_id = everything.logical_id("AWS::IAM::Role", "SentimentEndpointExecutionRole")
    assert everything.json["Resources"][policy_id]["Properties"]["Roles"] == [{"Ref": role_id}]
    grants = {s["Action"]: (everything.render(s["Resource"]), s.get("Condition"))
              for s in everything.policy_statements(policy_id) if isinstance(s["Action"], str)}
    prefix = "arn:${AWS::Partition}:s3:::"
    assert grants["s3:ListBucket"] == (f"{prefix}review-inbox",
                                       {"StringLike": {"s3:prefix": ["2026/reviews/*"]}})
    assert grants["s3:GetObject"] == (f"{prefix}review-inbox/2026/reviews/*", None)
    assert grants["s3:PutObject"] == (f"{prefix}review-results/scored/*", None)
    assert grants["cloudwatch:PutMetricData"] == (
        "*", {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TransformJobs"}})


# --- Cost control: the active-hours schedule -------------------------------------------------------

def test_no_schedule_by_default(instance) -> None:
    (target,) = instance.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert "ScheduledActions" not in target["Properties"]


def test_outside_active_hours_every_variant_shrinks_to_one_instance(everything) -> None:
    for target in everything.resources("AWS::ApplicationAutoScaling::ScalableTarget").values():
        actions = {a["ScheduledActionName"]: a for a in target["Properties"]["ScheduledActions"]}
        assert set(actions) == {"ActiveHoursStart", "ActiveHoursEnd"}
        start, end = actions["ActiveHoursStart"], actions["ActiveHoursEnd"]
        assert start["Schedule"] == "cron(0 8 ? * MON-FRI *)"
        assert end["Schedule"] == "cron(0 20 ? * MON-FRI *)"
        assert start["Timezone"] == end["Timezone"] == "Europe/Berlin"
        props = target["Properties"]
        assert start["ScalableTargetAction"] == {"MinCapacity": props["MinCapacity"],
                                                 "MaxCapacity": props["MaxCapacity"]}
        # A real-time instance variant cannot go below one instance (no inference components).
        assert end["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 1}


# --- Cost control: what `cdk destroy` leaves behind --------------------------------------------------

# The account-wide API Gateway logging role and setting: shared by every REST API of the
# account and region, free of charge, and kept by aws-cdk-lib whatever the removal policy.
ACCOUNT_WIDE = {"AWS::ApiGateway::Account", "AWS::IAM::Role"}


@pytest.mark.parametrize("fixture, policy", [("serverless", "Retain"), ("instance", "Delete")])
def test_deletion_policies_follow_destroy_on_delete(request, fixture: str, policy: str) -> None:
    synth = request.getfixturevalue(fixture)
    for kind in ("AWS::S3::Bucket", "AWS::Logs::LogGroup"):
        found = synth.resources(kind)
        assert found, kind
        for name, resource in found.items():
            assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (policy, policy), name
    auto_deleted = {r["Properties"]["BucketName"]["Ref"]
                    for r in synth.resources("Custom::S3AutoDeleteObjects").values()}
    assert auto_deleted == (set(synth.resources("AWS::S3::Bucket")) if policy == "Delete" else set())
    if policy == "Delete":  # nothing else is kept either
        kept = {r["Type"] for r in synth.json["Resources"].values() if r.get("DeletionPolicy") == "Retain"}
        assert kept <= ACCOUNT_WIDE
