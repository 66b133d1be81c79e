"""AWS access for the job commands: a checked session, one-line errors, the training stack's outputs, S3.

Every failure the user can fix is a ``JobError`` whose message is one line saying what to do;
the command line prints it and exits non-zero.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

TRAINING_STACK = "ServerlessSentimentTraining"  # infra/training_jobs.py
DEFAULT_GROUP = "serverless-sentiment"
ROLE_ENV, BUCKET_ENV, GROUP_ENV = "SENTIMENT_TRAINING_ROLE_ARN", "SENTIMENT_TRAINING_BUCKET", "SENTIMENT_MODEL_GROUP"
S3_URI = re.compile(r"s3://([^/]+)/(.*)")
NO_REGION = ("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or `region` in ~/.aws/config "
             "for your profile), or pass --region")
NO_CREDENTIALS = ("no AWS credentials: run `aws configure` or `aws sso login` (and set AWS_PROFILE), "
                  "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")


class JobError(RuntimeError):
    """Something the user can fix or must know, said in one line; the command exits with ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def session(region: str | None = None, profile: str | None = None) -> boto3.session.Session:
    """A boto3 session with a region and credentials, or a ``JobError`` saying what to set."""
    # botocore reads AWS_DEFAULT_REGION and the profile; AWS_REGION (what the AWS CLI v2 and Lambda set) too here.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        found = boto3.session.Session(region_name=region, profile_name=profile)
    except botocore.exceptions.ProfileNotFound as exc:
        raise JobError(f"{exc}: set AWS_PROFILE to a profile in ~/.aws/config, or unset it", 2) from None
    if not found.region_name:
        raise JobError(NO_REGION, 2)
    if found.get_credentials() is None:
        raise JobError(NO_CREDENTIALS, 2)
    return found


def explain(exc: Exception) -> JobError:
    """A botocore failure as one line: missing or expired credentials say what to do."""
    if isinstance(exc, (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)):
        return JobError(NO_CREDENTIALS, 2)
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return JobError(NO_REGION, 2)
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", str(exc))
        operation = getattr(exc, "operation_name", "the call")
        if code in ("ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"):
            return JobError(f"{operation}: {code}: {message}; renew your credentials (`aws sso login`, "
                            "or new AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN)", 2)
        return JobError(f"{operation} failed: {code}: {message}")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return JobError(f"AWS: {exc}")
    return JobError(str(exc))


@dataclass(frozen=True)
class Setup:
    """The role jobs run as, the bucket they read and write, and the model package group."""

    role_arn: str
    bucket: str
    group: str


def resolve_setup(cloudformation: Any, *, role_arn: str | None, bucket: str | None, group: str | None,
                  need_role: bool = True) -> Setup:
    """Flags, else environment variables, else the outputs of the training stack (infra/training_jobs.py)."""
    role_arn = role_arn or os.environ.get(ROLE_ENV)
    bucket = bucket or os.environ.get(BUCKET_ENV)
    group = group or os.environ.get(GROUP_ENV)
    if (need_role and not role_arn) or not bucket or not group:
        outputs = stack_outputs(cloudformation)
        role_arn = role_arn or outputs.get("TrainingRoleArn")
        bucket = bucket or outputs.get("TrainingBucketName")
        group = group or outputs.get("ModelPackageGroupName")
    missing = [what for what, value in (("--role-arn", role_arn if need_role else "-"), ("--bucket", bucket))
               if not value]
    if missing:
        raise JobError(f"no {' or '.join(missing)}: deploy the training stack once "
                       f"(npx cdk deploy {TRAINING_STACK} -c training_jobs=true, see README) "
                       f"or pass {' and '.join(missing)} (or set {ROLE_ENV} / {BUCKET_ENV})", 2)
    return Setup(role_arn or "", bucket or "", group or DEFAULT_GROUP)


def stack_outputs(cloudformation: Any) -> dict[str, str]:
    """The training stack's outputs, or {} when it is not deployed in this account and region."""
    try:
        stacks = cloudformation.describe_stacks(StackName=TRAINING_STACK)["Stacks"]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return {}
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])} if stacks else {}


def split_s3(uri: str) -> tuple[str, str]:
    match = S3_URI.fullmatch(uri)
    if not match:
        raise JobError(f"not an s3://bucket/key URI: {uri!r}", 2)
    return match.group(1), match.group(2)


def exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_once(s3: Any, path: Path, bucket: str, prefix: str) -> str:
    """Upload ``path`` under ``prefix/<sha256[:16]>/<name>`` unless that object is there already; its URI."""
    key = f"{prefix}/{sha256_file(path)[:16]}/{path.name}"
    if exists(s3, bucket, key):
        print(f"s3://{bucket}/{key} is there already (same sha256): not uploaded again", flush=True)
    else:
        print(f"uploading {path} ({path.stat().st_size / 1e6:.1f} MB) to s3://{bucket}/{key}", flush=True)
        s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def upload_bytes_once(s3: Any, data: bytes, digest: str, bucket: str, prefix: str, name: str) -> str:
    key = f"{prefix}/{digest[:16]}/{name}"
    if not exists(s3, bucket, key):
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def download(s3: Any, uri: str, target: Path) -> Path:
    bucket, key = split_s3(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(target))
    return target
