"""``python -m training.jobs``: SageMaker training and tuning jobs and the model registry (see training/jobs/cli.py)."""

import sys

from training.jobs.cli import main

sys.exit(main())
