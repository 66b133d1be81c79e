"""Train a sentiment model on IMDB and write the serving artifacts; read it top to bottom.

    python -m training --data PATH --out DIR [--model mlp] [--epochs 10] ...

load IMDB → seeded, stratified validation split carved from train → fit the shared featurizer on
the training split only → featurize → fit the in-model term weights on the training split →
Adam, validating every epoch, keeping the weights with the best validation loss (early
stopping) → the uncertain band and the drift baseline on the validation split → score the test
split once → model.onnx, explain.onnx, featurizer.json, metrics.json, training_curves.png,
model.tar.gz, and the torch checkpoint model.pt (never in model.tar.gz).

The file reads in that order: the configuration, ``train()`` (the phases, the loop in plain
sight), the phase functions it calls, then the command line.

Also runs as a SageMaker training job: ``SM_CHANNEL_TRAINING`` and ``SM_MODEL_DIR`` are the
default ``--data`` and ``--out``, and ``/opt/ml/input/config/hyperparameters.json`` (when present)
overrides the defaults below; command-line flags override both.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from sentiment import drift
from sentiment.artifacts import ARCHIVE_FILE, CHECKPOINT_FILE, EXPLAIN_FILE, FEATURIZER_FILE, METRICS_FILE, MODEL_FILE
from sentiment.featurizer import Featurizer, FeaturizerError, FeaturizerSettings
from sentiment.wire import THRESHOLD
from training.checkpoint import save_checkpoint
from training.data import DataError, Split, load_imdb, train_validation_split
from training.export import OPSET, export_explainer, export_onnx, model_version, write_model_tarball
from training.metrics import binary_metrics, uncertain_band
from training.model import CHOICES, ModelSettings, SentimentModel, SparseBatch
from training.sparse import SparseRows

SAGEMAKER_HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"


# -- configuration ---------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Every setting of a run; the featurizer's and the model's are their own settings objects."""

    # I/O and the validation split
    data: str | None = None
    out: str = "artifacts"
    seed: int = 1337
    val_fraction: float = 0.1
    # featurizer, fitted on the training split only
    featurizer: FeaturizerSettings = field(
        default_factory=lambda: FeaturizerSettings(ngram_max=2, min_df=2, max_features=100_000))
    # model: NB-weighted binary uni+bigrams, L2-normalised, linear (chosen on validation)
    model: ModelSettings = field(
        default_factory=lambda: ModelSettings(kind="linear", term_frequency="binary", weighting="nb",
                                              normalize=True, hidden=32, dropout=0.5))
    # optimisation: Adam, early stopping on validation loss
    epochs: int = 20
    patience: int = 3
    batch_size: int = 256
    lr: float = 0.02
    weight_decay: float = 0.0
    opset: int = OPSET

    def options(self) -> dict[str, Any]:
        """Every option's value under its name, flat, in ``OPTIONS`` order: the form that
        hyperparameters.json takes, metrics.json's ``"config"`` and the search's parameters."""
        return {o.name: functools.reduce(getattr, o.path.split("."), self) for o in OPTIONS}

    def with_options(self, **values: Any) -> TrainConfig:
        """A copy with options replaced by name, e.g. ``config.with_options(model="mlp", min_df=1)``."""
        paths = {o.name: o.path for o in OPTIONS}
        if unknown := [name for name in values if name not in paths]:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(paths)}")
        changes: dict[str, dict[str, Any]] = defaultdict(dict)
        for name, value in values.items():
            section, _, attribute = paths[name].rpartition(".")
            changes[section][attribute] = value
        nested = {section: replace(getattr(self, section), **attributes)
                  for section, attributes in changes.items() if section}
        return replace(self, **changes[""], **nested)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (what model.pt stores); ``from_dict`` turns it back into this config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        return cls(**{**values, "featurizer": FeaturizerSettings(**values["featurizer"]),
                      "model": ModelSettings(**values["model"])})


class Option(NamedTuple):
    """One setting as the command line (``--name-with-dashes``) and hyperparameters.json name it."""

    name: str
    path: str  # where it lives in TrainConfig
    help: str

    @property
    def choices(self) -> tuple[str, ...] | None:
        section, _, attribute = self.path.rpartition(".")
        return CHOICES.get(attribute) if section == "model" else None


