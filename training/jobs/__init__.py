"""Training, tuning and the model registry on SageMaker, with boto3 only: ``python -m training.jobs --help``.

- ``cli``: the command line (train, tune, watch, stop, register, approve, list, fetch);
- ``requests``: the CreateTrainingJob / CreateHyperParameterTuningJob requests, built as plain dicts;
- ``source``: the source archive the job runs (this repository's ``training`` and ``sentiment``);
- ``entry``: what runs inside the training container;
- ``watch``: status lines and CloudWatch log lines while a job runs;
- ``registry``: model packages in a model package group, approval, and fetching a deployable folder;
- ``aws``: sessions, the one-line errors, the training stack's outputs, S3 transfers.
"""
