"""Batch predictions over S3: SageMaker Batch Transform with the endpoint's own model, on demand.

CloudFormation has no resource for a transform job (it is a run, not a thing), so the stack
grants the model's role the S3 folders given as context and prints the exact
``aws sagemaker create-transform-job`` command, model name filled in, as an output. Each run
of that command is one job with its own name; the stack never starts one by itself.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Aws, Validations
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import Settings, s3_folder

# The server caps a request at 10,000 reviews; 1 MB of IMDB reviews (1.3 kB on average) is
# under 1,000 of them, while SageMaker's default mini-batch (6 MB) of short lines could pass it.
MAX_PAYLOAD_MB = 1


def _arn(bucket: str, key: str = "") -> str:
    return f"arn:{Aws.PARTITION}:s3:::{bucket}{'/' + key if key else ''}"


def _json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


class BatchTransform(Construct):
    """S3 access for a transform job of ``model_name`` from ``batch_input`` to ``batch_output``."""

    def __init__(self, scope: Construct, construct_id: str, *, role: iam.IRole, model_name: str,
                 settings: Settings) -> None:
        super().__init__(scope, construct_id)
        in_bucket, in_prefix = s3_folder(settings.batch_input)
        out_bucket, out_prefix = s3_folder(settings.batch_output)
        self.input_uri = f"s3://{in_bucket}/{in_prefix}"
        self.output_uri = f"s3://{out_bucket}/{out_prefix}"

        policy = iam.Policy(self, "Access", roles=[role], statements=[
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[_arn(in_bucket)],
                                conditions={"StringLike": {"s3:prefix": [f"{in_prefix}*"]}}),
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[_arn(in_bucket, f"{in_prefix}*")]),
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[_arn(out_bucket, f"{out_prefix}*")]),
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                         "logs:DescribeLogStreams"],
                resources=[f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                           "log-group:/aws/sagemaker/TransformJobs:*"]),
            # No resource-level permission exists for PutMetricData; the condition scopes it.
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"], resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TransformJobs"}}),
        ])
        Validations.of(policy).acknowledge(
            Acknowledgment(id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{in_bucket}/"
                              f"{in_prefix}*]",
                           reason="A transform job reads every file of its input folder (batch_input), "
                                  "whose names are the user's; read-only and limited to that folder."),
            Acknowledgment(id=f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{out_bucket}/"
                              f"{out_prefix}*]",
                           reason="A transform job writes <input file>.out per input file into its output "
                                  "folder (batch_output); write-only and limited to that folder."),
            Acknowledgment(id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
                              "<AWS::AccountId>:log-group:/aws/sagemaker/TransformJobs:*]",
                           reason="Each transform job logs to its own streams in SageMaker's fixed "
                                  "TransformJobs log group, named after the job at run time."),
            Acknowledgment(id="AwsSolutions-IAM5[Resource::*]",
                           reason="cloudwatch:PutMetricData accepts no resource ARN; a condition keeps "
                                  "it to the /aws/sagemaker/TransformJobs metric namespace."),
        )

        # One review per line in, one JSON document of predictions per mini-batch out, in order.
        self.command = " ".join([
            "aws sagemaker create-transform-job",
            f"--region {Aws.REGION}",
            '--transform-job-name "sentiment-$(date -u +%Y%m%d-%H%M%S)"',
            f"--model-name {model_name}",
            f"--batch-strategy MultiRecord --max-payload-in-mb {MAX_PAYLOAD_MB}",
            "--transform-input '" + _json({
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": self.input_uri}},
                "ContentType": "text/plain", "SplitType": "Line"}) + "'",
            "--transform-output '" + _json({
                "S3OutputPath": self.output_uri, "Accept": "application/json",
                "AssembleWith": "Line"}) + "'",
            "--transform-resources '" + _json({
                "InstanceType": settings.batch_instance_type, "InstanceCount": 1}) + "'",
        ])
