"""`python -m training.jobs train|tune|watch|stop` against moto: the requests themselves, then the flow.

moto (``mock_aws``) answers S3, CloudWatch Logs, CloudFormation and SageMaker's CreateTrainingJob,
DescribeTrainingJob, CreateHyperParameterTuningJob and DescribeHyperParameterTuningJob; the
requests are read back from moto's own record of them. moto 5.2 has no
ListTrainingJobsForHyperParameterTuningJob, StopTrainingJob or StopHyperParameterTuningJob: those
calls go to a botocore ``Stubber`` that asserts their exact parameters (see ``Routed``).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

from tests.support import MODEL_VERSION, write_tiny_model
from training import space
from training.jobs import cli, requests
from training.jobs.source import ENTRY_SCRIPT, build_archive
from training.train import TrainConfig

REGION = "eu-west-1"
BUCKET = "sentiment-training-test"
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/sentiment-training"
IMAGE = f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch-training:{requests.IMAGE_TAG}"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """Fake credentials and region, every AWS call answered by moto, the jobs' bucket made."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "SENTIMENT_TRAINING_ROLE_ARN", "SENTIMENT_TRAINING_BUCKET",
                 "SENTIMENT_MODEL_GROUP", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield


def backend():
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]


def job_output(model_dir: Path) -> bytes:
    """What SageMaker uploads as a job's model.tar.gz: the whole of /opt/ml/model, i.e. training's --out."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, path.name)
    return raw.getvalue()


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A training output folder (the tiny model) with validation figures, as metrics.json has them."""
    folder = write_tiny_model(tmp_path / "trained")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics |= {"model_kind": "linear", "validation": {"accuracy": 0.9, "loss": 0.25, "n": 4},
                "test": {"accuracy": 0.85}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "model.pt").write_bytes(b"checkpoint stand-in")
    return folder


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "aclImdb_v1.tar.gz"
    path.write_bytes(b"stand-in for the IMDB archive")
    return path


def put_output(name: str, model_dir: Path) -> None:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz", Body=job_output(model_dir))


def run(*argv: str) -> int:
    return cli.main([*argv, "--role-arn", ROLE, "--bucket", BUCKET] if argv[0] in ("train", "tune")
                    else [*argv, "--bucket", BUCKET])


# -- the training job's request -------------------------------------------------------------------
def test_train_sends_the_training_job_request(aws, trained: Path, data: Path, tmp_path: Path, capsys) -> None:
    put_output("sentiment-test-1", trained)
    code = run("train", "--data", str(data), "--out", str(tmp_path / "out"), "--job-name", "sentiment-test-1",
               "--set", "model=mlp", "--set", "epochs=5", "--set", "normalize=false", "--poll-seconds", "0")
    assert code == 0, capsys.readouterr().err
    job = backend().training_jobs["sentiment-test-1"]

    assert job.algorithm_specification["TrainingImage"] == IMAGE
    assert job.algorithm_specification["TrainingInputMode"] == "File"
    assert job.role_arn == ROLE
    # Every hyperparameter a string, as SageMaker passes them; the toolkit's keys run the source archive.
    hyperparameters = job.hyper_parameters
    assert all(isinstance(v, str) for v in hyperparameters.values())
    assert {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")} == {
        "model": "mlp", "epochs": "5", "normalize": "false"}
    assert hyperparameters["sagemaker_program"] == ENTRY_SCRIPT
    assert hyperparameters["sagemaker_region"] == REGION
    _, digest = build_archive()
    code_uri = hyperparameters["sagemaker_submit_directory"]
    assert code_uri == f"s3://{BUCKET}/code/{digest[:16]}/sourcedir.tar.gz"
    # The archive was uploaded under input/, named by its sha256, and is the channel's only object.
    (channel,) = job.input_data_config
    assert channel["ChannelName"] == "training"
    source = channel["DataSource"]["S3DataSource"]
    assert source["S3DataType"] == "S3Prefix" and source["S3DataDistributionType"] == "FullyReplicated"
    assert source["S3Uri"].startswith(f"s3://{BUCKET}/input/imdb/") and source["S3Uri"].endswith("/aclImdb_v1.tar.gz")
    assert job.output_data_config == {"S3OutputPath": f"s3://{BUCKET}/output/"}
    assert job.resource_config == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job.stopping_condition == {"MaxRuntimeInSeconds": 3600}
    assert job.enable_managed_spot_training is False
    assert not job.checkpoint_config
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_object(Bucket=BUCKET, Key=code_uri.split(BUCKET + "/")[1])["Body"].read() == build_archive()[0]


