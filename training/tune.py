"""Bayesian hyperparameter search (Optuna's TPE) on the validation split only.

    python -m training.tune --data PATH --trials 35 --out tuning

Each trial is a full ``training.train.train`` run with some settings drawn from ``SPACE``; the
rest are the ``TrainConfig`` defaults (same seed, so the same validation split). The first trial
of a new study is the current defaults, so every other trial is measured against them in the
same run. Written to ``--out``:

- ``study.db``: the Optuna study (SQLite); the same command resumes an interrupted search;
- ``trials.csv``: every trial, its settings, validation figures, artifact sizes and timings;
- ``best.json``: the best trial, the recommended one (the smallest within one standard error of
  the best: these become the ``TrainConfig`` defaults), its full config and its command;
- ``accuracy_vs_size.png``: validation accuracy vs featurizer.json + model.onnx bytes.

Objective: the validation log loss of the kept (early-stopped) model, minimised. It is smooth
where accuracy on 2,500 reviews moves in 0.04-point steps and ±0.5 points of noise, it is what
early stopping already selects on, and its per-epoch values feed the pruner directly. Accuracy
is recorded for every trial and is what the defaults are judged on.

The test split is never read: only ``load_imdb(...).train`` is kept, and every trial runs
``train(config, features, score_test=False)``. Featurizing is the slow part, so the featurized
splits are cached per featurizer setting; a trial that changes only the model or the optimiser
starts training at once. Trials whose artifacts would break the architecture's budgets
(featurizer.json <= 5 MB, model.onnx <= 50 MB) are pruned, before training when possible.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sentiment.artifacts import MODEL_FILE
from sentiment.featurizer import MAX_FILE_BYTES, FeaturizerError, FeaturizerSettings
from training import space
from training.data import DataError, load_imdb, train_validation_split
from training.model import MODEL_KINDS
from training.train import Features, TrainConfig, featurize, train

STUDY_NAME = "imdb-sentiment"
FEATURIZER_BUDGET = MAX_FILE_BYTES  # featurizer.json, read by every Lambda cold start
MODEL_BUDGET = 50 * 1024 * 1024  # model.onnx
FLOAT32_BYTES = 4
SEARCH_MIN_DF = space.FIXED["min_df"]

# What each searched setting may take: training/space.py's PARAMS, which SageMaker's tuning job searches too.
SPACE: dict[str, str] = {p.name: p.describe() for p in space.PARAMS}
CSV_COLUMNS = ["number", "state", "validation_loss", "validation_accuracy", "validation_roc_auc",
               "vocab_size", "featurizer_bytes", "model_onnx_bytes", "artifact_bytes", "best_epoch",
               "epochs_run", "train_seconds", "seconds", "features_cached", "featurize_seconds",
               *SPACE, "note"]


def suggest(trial: optuna.trial.BaseTrial, base: TrainConfig) -> TrainConfig:
    """Draw one point of the search space (``training.space.PARAMS``); every other setting comes from ``base``."""
    return base.with_options(**space.FIXED, **space.draw(trial))


def searched(config: TrainConfig) -> dict[str, Any]:
    """``config``'s values of the searched settings: the parameters that enqueue it as a trial."""
    options = config.options()
    names = [name for name in SPACE if config.model.kind == "mlp" or name not in ("hidden", "dropout")]
    return {name: options[name] for name in names}


def over_budget(
    config: TrainConfig,
    vocab_size: int,
    featurizer_bytes: int,
    featurizer_budget: int = FEATURIZER_BUDGET,
    model_budget: int = MODEL_BUDGET,
) -> str | None:
    """Why these settings cannot fit the architecture's size budgets, or None when they can.

    The model check is a lower bound that holds for any export: the first layer alone stores
    ``vocab_size × width`` float32 weights (width 1 for linear, ``hidden`` for mlp).
    """
    if featurizer_bytes > featurizer_budget:
        return f"featurizer.json would be {featurizer_bytes:,} bytes, over the {featurizer_budget:,} B budget"
    width = config.model.hidden if config.model.kind == "mlp" else 1
    weights = FLOAT32_BYTES * vocab_size * width
    if weights > model_budget:
        return (f"model.onnx would hold at least {weights:,} bytes of weights ({vocab_size:,} terms x "
                f"{width} outputs), over the {model_budget:,} B budget")
    return None


