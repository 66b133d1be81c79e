"""Train a sentiment model on IMDB and write the serving artifacts; read it top to bottom.

    python -m training --data PATH --out DIR [--model mlp] [--epochs 10] ...

load IMDB → seeded, stratified validation split carved from train → fit the shared featurizer on
the training split only → featurize → fit the in-model term weights on the training split →
Adam, validating every epoch, keeping the weights with the best validation loss (early
stopping) → score the test split once → model.onnx, featurizer.json, metrics.json,
training_curves.png, model.tar.gz.

Also runs as a SageMaker training job: ``SM_CHANNEL_TRAINING`` and ``SM_MODEL_DIR`` are the
default ``--data`` and ``--out``, and ``/opt/ml/input/config/hyperparameters.json`` (when present)
overrides the defaults below; command-line flags override both.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from lambda_fn.featurizer import Featurizer, FeaturizerSettings
from training.data import DataError, load_imdb, train_validation_split
from training.export import OPSET, export_onnx, model_version, write_model_tarball
from training.metrics import binary_metrics
from training.model import MODEL_KINDS, ModelSettings, SentimentModel, SparseBatch
from training.sparse import SparseRows

SAGEMAKER_HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"


@dataclass
class TrainConfig:
    # I/O
    data: str | None = None  # archive or aclImdb/ folder; default $SM_CHANNEL_TRAINING, $IMDB_DATA, else download
    out: str = "artifacts"  # default $SM_MODEL_DIR when set
    seed: int = 1337
    val_fraction: float = 0.1  # 2,500 of the 25,000 training reviews, stratified
    # featurizer (fitted on the training split only)
    ngram_max: int = 2
    min_df: int = 3
    max_features: int = 100_000
    # model: NB-weighted binary uni+bigrams, L2-normalised (chosen on validation accuracy)
    model: str = "linear"  # linear | mlp
    term_frequency: str = "binary"  # binary | log
    weighting: str = "nb"  # nb | idf | none
    normalize: bool = True
    hidden: int = 32
    dropout: float = 0.5
    # optimisation
    epochs: int = 20
    patience: int = 3  # stop after this many epochs without a better validation loss
    batch_size: int = 256
    lr: float = 0.02
    weight_decay: float = 0.0
    opset: int = OPSET


def train(config: TrainConfig) -> dict[str, Any]:
    """Run the whole pipeline; return the metrics also written to ``out/metrics.json``."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    # -- data -------------------------------------------------------------------------------
    clock = time.perf_counter()
    imdb = load_imdb(config.data)
    train_split, val_split = train_validation_split(imdb.train, config.val_fraction, config.seed)
    print(f"data: {imdb.source} | train {len(train_split):,} | validation {len(val_split):,} | test {len(imdb.test):,}")
    timings["load_data"] = time.perf_counter() - clock

    # -- features: fitted on the training split only ----------------------------------------
    clock = time.perf_counter()
    settings = FeaturizerSettings(config.ngram_max, config.min_df, config.max_features)
    featurizer = Featurizer(settings).fit(train_split.texts)
    x_train = SparseRows.featurize(featurizer, train_split.texts, "featurizing train")
    x_val = SparseRows.featurize(featurizer, val_split.texts, "featurizing validation")
    y_train = torch.tensor(train_split.labels, dtype=torch.float32)
    print(f"featurizer: vocabulary {featurizer.vocab_size:,} | fingerprint {featurizer.fingerprint[:12]}")
    timings["featurize"] = time.perf_counter() - clock

    # -- model --------------------------------------------------------------------------------
    model = SentimentModel(
        featurizer.vocab_size,
        ModelSettings(
            kind=config.model,  # type: ignore[arg-type]
            term_frequency=config.term_frequency,  # type: ignore[arg-type]
            weighting=config.weighting,  # type: ignore[arg-type]
            normalize=config.normalize,
            hidden=config.hidden,
            dropout=config.dropout,
        ),
    )
    model.fit_term_weights(to_batch(x_train, np.arange(len(x_train))), y_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {config.model} | {n_params:,} parameters")

    # -- training loop: validate every epoch, keep the best by validation loss ---------------
    clock = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    best = {"loss": float("inf"), "epoch": 0, "state": copy.deepcopy(model.state_dict())}
    for epoch in range(1, config.epochs + 1):
        epoch_clock = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train), generator=generator).numpy()
        total_loss, correct = 0.0, 0
        bar = tqdm(range(0, len(order), config.batch_size), desc=f"epoch {epoch}/{config.epochs}", leave=False, mininterval=1.0)
        for start in bar:
            rows = order[start : start + config.batch_size]
            targets = y_train[rows]
            logits = model.forward_sparse(to_batch(x_train, rows))
            loss = F.binary_cross_entropy_with_logits(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(rows)
            correct += int(((logits >= 0) == targets.bool()).sum())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        val = binary_metrics(predict(model, x_val, config.batch_size), np.array(val_split.labels))
        history.append(
            {
                "epoch": epoch,
                "train_loss": total_loss / len(order),
                "train_accuracy": correct / len(order),
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
                "val_roc_auc": val["roc_auc"],
                "seconds": time.perf_counter() - epoch_clock,
            }
        )
        improved = val["loss"] < best["loss"]
        if improved:
            best = {"loss": val["loss"], "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        h = history[-1]
        tqdm.write(
            f"epoch {epoch:2d} | train loss {h['train_loss']:.4f} acc {h['train_accuracy']:.2%} | "
            f"val loss {h['val_loss']:.4f} acc {h['val_accuracy']:.2%} auc {h['val_roc_auc']:.4f} | "
            f"{h['seconds']:.1f}s{' *' if improved else ''}"
        )
        if epoch - best["epoch"] >= config.patience:
            tqdm.write(f"early stop: no better validation loss for {config.patience} epochs")
            break
    model.load_state_dict(best["state"])
    model.eval()
    timings["train"] = time.perf_counter() - clock
    validation = binary_metrics(predict(model, x_val, config.batch_size), np.array(val_split.labels))

    # -- the test split, touched once, for the report -----------------------------------------
    clock = time.perf_counter()
    x_test = SparseRows.featurize(featurizer, imdb.test.texts, "featurizing test")
    test = binary_metrics(predict(model, x_test, config.batch_size), np.array(imdb.test.labels))
    timings["test"] = time.perf_counter() - clock
    print(f"best epoch {best['epoch']} | validation accuracy {validation['accuracy']:.2%} | test accuracy {test['accuracy']:.2%}")

    # -- artifacts ------------------------------------------------------------------------------
    clock = time.perf_counter()
    version = model_version(model)
    featurizer.save(out / "featurizer.json")
    # model.onnx appears last, under its final name, so a half-written run never looks finished.
    partial = export_onnx(
        model, out / ".model.onnx.partial", version=version, featurizer_fingerprint=featurizer.fingerprint, opset=config.opset
    )
    write_model_tarball(out / "model.tar.gz", {"model.onnx": partial, "featurizer.json": out / "featurizer.json"})
    plot_curves(history, best["epoch"], out / "training_curves.png")
    timings["export"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started
    metrics = {
        "model_version": version,
        "featurizer_fingerprint": featurizer.fingerprint,
        "model_kind": config.model,
        "vocab_size": featurizer.vocab_size,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "validation": validation,
        "test": test,
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "history": history,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "data": {"source": str(imdb.source), "train": len(train_split), "validation": len(val_split), "test": len(imdb.test)},
        "artifacts_bytes": {"model.onnx": partial.stat().st_size, "featurizer.json": (out / "featurizer.json").stat().st_size},
        "config": asdict(config),
        "torch_version": torch.__version__,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(partial, out / "model.onnx")
    print(f"wrote {out}/: model.onnx, featurizer.json, metrics.json, training_curves.png, model.tar.gz")
    print(f"model version {version} | total {timings['total']:.1f}s")
    return metrics


# -- helpers ------------------------------------------------------------------------------------
def to_batch(rows: SparseRows, selection: np.ndarray) -> SparseBatch:
    indices, offsets, counts = rows.select(selection)
    return SparseBatch(torch.from_numpy(indices), torch.from_numpy(offsets), torch.from_numpy(counts))


@torch.no_grad()
def predict(model: SentimentModel, rows: SparseRows, batch_size: int) -> np.ndarray:
    """Probabilities of "positive" for every row, in order, in evaluation mode."""
    model.eval()
    chunks = [
        torch.sigmoid(model.forward_sparse(to_batch(rows, np.arange(start, min(start + batch_size, len(rows))))))
        for start in range(0, len(rows), batch_size)
    ]
    return torch.cat(chunks).numpy()


def plot_curves(history: list[dict[str, float]], best_epoch: int, path: Path) -> None:
    """Loss and accuracy per epoch, training vs validation, the kept epoch marked."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, title in ((axes[0], "loss", "log loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], marker="o", label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], marker="o", label="validation")
        ax.axvline(best_epoch, color="grey", linestyle="--", label=f"kept (epoch {best_epoch})")
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("IMDB sentiment: training curves")
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- configuration: defaults < SageMaker hyperparameters.json < command-line flags ---------------
def parse_config(argv: Sequence[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hyperparameters", default=SAGEMAKER_HYPERPARAMETERS, metavar="PATH",
        help="SageMaker-style JSON of hyperparameters, applied when the file exists (default: %(default)s)",
    )
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            choices = {"model": MODEL_KINDS, "term_frequency": ("binary", "log"), "weighting": ("nb", "idf", "none")}
            parser.add_argument(flag, type=kind, default=None, choices=choices.get(f.name),
                                help=f"default: {getattr(defaults, f.name)}")
    args = parser.parse_args(argv)

    values: dict[str, Any] = {"data": os.environ.get("SM_CHANNEL_TRAINING"), "out": os.environ.get("SM_MODEL_DIR")}
    values = {k: v for k, v in values.items() if v}
    hyperparameters = Path(args.hyperparameters)
    if hyperparameters.is_file():
        try:
            values.update(_coerce_hyperparameters(json.loads(hyperparameters.read_text())))
        except ValueError as exc:
            parser.error(f"{hyperparameters}: {exc}")
    values.update({k: v for k, v in vars(args).items() if v is not None and k != "hyperparameters"})
    config = TrainConfig(**values)
    if config.model not in MODEL_KINDS:
        parser.error(f"unknown model {config.model!r}; choose one of {', '.join(MODEL_KINDS)}")
    return config


def _coerce_hyperparameters(raw: Any) -> dict[str, Any]:
    """SageMaker passes every hyperparameter as a string; convert each to its field's type."""
    if not isinstance(raw, dict):
        raise ValueError("hyperparameters must be a JSON object")
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name.startswith("sagemaker_"):
            continue  # SageMaker's own bookkeeping keys
        if name not in types:
            raise ValueError(f"unknown hyperparameter {key!r}; known: {', '.join(types)}")
        kind, text = types[name], str(value).strip()
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"hyperparameter {key!r} must be true or false, got {value!r}")
            values[name] = text.lower() in ("true", "1")
        elif kind in ("int", "float"):
            try:
                values[name] = int(text) if kind == "int" else float(text)
            except ValueError:
                raise ValueError(f"hyperparameter {key!r} must be a number ({kind}), got {value!r}") from None
        else:
            values[name] = text
    return values


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        train(config)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