OPTIONS: tuple[Option, ...] = (
    Option("data", "data", "IMDB archive or aclImdb/ folder (default: $SM_CHANNEL_TRAINING, "
                           "$IMDB_DATA, else download the official archive once)"),
    Option("out", "out", "output folder; $SM_MODEL_DIR when set"),
    Option("seed", "seed", "seeds the split, the initialisation and the batch order"),
    Option("val_fraction", "val_fraction", "share of each class of train held out for validation"),
    Option("ngram_max", "featurizer.ngram_max", "longest n-gram counted"),
    Option("min_df", "featurizer.min_df", "minimum number of training reviews a term must appear in"),
    Option("max_features", "featurizer.max_features", "vocabulary size (featurizer.json must stay <= 5 MB)"),
    Option("model", "model.kind", "linear (logistic regression) or mlp (one hidden layer)"),
    Option("term_frequency", "model.term_frequency", "binary (presence) or log (log1p of the count)"),
    Option("weighting", "model.weighting", "per-term weight: nb (naive-Bayes log-count ratio), idf or none"),
    Option("normalize", "model.normalize", "L2-normalise each review's weighted features"),
    Option("hidden", "model.hidden", "mlp hidden units"),
    Option("dropout", "model.dropout", "mlp dropout on the hidden layer"),
    Option("epochs", "epochs", "maximum epochs"),
    Option("patience", "patience", "stop after this many epochs without a better validation loss"),
    Option("batch_size", "batch_size", "reviews per step"),
    Option("lr", "lr", "Adam learning rate"),
    Option("weight_decay", "weight_decay", "Adam L2 penalty"),
    Option("opset", "opset", "ONNX opset of model.onnx"),
)


@dataclass(frozen=True)
class Features:
    """The training and validation splits, featurized: reusable by every run with the same featurizer."""

    featurizer: Featurizer
    train: Split
    validation: Split
    x_train: SparseRows
    x_val: SparseRows


@dataclass(frozen=True)
class Splits:
    """Where the reviews came from and the splits of this run; ``test`` is None when not scored."""

    source: str
    train: Split
    validation: Split
    test: Split | None


class Best(NamedTuple):
    """The kept epoch: the lowest validation loss so far and a copy of its weights."""

    loss: float
    epoch: int
    state: dict[str, torch.Tensor]


