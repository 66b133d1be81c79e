"""The SageMaker requests, built as plain dicts (what boto3 sends): a training job and a tuning job.

Every hyperparameter is a string, as the API requires and as the container receives it in
``/opt/ml/input/config/hyperparameters.json``; ``training.train`` converts them back to its
options' types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from training.jobs.source import ENTRY_SCRIPT

# AWS Deep Learning Containers: the PyTorch training image, CPU, for SageMaker. The registry account
# is 763104351884 in most regions (AWS lists the exceptions, e.g. ap-east-1, me-south-1, with
# their own accounts: pass --image there). Training on the CPU: the model is a sparse linear model
# or a small MLP, which a GPU does not speed up.
IMAGE_ACCOUNT = "763104351884"
IMAGE_REPOSITORY = "pytorch-training"
IMAGE_TAG = "2.9.0-cpu-py312-ubuntu22.04-sagemaker"
LOCAL_CHECKPOINTS = "/opt/ml/checkpoints"
CHANNEL = "training"  # SM_CHANNEL_TRAINING, training.train's default --data
OBJECTIVE = "validation:loss"
# Parsed from the job's log (CloudWatch): every epoch's validation loss, as training.train prints it,
# and the kept model's figures on training.jobs.entry's "final:" line, emitted last, so the
# objective's final value is the early-stopped model's. Every epoch's value lets the tuning
# job's early stopping compare a running job with the median of the earlier ones.
_NUMBER = r"([0-9.eE+-]+)"
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": OBJECTIVE, "Regex": rf"(?:val loss |final: validation_loss=){_NUMBER}"},
    {"Name": "validation:accuracy", "Regex": rf"final: .*validation_accuracy={_NUMBER}"},
    {"Name": "validation:n", "Regex": rf"final: .*validation_n={_NUMBER}"},
    {"Name": "artifact:bytes", "Regex": rf"final: .*artifact_bytes={_NUMBER}"},
]
TAGS = [{"Key": "project", "Value": "serverless-sentiment"}]


def image_uri(region: str, tag: str = IMAGE_TAG) -> str:
    suffix = ".com.cn" if region.startswith("cn-") else ".com"
    return f"{IMAGE_ACCOUNT}.dkr.ecr.{region}.amazonaws{suffix}/{IMAGE_REPOSITORY}:{tag}"


def job_name(prefix: str = "sentiment", now: datetime | None = None) -> str:
    """``sentiment-YYMMDD-HHMMSS``: unique per second, 23 characters (a tuning job's name may have 32)."""
    return f"{prefix}-{(now or datetime.now(UTC)):%y%m%d-%H%M%S}"


@dataclass(frozen=True)
class Resources:
    """Where and how long a job runs."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_gb: int = 30
    max_runtime_s: int = 3600
    spot: bool = False
    max_wait_s: int | None = None  # spot only: runtime + waiting for capacity; default twice max_runtime_s
    checkpoints: bool = False

    def stopping_condition(self) -> dict[str, int]:
        condition = {"MaxRuntimeInSeconds": self.max_runtime_s}
        if self.spot:
            condition["MaxWaitTimeInSeconds"] = self.max_wait_s or 2 * self.max_runtime_s
        return condition

    def resource_config(self) -> dict[str, Any]:
        return {"InstanceType": self.instance_type, "InstanceCount": self.instance_count,
                "VolumeSizeInGB": self.volume_gb}


def hyperparameter_strings(values: Mapping[str, Any]) -> dict[str, str]:
    """Settings as SageMaker takes them: strings (booleans as ``true``/``false``)."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items()}


def toolkit_hyperparameters(code_uri: str, region: str) -> dict[str, str]:
    """What SageMaker's training toolkit reads to fetch and run the source archive."""
    return {"sagemaker_program": ENTRY_SCRIPT, "sagemaker_submit_directory": code_uri,
            "sagemaker_region": region, "sagemaker_container_log_level": "20"}


def _common(*, image: str, role_arn: str, bucket: str, data_uri: str, resources: Resources,
            checkpoint_name: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                   "MetricDefinitions": METRIC_DEFINITIONS},
        "RoleArn": role_arn,
        "InputDataConfig": [{
            "ChannelName": CHANNEL,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data_uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
            "InputMode": "File",
        }],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output/"},
        "ResourceConfig": resources.resource_config(),
        "StoppingCondition": resources.stopping_condition(),
        "EnableManagedSpotTraining": resources.spot,
        # Off: the toolkit downloads the source archive and pip-installs requirements.txt at start-up.
        "EnableNetworkIsolation": False,
    }
    if resources.checkpoints:
        # SageMaker syncs LocalPath to S3 while the job runs and back onto a replacement spot instance.
        request["CheckpointConfig"] = {"S3Uri": f"s3://{bucket}/checkpoints/{checkpoint_name}/",
                                       "LocalPath": LOCAL_CHECKPOINTS}
    return request


def training_job_request(*, name: str, image: str, role_arn: str, bucket: str, code_uri: str, data_uri: str,
                         region: str, hyperparameters: Mapping[str, Any], resources: Resources) -> dict[str, Any]:
    """CreateTrainingJob's parameters: ``python -m training`` with ``hyperparameters`` on ``data_uri``."""
    common = _common(image=image, role_arn=role_arn, bucket=bucket, data_uri=data_uri, resources=resources,
                     checkpoint_name=name)
    return {"TrainingJobName": name,
            "HyperParameters": hyperparameter_strings(hyperparameters) | toolkit_hyperparameters(code_uri, region),
            **common, "Tags": TAGS}


def tuning_job_request(*, name: str, image: str, role_arn: str, bucket: str, code_uri: str, data_uri: str,
                       region: str, static: Mapping[str, Any], ranges: dict[str, list[dict[str, Any]]],
                       max_jobs: int, max_parallel_jobs: int, resources: Resources,
                       early_stopping: bool = True, seed: int | None = None) -> dict[str, Any]:
    """CreateHyperParameterTuningJob's parameters: Bayesian search over ``ranges``, validation loss minimised."""
    config: dict[str, Any] = {
        "Strategy": "Bayesian",
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": OBJECTIVE},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": max_parallel_jobs},
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": "Auto" if early_stopping else "Off",
    }
    if seed is not None:
        config["RandomSeed"] = seed
    common = _common(image=image, role_arn=role_arn, bucket=bucket, data_uri=data_uri, resources=resources,
                     checkpoint_name=name)
    definition = {
        "StaticHyperParameters": hyperparameter_strings(static) | toolkit_hyperparameters(code_uri, region),
        **common,
    }
    return {"HyperParameterTuningJobName": name, "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": definition, "Tags": TAGS}
