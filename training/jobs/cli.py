"""Train and tune on SageMaker, and keep every model in a registry: ``python -m training.jobs COMMAND``.

    python -m training.jobs train --data aclImdb_v1.tar.gz --out artifacts-sm    # one training job
    python -m training.jobs tune --data s3://BUCKET/input/... --max-jobs 32 --max-parallel-jobs 4 --out artifacts-tuned
    python -m training.jobs register --model-dir artifacts-sm                    # or --job NAME
    python -m training.jobs list
    python -m training.jobs approve 20261203T1200Z-1a2b3c4d                      # or its package number
    python -m training.jobs fetch --approved --out artifacts-approved
    npx cdk deploy -c model_dir=artifacts-approved

The jobs run this checkout's ``training`` package in AWS's prebuilt PyTorch training image, as
the role and in the bucket that the training stack creates (``npx cdk deploy
ServerlessSentimentTraining -c training_jobs=true``; or pass --role-arn and --bucket). Credentials
and region are boto3's usual ones (AWS_PROFILE, AWS_REGION, ~/.aws/config).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import botocore.exceptions

from sentiment.artifacts import ArtifactError
from training.jobs import aws, registry, requests
from training.jobs.aws import JobError, Setup
from training.jobs.source import build_archive
from training.jobs.watch import wait_for_training_job, wait_for_tuning_job

PROG = "python -m training.jobs"
INTERRUPTED = 130


class Started:
    """The job this command started, if any: what Ctrl-C has to talk about."""

    kind: str | None = None  # "training" or "tuning"
    name: str | None = None


# -- shared steps -----------------------------------------------------------------------------------
def clients(args: argparse.Namespace) -> dict[str, Any]:
    session = aws.session(args.region, args.profile)
    return {name: session.client(name) for name in ("sagemaker", "s3", "logs", "cloudformation")} | {
        "region": session.region_name}


def setup_of(args: argparse.Namespace, c: dict[str, Any], need_role: bool = True) -> Setup:
    return aws.resolve_setup(c["cloudformation"], role_arn=getattr(args, "role_arn", None),
                             bucket=args.bucket, group=args.group, need_role=need_role)


def data_uri(args: argparse.Namespace, c: dict[str, Any], setup: Setup) -> str:
    """The IMDB archive in S3: an ``s3://`` URI as given, or a local file uploaded once under input/."""
    data = args.data or os.environ.get("IMDB_DATA")
    if not data:
        raise JobError("no data: pass --data PATH (the IMDB .tar.gz, uploaded once) or --data s3://... "
                       "(or set IMDB_DATA)", 2)
    if data.startswith("s3://"):
        bucket, _ = aws.split_s3(data)
        if bucket != setup.bucket or not data.startswith(f"s3://{setup.bucket}/input/"):
            print(f"note: the job's role reads s3://{setup.bucket}/input/ only; {data} must be readable by it",
                  flush=True)
        return data
    path = Path(data)
    if not path.is_file():
        raise JobError(f"--data {data}: no such file (give the IMDB .tar.gz archive, or an s3:// URI)", 2)
    return aws.upload_once(c["s3"], path, setup.bucket, "input/imdb")


def code_uri(c: dict[str, Any], setup: Setup) -> str:
    data, digest = build_archive()
    return aws.upload_bytes_once(c["s3"], data, digest, setup.bucket, "code", "sourcedir.tar.gz")


def resources_of(args: argparse.Namespace, checkpoints: bool) -> requests.Resources:
    if args.instance_count < 1 or args.max_runtime_minutes < 1 or args.volume_gb < 1:
        raise JobError("--instance-count, --max-runtime-minutes and --volume-gb must be at least 1", 2)
    if args.max_wait_minutes is not None and not args.spot:
        raise JobError("--max-wait-minutes is for spot training: add --spot", 2)
    if args.max_wait_minutes is not None and args.max_wait_minutes < args.max_runtime_minutes:
        raise JobError("--max-wait-minutes must be at least --max-runtime-minutes", 2)
    return requests.Resources(
        instance_type=args.instance_type, instance_count=args.instance_count, volume_gb=args.volume_gb,
        max_runtime_s=60 * args.max_runtime_minutes, spot=args.spot,
        max_wait_s=None if args.max_wait_minutes is None else 60 * args.max_wait_minutes, checkpoints=checkpoints)


def parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    """``--set name=value`` pairs, each a ``python -m training`` option (checked by name here, by value in the job)."""
    from training.train import OPTIONS

    known = {o.name for o in OPTIONS} - {"data", "out"}
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise JobError(f"--set {pair!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(known))}", 2)
        values[name] = value.strip()
    return values


def download_model(c: dict[str, Any], job: dict[str, Any], out: Path) -> str:
    """The job's output model.tar.gz (training.train's whole output folder) unpacked into ``out``."""
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    with tempfile.TemporaryDirectory(prefix="job-output-") as tmp:
        archive = aws.download(c["s3"], uri, Path(tmp) / "model.tar.gz")
        model = registry.unpack_job_output(archive, out)
    print(f"downloaded {uri} into {out}/ (model {model.version}); deploy it with: npx cdk deploy -c model_dir={out}",
          flush=True)
    return model.version


def follow_up(kind: str, name: str) -> str:
    if kind == "tuning":
        return (f"follow it: {PROG} watch --tuning {name}; stop it: {PROG} stop --tuning {name} "
                f"(or aws sagemaker stop-hyper-parameter-tuning-job --hyper-parameter-tuning-job-name {name})")
    return (f"follow it: {PROG} watch {name}; stop it: {PROG} stop {name} "
            f"(or aws sagemaker stop-training-job --training-job-name {name})")


# -- commands ---------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    settings = parse_settings(args.set)
    resources = resources_of(args, args.checkpoints)
    c = clients(args)
    setup = setup_of(args, c)
    name = args.job_name or requests.job_name()
    request = requests.training_job_request(
        name=name, image=args.image or requests.image_uri(c["region"]), role_arn=setup.role_arn,
        bucket=setup.bucket, code_uri=code_uri(c, setup), data_uri=data_uri(args, c, setup),
        region=c["region"], hyperparameters=settings, resources=resources)
    c["sagemaker"].create_training_job(**request)
    Started.kind, Started.name = "training", name
    print(f"started training job {name} on {resources.instance_count} x {resources.instance_type}"
          f"{' (spot)' if resources.spot else ''}, at most {args.max_runtime_minutes} min", flush=True)
    if args.no_wait:
        print(follow_up("training", name))
        return 0
    job = wait_for_training_job(c["sagemaker"], c["logs"], name, poll_s=args.poll_seconds)
    download_model(c, job, Path(args.out))
    if args.register:
        image = args.serving_image or registry.deployed_serving_image(c["cloudformation"], c["sagemaker"])
        registry.register(c["sagemaker"], c["s3"], folder=Path(args.out), bucket=setup.bucket, group=setup.group,
                          source=f"training-job:{name}", image=image)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from training import space

    if args.max_jobs < 1 or not 1 <= args.max_parallel_jobs <= args.max_jobs:
        raise JobError("--max-jobs must be at least 1 and --max-parallel-jobs between 1 and --max-jobs", 2)
    resources = resources_of(args, checkpoints=False)
    c = clients(args)
    setup = setup_of(args, c)
    name = args.job_name or requests.job_name()
    if len(name) > 32:
        raise JobError(f"--job-name {name!r}: a tuning job's name has at most 32 characters", 2)
    request = requests.tuning_job_request(
        name=name, image=args.image or requests.image_uri(c["region"]), role_arn=setup.role_arn,
        bucket=setup.bucket, code_uri=code_uri(c, setup), data_uri=data_uri(args, c, setup), region=c["region"],
        static=space.FIXED, ranges=space.sagemaker_ranges(), max_jobs=args.max_jobs,
        max_parallel_jobs=args.max_parallel_jobs, resources=resources,
        early_stopping=not args.no_early_stopping, seed=args.seed)
    c["sagemaker"].create_hyper_parameter_tuning_job(**request)
    Started.kind, Started.name = "tuning", name
    print(f"started tuning job {name}: Bayesian, {args.max_jobs} training jobs, {args.max_parallel_jobs} at a time, "
          f"on {resources.instance_type}{' (spot)' if resources.spot else ''}", flush=True)
    if args.no_wait:
        print(follow_up("tuning", name))
        return 0
    wait_for_tuning_job(c["sagemaker"], name, poll_s=args.poll_seconds)
    image = args.serving_image or (registry.deployed_serving_image(c["cloudformation"], c["sagemaker"])
                                   if args.register else None)
    return finish_tuning(c, name, Path(args.out), setup if args.register else None, image)


