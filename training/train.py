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
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from lambda_fn.featurizer import Featurizer, FeaturizerError, FeaturizerSettings
from training.data import DataError, Split, load_imdb, train_validation_split
from training.export import OPSET, export_onnx, model_version, write_model_tarball
from training.metrics import binary_metrics
from training.model import MODEL_KINDS, ModelSettings, SentimentModel, SparseBatch
from training.sparse import SparseRows

SAGEMAKER_HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"


def option(default: Any, help: str) -> Any:
    """A config field with its command-line help."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    # I/O
    data: str | None = option(None, "IMDB archive or aclImdb/ folder (default: $SM_CHANNEL_TRAINING, "
                                    "$IMDB_DATA, else download the official archive once)")
    out: str = option("artifacts", "output folder; $SM_MODEL_DIR when set")
    seed: int = option(1337, "seeds the split, the initialisation and the batch order")
    val_fraction: float = option(0.1, "share of each class of train held out for validation")
    # featurizer, fitted on the training split only
    ngram_max: int = option(2, "longest n-gram counted")
    min_df: int = option(2, "minimum number of training reviews a term must appear in")
    max_features: int = option(100_000, "vocabulary size (featurizer.json must stay <= 5 MB)")
    # model: NB-weighted binary uni+bigrams, L2-normalised, linear (chosen on validation)
    model: str = option("linear", "linear (logistic regression) or mlp (one hidden layer)")
    term_frequency: str = option("binary", "binary (presence) or log (log1p of the count)")
    weighting: str = option("nb", "per-term weight: nb (naive-Bayes log-count ratio), idf or none")
    normalize: bool = option(True, "L2-normalise each review's weighted features")
    hidden: int = option(32, "mlp hidden units")
    dropout: float = option(0.5, "mlp dropout on the hidden layer")
    # optimisation: Adam, early stopping on validation loss
    epochs: int = option(20, "maximum epochs")
    patience: int = option(3, "stop after this many epochs without a better validation loss")
    batch_size: int = option(256, "reviews per step")
    lr: float = option(0.02, "Adam learning rate")
    weight_decay: float = option(0.0, "Adam L2 penalty")
    opset: int = option(OPSET, "ONNX opset of model.onnx")


@dataclass(frozen=True)
class Features:
    """The training and validation splits, featurized: reusable by every run with the same featurizer."""

    featurizer: Featurizer
    train: Split
    validation: Split
    x_train: SparseRows
    x_val: SparseRows


def featurize(config: TrainConfig, train_split: Split, val_split: Split) -> Features:
    """Fit the shared featurizer on the training split only, then featurize both splits."""
    settings = FeaturizerSettings(config.ngram_max, config.min_df, config.max_features)
    featurizer = Featurizer(settings).fit(train_split.texts)
    x_train = SparseRows.featurize(featurizer, train_split.texts, "featurizing train")
    x_val = SparseRows.featurize(featurizer, val_split.texts, "featurizing validation")
    return Features(featurizer, train_split, val_split, x_train, x_val)


def train(
    config: TrainConfig,
    features: Features | None = None,
    *,
    score_test: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline; return the metrics also written to ``out/metrics.json``.

    Hyperparameter search (``training.tune``) passes ``features`` made once per featurizer setting
    and ``score_test=False``: the test split is then never loaded, featurized or scored
    (``metrics["test"]`` is None). ``on_epoch`` sees each epoch's history row; an exception it
    raises (e.g. a pruned trial) ends the run before any artifact is written.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    # -- data -------------------------------------------------------------------------------
    clock = time.perf_counter()
    test_split: Split | None = None
    if features is None:
        imdb = load_imdb(config.data)
        source = str(imdb.source)
        train_split, val_split = train_validation_split(imdb.train, config.val_fraction, config.seed)
        test_split = imdb.test if score_test else None
        print(f"data: {imdb.source} | train {len(train_split):,} | validation {len(val_split):,} "
              f"| test {len(imdb.test):,}{'' if score_test else ' (not scored)'}")
    elif score_test:
        raise ValueError("train(config, features) has no test split to score: pass score_test=False")
    else:
        source = str(config.data)
    timings["load_data"] = time.perf_counter() - clock

    # -- features: fitted on the training split only ----------------------------------------
    clock = time.perf_counter()
    settings = FeaturizerSettings(config.ngram_max, config.min_df, config.max_features)
    if features is None:
        features = featurize(config, train_split, val_split)
    elif features.featurizer.settings != settings:
        raise ValueError(f"features made with {features.featurizer.settings}, config asks for {settings}")
    featurizer, x_train, x_val = features.featurizer, features.x_train, features.x_val
    train_split, val_split = features.train, features.validation
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
        steps = range(0, len(order), config.batch_size)
        bar = tqdm(steps, desc=f"epoch {epoch}/{config.epochs}", leave=False, mininterval=1.0)
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
        if on_epoch is not None:
            on_epoch(h)
        if epoch - best["epoch"] >= config.patience:
            tqdm.write(f"early stop: no better validation loss for {config.patience} epochs")
            break
    model.load_state_dict(best["state"])
    model.eval()
    timings["train"] = time.perf_counter() - clock
    validation = binary_metrics(predict(model, x_val, config.batch_size), np.array(val_split.labels))

    # -- the test split, touched once, for the report (never during a hyperparameter search) --
    test = None
    if test_split is not None:
        clock = time.perf_counter()
        x_test = SparseRows.featurize(featurizer, test_split.texts, "featurizing test")
        test = binary_metrics(predict(model, x_test, config.batch_size), np.array(test_split.labels))
        timings["test"] = time.perf_counter() - clock
    print(f"best epoch {best['epoch']} | validation accuracy {validation['accuracy']:.2%} "
          f"| test accuracy {'not scored' if test is None else format(test['accuracy'], '.2%')}")

    # -- artifacts ------------------------------------------------------------------------------
    clock = time.perf_counter()
    version = model_version(model)
    featurizer_path = featurizer.save(out / "featurizer.json")
    # model.onnx appears last, under its final name, so a half-written run never looks finished.
    partial = export_onnx(model, out / ".model.onnx.partial", version=version,
                          featurizer_fingerprint=featurizer.fingerprint, opset=config.opset)
    write_model_tarball(out / "model.tar.gz", {"model.onnx": partial, "featurizer.json": featurizer_path})
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
        "data": {"source": source, "train": len(train_split), "validation": len(val_split),
                 "test": None if test_split is None else len(test_split)},
        "artifacts_bytes": {name: (out / name).stat().st_size for name in ("featurizer.json", "model.tar.gz")}
        | {"model.onnx": partial.stat().st_size},
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
    chunks = []
    for start in range(0, len(rows), batch_size):
        selection = np.arange(start, min(start + batch_size, len(rows)))
        chunks.append(torch.sigmoid(model.forward_sparse(to_batch(rows, selection))))
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
    parser = argparse.ArgumentParser(prog="python -m training", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--hyperparameters", default=SAGEMAKER_HYPERPARAMETERS, metavar="PATH",
                        help="SageMaker hyperparameters JSON, applied when it exists (default: %(default)s)")
    choices = {"model": MODEL_KINDS, "term_frequency": ("binary", "log"), "weighting": ("nb", "idf", "none")}
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"] + ("" if f.default is None else f" (default: {f.default})")
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            metavar = "PATH" if f.name in ("data", "out") else None
            parser.add_argument(flag, type=kind, default=None, choices=choices.get(f.name), metavar=metavar,
                                help=help_text)
    args = parser.parse_args(argv)

    sagemaker = {"data": os.environ.get("SM_CHANNEL_TRAINING"), "out": os.environ.get("SM_MODEL_DIR")}
    values: dict[str, Any] = {k: v for k, v in sagemaker.items() if v}
    hyperparameters = Path(args.hyperparameters)
    if hyperparameters.is_file():
        try:
            values.update(_coerce_hyperparameters(json.loads(hyperparameters.read_text())))
        except ValueError as exc:
            parser.error(f"{hyperparameters}: {exc}")
    values.update({k: v for k, v in vars(args).items() if v is not None and k != "hyperparameters"})
    config = TrainConfig(**values)
    if problem := _invalid(config):
        parser.error(problem)
    return config


def _invalid(c: TrainConfig) -> str | None:
    """The first setting that cannot work, described; None when all can."""
    if c.model not in MODEL_KINDS:
        return f"unknown model {c.model!r}; choose one of {', '.join(MODEL_KINDS)}"
    if c.term_frequency not in ("binary", "log") or c.weighting not in ("nb", "idf", "none"):
        return f"unknown term_frequency {c.term_frequency!r} or weighting {c.weighting!r}"
    if not 0 < c.val_fraction < 1:
        return f"val_fraction must be between 0 and 1, got {c.val_fraction}"
    if not 0 <= c.dropout < 1:
        return f"dropout must be in [0, 1), got {c.dropout}"
    if c.lr <= 0 or c.weight_decay < 0:
        return f"lr must be > 0 and weight_decay >= 0, got {c.lr} and {c.weight_decay}"
    for name in ("ngram_max", "min_df", "max_features", "hidden", "epochs", "patience", "batch_size"):
        if getattr(c, name) < 1:
            return f"{name} must be at least 1, got {getattr(c, name)}"
    return None


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
    except (DataError, FeaturizerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