def test_spot_and_checkpoints_are_options(aws, trained: Path, data: Path, tmp_path: Path) -> None:
    put_output("sentiment-spot", trained)
    assert run("train", "--data", str(data), "--out", str(tmp_path / "out"), "--job-name", "sentiment-spot",
               "--spot", "--checkpoints", "--max-runtime-minutes", "30", "--max-wait-minutes", "90",
               "--instance-type", "ml.c5.2xlarge", "--instance-count", "2", "--poll-seconds", "0") == 0
    job = backend().training_jobs["sentiment-spot"]
    assert job.enable_managed_spot_training is True
    assert job.stopping_condition == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 5400}
    assert job.checkpoint_config == {"S3Uri": f"s3://{BUCKET}/checkpoints/sentiment-spot/",
                                     "LocalPath": "/opt/ml/checkpoints"}
    assert job.resource_config["InstanceType"] == "ml.c5.2xlarge" and job.resource_config["InstanceCount"] == 2


def test_the_data_is_uploaded_once(aws, trained: Path, data: Path, tmp_path: Path, capsys) -> None:
    for name in ("sentiment-a", "sentiment-b"):
        put_output(name, trained)
        assert run("train", "--data", str(data), "--out", str(tmp_path / name), "--job-name", name,
                   "--poll-seconds", "0") == 0
    out = capsys.readouterr().out
    assert out.count("uploading ") == 1 and "not uploaded again" in out
    uris = {backend().training_jobs[n].input_data_config[0]["DataSource"]["S3DataSource"]["S3Uri"]
            for n in ("sentiment-a", "sentiment-b")}
    assert len(uris) == 1


def test_an_s3_uri_is_used_as_it_is(aws, trained: Path, tmp_path: Path) -> None:
    put_output("sentiment-s3", trained)
    uri = f"s3://{BUCKET}/input/imdb/mine/aclImdb_v1.tar.gz"
    assert run("train", "--data", uri, "--out", str(tmp_path / "out"), "--job-name", "sentiment-s3",
               "--poll-seconds", "0") == 0
    assert backend().training_jobs["sentiment-s3"].input_data_config[0]["DataSource"]["S3DataSource"]["S3Uri"] == uri


def test_the_downloaded_model_is_a_folder_cdk_deploys(aws, trained: Path, data: Path, tmp_path: Path, capsys) -> None:
    from sentiment.artifacts import DEPLOYED_FILES, ModelFolder

    put_output("sentiment-dl", trained)
    out = tmp_path / "out"
    assert run("train", "--data", str(data), "--out", str(out), "--job-name", "sentiment-dl", "--poll-seconds", "0") == 0
    assert ModelFolder.read(out).version == MODEL_VERSION  # the check cdk synth makes of model_dir
    assert set(DEPLOYED_FILES) <= {p.name for p in out.iterdir()}
    assert f"npx cdk deploy -c model_dir={out}" in capsys.readouterr().out


def test_status_changes_and_log_lines_are_printed(aws, trained: Path, data: Path, tmp_path: Path, capsys) -> None:
    logs = boto3.client("logs", region_name=REGION)
    now = int(time.time() * 1000)
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="sentiment-logs/algo-1-1")
    logs.put_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="sentiment-logs/algo-1-1",
                        logEvents=[{"timestamp": now, "message": "epoch  1 | val loss 0.3000 acc 88.00%"},
                                   {"timestamp": now + 1, "message": "final: validation_loss=0.300000"}])
    put_output("sentiment-logs", trained)
    assert run("train", "--data", str(data), "--out", str(tmp_path / "out"), "--job-name", "sentiment-logs",
               "--poll-seconds", "0") == 0
    out = capsys.readouterr().out
    assert "[sentiment-logs] Completed / Completed" in out
    assert "  epoch  1 | val loss 0.3000 acc 88.00%\n  final: validation_loss=0.300000" in out


def test_a_failed_job_prints_its_failure_reason_and_exits_non_zero(aws, data: Path, tmp_path: Path,
                                                                    monkeypatch, capsys) -> None:
    real = SageMakerModelBackend.create_training_job

    def failing(self, **kwargs):
        job = real(self, **kwargs)
        job.training_job_status, job.secondary_status = "Failed", "Failed"
        job.failure_reason = "AlgorithmError: no IMDB reviews found in /opt/ml/input/data/training"
        return job

    monkeypatch.setattr(SageMakerModelBackend, "create_training_job", failing)
    code = run("train", "--data", str(data), "--out", str(tmp_path / "out"), "--job-name", "sentiment-fail",
               "--poll-seconds", "0")
    assert code == 1
    err = capsys.readouterr().err
    assert err.strip() == ("error: training job sentiment-fail failed: AlgorithmError: no IMDB reviews found "
                           "in /opt/ml/input/data/training")
    assert not (tmp_path / "out").exists()