def tuning_outcomes(sagemaker: Any, name: str) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """The completed training jobs of tuning job ``name``, as ``space.Outcome``s, and their descriptions."""
    from training import space

    summaries: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"HyperParameterTuningJobName": name, "StatusEquals": "Completed", "MaxResults": 100}
    while True:
        page = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**kwargs)
        summaries.extend(page.get("TrainingJobSummaries", []))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    outcomes, described = [], {}
    for order, summary in enumerate(sorted(summaries, key=lambda s: s["CreationTime"])):
        job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        final = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
        needed = (requests.OBJECTIVE, "validation:accuracy", "validation:n", "artifact:bytes")
        if not all(metric in final for metric in needed):
            print(f"  {summary['TrainingJobName']}: no final metrics in its log, left out", flush=True)
            continue
        described[job["TrainingJobName"]] = job
        outcomes.append(space.Outcome(job["TrainingJobName"], final[requests.OBJECTIVE], final["validation:accuracy"],
                                      int(final["validation:n"]), int(final["artifact:bytes"]), order))
    return outcomes, described


def finish_tuning(c: dict[str, Any], name: str, out: Path, register_in: Setup | None, image: str | None) -> int:
    """Apply the local search's rule to the finished jobs and download the chosen one's model."""
    from training import space

    outcomes, described = tuning_outcomes(c["sagemaker"], name)
    if not outcomes:
        raise JobError(f"tuning job {name}: no training job completed with its metrics; see its jobs' logs")
    best = space.best_outcome(outcomes)
    chosen = space.smallest_within_one_standard_error(outcomes, best)
    for label, o in (("best", best), ("chosen", chosen)):
        params = space.from_hyperparameters(described[o.key]["HyperParameters"])
        print(f"{label}: {o.key}: validation loss {o.loss:.4f}, accuracy {o.accuracy:.2%}, "
              f"{o.artifact_bytes:,} bytes, {json.dumps(params)}", flush=True)
    print(f"rule: {space.RULE}", flush=True)
    model_version = download_model(c, described[chosen.key], out)
    summary = {"tuning_job": name, "rule": space.RULE, "best": best.key, "chosen": chosen.key,
               "model_version": model_version,
               "jobs": [{"name": o.key, "validation_loss": o.loss, "validation_accuracy": o.accuracy,
                         "validation_n": o.n, "artifact_bytes": o.artifact_bytes,
                         "params": space.from_hyperparameters(described[o.key]["HyperParameters"])}
                        for o in outcomes]}
    (out / "tuning.json").write_text(json.dumps(summary, indent=2) + "\n")
    if register_in is not None:
        registry.register(c["sagemaker"], c["s3"], folder=out, bucket=register_in.bucket, group=register_in.group,
                          source=f"tuning-job:{name}/{chosen.key}", image=image)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    c = clients(args)
    Started.kind, Started.name = ("tuning" if args.tuning else "training"), args.name
    if args.tuning:
        wait_for_tuning_job(c["sagemaker"], args.name, poll_s=args.poll_seconds)
        if args.out:
            return finish_tuning(c, args.name, Path(args.out), None, None)
        return 0
    job = wait_for_training_job(c["sagemaker"], c["logs"], args.name, poll_s=args.poll_seconds)
    if args.out:
        download_model(c, job, Path(args.out))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    c = clients(args)
    if args.tuning:
        c["sagemaker"].stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=args.name)
    else:
        c["sagemaker"].stop_training_job(TrainingJobName=args.name)
    print(f"asked SageMaker to stop {'tuning' if args.tuning else 'training'} job {args.name}; "
          "it ends as Stopped within a few minutes", flush=True)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    if bool(args.model_dir) == bool(args.job):
        raise JobError("register takes one of --model-dir DIR or --job NAME", 2)
    c = clients(args)
    setup = setup_of(args, c, need_role=False)
    image = args.serving_image or registry.deployed_serving_image(c["cloudformation"], c["sagemaker"])
    if args.job:
        registry.register_job(c["sagemaker"], c["s3"], job=args.job, bucket=setup.bucket, group=setup.group,
                              image=image)
    else:
        folder = Path(args.model_dir)
        registry.register(c["sagemaker"], c["s3"], folder=folder, bucket=setup.bucket, group=setup.group,
                          source=_metadata_text(f"local:{folder.resolve()}"), image=image)
    return 0


