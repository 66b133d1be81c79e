"""Init done ahead of the first request, and what an environment restored from a snapshot renews.

With SnapStart, Lambda runs the function's init once, when a version is published, and starts
every new execution environment from a memory snapshot of it; with provisioned concurrency it
runs init before any request arrives. In both cases the work the first request would otherwise
do (the featurizer read from S3, its term list for explanations, the SageMaker client) is done
here, during init, and is in the snapshot. Lambda's runtime hooks (the ``snapshot_restore_py`` library of its Python
runtimes) then close the pooled connections before the snapshot is taken, and reseed
``random`` (botocore's retry jitter) in each restored environment, so that environments
restored from one snapshot share neither a socket nor a random sequence.
"""

from __future__ import annotations

import os
import random

from aws_lambda_powertools import Logger

from lambda_fn import endpoint
from lambda_fn.validation import ApiError

# AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand", "provisioned-concurrency" or "snap-start".
AHEAD = ("snap-start", "provisioned-concurrency")
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "sentiment-api"))


def prepare() -> None:
    """Load the featurizer and create the SageMaker client, as the first request would.

    A featurizer that cannot be loaded now is not fatal: init still succeeds (a failed
    publish would block the deploy), the cause is logged, and the first request tries again
    and answers 503 naming it, as it does without SnapStart.
    """
    endpoint.sagemaker_runtime()
    try:
        featurizer = endpoint.featurizer(os.environ.get("FEATURIZER_URI"))
    except ApiError as error:
        logger.warning("featurizer not loaded during init; the first request will try again",
                       cause=error.detail or error.message)
        return
    _ = featurizer.vocabulary  # the term list explanations are named from (built once, ~0.1 s)


def before_snapshot() -> None:
    endpoint.close_connections()


def after_restore() -> None:
    random.seed()  # from os.urandom: each restored environment its own sequence


def init_ahead(initialization_type: str | None) -> bool:
    """Prepare during init when Lambda runs it ahead of requests; register the SnapStart hooks.

    Returns whether init was done ahead (on demand, the first request does the work itself).
    """
    if initialization_type not in AHEAD:
        return False
    prepare()
    if initialization_type == "snap-start":
        from snapshot_restore_py import register_after_restore, register_before_snapshot

        register_before_snapshot(before_snapshot)
        register_after_restore(after_restore)
    return True