def test_ctrl_c_says_the_job_keeps_running_and_how_to_stop_it(aws, data: Path, tmp_path: Path,
                                                              monkeypatch, capsys) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "wait_for_training_job", interrupted)
    code = run("train", "--data", str(data), "--out", str(tmp_path / "out"), "--job-name", "sentiment-int")
    assert code == 130
    err = capsys.readouterr().err
    assert "training job sentiment-int keeps running on SageMaker (and is billed)" in err
    assert "python -m training.jobs stop sentiment-int" in err
    assert "aws sagemaker stop-training-job --training-job-name sentiment-int" in err
    assert backend().training_jobs["sentiment-int"]  # nothing was stopped behind the user's back


def test_ctrl_c_before_the_job_starts_says_nothing_runs(aws, data: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "code_uri", interrupted)
    assert run("train", "--data", str(data), "--out", str(tmp_path / "out")) == 130
    assert "no job was started, nothing runs on SageMaker" in capsys.readouterr().err
    assert not backend().training_jobs


def test_no_wait_starts_and_returns(aws, data: Path, tmp_path: Path, capsys) -> None:
    assert run("train", "--data", str(data), "--job-name", "sentiment-nowait", "--no-wait") == 0
    assert "python -m training.jobs watch sentiment-nowait" in capsys.readouterr().out


def test_unknown_settings_are_refused_before_any_call(aws, data: Path, capsys) -> None:
    assert run("train", "--data", str(data), "--set", "epoch=3") == 2
    assert "--set 'epoch=3': expected NAME=VALUE" in capsys.readouterr().err
    assert not backend().training_jobs


def test_the_role_and_bucket_come_from_the_training_stack(aws, data: Path, capsys) -> None:
    template = {"Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"TrainingRoleArn": {"Value": ROLE}, "TrainingBucketName": {"Value": BUCKET},
                            "ModelPackageGroupName": {"Value": "from-the-stack"}}}
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="ServerlessSentimentTraining", TemplateBody=json.dumps(template))
    assert cli.main(["train", "--data", str(data), "--job-name", "sentiment-stack", "--no-wait"]) == 0
    job = backend().training_jobs["sentiment-stack"]
    assert job.role_arn == ROLE and job.output_data_config["S3OutputPath"] == f"s3://{BUCKET}/output/"