def _metadata_text(text: str) -> str:
    """Characters a metadata value may not hold replaced by ``_``."""
    return re.sub(r"[^\w\s.:/=+\-@]", "_", text)[:256]


def cmd_approve(args: argparse.Namespace, status: str = registry.APPROVED) -> int:
    c = clients(args)
    setup = setup_of(args, c, need_role=False)
    registry.set_status(c["sagemaker"], setup.group, args.version, status, args.note)
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    return cmd_approve(args, registry.REJECTED)


def cmd_list(args: argparse.Namespace) -> int:
    c = clients(args)
    setup = setup_of(args, c, need_role=False)
    found = registry.packages(c["sagemaker"], setup.group, args.status)
    if not found:
        print(f"model package group {setup.group} holds no package{' ' + args.status if args.status else ''}")
        return 0
    print("\n".join(registry.table(found)))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    if bool(args.approved) == bool(args.version):
        raise JobError("fetch takes --approved (the newest approved model) or a VERSION", 2)
    c = clients(args)
    setup = setup_of(args, c, need_role=False)
    registry.fetch(c["sagemaker"], c["s3"], group=setup.group, out=Path(args.out), name=args.version)
    return 0


# -- the command line -------------------------------------------------------------------------------
def _aws_options(parser: argparse.ArgumentParser, role: bool = False) -> None:
    group = parser.add_argument_group("AWS")
    group.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or your profile's)")
    group.add_argument("--profile", help="named profile from ~/.aws/config (default: AWS_PROFILE)")
    if role:
        group.add_argument("--role-arn", help=f"the role jobs run as (default: ${aws.ROLE_ENV}, else the "
                                              f"TrainingRoleArn output of the {aws.TRAINING_STACK} stack)")
    group.add_argument("--bucket", help=f"the jobs' bucket (default: ${aws.BUCKET_ENV}, else the "
                                        f"TrainingBucketName output of {aws.TRAINING_STACK})")
    group.add_argument("--group", help=f"model package group (default: ${aws.GROUP_ENV}, else the "
                                       f"ModelPackageGroupName output of {aws.TRAINING_STACK}, "
                                       f"else {aws.DEFAULT_GROUP})")


