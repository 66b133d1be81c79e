"""The model registry: a SageMaker model package group holding one package per trained model.

A package records where the model is (``model.tar.gz`` and ``metrics.json`` in S3, under
``registry/<model_version>/`` of the training bucket), its metrics (``metrics.json`` as the
model-quality statistics), and as metadata its model version, featurizer fingerprint and
accuracies. It starts ``PendingManualApproval``; ``approve`` makes it ``Approved``, and
``fetch`` writes the newest approved one (or a named one) into a folder that ``npx cdk deploy -c
model_dir=DIR`` deploys as it is, so ``cdk synth`` needs no AWS access at all.

A package is named by its model version (``20261203T1200Z-1a2b3c4d``) or its number in the group.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from sentiment.artifacts import (
    ARCHIVE_FILE,
    DEPLOYED_FILES,
    METRICS_FILE,
    OPTIONAL_SERVED_FILES,
    SERVED_FILES,
    ModelFolder,
)
from training.jobs.aws import JobError, download

PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
Printer = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Package:
    arn: str
    number: int
    status: str
    created: Any
    metadata: dict[str, str]

    @property
    def model_version(self) -> str:
        return self.metadata.get("model_version", "?")


def ensure_group(sagemaker: Any, group: str, say: Printer = _print) -> None:
    """The group, created when missing (the training stack creates it; a plain account may not have it)."""
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except botocore.exceptions.ClientError as exc:
        if "does not exist" not in exc.response.get("Error", {}).get("Message", ""):
            raise
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group,
            ModelPackageGroupDescription="IMDB sentiment models (serverless-sentiment)")
        say(f"created model package group {group}")


def _accuracy(metrics: dict[str, Any], split: str) -> float | None:
    figures = metrics.get(split) or {}
    return figures.get("accuracy")


def _metadata(metrics: dict[str, Any], model_data: str, source: str) -> dict[str, str]:
    """CustomerMetadataProperties: strings of at most 256 characters (letters, digits, ``_.:/=+-@``)."""
    validation, test = _accuracy(metrics, "validation"), _accuracy(metrics, "test")
    values = {
        "model_version": metrics["model_version"],
        "featurizer_fingerprint": metrics["featurizer_fingerprint"],
        "model_kind": metrics.get("model_kind", ""),
        "validation_accuracy": "" if validation is None else f"{validation:.4f}",
        "test_accuracy": "" if test is None else f"{test:.4f}",
        "model_data": model_data,
        "source": source,
    }
    return {k: v[:256] for k, v in values.items() if v}


def register(sagemaker: Any, s3: Any, *, folder: Path, bucket: str, group: str, source: str,
             image: str | None = None, say: Printer = _print) -> Package:
    """Record the training output in ``folder`` as a new package pending approval."""
    model = ModelFolder.read(folder)  # the checks cdk synth makes: a package is deployable or refused
    metrics = json.loads((folder / METRICS_FILE).read_text())
    existing = [p for p in packages(sagemaker, group) if p.model_version == model.version]
    if existing:
        raise JobError(f"model {model.version} is registered already, as package {existing[0].number} "
                       f"({existing[0].status}) of {group}")
    prefix = f"registry/{model.version}"
    model_data, metrics_uri = f"s3://{bucket}/{prefix}/{ARCHIVE_FILE}", f"s3://{bucket}/{prefix}/{METRICS_FILE}"
    s3.upload_file(str(folder / ARCHIVE_FILE), bucket, f"{prefix}/{ARCHIVE_FILE}")
    s3.upload_file(str(folder / METRICS_FILE), bucket, f"{prefix}/{METRICS_FILE}",
                   ExtraArgs={"ContentType": "application/json"})
    ensure_group(sagemaker, group, say)
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"IMDB sentiment {metrics.get('model_kind', 'model')} {model.version}" + (
            "" if _accuracy(metrics, "validation") is None
            else f", validation accuracy {_accuracy(metrics, 'validation'):.2%}"),
        "ModelApprovalStatus": PENDING,
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}},
        "CustomerMetadataProperties": _metadata(metrics, model_data, source),
        "Tags": [{"Key": "project", "Value": "serverless-sentiment"}],
    }
    if image:
        # Deployable by SageMaker itself too: the model-server image (serving/) on this model.tar.gz.
        request["InferenceSpecification"] = {
            "Containers": [{"Image": image, "ModelDataUrl": model_data}],
            "SupportedContentTypes": ["application/json", "text/csv", "text/plain", "application/jsonlines"],
            "SupportedResponseMIMETypes": ["application/json"],
        }
    arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
    package = describe(sagemaker, arn)
    say(f"registered {model.version} as package {package.number} of {group}: {package.status}")
    return package


SERVING_STACK = "ServerlessSentiment"  # infra/stack.py; its ModelName output is the current SageMaker model


def deployed_serving_image(cloudformation: Any, sagemaker: Any) -> str | None:
    """The model-server image the deployed serving stack runs (its ModelName output's container), or None.

    ``register`` records it as the package's inference container when ``--serving-image`` is not given.
    """
    try:
        stacks = cloudformation.describe_stacks(StackName=SERVING_STACK)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in (stacks[0].get("Outputs", []) if stacks else [])}
        if "ModelName" not in outputs:
            return None
        model = sagemaker.describe_model(ModelName=outputs["ModelName"])
    except botocore.exceptions.ClientError:
        return None  # not deployed here, or not ours to read: the package goes without a container
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return container.get("Image")


def describe(sagemaker: Any, arn: str) -> Package:
    found = sagemaker.describe_model_package(ModelPackageName=arn)
    return Package(arn=found["ModelPackageArn"], number=int(found.get("ModelPackageVersion") or 0),
                   status=found.get("ModelApprovalStatus", "?"), created=found.get("CreationTime"),
                   metadata=dict(found.get("CustomerMetadataProperties") or {}))


def packages(sagemaker: Any, group: str, status: str | None = None) -> list[Package]:
    """The group's packages, newest first; [] when the group does not exist."""
    kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        kwargs["ModelApprovalStatus"] = status
    arns: list[str] = []
    try:
        for page in sagemaker.get_paginator("list_model_packages").paginate(**kwargs):
            arns.extend(s["ModelPackageArn"] for s in page.get("ModelPackageSummaryList", []))
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return []
        raise
    found = [describe(sagemaker, arn) for arn in arns]
    return sorted(found, key=lambda p: p.number, reverse=True)


def find(sagemaker: Any, group: str, name: str) -> Package:
    """The package named by its model version or its number in the group."""
    candidates = packages(sagemaker, group)
    for package in candidates:
        if name == package.model_version or (name.isdigit() and int(name) == package.number):
            return package
    known = ", ".join(f"{p.number} ({p.model_version})" for p in candidates) or "none"
    raise JobError(f"no package {name!r} in model package group {group}; it holds: {known}")


def set_status(sagemaker: Any, group: str, name: str, status: str, note: str | None = None,
               say: Printer = _print) -> Package:
    """Approve or reject a package; the transition is printed."""
    package = find(sagemaker, group, name)
    if package.status == status:
        say(f"package {package.number} ({package.model_version}) is {status} already")
        return package
    sagemaker.update_model_package(
        ModelPackageArn=package.arn, ModelApprovalStatus=status,
        ApprovalDescription=note or f"{status} with python -m training.jobs",
        # Unchanged; UpdateModelPackage keeps the metadata when this is absent, but moto (the tests'
        # SageMaker) clears it, so it is sent back as it is.
        CustomerMetadataProperties=package.metadata)
    updated = describe(sagemaker, package.arn)
    say(f"package {updated.number} ({updated.model_version}): {package.status} -> {updated.status}")
    return updated


def table(found: list[Package]) -> list[str]:
    """``list``'s lines: number, model version, status, accuracies, fingerprint, created."""
    rows = [("#", "model version", "status", "val acc", "test acc", "featurizer", "created")]
    for p in found:
        created = p.created.strftime("%Y-%m-%d %H:%M") if hasattr(p.created, "strftime") else str(p.created or "")
        rows.append((str(p.number), p.model_version, p.status, p.metadata.get("validation_accuracy", ""),
                     p.metadata.get("test_accuracy", ""), p.metadata.get("featurizer_fingerprint", "")[:12], created))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def fetch(sagemaker: Any, s3: Any, *, group: str, out: Path, name: str | None = None,
          say: Printer = _print) -> Package:
    """Write a package's model into ``out`` (model.onnx, featurizer.json, metrics.json, model.tar.gz).

    ``name`` None: the newest approved package. The folder passes the checks ``cdk synth`` makes.
    """
    if name is None:
        approved = packages(sagemaker, group, APPROVED)
        if not approved:
            raise JobError(f"no approved package in model package group {group}: "
                           "approve one with `python -m training.jobs approve VERSION`")
        package = approved[0]
    else:
        package = find(sagemaker, group, name)
    found = sagemaker.describe_model_package(ModelPackageName=package.arn)
    model_data = package.metadata.get("model_data") or found["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    metrics_uri = found["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    out.mkdir(parents=True, exist_ok=True)
    download(s3, model_data, out / ARCHIVE_FILE)
    download(s3, metrics_uri, out / METRICS_FILE)
    _extract(out / ARCHIVE_FILE, out, SERVED_FILES, OPTIONAL_SERVED_FILES)
    model = ModelFolder.read(out)
    if model.version != package.model_version:
        raise JobError(f"package {package.number} says model {package.model_version}, its files are {model.version}")
    say(f"fetched package {package.number} ({model.version}, {package.status}) into {out}/: "
        f"{', '.join(DEPLOYED_FILES)}; deploy it with: npx cdk deploy -c model_dir={out}")
    return package


def _extract(archive: Path, out: Path, names: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Extract ``names`` (and those of ``optional`` it holds) from ``archive``'s root, nothing else."""
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        missing = [n for n in names if n not in members]
        if missing:
            raise JobError(f"{archive} lacks {', '.join(missing)} at its root")
        for name in (*names, *(n for n in optional if n in members)):
            source = tar.extractfile(members[name])
            assert source is not None
            (out / name).write_bytes(source.read())


def unpack_job_output(archive: Path, out: Path) -> ModelFolder:
    """A training job's output ``model.tar.gz`` (its whole /opt/ml/model: training.train's output
    folder) unpacked into ``out``, checked as ``cdk synth`` checks a ``model_dir``."""
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            if member.isfile() and "/" not in name and not name.startswith("."):
                source = tar.extractfile(member)
                assert source is not None
                (out / name).write_bytes(source.read())
    return ModelFolder.read(out)


def register_job(sagemaker: Any, s3: Any, *, job: str, bucket: str, group: str, image: str | None = None,
                 say: Printer = _print) -> Package:
    """Register a finished training job's model (its output downloaded and unpacked on the way)."""
    described = sagemaker.describe_training_job(TrainingJobName=job)
    if described["TrainingJobStatus"] != "Completed":
        raise JobError(f"training job {job} is {described['TrainingJobStatus']}: only a completed job has a model")
    with tempfile.TemporaryDirectory(prefix="job-output-") as tmp:
        archive = download(s3, described["ModelArtifacts"]["S3ModelArtifacts"], Path(tmp) / "output.tar.gz")
        unpack_job_output(archive, Path(tmp) / "model")
        return register(sagemaker, s3, folder=Path(tmp) / "model", bucket=bucket, group=group,
                        source=f"training-job:{job}", image=image, say=say)