class Objective:
    """One trial: settings → cached features → budget check → training with pruning → loss."""

    def __init__(
        self,
        data: str | None,
        base: TrainConfig,
        cache_size: int = 4,
        featurizer_budget: int = FEATURIZER_BUDGET,
        model_budget: int = MODEL_BUDGET,
    ):
        # Only the training reviews are kept: no trial can read the test split.
        reviews = load_imdb(data).train
        self.train_split, self.val_split = train_validation_split(reviews, base.val_fraction, base.seed)
        self.base = replace(base, data=data)
        self.featurizer_budget, self.model_budget = featurizer_budget, model_budget
        self.features = functools.lru_cache(maxsize=cache_size)(self._featurize)

    def _featurize(self, settings: FeaturizerSettings) -> tuple[Features, int, float]:
        """Features for one featurizer setting, the size of its featurizer.json, and seconds taken."""
        clock = time.perf_counter()
        features = featurize(replace(self.base, featurizer=settings), self.train_split, self.val_split)
        return features, len(features.featurizer.to_json().encode("utf-8")), time.perf_counter() - clock

    def __call__(self, trial: optuna.Trial) -> float:
        config = suggest(trial, self.base)
        print(f"\ntrial {trial.number}: {json.dumps(trial.params)}", flush=True)
        hits = self.features.cache_info().hits
        features, featurizer_bytes, featurize_seconds = self.features(config.featurizer)
        vocab_size = features.featurizer.vocab_size
        for key, value in {
            "vocab_size": vocab_size,
            "featurizer_bytes": featurizer_bytes,
            "features_cached": self.features.cache_info().hits > hits,
            "featurize_seconds": round(featurize_seconds, 1),
        }.items():
            trial.set_user_attr(key, value)
        budgets = (self.featurizer_budget, self.model_budget)
        if reason := over_budget(config, vocab_size, featurizer_bytes, *budgets):
            prune(trial, reason)

        best_loss = math.inf

        def report(epoch: dict[str, float]) -> None:
            nonlocal best_loss
            best_loss = min(best_loss, epoch["val_loss"])  # early stopping keeps the best epoch so far
            trial.report(best_loss, int(epoch["epoch"]))
            if trial.should_prune():
                prune(trial, f"validation loss {best_loss:.4f} after epoch {int(epoch['epoch'])} "
                             "is worse than the median trial's")

        with tempfile.TemporaryDirectory(prefix="tune-trial-") as out:
            metrics = train(replace(config, out=out), features, score_test=False, on_epoch=report)
        model_bytes = metrics["artifacts_bytes"][MODEL_FILE]
        validation = metrics["validation"]
        for key, value in {
            "validation_accuracy": validation["accuracy"],
            "validation_n": validation["n"],
            "validation_roc_auc": validation["roc_auc"],
            "model_onnx_bytes": model_bytes,
            "artifact_bytes": featurizer_bytes + model_bytes,
            "best_epoch": metrics["best_epoch"],
            "epochs_run": metrics["epochs_run"],
            "train_seconds": metrics["timings_s"]["train"],
        }.items():
            trial.set_user_attr(key, value)
        if model_bytes > self.model_budget:
            prune(trial, f"model.onnx is {model_bytes:,} bytes, over the {self.model_budget:,} B budget")
        return float(validation["loss"])