def _job_options(parser: argparse.ArgumentParser, default_instance: str, checkpoints: bool) -> None:
    group = parser.add_argument_group("the job")
    group.add_argument("--data", metavar="PATH|S3_URI",
                       help="IMDB archive (.tar.gz): a local file is uploaded once to s3://BUCKET/input/imdb/ "
                            "(its sha256 in the key); an s3:// URI is used as it is (default: $IMDB_DATA)")
    group.add_argument("--instance-type", default=default_instance, help="training instance (default: %(default)s)")
    group.add_argument("--instance-count", type=int, default=1,
                       help="instances per job (default: %(default)s; training.train is not distributed, so more "
                            "instances train the same model side by side)")
    group.add_argument("--volume-gb", type=int, default=30, help="EBS volume per instance (default: %(default)s)")
    group.add_argument("--max-runtime-minutes", type=int, default=60,
                       help="SageMaker stops a job running longer (default: %(default)s)")
    group.add_argument("--spot", action="store_true",
                       help="managed spot training: up to ~70%% cheaper, may wait for capacity or be interrupted")
    group.add_argument("--max-wait-minutes", type=int,
                       help="spot only: runtime plus waiting for spot capacity (default: twice the max runtime)")
    if checkpoints:
        group.add_argument("--checkpoints", action="store_true",
                           help="sync /opt/ml/checkpoints to s3://BUCKET/checkpoints/JOB/ (kept by spot "
                                "interruptions; training.train itself restarts from epoch 1)")
    group.add_argument("--image", help=f"training image URI (default: AWS's {requests.IMAGE_REPOSITORY}:"
                                       f"{requests.IMAGE_TAG} in the region)")
    group.add_argument("--job-name", help="job name (default: sentiment-YYMMDD-HHMMSS)")
    group.add_argument("--no-wait", action="store_true", help="start the job, print how to follow it, and return")
    group.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    group.add_argument("--register", action="store_true", help="register the downloaded model (pending approval)")
    group.add_argument("--serving-image", help="with --register: the model server image URI, recorded as the "
                                               "package's inference container (default: the deployed "
                                               "ServerlessSentiment stack's, if any)")


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").split("\n\n")[0],
                                     epilog="Each command has its own --help.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="run one training job and download its model",
        description="Start a SageMaker training job that runs `python -m training` (this checkout's code) on "
                    "the IMDB archive, print its status changes and log lines until it ends, and unpack its "
                    "model into --out: the folder `npx cdk deploy -c model_dir=DIR` deploys. A failed or "
                    "stopped job prints its FailureReason and exits 1; Ctrl-C leaves the job running and "
                    "says how to stop it.")
    train.add_argument("--out", default="artifacts-sagemaker", metavar="DIR",
                       help="where the model is unpacked (default: %(default)s)")
    train.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="a `python -m training` option for the job, e.g. --set model=mlp --set epochs=10 "
                            "(repeatable; default: training.train's defaults)")
    _job_options(train, "ml.m5.xlarge", checkpoints=True)
    _aws_options(train, role=True)
    train.set_defaults(run=cmd_train)

    tune = commands.add_parser(
        "tune", help="run a Bayesian tuning job over the local search's space and download the chosen model",
        description="Start a SageMaker automatic model tuning job (Bayesian strategy) over training/space.py's "
                    "search space, the one `python -m training.tune` searches, minimising the validation log "
                    "loss that each job prints; then choose as the local search does (the smallest model whose "
                    "validation accuracy is within one standard error of the best job's) and unpack that "
                    "job's model into --out, with tuning.json listing every job.")
    tune.add_argument("--out", default="artifacts-tuned", metavar="DIR",
                      help="where the chosen model is unpacked (default: %(default)s)")
    tune.add_argument("--max-jobs", type=int, default=32, help="training jobs in all (default: %(default)s)")
    tune.add_argument("--max-parallel-jobs", type=int, default=4,
                      help="training jobs at a time (default: %(default)s; your account's quota for the "
                           "instance type bounds it)")
    tune.add_argument("--no-early-stopping", action="store_true",
                      help="let every job run to its end (default: SageMaker stops jobs unlikely to beat the others)")
    tune.add_argument("--seed", type=int, default=1337, help="the tuning job's RandomSeed (default: %(default)s)")
    _job_options(tune, "ml.m5.xlarge", checkpoints=False)
    _aws_options(tune, role=True)
    tune.set_defaults(run=cmd_tune)

    watch = commands.add_parser("watch", help="follow a running job again (after Ctrl-C or --no-wait)",
                                description="Follow a training job (or with --tuning a tuning job) until it "
                                            "ends; with --out, download its (chosen) model as train/tune do.")
    watch.add_argument("name", help="the job's name")
    watch.add_argument("--tuning", action="store_true", help="NAME is a tuning job")
    watch.add_argument("--out", metavar="DIR", help="unpack the model here when the job has completed")
    watch.add_argument("--poll-seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    _aws_options(watch)
    watch.set_defaults(run=cmd_watch)

    stop = commands.add_parser("stop", help="stop a training or tuning job",
                               description="Ask SageMaker to stop a job; billing ends when it reaches Stopped.")
    stop.add_argument("name", help="the job's name")
    stop.add_argument("--tuning", action="store_true", help="NAME is a tuning job (its running jobs stop too)")
    _aws_options(stop)
    stop.set_defaults(run=cmd_stop)

    register = commands.add_parser(
        "register", help="record a model in the model registry, pending approval",
        description="Create a model package in the model package group: model.tar.gz and metrics.json "
                    "uploaded to s3://BUCKET/registry/MODEL_VERSION/, metrics.json as its model-quality "
                    "metrics, model version, featurizer fingerprint and accuracies as its metadata, status "
                    "PendingManualApproval. The folder is checked as `cdk synth` checks a model_dir.")
    register.add_argument("--model-dir", metavar="DIR", help="a training output folder (python -m training --out)")
    register.add_argument("--job", metavar="NAME", help="a completed training job (its model is downloaded first)")
    register.add_argument("--serving-image", help="the model server image URI, recorded as the inference container "
                                                  "(default: the deployed ServerlessSentiment stack's, if any)")
    _aws_options(register)
    register.set_defaults(run=cmd_register)

    for verb, run, meaning in (("approve", cmd_approve, "Approved (fetch --approved takes the newest)"),
                               ("reject", cmd_reject, "Rejected")):
        command = commands.add_parser(verb, help=f"mark a registered model {meaning.split(' ')[0]}",
                                      description=f"Set a model package's approval status to {meaning}.")
        command.add_argument("version", help="model version (e.g. 20261203T1200Z-1a2b3c4d) or package number")
        command.add_argument("--note", help="approval description (default: who set it with what)")
        _aws_options(command)
        command.set_defaults(run=run)

    listing = commands.add_parser("list", help="the registered models: version, status, accuracy, fingerprint",
                                  description="List the model package group's packages, newest first.")
    listing.add_argument("--status", choices=(registry.PENDING, registry.APPROVED, registry.REJECTED),
                         help="only packages with this approval status")
    _aws_options(listing)
    listing.set_defaults(run=cmd_list)

    fetch = commands.add_parser(
        "fetch", help="download a registered model into a folder cdk deploy takes",
        description="Download a package's model.tar.gz and metrics.json and write model.onnx, featurizer.json, "
                    "metrics.json and model.tar.gz into --out, checked as `cdk synth` checks them; then "
                    "`npx cdk deploy -c model_dir=DIR` deploys it with no further AWS call at synth.")
    fetch.add_argument("version", nargs="?", help="model version or package number")
    fetch.add_argument("--approved", action="store_true", help="the newest approved package")
    fetch.add_argument("--out", default="artifacts-approved", metavar="DIR", help="(default: %(default)s)")
    _aws_options(fetch)
    fetch.set_defaults(run=cmd_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    Started.kind = Started.name = None
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        if Started.name is None:
            print("\ninterrupted: no job was started, nothing runs on SageMaker", file=sys.stderr)
        else:
            print(f"\ninterrupted: {Started.kind} job {Started.name} keeps running on SageMaker (and is billed) "
                  f"until it ends; {follow_up(Started.kind or 'training', Started.name)}", file=sys.stderr)
        return INTERRUPTED
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        error = aws.explain(exc)
        print(f"error: {error}", file=sys.stderr)
        return error.code
