"""Model inference per review: the dense ONNX input contract against the same weights on sparse input.

``model.onnx`` takes dense raw counts ``[batch, vocab_size]``: at a 100k vocabulary one review is a
400 KB float32 row, nearly all zeros. On IMDB test reviews, one thread each, this times
- dense (the contract): sparse counts → dense rows (``SparseRows.dense``) → ONNX Runtime;
- baseline: the same weights on the sparse counts directly (training's ``forward_sparse``, torch
  ``embedding_bag``), which never materialises the zeros.
Both are checked to give the same probabilities before anything is timed.

    python -m benchmarks.bench_inference [--model-dir artifacts] [--data PATH] [--reviews 2000]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

from benchmarks.common import parser, setup
from training.model import ModelSettings, SentimentModel
from training.sparse import SparseRows
from training.train import to_batch

BATCHES = (1, 64)


def load_torch_model(model_dir: Path) -> SentimentModel:
    """The trained model in torch: settings from metrics.json, weights from model.onnx's initializers."""
    config = json.loads((model_dir / "metrics.json").read_text())["config"]
    weights = {i.name.removeprefix("model."): numpy_helper.to_array(i)
               for i in onnx.load(model_dir / "model.onnx").graph.initializer}
    settings = ModelSettings(kind=config["model"], term_frequency=config["term_frequency"],
                             weighting=config["weighting"], normalize=config["normalize"],
                             hidden=config["hidden"], dropout=config["dropout"])
    model = SentimentModel(len(weights["term_weight"]), settings).eval()
    model.load_state_dict({k: torch.from_numpy(weights[k].copy()) for k in model.state_dict()})
    return model


def per_review_ms(step: Callable[[np.ndarray], object], n_rows: int, batch: int) -> float:
    """Median over 3 passes of the time per review of ``step`` over all rows in batches."""
    chunks = [np.arange(s, min(s + batch, n_rows)) for s in range(0, n_rows, batch)]
    step(chunks[0])  # warm-up
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        for rows in chunks:
            step(rows)
        passes.append((time.perf_counter() - start) / n_rows * 1e3)
    return statistics.median(passes)


def main() -> None:
    args = parser(__doc__).parse_args()
    if not (args.model_dir / "model.onnx").is_file():
        raise SystemExit(f"no {args.model_dir}/model.onnx: train first with "
                         f"python -m training --out {args.model_dir}")
    featurizer, reviews = setup(args)
    rows = SparseRows.featurize(featurizer, reviews, "featurizing sample")
    torch.set_num_threads(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    onnx_path = str(args.model_dir / "model.onnx")
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    model = load_torch_model(args.model_dir)

    def densify(selection: np.ndarray) -> np.ndarray:
        return rows.dense(selection)

    def dense_onnx(selection: np.ndarray) -> np.ndarray:
        return session.run(["probability"], {"counts": rows.dense(selection)})[0]

    @torch.inference_mode()
    def sparse_torch(selection: np.ndarray) -> np.ndarray:
        return torch.sigmoid(model.forward_sparse(to_batch(rows, selection))).numpy()

    everything = np.arange(len(rows))
    gap = np.abs(dense_onnx(everything) - sparse_torch(everything)).max()
    if gap > 1e-5:
        raise SystemExit(f"ONNX Runtime and the sparse torch path disagree by up to {gap:.2e}")

    print(f"model {args.model_dir}/model.onnx ({model.settings.kind}, vocabulary {featurizer.vocab_size:,}), "
          f"{len(rows):,} IMDB test reviews, one thread; outputs agree within {gap:.1e}")
    print("| batch | densify (ms/review) | dense + onnxruntime (ms/review) "
          "| sparse torch baseline (ms/review) | dense / baseline |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for batch in BATCHES:
        build = per_review_ms(densify, len(rows), batch)
        dense = per_review_ms(dense_onnx, len(rows), batch)
        sparse = per_review_ms(sparse_torch, len(rows), batch)
        print(f"| {batch} | {build:.3f} | {dense:.3f} | {sparse:.3f} | {dense / sparse:.2f}x |")


if __name__ == "__main__":
    main()
