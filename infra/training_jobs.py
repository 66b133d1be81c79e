"""The optional stack for SageMaker training and tuning jobs (``python -m training.jobs``).

    npx cdk deploy ServerlessSentimentTraining -c training_jobs=true        # with the app (needs a model_dir)
    npx cdk deploy --app ".venv/bin/python -m infra.training_jobs"          # alone: no model needed yet

It holds a bucket for the jobs (``input/`` the IMDB archive, ``code/`` the source archives,
``output/`` the jobs' models, ``checkpoints/`` spot checkpoints, ``registry/`` registered
models), the role the jobs run as, and the model package group of the registry. The role may
read ``input/`` and ``code/``, write ``output/``, read and write ``checkpoints/``, write its own
log streams and SageMaker's training metrics, and pull AWS's PyTorch training image; nothing
else (no ``*`` action; ``*`` resources only where AWS allows no other: ECR's authorization token
and PutMetricData, the latter limited to SageMaker's namespaces). ``registry/`` is written by the
person registering, with their own credentials.

``training_jobs`` (context, default false) is read here, never by ``infra.config.Settings``: with
it unset the app and the serving stack's template are exactly what they were.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from aws_cdk import Acknowledgment, App, ArnFormat, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config import ConfigError
from infra.storage import logical_id, private_bucket, removal_policy

STACK_ID = "ServerlessSentimentTraining"
CONTEXT_KEY = "training_jobs"
GROUP_NAME = "serverless-sentiment"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# AWS Deep Learning Containers' registry in most regions (training/jobs/requests.py's image).
DLC_ACCOUNT = "763104351884"
DLC_REPOSITORY = "pytorch-training"
READ_PREFIXES = ("input", "code")
WRITE_PREFIXES = ("output",)
READ_WRITE_PREFIXES = ("checkpoints",)


class TrainingJobsStack(Stack):
    """Bucket, job role and model package group for ``python -m training.jobs``."""

    def __init__(self, scope: Construct, construct_id: str = STACK_ID, *, destroy_on_delete: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = private_bucket(
            self, "AccessLogs", destroy_on_delete=destroy_on_delete,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,  # log delivery by ACL without the policy flag
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(90))])
        Validations.of(access_logs).acknowledge(Acknowledgment(
            id="AwsSolutions-S1",
            reason="This is the training bucket's access-log bucket; logging it into itself would loop."))
        self.bucket = private_bucket(
            self, "JobsBucket", destroy_on_delete=destroy_on_delete, versioned=False,
            server_access_logs_bucket=access_logs, server_access_logs_prefix="jobs-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireCheckpoints", prefix="checkpoints/", expiration=Duration.days(7)),
                s3.LifecycleRule(id="AbortUploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
            ])

        self.role = iam.Role(
            self, "JobRole",
            description="Runs python -m training.jobs' SageMaker training and tuning jobs",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com", conditions={
                # Only SageMaker acting for this account may assume it (the confused-deputy guard).
                "StringEquals": {"aws:SourceAccount": self.account},
                "ArnLike": {"aws:SourceArn": self.format_arn(service="sagemaker", resource="*")},
            }),
            max_session_duration=Duration.hours(12))
        self._grant(self.role)
        group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup", model_package_group_name=GROUP_NAME,
            model_package_group_description="IMDB sentiment models registered by python -m training.jobs")
        group.apply_removal_policy(removal_policy(destroy_on_delete))

        CfnOutput(self, "TrainingRoleArn", value=self.role.role_arn,
                  description="python -m training.jobs --role-arn (read from here when not given)")
        CfnOutput(self, "TrainingBucketName", value=self.bucket.bucket_name,
                  description="python -m training.jobs --bucket: input/, code/, output/, checkpoints/, registry/")
        CfnOutput(self, "ModelPackageGroupName", value=GROUP_NAME, description="The model registry's group")

    def _grant(self, role: iam.Role) -> None:
        bucket, colon = self.bucket.bucket_arn, ArnFormat.COLON_RESOURCE_NAME
        statements = [
            iam.PolicyStatement(sid="ReadInputAndCode", actions=["s3:GetObject"],
                                resources=[f"{bucket}/{p}/*" for p in READ_PREFIXES]),
            iam.PolicyStatement(sid="WriteOutput", actions=["s3:PutObject"],
                                resources=[f"{bucket}/{p}/*" for p in WRITE_PREFIXES]),
            iam.PolicyStatement(sid="SyncCheckpoints", actions=["s3:GetObject", "s3:PutObject"],
                                resources=[f"{bucket}/{p}/*" for p in READ_WRITE_PREFIXES]),
            iam.PolicyStatement(
                sid="ListOwnPrefixes", actions=["s3:ListBucket"], resources=[bucket],
                conditions={"StringLike": {"s3:prefix": [f"{p}/*" for p in (*READ_PREFIXES, *READ_WRITE_PREFIXES)]}}),
            iam.PolicyStatement(
                sid="JobLogs", actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[self.format_arn(service="logs", resource="log-group", arn_format=colon,
                                           resource_name=f"{LOG_GROUP}:*")]),
            iam.PolicyStatement(
                sid="JobLogStreams", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.format_arn(service="logs", resource="log-group", arn_format=colon,
                                           resource_name=f"{LOG_GROUP}:log-stream:*")]),
            iam.PolicyStatement(
                sid="TrainingMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}}),
            iam.PolicyStatement(sid="EcrToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="PullTrainingImage",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[self.format_arn(service="ecr", account=DLC_ACCOUNT, resource="repository",
                                           resource_name=DLC_REPOSITORY)]),
        ]
        policy = iam.Policy(self, "JobPolicy", statements=statements)
        policy.attach_to_role(role)
        bucket_id = logical_id(self.bucket)
        reasons = {
            **{f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{p}/*]":
               f"The jobs read, write or sync objects under the {p}/ prefix only, whose keys are made per run "
               f"(sha256 or job name); the prefix is the narrowest fixed scope." for p in
               (*READ_PREFIXES, *WRITE_PREFIXES, *READ_WRITE_PREFIXES)},
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"{LOG_GROUP}:*]": "SageMaker writes every training job's log into this one log group; the * is the "
                               "group's own streams, not other groups.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"{LOG_GROUP}:log-stream:*]": "Each job creates its own streams (<job>/algo-N-<time>), named at run "
                                          "time, inside SageMaker's training log group only.",
            "AwsSolutions-IAM5[Resource::*]": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData take no "
                                              "resource ARN; PutMetricData is limited to SageMaker's namespaces "
                                              "by condition.",
        }
        Validations.of(policy).acknowledge(*(Acknowledgment(id=rule, reason=text) for rule, text in reasons.items()))


def enabled(context: Mapping[str, Any]) -> bool:
    """``-c training_jobs=true|false`` (default false); anything else fails synth naming the key."""
    raw = context.get(CONTEXT_KEY)
    if raw is None or raw == "" or raw is False:
        return False
    if raw is True or str(raw).lower() in ("true", "1", "yes"):
        return True
    if str(raw).lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"context key {CONTEXT_KEY!r} is {raw!r}; expected true or false")


def _flag(context: Mapping[str, Any], key: str) -> bool:
    raw = context.get(key)
    return raw is True or str(raw).lower() == "true"


def add_training_stack(app: App) -> dict[str, Any]:
    """Add the training stack when ``-c training_jobs=true``; the context without this module's key.

    ``infra.stack.create_app`` passes what this returns to ``Settings.from_context``, which refuses
    keys it does not know.
    """
    context = dict(app.node.get_all_context())
    if enabled(context):
        TrainingJobsStack(app, STACK_ID, destroy_on_delete=_flag(context, "destroy_on_delete"),
                          description="Serverless sentiment: bucket, role and model registry for SageMaker "
                                      "training and tuning jobs.")
    context.pop(CONTEXT_KEY, None)
    return context


def create_app(**app_kwargs: Any) -> App:
    """An app holding the training stack alone, checked by cdk-nag like the main app."""
    from cdk_nag import AwsSolutionsChecks

    app = App(**app_kwargs)
    TrainingJobsStack(app, STACK_ID, destroy_on_delete=_flag(app.node.get_all_context(), "destroy_on_delete"),
                      description="Serverless sentiment: bucket, role and model registry for SageMaker "
                                  "training and tuning jobs.")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    try:
        application = create_app()
    except ConfigError as err:
        sys.exit(f"error: {err}")
    application.synth()