# -- the run ----------------------------------------------------------------------------------------
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

    with timed(timings, "load_data"):
        splits = load_splits(config, features, score_test)
    with timed(timings, "featurize"):
        features = fitted_features(config, splits, features)
        y_train = torch.tensor(features.train.labels, dtype=torch.float32)
    model = build_model(config.model, features, y_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    # -- the training loop: validate every epoch, keep the best weights by validation loss -------
    with timed(timings, "train"):
        generator = torch.Generator().manual_seed(config.seed)  # the batch order
        history: list[dict[str, float]] = []
        best = Best(math.inf, 0, copy.deepcopy(model.state_dict()))
        for epoch in range(1, config.epochs + 1):
            clock = time.perf_counter()
            train_loss, train_accuracy = train_epoch(model, optimizer, features.x_train, y_train, generator,
                                                     config.batch_size, f"epoch {epoch}/{config.epochs}")
            val = score(model, features.x_val, features.validation, config.batch_size)
            history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
                            "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                            "val_roc_auc": val["roc_auc"], "seconds": time.perf_counter() - clock})
            improved = val["loss"] < best.loss
            if improved:
                best = Best(val["loss"], epoch, copy.deepcopy(model.state_dict()))
            print_epoch(history[-1], improved)
            if on_epoch is not None:
                on_epoch(history[-1])
            if epoch - best.epoch >= config.patience:
                tqdm.write(f"early stop: no better validation loss for {config.patience} epochs")
                break
        model.load_state_dict(best.state)
        model.eval()
    val_probabilities = probabilities(model, features.x_val, config.batch_size)
    validation = binary_metrics(val_probabilities, np.array(features.validation.labels))
    # -- on the validation split too: where the model is unsure, and the drift baseline -----------
    band = uncertain_band(val_probabilities, np.array(features.validation.labels))
    baseline = drift_baseline(features.featurizer, features.validation.texts, val_probabilities)
    print(f"uncertain band [{band['low']:.3f}, {band['high']:.3f}] ({band['share_inside']:.1%} of validation) "
          f"| baseline: {baseline['length']['mean']:.0f} tokens, OOV {baseline['oov_rate']['mean']:.2%}, "
          f"{baseline['positive_rate']:.1%} predicted positive")

    # -- the test split, touched once, for the report (never during a hyperparameter search) ------
    test = None
    if splits.test is not None:
        with timed(timings, "test"):
            test = score_test_split(model, features.featurizer, splits.test, config.batch_size)
    print(f"best epoch {best.epoch} | validation accuracy {validation['accuracy']:.2%} "
          f"| test accuracy {'not scored' if test is None else format(test['accuracy'], '.2%')}")

    # -- artifacts and metrics --------------------------------------------------------------------
    with timed(timings, "export"):
        version, partial = write_artifacts(out, config, model, features.featurizer, history, best.epoch,
                                           (band["low"], band["high"]))
    timings["total"] = time.perf_counter() - started
    metrics = summarize(config, splits, features.featurizer, version=version, validation=validation,
                        test=test, history=history, best_epoch=best.epoch, timings=timings,
                        sizes=artifact_sizes(out, partial), band=band, baseline=baseline)
    publish(out, metrics, partial)
    print(f"model version {version} | total {timings['total']:.1f}s")
    return metrics


# -- the phases, in the order train() calls them ---------------------------------------------------
@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the seconds the block takes as ``timings[name]``."""
    clock = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - clock


def load_splits(config: TrainConfig, features: Features | None, score_test: bool) -> Splits:
    """IMDB and the seeded validation split; with ``features``, the splits they were made from."""
    if features is not None:
        if score_test:
            raise ValueError("train(config, features) has no test split to score: pass score_test=False")
        return Splits(str(config.data), features.train, features.validation, None)
    imdb = load_imdb(config.data)
    train_split, val_split = train_validation_split(imdb.train, config.val_fraction, config.seed)
    print(f"data: {imdb.source} | train {len(train_split):,} | validation {len(val_split):,} "
          f"| test {len(imdb.test):,}{'' if score_test else ' (not scored)'}")
    return Splits(str(imdb.source), train_split, val_split, imdb.test if score_test else None)


def drift_baseline(featurizer: Featurizer, texts: Sequence[str], probabilities: np.ndarray) -> dict[str, Any]:
    """metrics.json's ``baseline`` (``sentiment.drift``): review lengths in tokens, out-of-vocabulary
    rates, probabilities and the predicted-positive rate of the validation reviews."""
    measured = [featurizer.transform_measured(text)[1:] for text in texts]
    return drift.baseline([tokens for tokens, _ in measured], [drift.oov_rate(*m) for m in measured],
                          probabilities.tolist(), THRESHOLD)


def featurize(config: TrainConfig, train_split: Split, val_split: Split) -> Features:
    """Fit the shared featurizer on the training split only, then featurize both splits."""
    featurizer = Featurizer(config.featurizer).fit(train_split.texts)
    x_train = SparseRows.featurize(featurizer, train_split.texts, "featurizing train")
    x_val = SparseRows.featurize(featurizer, val_split.texts, "featurizing validation")
    return Features(featurizer, train_split, val_split, x_train, x_val)


def fitted_features(config: TrainConfig, splits: Splits, features: Features | None) -> Features:
    """``featurize`` the splits, or check that the given ``features`` match the config."""
    if features is None:
        features = featurize(config, splits.train, splits.validation)
    elif features.featurizer.settings != config.featurizer:
        raise ValueError(f"features made with {features.featurizer.settings}, config asks for {config.featurizer}")
    featurizer = features.featurizer
    print(f"featurizer: vocabulary {featurizer.vocab_size:,} | fingerprint {featurizer.fingerprint[:12]}")
    return features


def build_model(settings: ModelSettings, features: Features, y_train: torch.Tensor) -> SentimentModel:
    """A fresh model (seeded initialisation) with its term weights fitted on the training split."""
    model = SentimentModel(features.featurizer.vocab_size, settings)
    model.fit_term_weights(to_batch(features.x_train, np.arange(len(features.x_train))), y_train)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {settings.kind} | {n_params:,} parameters")
    return model


def train_epoch(
    model: SentimentModel,
    optimizer: torch.optim.Optimizer,
    rows: SparseRows,
    labels: torch.Tensor,
    generator: torch.Generator,
    batch_size: int,
    desc: str,
) -> tuple[float, float]:
    """One pass over the training rows in a seeded random order; their mean loss and accuracy."""
    model.train()
    order = torch.randperm(len(rows), generator=generator).numpy()
    total_loss, correct = 0.0, 0
    bar = tqdm(range(0, len(order), batch_size), desc=desc, leave=False, mininterval=1.0)
    for start in bar:
        selection = order[start : start + batch_size]
        targets = labels[selection]
        logits = model.forward_sparse(to_batch(rows, selection))
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(selection)
        correct += int(((logits >= 0) == targets.bool()).sum())
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return total_loss / len(order), correct / len(order)


def score(model: SentimentModel, rows: SparseRows, split: Split, batch_size: int) -> dict[str, Any]:
    """Accuracy, loss, ROC AUC and confusion matrix of ``model`` on featurized ``rows`` of ``split``."""
    return binary_metrics(probabilities(model, rows, batch_size), np.array(split.labels))


def print_epoch(h: dict[str, float], improved: bool) -> None:
    tqdm.write(
        f"epoch {h['epoch']:2d} | train loss {h['train_loss']:.4f} acc {h['train_accuracy']:.2%} | "
        f"val loss {h['val_loss']:.4f} acc {h['val_accuracy']:.2%} auc {h['val_roc_auc']:.4f} | "
        f"{h['seconds']:.1f}s{' *' if improved else ''}"
    )


def score_test_split(model: SentimentModel, featurizer: Featurizer, split: Split, batch_size: int) -> dict[str, Any]:
    """Featurize and score the test split: done once, after training, for the report."""
    return score(model, SparseRows.featurize(featurizer, split.texts, "featurizing test"), split, batch_size)


def write_artifacts(
    out: Path,
    config: TrainConfig,
    model: SentimentModel,
    featurizer: Featurizer,
    history: list[dict[str, float]],
    best_epoch: int,
    band: tuple[float, float] | None = None,
) -> tuple[str, Path]:
    """featurizer.json, explain.onnx, model.pt, model.tar.gz, training_curves.png and model.onnx under a
    temporary name (``publish`` gives it its final one); return the model version and that temporary path."""
    version = model_version(model)
    featurizer_path = featurizer.save(out / FEATURIZER_FILE)
    explainer = export_explainer(model, out / EXPLAIN_FILE, version=version,
                                 featurizer_fingerprint=featurizer.fingerprint, opset=config.opset)
    # model.onnx appears last, under its final name, so a half-written run never looks finished.
    partial = export_onnx(model, out / f".{MODEL_FILE}.partial", version=version,
                          featurizer_fingerprint=featurizer.fingerprint, opset=config.opset, uncertain_band=band)
    save_checkpoint(out / CHECKPOINT_FILE, model, config.to_dict(), model_version=version,
                    featurizer_fingerprint=featurizer.fingerprint)
    # The serving container gets model.onnx and featurizer.json only: model.pt stays out.
    write_model_tarball(out / ARCHIVE_FILE, {MODEL_FILE: partial, FEATURIZER_FILE: featurizer_path,
                                             EXPLAIN_FILE: explainer})
    plot_curves(history, best_epoch, out / "training_curves.png")
    return version, partial


def artifact_sizes(out: Path, partial: Path) -> dict[str, int]:
    """Bytes of the serving artifacts (model.onnx still under its temporary name)."""
    return {name: (out / name).stat().st_size for name in (FEATURIZER_FILE, EXPLAIN_FILE, ARCHIVE_FILE)} | {
        MODEL_FILE: partial.stat().st_size}


def summarize(
    config: TrainConfig,
    splits: Splits,
    featurizer: Featurizer,
    *,
    version: str,
    validation: dict[str, Any],
    test: dict[str, Any] | None,
    history: list[dict[str, float]],
    best_epoch: int,
    timings: dict[str, float],
    sizes: dict[str, int],
    band: dict[str, Any] | None = None,
    baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's record: what metrics.json holds and ``train`` returns."""
    return {
        "model_version": version,
        "featurizer_fingerprint": featurizer.fingerprint,
        "model_kind": config.model.kind,
        "vocab_size": featurizer.vocab_size,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "validation": validation,
        "uncertain_band": band,
        "baseline": baseline,
        "test": test,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "history": history,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "data": {"source": splits.source, "train": len(splits.train), "validation": len(splits.validation),
                 "test": None if splits.test is None else len(splits.test)},
        "artifacts_bytes": sizes,
        "config": config.options(),
        "torch_version": torch.__version__,
    }


def publish(out: Path, metrics: dict[str, Any], partial: Path) -> None:
    """Write metrics.json, then give model.onnx its final name: the run is complete."""
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(partial, out / MODEL_FILE)
    print(f"wrote {out}/: model.onnx, explain.onnx, featurizer.json, metrics.json, training_curves.png, model.tar.gz, "
          f"{CHECKPOINT_FILE}")


# -- helpers ------------------------------------------------------------------------------------
def to_batch(rows: SparseRows, selection: np.ndarray) -> SparseBatch:
    batch = rows.select(selection)
    return SparseBatch(torch.from_numpy(batch.indices), torch.from_numpy(batch.counts), torch.from_numpy(batch.offsets))


@torch.no_grad()
def probabilities(model: SentimentModel, rows: SparseRows, batch_size: int) -> np.ndarray:
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
def argument_parser() -> argparse.ArgumentParser:
    """``python -m training``'s flags: one per entry of ``OPTIONS``, with its default and choices."""
    parser = argparse.ArgumentParser(prog="python -m training", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--hyperparameters", default=SAGEMAKER_HYPERPARAMETERS, metavar="PATH",
                        help="SageMaker hyperparameters JSON, applied when it exists (default: %(default)s)")
    for option, default in zip(OPTIONS, TrainConfig().options().values(), strict=True):
        flag = "--" + option.name.replace("_", "-")
        help_text = option.help + ("" if default is None else f" (default: {default})")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            metavar = "PATH" if option.name in ("data", "out") else None
            parser.add_argument(flag, type=_kind(default), default=None, choices=option.choices,
                                metavar=metavar, help=help_text)
    return parser


def parse_config(argv: Sequence[str] | None = None) -> TrainConfig:
    parser = argument_parser()
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
    config = TrainConfig().with_options(**values)
    if problem := _invalid(config):
        parser.error(problem)
    return config


def _kind(default: Any) -> type:
    """The type an option's value is read as: its default's (text for the paths)."""
    return type(default) if isinstance(default, (bool, int, float)) else str


def _invalid(c: TrainConfig) -> str | None:
    """The first setting that cannot work, described; None when all can."""
    values = c.options()
    for option in OPTIONS:
        if option.choices is not None and values[option.name] not in option.choices:
            return (f"unknown {option.name} {values[option.name]!r}; "
                    f"choose one of {', '.join(option.choices)}")
    if not 0 < c.val_fraction < 1:
        return f"val_fraction must be between 0 and 1, got {c.val_fraction}"
    if not 0 <= c.model.dropout < 1:
        return f"dropout must be in [0, 1), got {c.model.dropout}"
    if c.lr <= 0 or c.weight_decay < 0:
        return f"lr must be > 0 and weight_decay >= 0, got {c.lr} and {c.weight_decay}"
    for name in ("ngram_max", "min_df", "max_features", "hidden", "epochs", "patience", "batch_size"):
        if values[name] < 1:
            return f"{name} must be at least 1, got {values[name]}"
    return None


def _coerce_hyperparameters(raw: Any) -> dict[str, Any]:
    """SageMaker passes every hyperparameter as a string; convert each to its option's type."""
    if not isinstance(raw, dict):
        raise ValueError("hyperparameters must be a JSON object")
    kinds = {name: _kind(default) for name, default in TrainConfig().options().items()}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name.startswith("sagemaker_"):
            continue  # SageMaker's own bookkeeping keys
        if name not in kinds:
            raise ValueError(f"unknown hyperparameter {key!r}; known: {', '.join(kinds)}")
        kind, text = kinds[name], str(value).strip()
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"hyperparameter {key!r} must be true or false, got {value!r}")
            values[name] = text.lower() in ("true", "1")
        elif kind in (int, float):
            try:
                values[name] = kind(text)
            except ValueError:
                raise ValueError(f"hyperparameter {key!r} must be a number ({kind.__name__}), "
                                 f"got {value!r}") from None
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
