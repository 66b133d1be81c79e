"""The one way this stack makes a bucket: private, S3-encrypted, SSL only; kept or deleted with the stack."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import CfnElement, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct


def logical_id(bucket: s3.IBucket) -> str:
    """The CloudFormation logical id of a bucket made in this app (cdk-nag's findings name it)."""
    return Stack.of(bucket).get_logical_id(cast(CfnElement, bucket.node.default_child))


def removal_policy(destroy_on_delete: bool) -> RemovalPolicy:
    """RETAIN by default; DESTROY for demos deployed with ``-c destroy_on_delete=true``."""
    return RemovalPolicy.DESTROY if destroy_on_delete else RemovalPolicy.RETAIN


def private_bucket(scope: Construct, construct_id: str, *, destroy_on_delete: bool, **props: Any) -> s3.Bucket:
    """A bucket no one reaches without IAM and TLS; ``props`` adds logging, versioning and the like."""
    return s3.Bucket(
        scope, construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        removal_policy=removal_policy(destroy_on_delete),
        auto_delete_objects=destroy_on_delete,
        **props,
    )
