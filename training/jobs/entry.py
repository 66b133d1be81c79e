"""What a SageMaker training job runs: ``python -m training`` on the job's folders, plus a summary line.

The prebuilt PyTorch image's training toolkit runs the source archive's ``sagemaker_entry.py``,
which runs this module. SageMaker's folders are the defaults of ``training.train``
(``SM_CHANNEL_TRAINING`` is the data, ``SM_MODEL_DIR`` the output, ``hyperparameters.json`` the
settings, every value a string); two things are added here:

- SageMaker's own keys in hyperparameters.json (``sagemaker_program``, ``sagemaker_submit_directory``,
  ``_tuning_objective_metric``, ...) are dropped before ``training.train`` reads the file, which
  refuses unknown keys; the toolkit also passes the hyperparameters as ``--name value`` arguments,
  which are ignored (the file is the one source);
- after training, one ``final:`` line with the kept model's validation figures and artifact size,
  which the job's metric definitions read (``training.jobs.requests.METRIC_DEFINITIONS``): the
  tuning objective and what the one-standard-error choice needs.

A failure is written to ``/opt/ml/output/failure``, which SageMaker shows as the job's FailureReason.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

CONFIG_DIR = "/opt/ml/input/config"
OUTPUT_DIR = "/opt/ml/output"
MODEL_DIR = "/opt/ml/model"


def own_hyperparameters(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` without SageMaker's keys (``sagemaker_*`` from the toolkit, ``_*`` from tuning jobs)."""
    return {k: v for k, v in raw.items() if not k.startswith(("sagemaker_", "_"))}


def final_line(metrics: dict[str, Any]) -> str:
    """The summary the metric definitions parse: validation loss, accuracy, its n, artifact bytes."""
    validation, sizes = metrics["validation"], metrics["artifacts_bytes"]
    artifact_bytes = sizes["model.onnx"] + sizes["featurizer.json"]
    return (f"final: validation_loss={validation['loss']:.6f} validation_accuracy={validation['accuracy']:.6f} "
            f"validation_n={validation['n']} artifact_bytes={artifact_bytes} model_version={metrics['model_version']}")


def write_failure(reason: str) -> None:
    """SageMaker's FailureReason is the first 1,024 bytes of this file."""
    folder = Path(os.environ.get("SM_OUTPUT_DIR", OUTPUT_DIR))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "failure").write_text(reason[:1024])
    except OSError:
        pass  # outside SageMaker, with nowhere to write: the log has it


def main() -> int:
    from sentiment.featurizer import FeaturizerError
    from training.data import DataError
    from training.train import parse_config, train

    source = Path(os.environ.get("SM_INPUT_CONFIG_DIR", CONFIG_DIR)) / "hyperparameters.json"
    raw = json.loads(source.read_text()) if source.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="hyperparameters-") as folder:
        cleaned = Path(folder) / "hyperparameters.json"
        cleaned.write_text(json.dumps(own_hyperparameters(raw)))
        try:
            config = parse_config(["--hyperparameters", str(cleaned)])
        except SystemExit as exc:  # argparse has printed the reason
            write_failure(f"invalid hyperparameters {json.dumps(own_hyperparameters(raw))}; see the job's log")
            return int(exc.code or 2)
    print(f"training with {json.dumps({k: v for k, v in config.options().items() if k not in ('data', 'out')})}",
          flush=True)
    try:
        metrics = train(config)
    except (DataError, FeaturizerError) as exc:
        write_failure(str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        write_failure(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 1
    print(final_line(metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
