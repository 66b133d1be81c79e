"""The trained model in S3: the local training output, checked, then uploaded per model version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.storage import private_bucket, removal_policy
from sentiment.artifacts import ARCHIVE_FILE, DEPLOYED_FILES, FEATURIZER_FILE, ArtifactError, ModelFolder

# Both bucket deployments use this, so they share one handler function. The AWS CLI copying a
# model of tens of MB gets a proportionate CPU share; 128 MB (the default) would crawl.
DEPLOYMENT_MEMORY_MB = 1024


def _train_hint(path: Path) -> str:
    return (f"Train a model first: `make train` (or `python -m training --out {path}`), "
            f"or point `-c model_dir=...` at a training output folder.")


def read_training_output(path: Path) -> ModelFolder:
    """The model folder to deploy, every deployed file checked (ArtifactError if not).

    Catching a wrong folder here costs a second; catching it in SageMaker costs a 20-minute
    failed endpoint creation and a rollback.
    """
    return ModelFolder.read(path, DEPLOYED_FILES, hint=_train_hint(path))


def check_candidate(current: ModelFolder, candidate: ModelFolder) -> None:
    """Refuse a candidate that cannot serve next to the current model.

    The Lambda featurizes every request with one featurizer, the current model's, and a
    server refuses (409) requests featurized by any other: so both variants must have been
    trained with the same featurizer, or the candidate's share of requests would all fail.
    """
    if candidate.model_version == current.model_version:
        raise ArtifactError(f"candidate_model_dir {candidate.path} holds the current model itself "
                            f"(version {current.model_version}); point it at another training run.")
    if candidate.featurizer_fingerprint != current.featurizer_fingerprint:
        raise ArtifactError(
            f"the candidate model {candidate.model_version} ({candidate.path}) was trained with "
            f"featurizer {candidate.featurizer_fingerprint}, the current model "
            f"{current.model_version} ({current.path}) with featurizer {current.featurizer_fingerprint}. "
            "The API featurizes every request with the current model's featurizer, so the "
            "candidate would refuse all of its traffic. Retrain the candidate with the current "
            f"featurizer ({current.path / FEATURIZER_FILE}), or promote it alone: "
            f"cdk deploy -c model_dir={candidate.path}")


@dataclass(frozen=True)
class UploadedModel:
    """One model version in the bucket: where SageMaker and the Lambda find its files.

    Every location is read from the upload's ``deployed_bucket``, so whatever uses it waits
    for the upload to finish.
    """

    version: str
    prefix: str
    model_data_url: str
    model_data_arn: str
    featurizer_uri: str
    featurizer_arn: str
    upload: s3deploy.BucketDeployment


class ModelArtifacts(Construct):
    """The artifacts bucket, and each training output uploaded under ``models/<model_version>/``.

    Old versions stay in the bucket (uploads are retained), so a stack update that replaces
    the endpoint never pulls the model out from under the endpoint still serving, and rolling
    back is deploying an older folder again (or downloading it from its prefix first).
    """

    def __init__(self, scope: Construct, construct_id: str, *, artifacts: ModelFolder,
                 access_logs: s3.IBucket, destroy_on_delete: bool,
                 log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(destroy_on_delete)
        self.bucket = private_bucket(
            self, "Bucket", destroy_on_delete=destroy_on_delete,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts-bucket/",
        )
        self._upload_logs = logs.LogGroup(self, "UploadLogs", retention=log_retention,
                                          removal_policy=removal)
        self.current = self._upload("Upload", artifacts)

    def add_candidate(self, artifacts: ModelFolder) -> UploadedModel:
        """Upload a second version, served next to the current one as the candidate variant."""
        return self._upload("CandidateUpload", artifacts)

    def _upload(self, construct_id: str, artifacts: ModelFolder) -> UploadedModel:
        prefix = f"models/{artifacts.version}/"
        upload = s3deploy.BucketDeployment(
            self, construct_id,
            # Only the files serving needs; the allow-list keeps checkpoints and plots out.
            sources=[s3deploy.Source.asset(str(artifacts.path), ignore_mode=IgnoreMode.DOCKER,
                                           exclude=["*", *(f"!{name}" for name in DEPLOYED_FILES)])],
            destination_bucket=self.bucket,
            destination_key_prefix=prefix,
            retain_on_delete=True,
            memory_limit=DEPLOYMENT_MEMORY_MB,
            log_group=self._upload_logs,
        )
        # `deployed_bucket` makes whatever reads these objects wait for the upload to finish.
        deployed = upload.deployed_bucket
        return UploadedModel(
            version=artifacts.version,
            prefix=prefix,
            model_data_url=deployed.s3_url_for_object(f"{prefix}{ARCHIVE_FILE}"),
            model_data_arn=deployed.arn_for_objects(f"{prefix}{ARCHIVE_FILE}"),
            featurizer_uri=deployed.s3_url_for_object(f"{prefix}{FEATURIZER_FILE}"),
            featurizer_arn=deployed.arn_for_objects(f"{prefix}{FEATURIZER_FILE}"),
            upload=upload,
        )