def test_without_the_stack_or_flags_one_line_says_what_to_do(aws, data: Path, capsys) -> None:
    assert cli.main(["train", "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deploy the training stack once" in err[0] and "--role-arn" in err[0]


# -- the tuning job -----------------------------------------------------------------------------------
class Routed:
    """A moto-backed SageMaker client whose calls moto lacks go to a botocore Stubber instead.

    moto 5.2 implements neither ListTrainingJobsForHyperParameterTuningJob nor the Stop* calls;
    the stub asserts their exact parameters and returns what SageMaker would.
    """

    STUBBED = ("list_training_jobs_for_hyper_parameter_tuning_job", "stop_training_job",
               "stop_hyper_parameter_tuning_job")

    def __init__(self, real: Any):
        self.real = real
        self.stubbed = boto3.client("sagemaker", region_name=REGION)
        self.stubber = Stubber(self.stubbed)
        self.stubber.activate()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stubbed if name in self.STUBBED else self.real, name)


def completed_training_job(name: str, hyperparameters: dict[str, str], final: dict[str, float],
                           model_dir: Path) -> None:
    """A training job of the tuning job, as SageMaker leaves it: its final metrics and its output."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_training_job(
        TrainingJobName=name, HyperParameters=hyperparameters, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})
    backend().training_jobs[name].final_metric_data_list = [
        {"MetricName": k, "Value": v} for k, v in final.items()]
    put_output(name, model_dir)


def tuning_run(tmp_path: Path, data: Path, trained: Path, monkeypatch, *extra: str) -> tuple[int, Stubber]:
    """`tune` with three finished jobs; the listing moto lacks answered by a Stubber."""
    jobs = {  # name: (hyperparameters, loss, accuracy, bytes)
        "sentiment-tune-001-aaaa": ({"model": "mlp", "max_features": "300000"}, 0.180, 0.9300, 30_000_000),
        "sentiment-tune-002-bbbb": ({"model": "linear", "max_features": "100000"}, 0.200, 0.9252, 2_000_000),
        "sentiment-tune-003-cccc": ({"model": "linear", "max_features": "50000"}, 0.190, 0.9245, 1_000_000),
    }
    for name, (hyperparameters, loss, accuracy, size) in jobs.items():
        completed_training_job(name, hyperparameters, {"validation:loss": loss, "validation:accuracy": accuracy,
                                                       "validation:n": 2500, "artifact:bytes": size}, trained)
    stubbed = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(stubbed)
    created = [backend().training_jobs[n].creation_time for n in jobs]
    stubber.add_response(
        "list_training_jobs_for_hyper_parameter_tuning_job",
        {"TrainingJobSummaries": [
            {"TrainingJobName": n, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:training-job/{n}",
             "CreationTime": t, "TrainingJobStatus": "Completed", "TunedHyperParameters": jobs[n][0]}
            for n, t in zip(jobs, created, strict=True)]},
        {"HyperParameterTuningJobName": "sentiment-tune", "StatusEquals": "Completed", "MaxResults": 100})
    stubber.activate()
    real_clients = cli.clients

    def clients(args):
        found = real_clients(args)
        found["sagemaker"] = Routed(found["sagemaker"])
        found["sagemaker"].stubbed = stubbed
        return found

    monkeypatch.setattr(cli, "clients", clients)
    code = run("tune", "--data", str(data), "--out", str(tmp_path / "tuned"), "--job-name", "sentiment-tune",
               "--poll-seconds", "0", *extra)
    return code, stubber


def test_tune_sends_a_bayesian_tuning_job_over_the_local_space(aws, trained: Path, data: Path, tmp_path: Path,
                                                               monkeypatch, capsys) -> None:
    code, stubber = tuning_run(tmp_path, data, trained, monkeypatch, "--max-jobs", "12", "--max-parallel-jobs", "3")
    assert code == 0, capsys.readouterr().err
    stubber.assert_no_pending_responses()
    job = backend().hyper_parameter_tuning_jobs["sentiment-tune"]
    config = job.hyper_parameter_tuning_job_config
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "validation:loss"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["RandomSeed"] == 1337
    assert config["ParameterRanges"] == space.sagemaker_ranges()
    definition = job.training_job_definition
    assert definition["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    metrics = {m["Name"]: m["Regex"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert set(metrics) == {"validation:loss", "validation:accuracy", "validation:n", "artifact:bytes"}
    assert definition["RoleArn"] == ROLE
    assert {k: v for k, v in definition["StaticHyperParameters"].items() if not k.startswith("sagemaker_")} == {
        "min_df": "2"}
    assert definition["StaticHyperParameters"]["sagemaker_program"] == ENTRY_SCRIPT
    assert definition["OutputDataConfig"] == {"S3OutputPath": f"s3://{BUCKET}/output/"}
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert definition["InputDataConfig"][0]["ChannelName"] == "training"


def test_tune_without_early_stopping(aws, trained: Path, data: Path, tmp_path: Path, monkeypatch) -> None:
    code, _ = tuning_run(tmp_path, data, trained, monkeypatch, "--no-early-stopping", "--spot")
    assert code == 0
    job = backend().hyper_parameter_tuning_jobs["sentiment-tune"]
    assert job.hyper_parameter_tuning_job_config["TrainingJobEarlyStoppingType"] == "Off"
    assert job.training_job_definition["EnableManagedSpotTraining"] is True
    assert job.training_job_definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600,
                                                                "MaxWaitTimeInSeconds": 7200}


def test_tune_chooses_with_the_local_searchs_rule(aws, trained: Path, data: Path, tmp_path: Path,
                                                  monkeypatch, capsys) -> None:
    """The numbers of tests/training/test_tune.py's rule test: best 93.0%, one standard error 0.51 points."""
    code, _ = tuning_run(tmp_path, data, trained, monkeypatch)
    assert code == 0
    summary = json.loads((tmp_path / "tuned" / "tuning.json").read_text())
    assert summary["best"] == "sentiment-tune-001-aaaa"  # lowest validation loss
    assert summary["chosen"] == "sentiment-tune-002-bbbb"  # smallest within 0.51 points of 93.00%
    assert summary["rule"] == space.RULE
    chosen = next(j for j in summary["jobs"] if j["name"] == summary["chosen"])
    assert chosen["params"] == {"max_features": 100000, "model": "linear"}
    out = capsys.readouterr().out
    assert "chosen: sentiment-tune-002-bbbb" in out
    assert (tmp_path / "tuned" / "model.onnx").is_file()


def test_the_tuning_ranges_are_the_local_search_space() -> None:
    """Each range sent to SageMaker is the distribution Optuna draws from in training.tune."""
    import optuna

    from training.tune import suggest

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    distributions: dict[str, Any] = {}
    for _ in range(40):  # until both model kinds have been drawn, so hidden and dropout appear too
        trial = study.ask()
        suggest(trial, TrainConfig())
        distributions |= trial.distributions
        study.tell(trial, 0.0)
    ranges = space.sagemaker_ranges()
    sent = {r["Name"]: r for kind in ranges.values() for r in kind}
    assert set(sent) == set(distributions)
    for name, distribution in distributions.items():
        if isinstance(distribution, optuna.distributions.CategoricalDistribution):
            assert sent[name]["Values"] == [str(c) for c in distribution.choices], name
        elif isinstance(distribution, optuna.distributions.IntDistribution) and distribution.step > 1:
            values = list(range(distribution.low, distribution.high + 1, distribution.step))
            assert sent[name]["Values"] == [str(v) for v in values], name  # SageMaker's integers have no step
        else:
            assert (float(sent[name]["MinValue"]), float(sent[name]["MaxValue"])) == (
                distribution.low, distribution.high), name
            assert sent[name]["ScalingType"] == ("Logarithmic" if distribution.log else "Linear"), name
    assert all(isinstance(v, str) for r in sent.values() for k, v in r.items() if k != "Values")


def test_a_tuning_jobs_strings_come_back_as_the_local_values() -> None:
    strings = {"model": "mlp", "max_features": "150000", "weight_decay": "1e-05", "lr": "0.0123", "hidden": "16",
               "ngram_max": "3", "min_df": "2", "sagemaker_program": ENTRY_SCRIPT}
    assert space.from_hyperparameters(strings) == {"model": "mlp", "max_features": 150000, "weight_decay": 1e-05,
                                                   "lr": 0.0123, "hidden": 16, "ngram_max": 3}


def test_the_metric_definitions_read_what_the_job_prints() -> None:
    import re

    from training.jobs.entry import final_line

    line = final_line({"model_version": MODEL_VERSION, "validation": {"loss": 0.1991, "accuracy": 0.924, "n": 2500},
                       "artifacts_bytes": {"model.onnx": 830_000, "featurizer.json": 1_150_000, "model.tar.gz": 1}})
    epoch = "epoch  3 | train loss 0.1500 acc 95.00% | val loss 0.2050 acc 92.00% auc 0.9700 | 3.1s *"
    found = {d["Name"]: [float(m) for text in (epoch, line) for m in re.findall(d["Regex"], text)]
             for d in requests.METRIC_DEFINITIONS}
    assert found == {"validation:loss": [0.205, 0.1991], "validation:accuracy": [0.924], "validation:n": [2500.0],
                     "artifact:bytes": [1_980_000.0]}


# -- watch and stop -------------------------------------------------------------------------------------
def test_stop_asks_sagemaker_to_stop_the_job(aws, monkeypatch, capsys) -> None:
    stubbed = boto3.client("sagemaker", region_name=REGION)
    stubber = Stubber(stubbed)
    stubber.add_response("stop_training_job", {}, {"TrainingJobName": "sentiment-x"})
    stubber.add_response("stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": "sentiment-t"})
    stubber.activate()
    real_clients = cli.clients

    def clients(args):
        found = real_clients(args)
        found["sagemaker"] = stubbed
        return found

    monkeypatch.setattr(cli, "clients", clients)
    assert cli.main(["stop", "sentiment-x"]) == 0
    assert cli.main(["stop", "--tuning", "sentiment-t"]) == 0
    stubber.assert_no_pending_responses()
    assert "asked SageMaker to stop training job sentiment-x" in capsys.readouterr().out


def test_watch_follows_a_job_and_downloads_its_model(aws, trained: Path, tmp_path: Path, capsys) -> None:
    completed_training_job("sentiment-w", {"epochs": "3"}, {}, trained)
    assert cli.main(["watch", "sentiment-w", "--out", str(tmp_path / "w"), "--poll-seconds", "0"]) == 0
    assert (tmp_path / "w" / "model.tar.gz").is_file()