def prune(trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("note", reason)
    print(f"trial {trial.number} pruned: {reason}", flush=True)
    raise optuna.TrialPruned(reason)


# -- the search ---------------------------------------------------------------------------------
def tune(
    data: str | None,
    trials: int,
    out: str | Path,
    *,
    seed: int = 1337,
    base: TrainConfig | None = None,
    study_name: str = STUDY_NAME,
    timeout: float | None = None,
    cache_size: int = 4,
    featurizer_budget: int = FEATURIZER_BUDGET,
    model_budget: int = MODEL_BUDGET,
) -> optuna.Study:
    """Run (or resume) the search until the study holds ``trials`` finished trials; write the reports.

    ``seed`` seeds the TPE sampler; training itself is seeded by ``base.seed``, so the same
    arguments give the same trials. One process per study: trials an interrupted run left
    running are marked failed when the search resumes.
    """
    base = base or TrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=f"sqlite:///{(out / 'study.db').resolve()}",
        study_name=study_name,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        # Reported values are each trial's best validation loss so far; prune behind the median.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
        load_if_exists=True,
    )
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(stale.number, state=TrialState.FAIL)
    if not study.trials:
        study.enqueue_trial(searched(base), user_attrs={"defaults": True})
    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    remaining = max(0, trials - finished)
    print(f"study {study_name!r} in {out}/study.db: {finished} finished trials, running {remaining} more")
    if remaining:
        objective = Objective(data, base, cache_size, featurizer_budget, model_budget)
        study.optimize(objective, n_trials=remaining, timeout=timeout, gc_after_trial=True,
                       callbacks=[lambda study, _: write_reports(study, out, base)])
    write_reports(study, out, base)
    return study


