"""The training entry point run the way a SageMaker training job runs it, on the tiny fixture.

The source archive ``python -m training.jobs`` uploads is unpacked into an ``/opt/ml``-style
tree in a temp dir and its ``sagemaker_entry.py`` run from there (not from the repository, so the
archive must be complete), with the ``SM_*`` variables SageMaker's training toolkit sets, a
``hyperparameters.json`` of strings holding SageMaker's own keys as well, and the
``--name value`` arguments the toolkit adds. The model folder it leaves is what SageMaker
uploads; the ``model.tar.gz`` inside it is what the endpoint unpacks into /opt/ml/model and loads.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sentiment.artifacts import DEPLOYED_FILES, OPTIONAL_SERVED_FILES, SERVED_FILES, ModelFolder
from training.jobs.registry import unpack_job_output
from training.jobs.requests import METRIC_DEFINITIONS
from training.jobs.source import ENTRY_SCRIPT, build_archive

HYPERPARAMETERS = {  # as SageMaker writes them: every value a string
    "val_fraction": "0.2", "min_df": "1", "epochs": "4", "patience": "2", "batch_size": "8", "lr": "0.05",
    "normalize": "true",
    # the training toolkit's keys, and the one a tuning job adds
    "sagemaker_program": ENTRY_SCRIPT, "sagemaker_submit_directory": "s3://bucket/code/0123/sourcedir.tar.gz",
    "sagemaker_region": "eu-west-1", "sagemaker_container_log_level": "20",
    "_tuning_objective_metric": "validation:loss",
}


def opt_ml(root: Path, fixture_archive: Path, hyperparameters: dict[str, str]) -> dict[str, str]:
    """/opt/ml under ``root``: code, input/config, input/data/training, model, output; the SM_* variables."""
    ml = root / "opt" / "ml"
    code = ml / "code"
    code.mkdir(parents=True)
    data, _ = build_archive()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(code, filter="data")
    channel = ml / "input" / "data" / "training"
    channel.mkdir(parents=True)
    shutil.copy(fixture_archive, channel / fixture_archive.name)
    config = ml / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"training": {"TrainingInputMode": "File"}}))
    for folder in ("model", "output/data", "checkpoints"):
        (ml / folder).mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "IMDB_")) and k != "PYTHONPATH"}
    return env | {
        "SM_MODEL_DIR": str(ml / "model"), "SM_CHANNEL_TRAINING": str(channel), "SM_CHANNELS": '["training"]',
        "SM_INPUT_CONFIG_DIR": str(config), "SM_OUTPUT_DIR": str(ml / "output"),
        "SM_OUTPUT_DATA_DIR": str(ml / "output" / "data"), "SM_HPS": json.dumps(hyperparameters),
        "SM_CURRENT_HOST": "algo-1", "SM_HOSTS": '["algo-1"]', "SM_NUM_CPUS": "2",
        "XDG_CACHE_HOME": str(root / "cache"), "MPLBACKEND": "Agg",
    }


def run_entry(root: Path, env: dict[str, str], hyperparameters: dict[str, str]) -> subprocess.CompletedProcess:
    """The toolkit's command: ``python sagemaker_entry.py --name value ...`` in /opt/ml/code."""
    toolkit_args = [word for k, v in hyperparameters.items() if not k.startswith(("sagemaker_", "_"))
                    for word in (f"--{k}", v)]
    return subprocess.run([sys.executable, ENTRY_SCRIPT, *toolkit_args], cwd=root / "opt" / "ml" / "code",
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_sagemaker_shaped_run_leaves_the_model_the_endpoint_loads(fixture_archive: Path, tmp_path: Path) -> None:
    env = opt_ml(tmp_path, fixture_archive, HYPERPARAMETERS)
    result = run_entry(tmp_path, env, HYPERPARAMETERS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    model_dir = Path(env["SM_MODEL_DIR"])

    # The hyperparameters (strings) reached training.train, converted; the data came from the channel.
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert {k: metrics["config"][k] for k in ("val_fraction", "min_df", "epochs", "patience", "batch_size", "lr")} == {
        "val_fraction": 0.2, "min_df": 1, "epochs": 4, "patience": 2, "batch_size": 8, "lr": 0.05}
    assert metrics["data"]["source"].endswith("input/data/training/aclImdb_tiny.tar.gz")
    assert metrics["test"] is not None  # a training job scores the test split, as python -m training does

    # The metric definitions find the kept model's figures in the job's log (stdout goes to CloudWatch).
    found = {d["Name"]: re.findall(d["Regex"], result.stdout) for d in METRIC_DEFINITIONS}
    assert float(found["validation:loss"][-1]) == pytest.approx(metrics["validation"]["loss"], abs=1e-6)
    assert float(found["validation:accuracy"][-1]) == pytest.approx(metrics["validation"]["accuracy"], abs=1e-6)
    assert int(found["validation:n"][-1]) == metrics["validation"]["n"] == 4
    sizes = metrics["artifacts_bytes"]
    assert int(found["artifact:bytes"][-1]) == sizes["model.onnx"] + sizes["featurizer.json"]
    assert len(found["validation:loss"]) == metrics["epochs_run"] + 1  # every epoch, then the kept model

    # model.tar.gz: model.onnx and featurizer.json at its root (explain.onnx when written), no torch checkpoint.
    with tarfile.open(model_dir / "model.tar.gz") as archive:
        names = {m.name for m in archive.getmembers()}
        assert set(SERVED_FILES) <= names <= set(SERVED_FILES) | set(OPTIONAL_SERVED_FILES)
        hosting = tmp_path / "hosting" / "opt" / "ml" / "model"  # where the endpoint unpacks it
        archive.extractall(hosting, filter="data")
    from serving.model import Model

    served = Model.load(hosting)
    assert served.version == metrics["model_version"]
    assert served.fingerprint == metrics["featurizer_fingerprint"]

    # SageMaker uploads /opt/ml/model as the job's model.tar.gz; unpacked, it is a folder cdk deploys.
    job_output = tmp_path / "job-output.tar.gz"
    with tarfile.open(job_output, "w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, path.name)
    deployable = unpack_job_output(job_output, tmp_path / "deployable")
    assert deployable.version == metrics["model_version"]
    assert set(DEPLOYED_FILES) <= {p.name for p in (tmp_path / "deployable").iterdir()}
    assert ModelFolder.read(tmp_path / "deployable").featurizer_fingerprint == metrics["featurizer_fingerprint"]
    assert not (Path(env["SM_OUTPUT_DIR"]) / "failure").exists()


def test_a_bad_hyperparameter_fails_the_job_with_its_reason(fixture_archive: Path, tmp_path: Path) -> None:
    hyperparameters = HYPERPARAMETERS | {"epochs": "many"}
    env = opt_ml(tmp_path, fixture_archive, hyperparameters)
    result = run_entry(tmp_path, env, hyperparameters)
    assert result.returncode != 0
    assert "hyperparameter 'epochs' must be a number" in result.stderr
    failure = (Path(env["SM_OUTPUT_DIR"]) / "failure").read_text()  # SageMaker's FailureReason
    assert failure.startswith("invalid hyperparameters") and '"epochs": "many"' in failure


def test_missing_data_fails_the_job_with_its_reason(fixture_archive: Path, tmp_path: Path) -> None:
    env = opt_ml(tmp_path, fixture_archive, HYPERPARAMETERS)
    for path in Path(env["SM_CHANNEL_TRAINING"]).iterdir():
        path.unlink()
    result = run_entry(tmp_path, env, HYPERPARAMETERS)
    assert result.returncode == 2
    failure = (Path(env["SM_OUTPUT_DIR"]) / "failure").read_text()
    assert "IMDB" in failure and "input/data/training" in failure, failure


def test_the_source_archive_is_deterministic_and_complete() -> None:
    first, digest = build_archive()
    assert build_archive() == (first, digest)
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as archive:
        names = archive.getnames()
        requirements = archive.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert ENTRY_SCRIPT in names and "training/train.py" in names and "sentiment/featurizer.py" in names
    assert "training/jobs/entry.py" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    pinned = {line.split("==")[0] for line in requirements.split()}
    assert {"onnx", "onnxscript", "tqdm", "matplotlib"} <= pinned
    assert not pinned & {"torch", "numpy"}  # the image's own: a PyPI torch is a multi-GB CUDA build
