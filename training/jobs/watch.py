"""Following a job: one line per status change, then the job's CloudWatch log lines, until it ends.

A job that ends Failed or Stopped raises ``JobError`` with its FailureReason. Ctrl-C raises
``KeyboardInterrupt`` out of here untouched: the command line says that the job keeps running on
SageMaker and how to follow or stop it (nothing is sent to AWS on the user's behalf).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions

from training.jobs.aws import JobError

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = ("Completed", "Failed", "Stopped")
Printer = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


class LogTail:
    """New lines of a training job's log streams (``<job>/algo-N-...``), each stream read forward."""

    def __init__(self, logs: Any, job: str):
        self.logs, self.job = logs, job
        self.tokens: dict[str, str | None] = {}

    def lines(self) -> list[str]:
        found: list[str] = []
        try:
            streams = self.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job}/")
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return found  # no log yet: the instance is still starting
            raise
        for stream in sorted(s["logStreamName"] for s in streams.get("logStreams", [])):
            while True:
                kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
                if self.tokens.get(stream):
                    kwargs["nextToken"] = self.tokens[stream]
                page = self.logs.get_log_events(**kwargs)
                events = page.get("events", [])
                found.extend(e["message"].rstrip("\n") for e in events)
                token = page.get("nextForwardToken")
                if not events or token == self.tokens.get(stream):
                    self.tokens[stream] = token
                    break
                self.tokens[stream] = token
        return found


def wait_for_training_job(sagemaker: Any, logs: Any | None, name: str, *, poll_s: float = 15.0,
                          say: Printer = _print, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Follow training job ``name`` until it ends; its last description when it Completed."""
    tail = LogTail(logs, name) if logs is not None else None
    last: tuple[str, str] | None = None
    while True:
        job = sagemaker.describe_training_job(TrainingJobName=name)
        status = (job["TrainingJobStatus"], job.get("SecondaryStatus", ""))
        if status != last:
            transitions = job.get("SecondaryStatusTransitions") or [{}]
            message = transitions[-1].get("StatusMessage", "")
            say(f"[{name}] {status[0]} / {status[1]}" + (f": {message}" if message else ""))
            last = status
        if tail is not None:
            for line in tail.lines():
                say(f"  {line}")
        if status[0] in TERMINAL:
            break
        sleep(poll_s)
    if job["TrainingJobStatus"] != "Completed":
        reason = job.get("FailureReason") or "no FailureReason given"
        raise JobError(f"training job {name} {job['TrainingJobStatus'].lower()}: {reason}")
    billable = job.get("BillableTimeInSeconds")
    if billable is not None:
        say(f"[{name}] billable time {billable} s on {job['ResourceConfig']['InstanceType']}")
    return job


def wait_for_tuning_job(sagemaker: Any, name: str, *, poll_s: float = 30.0, say: Printer = _print,
                        sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Follow tuning job ``name`` (its status and training-job counts) until it ends."""
    last: tuple[Any, ...] | None = None
    while True:
        job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        counts = job.get("TrainingJobStatusCounters", {})
        best = (job.get("BestTrainingJob") or {}).get("FinalHyperParameterTuningJobObjectiveMetric", {})
        state = (job["HyperParameterTuningJobStatus"], tuple(sorted(counts.items())), best.get("Value"))
        if state != last:
            jobs = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no training job yet"
            line = f"[{name}] {state[0]}: {jobs}"
            if best.get("Value") is not None:
                line += f"; best {best.get('MetricName')} so far {best['Value']:.4f}"
            say(line)
            last = state
        if state[0] in TERMINAL:
            break
        sleep(poll_s)
    if job["HyperParameterTuningJobStatus"] != "Completed":
        reason = job.get("FailureReason") or "no FailureReason given"
        raise JobError(f"tuning job {name} {job['HyperParameterTuningJobStatus'].lower()}: {reason}")
    return job