# -- reports ------------------------------------------------------------------------------------
def write_reports(study: optuna.Study, out: Path, base: TrainConfig) -> None:
    """trials.csv, best.json and accuracy_vs_size.png from the study as it stands."""
    trials = study.get_trials(deepcopy=False)
    with open(out / "trials.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for t in trials:
            ended, started = t.datetime_complete, t.datetime_start
            seconds = round((ended - started).total_seconds(), 1) if ended and started else None
            row = {"number": t.number, "state": t.state.name, "validation_loss": t.value, "seconds": seconds}
            writer.writerow(row | t.params | t.user_attrs)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return
    best = study.best_trial
    chosen = recommended(complete, best, base)
    config = suggest(optuna.trial.FixedTrial(chosen.params), base).with_options(data=None, out=base.out)
    defaults = next((t for t in complete if t.user_attrs.get("defaults")), None)
    report = {
        "objective": "validation log loss of the early-stopped model (minimised)",
        "study": study.study_name,
        "trials": {state.name.lower(): sum(t.state == state for t in trials)
                   for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)},
        "best": summary(best),
        "recommended_rule": RECOMMENDED_RULE,
        "recommended": summary(chosen),
        "defaults": summary(defaults) if defaults else None,
        "config": {k: v for k, v in config.options().items() if k not in ("data", "out")},
        "command": "python -m training --data PATH --out DIR " + flags(config),
        "search_space": SPACE | {name: f"fixed at {value}" for name, value in space.FIXED.items()},
    }
    (out / "best.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_accuracy_vs_size(complete, best, defaults, out / "accuracy_vs_size.png")


RECOMMENDED_RULE = space.RULE


def recommended(complete: list[FrozenTrial], best: FrozenTrial, base: TrainConfig) -> FrozenTrial:
    """The one-standard-error rule (``training.space.smallest_within_one_standard_error``, which the
    SageMaker tuning job's choice uses too): the smallest artifacts as good as the best, within noise.
    The winner becomes the defaults.
    """
    # Studies made before validation_n was recorded: the validation share of IMDB's 25,000 reviews.
    n_default = round(base.val_fraction * 25_000)

    def outcome(t: FrozenTrial) -> space.Outcome:
        return space.Outcome(t.number, float(t.value if t.value is not None else math.inf),
                             t.user_attrs["validation_accuracy"], t.user_attrs.get("validation_n") or n_default,
                             t.user_attrs["artifact_bytes"], t.number)

    by_number = {t.number: t for t in complete}
    chosen = space.smallest_within_one_standard_error([outcome(t) for t in complete], outcome(best))
    return by_number[chosen.key]


def summary(trial: FrozenTrial) -> dict[str, Any]:
    return {"trial": trial.number, "validation_loss": trial.value, "params": trial.params,
            **{k: v for k, v in trial.user_attrs.items() if k != "defaults"}}


def flags(config: TrainConfig) -> str:
    """The ``python -m training`` flags that differ from ``TrainConfig``'s defaults."""
    default, options = TrainConfig().options(), config.options()
    changed = [name for name, value in options.items() if name not in ("data", "out") and value != default[name]]
    words = []
    for name in changed:
        flag, value = "--" + name.replace("_", "-"), options[name]
        if isinstance(value, bool):
            flag = flag if value else "--no-" + flag[2:]
        words.append(flag if isinstance(value, bool) else f"{flag} {value}")
    return " ".join(words)


def plot_accuracy_vs_size(
    complete: list[FrozenTrial], best: FrozenTrial, defaults: FrozenTrial | None, path: Path
) -> None:
    """Validation accuracy against featurizer.json + model.onnx bytes, one point per complete trial."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    markers = dict(zip(itertools.product(MODEL_KINDS, (2, 3)), "os^D", strict=True))  # (model, ngram_max) -> marker
    for (model, ngram), marker in markers.items():
        chosen = [t for t in complete if (t.params["model"], t.params["ngram_max"]) == (model, ngram)]
        if chosen:
            ax.scatter([t.user_attrs["artifact_bytes"] / 1e6 for t in chosen],
                       [100 * t.user_attrs["validation_accuracy"] for t in chosen],
                       marker=marker, alpha=0.7, label=f"{model}, n-grams up to {ngram}")
    if defaults is not None:
        accuracy = 100 * defaults.user_attrs["validation_accuracy"]
        ax.axhspan(accuracy - 0.5, accuracy + 0.5, color="grey", alpha=0.15,
                   label="defaults ± 0.5 pt (noise)")
    for trial, label, style in ((defaults, "defaults", "kx"), (best, "best (lowest validation loss)", "r*")):
        if trial is not None:
            size, accuracy = trial.user_attrs["artifact_bytes"], trial.user_attrs["validation_accuracy"]
            ax.plot(size / 1e6, 100 * accuracy, style, markersize=14, label=f"{label}: trial {trial.number}")
    ax.set(xscale="log", xlabel="featurizer.json + model.onnx (MB, log scale)",
           ylabel="validation accuracy (%)", title=f"IMDB search: {len(complete)} complete trials")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- command line -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m training.tune", description=description)
    parser.add_argument("--data", metavar="PATH", help="IMDB archive or aclImdb/ folder "
                        "(default: $IMDB_DATA, else the downloaded official archive)")
    parser.add_argument("--trials", type=int, default=35, help="finished trials the study should hold "
                        "(a resumed study runs only the missing ones; default: %(default)s)")
    parser.add_argument("--out", default="tuning", metavar="DIR", help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1337, help="TPE sampler seed (default: %(default)s)")
    parser.add_argument("--study-name", default=STUDY_NAME, help="name in study.db (default: %(default)s)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="start no new trial after this long (default: no limit)")
    parser.add_argument("--cache-size", type=int, default=4, help="featurized settings kept in memory, "
                        "about 100-200 MB each (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.cache_size < 1:
        parser.error("--trials and --cache-size must be at least 1")
    try:
        study = tune(args.data, args.trials, args.out, seed=args.seed, study_name=args.study_name,
                     timeout=args.timeout, cache_size=args.cache_size)
    except (DataError, FeaturizerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        print(f"no trial of study {study.study_name!r} completed; see {args.out}/trials.csv", file=sys.stderr)
        return 1
    best = study.best_trial
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    chosen = recommended(complete, best, TrainConfig())
    print(f"best trial {best.number}: validation loss {best.value:.4f}, accuracy "
          f"{best.user_attrs['validation_accuracy']:.2%}; recommended (smallest within one standard "
          f"error): trial {chosen.number}, {chosen.user_attrs['artifact_bytes']:,} bytes; wrote "
          f"{args.out}/trials.csv, best.json, accuracy_vs_size.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
