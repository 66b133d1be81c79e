"""Rescore exported artifacts on the IMDB test split with ONNX Runtime alone (no torch).

    python -m training.evaluate --model-dir DIR [--data PATH]

Loads DIR/featurizer.json and DIR/model.onnx exactly as the model server does, scores the
25,000 test reviews, and compares the accuracy with DIR/metrics.json. Exit status: 0 when they
agree within 0.1 percentage point, 1 when they do not, 2 when the artifacts or data are unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sentiment.artifacts import (
    FEATURIZER_FILE,
    METRICS_FILE,
    MODEL_FILE,
    OUTPUT_NAME,
    ArtifactError,
    ModelFolder,
    Tensor,
    check_model_signature,
)
from training.data import DataError, load_imdb
from training.metrics import binary_metrics
from training.sparse import SparseRows

TOLERANCE_POINTS = 0.1


def evaluate(model_dir: str | Path, data: str | Path | None = None, batch_size: int = 256) -> dict:
    """Test-split metrics of the ONNX model in ``model_dir``, computed with onnxruntime."""
    folder = ModelFolder.read(model_dir, files=(MODEL_FILE, FEATURIZER_FILE))  # metrics.json: read by main
    featurizer, onnx_path = folder.featurizer, folder.path / MODEL_FILE
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    check_model_signature(onnx_path, [Tensor(i.name, i.type, i.shape) for i in session.get_inputs()],
                          [Tensor(o.name, o.type, o.shape) for o in session.get_outputs()],
                          session.get_modelmeta().custom_metadata_map, featurizer)
    test = load_imdb(data).test
    rows = SparseRows.featurize(featurizer, test.texts, "featurizing test")
    chunks = []
    for start in range(0, len(rows), batch_size):
        feed = rows.select(np.arange(start, min(start + batch_size, len(rows)))).feed()
        chunks.append(session.run([OUTPUT_NAME], feed)[0])
    probabilities = np.concatenate(chunks)
    return binary_metrics(probabilities, np.array(test.labels))


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=description)
    parser.add_argument("--model-dir", required=True, type=Path, metavar="DIR",
                        help="folder written by `python -m training`")
    parser.add_argument("--data", metavar="PATH",
                        help="IMDB archive or aclImdb/ folder (default: $IMDB_DATA, else the download cache)")
    args = parser.parse_args(argv)
    try:
        metrics = evaluate(args.model_dir, args.data)
        recorded = json.loads((args.model_dir / METRICS_FILE).read_text())["test"]["accuracy"]
    except (OSError, ValueError, KeyError, TypeError) as exc:  # includes FeaturizerError, json errors
        print(f"error: cannot read the artifacts in {args.model_dir}: {exc}", file=sys.stderr)
        return 2
    except (ArtifactError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    difference = abs(metrics["accuracy"] - recorded) * 100
    print(f"test accuracy in metrics.json:  {recorded:.4%}")
    print(f"test accuracy with onnxruntime: {metrics['accuracy']:.4%} "
          f"(ROC AUC {metrics['roc_auc']:.4f}, n={metrics['n']:,})")
    if difference > TOLERANCE_POINTS:
        print(f"MISMATCH: they differ by {difference:.2f} points (tolerance {TOLERANCE_POINTS})",
              file=sys.stderr)
        return 1
    print(f"reproduced: difference {difference:.2f} points (tolerance {TOLERANCE_POINTS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
