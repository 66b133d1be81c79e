"""The trained model in S3: the local training output, checked, then uploaded per model version."""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import IgnoreMode, RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from lambda_fn.featurizer import Featurizer, FeaturizerError

REQUIRED_FILES = ("model.onnx", "featurizer.json", "metrics.json", "model.tar.gz")
MODEL_ARCHIVE_MEMBERS = ("model.onnx", "featurizer.json")
VERSION_PATTERN = re.compile(r"\d{8}T\d{4}Z-[0-9a-f]{8}")
# Both bucket deployments use this, so they share one handler function. The AWS CLI copying a
# model of tens of MB gets a proportionate CPU share; 128 MB (the default) would crawl.
DEPLOYMENT_MEMORY_MB = 1024


class ArtifactsError(ValueError):
    """The training output folder is missing, incomplete or inconsistent."""


def _train_hint(path: Path) -> str:
    return (f"Train a model first: `make train` (or `python -m training --out {path}`), "
            f"or point `-c model_dir=...` at a training output folder.")


@dataclass(frozen=True)
class LocalArtifacts:
    """A checked training output folder and the identity of the model it holds."""

    path: Path
    model_version: str
    featurizer_fingerprint: str

    @classmethod
    def read(cls, path: Path) -> "LocalArtifacts":
        """Check ``path`` holds a complete, self-consistent artifact set; raise ArtifactsError if not.

        Catching a wrong folder here costs a second; catching it in SageMaker costs a
        20-minute failed endpoint creation and a rollback.
        """
        if not path.is_dir():
            raise ArtifactsError(f"model artifacts folder {path} does not exist. {_train_hint(path)}")
        missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
        if missing:
            raise ArtifactsError(
                f"model artifacts folder {path} is incomplete: missing {', '.join(missing)}. "
                f"{_train_hint(path)}")
        try:
            metrics = json.loads((path / "metrics.json").read_text())
            version, fingerprint = metrics["model_version"], metrics["featurizer_fingerprint"]
        except (ValueError, KeyError, TypeError) as err:
            raise ArtifactsError(f"{path / 'metrics.json'} must be JSON with model_version and "
                                 f"featurizer_fingerprint ({err!r}). {_train_hint(path)}") from None
        if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
            raise ArtifactsError(f"{path / 'metrics.json'}: model_version {version!r} is not of the "
                                 "form YYYYMMDDTHHMMZ-<8 hex digits>")
        try:
            actual = Featurizer.load(path / "featurizer.json").fingerprint
        except FeaturizerError as err:
            raise ArtifactsError(f"{path / 'featurizer.json'}: {err}") from None
        if actual != fingerprint:
            raise ArtifactsError(f"{path}: featurizer.json (fingerprint {actual[:12]}) is not the one "
                                 f"metrics.json was trained with ({str(fingerprint)[:12]}). "
                                 f"{_train_hint(path)}")
        try:
            with tarfile.open(path / "model.tar.gz", "r:gz") as archive:
                members = set(archive.getnames())
        except (tarfile.TarError, OSError) as err:
            raise ArtifactsError(f"{path / 'model.tar.gz'} is not a gzip tar archive: {err}") from None
        absent = [m for m in MODEL_ARCHIVE_MEMBERS if m not in members and f"./{m}" not in members]
        if absent:
            raise ArtifactsError(f"{path / 'model.tar.gz'} lacks {', '.join(absent)} at its root; "
                                 "SageMaker unpacks it into /opt/ml/model as is.")
        return cls(path=path, model_version=version, featurizer_fingerprint=fingerprint)


class ModelArtifacts(Construct):
    """The artifacts bucket, and the training output uploaded under ``models/<model_version>/``.

    Old versions stay in the bucket (the deployment retains them), so a stack update that
    replaces the endpoint never pulls the model out from under the endpoint still serving.
    """

    def __init__(self, scope: Construct, construct_id: str, *, artifacts: LocalArtifacts,
                 access_logs: s3.IBucket, destroy_on_delete: bool,
                 log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        self.model_version = artifacts.model_version
        self.prefix = f"models/{artifacts.model_version}/"

        self.bucket = s3.Bucket(
            self, "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts-bucket/",
            removal_policy=RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy_on_delete,
        )
        upload = s3deploy.BucketDeployment(
            self, "Upload",
            # Only the files serving needs; the allow-list keeps checkpoints and plots out.
            sources=[s3deploy.Source.asset(str(artifacts.path), ignore_mode=IgnoreMode.DOCKER,
                                           exclude=["*", *(f"!{name}" for name in REQUIRED_FILES)])],
            destination_bucket=self.bucket,
            destination_key_prefix=self.prefix,
            retain_on_delete=True,
            memory_limit=DEPLOYMENT_MEMORY_MB,
            log_group=logs.LogGroup(
                self, "UploadLogs", retention=log_retention,
                removal_policy=RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN),
        )
        # `deployed_bucket` makes whatever reads these objects wait for the upload to finish.
        deployed = upload.deployed_bucket
        self.deployed_bucket = deployed
        self.model_data_key = f"{self.prefix}model.tar.gz"
        self.featurizer_key = f"{self.prefix}featurizer.json"
        self.model_data_url = deployed.s3_url_for_object(self.model_data_key)
        self.featurizer_uri = deployed.s3_url_for_object(self.featurizer_key)
        self.featurizer_arn = deployed.arn_for_objects(self.featurizer_key)
        self.model_prefix_arn = deployed.arn_for_objects(f"{self.prefix}*")
        self.upload = upload
