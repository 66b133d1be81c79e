"""The whole service in one stack: model artifacts → SageMaker endpoint → Lambda + API → website."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, App, CfnOutput, DefaultStackSynthesizer, Duration, Stack, Validations
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.api import PredictApi
from infra.artifacts import ModelArtifacts, check_candidate, read_training_output
from infra.batch_transform import BatchTransform
from infra.config import Settings
from infra.endpoint import CANDIDATE, CURRENT, SentimentEndpoint, Variant
from infra.monitoring import DriftBaseline, Monitoring
from infra.storage import logical_id, private_bucket
from infra.training_jobs import add_training_stack
from infra.website import Website

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_ID = "ServerlessSentiment"


class SentimentStack(Stack):
    """Every resource of the service; settings come from CDK context (see infra/config.py)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings,
                 repo_root: Path = REPO_ROOT, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        artifacts = read_training_output(_resolve(repo_root, settings.model_dir))
        candidate = None
        if settings.candidate_model_dir is not None:
            candidate = read_training_output(_resolve(repo_root, settings.candidate_model_dir))
            check_candidate(artifacts, candidate)  # one featurizer for both, or no synth

        # Server access logs of both buckets and CloudFront's standard logs land here, and expire
        # after access_log_retention_days. CloudFront's standard logging writes with ACLs, hence
        # object-writer ownership.
        access_logs = private_bucket(
            self, "AccessLogs", destroy_on_delete=settings.destroy_on_delete,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(
                id="ExpireAccessLogs", expiration=Duration.days(settings.access_log_retention_days))],
        )
        Validations.of(access_logs).acknowledge(Acknowledgment(
            id="AwsSolutions-S1",
            reason="This is the access-log bucket itself; logging it into itself would loop."))

        model = ModelArtifacts(self, "ModelArtifacts", artifacts=artifacts, access_logs=access_logs,
                               destroy_on_delete=settings.destroy_on_delete,
                               log_retention=settings.log_retention)
        variants = [Variant(CURRENT, model.current, round(1 - settings.candidate_share, 6))]
        if candidate is not None:
            variants.append(Variant(CANDIDATE, model.add_candidate(candidate), settings.candidate_share))
        endpoint = SentimentEndpoint(self, "SentimentEndpoint", repo_root=repo_root, variants=variants,
                                     settings=settings, bucket=model.bucket)
        # The function featurizes with the current model's featurizer; the candidate was checked
        # above to share it, so whichever variant answers scores the vocabulary it was trained on.
        api = PredictApi(self, "PredictApi", repo_root=repo_root, settings=settings,
                         endpoint_name=endpoint.endpoint_name, endpoint_arn=endpoint.endpoint_arn,
                         featurizer_uri=model.current.featurizer_uri,
                         featurizer_arn=model.current.featurizer_arn)
        website = Website(self, "Website", web_dir=repo_root / "web", access_logs=access_logs,
                          api_origin=api.origin, destroy_on_delete=settings.destroy_on_delete)
        api.allow_origin(website.origin)
        website.publish(api.url, settings.log_retention)
        drift = [DriftBaseline.of(CURRENT, artifacts)]
        if candidate is not None:
            drift.append(DriftBaseline.of(CANDIDATE, candidate))
        monitoring = Monitoring(self, "Monitoring", settings=settings, api=api.api, function=api.function,
                                endpoint_name=endpoint.endpoint_name, variants=endpoint.variants, drift=drift)
        self._acknowledge_cdk_handlers(buckets=[model.bucket, website.bucket])

        CfnOutput(self, "ApiUrl", value=api.url, description="POST {ApiUrl}predict with {\"review\": ...}")
        CfnOutput(self, "WebsiteUrl", value=website.origin, description="The demo page")
        CfnOutput(self, "EndpointName", value=endpoint.endpoint_name, description="SageMaker endpoint")
        CfnOutput(self, "ArtifactsBucketName", value=model.bucket.bucket_name,
                  description=f"Model artifacts; this deployment serves {model.current.prefix}")
        CfnOutput(self, "ModelVersion", value=artifacts.version,
                  description=f"Served by the {CURRENT!r} variant ({variants[0].weight:g} of requests)")
        CfnOutput(self, "ModelName", value=endpoint.models[CURRENT].attr_model_name,
                  description="The current SageMaker model, for Batch Transform jobs")
        if candidate is not None:
            CfnOutput(self, "CandidateModelVersion", value=candidate.version,
                      description=f"Served by the {CANDIDATE!r} variant ({variants[1].weight:g} of requests)")
        CfnOutput(self, "DashboardUrl", value=monitoring.dashboard_url, description="CloudWatch dashboard")
        if monitoring.topic is not None:
            CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn,
                      description="Alarm notifications; confirm the e-mail subscription once")
        if endpoint.data_capture_uri is not None:
            CfnOutput(self, "DataCaptureUri", value=endpoint.data_capture_uri,
                      description=f"{settings.data_capture_percent}% of requests and responses, "
                                  "per endpoint/variant/yyyy/mm/dd/hh")
        if settings.batch:
            batch = BatchTransform(self, "BatchTransform", role=endpoint.role,
                                   model_name=endpoint.models[CURRENT].attr_model_name, settings=settings)
            CfnOutput(self, "BatchTransformCommand", value=batch.command,
                      description=f"Scores every line of {batch.input_uri} into {batch.output_uri}")

    def _acknowledge_cdk_handlers(self, buckets: list[s3.Bucket]) -> None:
        """Acknowledge the findings on functions that aws-cdk-lib adds at stack level.

        BucketDeployment's handler copies the uploaded assets into our buckets; its role and
        runtime are chosen by aws-cdk-lib, not by this stack, and are acknowledged one by one.
        """
        qualifier = DefaultStackSynthesizer.DEFAULT_QUALIFIER
        handler_acks = [
            ("AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
             "AWSLambdaBasicExecutionRole]",
             "CDK's BucketDeployment handler writes its own logs through this managed policy."),
            ("AwsSolutions-L1",
             "The BucketDeployment handler's runtime is pinned by aws-cdk-lib to match its bundled AWS CLI."),
            *((f"AwsSolutions-IAM5[Action::{action}]",
               "Granted by CDK's BucketDeployment (grantRead of the CDK asset bucket, grantReadWrite "
               "of the destination bucket) to copy and prune objects; scoped to those buckets.")
              for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*",
                             "s3:Abort*")),
            (f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-{qualifier}-assets-"
             "<AWS::AccountId>-<AWS::Region>/*]",
             "Read access to the objects of CDK's bootstrap asset bucket, where the uploads are staged."),
            *((f"AwsSolutions-IAM5[Resource::<{logical_id(bucket)}.Arn>/*]",
               f"The deployment writes the objects of {bucket.node.path.split('/')[-2]}'s bucket, its destination.")
              for bucket in buckets),
        ]
        for child in self.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                Validations.of(child).acknowledge(
                    *(Acknowledgment(id=rule, reason=reason) for rule, reason in handler_acks))


def _resolve(repo_root: Path, folder: str) -> Path:
    """A training output folder given as context: absolute, or relative to the repo root."""
    path = Path(folder)
    return path if path.is_absolute() else repo_root / path


def create_app(**app_kwargs) -> App:
    """The CDK app: one stack, checked by cdk-nag's AwsSolutions rules during synth.

    Any unacknowledged finding fails synth, so a new resource cannot slip past the checks.
    """
    app = App(**app_kwargs)
    settings = Settings.from_context(add_training_stack(app))  # -c training_jobs=true: infra/training_jobs.py
    SentimentStack(app, STACK_ID, settings=settings,
                   description="Movie review sentiment: API Gateway, Lambda, SageMaker, CloudFront.")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
