"""The trained model in S3: the local training output, checked, then uploaded per model version."""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.storage import private_bucket, removal_policy
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
        packed = _archived_featurizer(path / "model.tar.gz").fingerprint
        if packed != fingerprint:
            raise ArtifactsError(f"{path / 'model.tar.gz'} holds a featurizer (fingerprint {packed[:12]}) "
                                 f"other than featurizer.json ({fingerprint[:12]}): the server would "
                                 f"refuse every request. {_train_hint(path)}")
        return cls(path=path, model_version=version, featurizer_fingerprint=fingerprint)

    def check_candidate(self, candidate: "LocalArtifacts") -> None:
        """Refuse a candidate that cannot serve next to this (current) model.

        The Lambda featurizes every request with one featurizer, the current model's, and a
        server refuses (409) requests featurized by any other: so both variants must have been
        trained with the same featurizer, or the candidate's share of requests would all fail.
        """
        if candidate.model_version == self.model_version:
            raise ArtifactsError(f"candidate_model_dir {candidate.path} holds the current model itself "
                                 f"(version {self.model_version}); point it at another training run.")
        if candidate.featurizer_fingerprint != self.featurizer_fingerprint:
            raise ArtifactsError(
                f"the candidate model {candidate.model_version} ({candidate.path}) was trained with "
                f"featurizer {candidate.featurizer_fingerprint}, the current model "
                f"{self.model_version} ({self.path}) with featurizer {self.featurizer_fingerprint}. "
                "The API featurizes every request with the current model's featurizer, so the "
                "candidate would refuse all of its traffic. Retrain the candidate with the current "
                f"featurizer ({self.path / 'featurizer.json'}), or promote it alone: "
                f"cdk deploy -c model_dir={candidate.path}")


def _archived_featurizer(archive_path: Path) -> Featurizer:
    """The featurizer inside model.tar.gz: the one the model server actually loads."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            members = {name.removeprefix("./"): name for name in archive.getnames()}
            absent = [m for m in MODEL_ARCHIVE_MEMBERS if m not in members]
            if absent:
                raise ArtifactsError(f"{archive_path} lacks {', '.join(absent)} at its root; "
                                     "SageMaker unpacks it into /opt/ml/model as is.")
            data = archive.extractfile(members["featurizer.json"])
            return Featurizer.from_json(data.read() if data is not None else b"")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ArtifactsError(f"{archive_path} is not a gzip tar archive: {err}") from None
    except FeaturizerError as err:
        raise ArtifactsError(f"{archive_path}: its featurizer.json: {err}") from None


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

    def __init__(self, scope: Construct, construct_id: str, *, artifacts: LocalArtifacts,
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

    def add_candidate(self, artifacts: LocalArtifacts) -> UploadedModel:
        """Upload a second version, served next to the current one as the candidate variant."""
        return self._upload("CandidateUpload", artifacts)

    def _upload(self, construct_id: str, artifacts: LocalArtifacts) -> UploadedModel:
        prefix = f"models/{artifacts.model_version}/"
        upload = s3deploy.BucketDeployment(
            self, construct_id,
            # Only the files serving needs; the allow-list keeps checkpoints and plots out.
            sources=[s3deploy.Source.asset(str(artifacts.path), ignore_mode=IgnoreMode.DOCKER,
                                           exclude=["*", *(f"!{name}" for name in REQUIRED_FILES)])],
            destination_bucket=self.bucket,
            destination_key_prefix=prefix,
            retain_on_delete=True,
            memory_limit=DEPLOYMENT_MEMORY_MB,
            log_group=self._upload_logs,
        )
        # `deployed_bucket` makes whatever reads these objects wait for the upload to finish.
        deployed = upload.deployed_bucket
        return UploadedModel(
            version=artifacts.model_version,
            prefix=prefix,
            model_data_url=deployed.s3_url_for_object(f"{prefix}model.tar.gz"),
            model_data_arn=deployed.arn_for_objects(f"{prefix}model.tar.gz"),
            featurizer_uri=deployed.s3_url_for_object(f"{prefix}featurizer.json"),
            featurizer_arn=deployed.arn_for_objects(f"{prefix}featurizer.json"),
            upload=upload,
        )
