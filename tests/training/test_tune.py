"""`python -m training.tune` on the fixture: outputs, seeding, resuming, budgets, and no test split."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import training.train
import training.tune
from training.data import Split, load_imdb, train_validation_split
from training.train import TrainConfig, featurize, train
from training.tune import SEARCH_MIN_DF, over_budget, recommended, searched, tune

# 4 validation reviews out of 20, at most 3 epochs: a trial takes a second or two.
BASE = TrainConfig(val_fraction=0.2, epochs=3, patience=2)
PNG = b"\x89PNG\r\n\x1a\n"


def run(data: Path, out: Path, trials: int = 3, **kwargs) -> optuna.Study:
    return tune(str(data), trials, out, seed=7, base=BASE, **kwargs)


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 3-trial search run twice, into two folders."""
    data = Path(__file__).resolve().parents[1] / "fixtures" / "imdb_tiny" / "aclImdb_tiny.tar.gz"
    outs = tmp_path_factory.mktemp("search-a"), tmp_path_factory.mktemp("search-b")
    for out in outs:
        run(data, out)
    return outs


@pytest.mark.slow
def test_search_writes_trials_best_and_plot(searches):
    out, _ = searches
    assert {p.name for p in out.iterdir()} >= {"study.db", "trials.csv", "best.json", "accuracy_vs_size.png"}
    trials = rows(out)
    assert [t["number"] for t in trials] == ["0", "1", "2"]
    assert {t["state"] for t in trials} == {"COMPLETE"}
    for t in trials:
        assert 0 <= float(t["validation_accuracy"]) <= 1 and float(t["validation_loss"]) > 0
        assert int(t["artifact_bytes"]) == int(t["featurizer_bytes"]) + int(t["model_onnx_bytes"]) > 0
    best = json.loads((out / "best.json").read_text())
    losses = {int(t["number"]): float(t["validation_loss"]) for t in trials}
    assert best["best"]["validation_loss"] == min(losses.values()) == losses[best["best"]["trial"]]
    # Trial 0 is the current defaults, the yardstick of every other trial.
    assert best["defaults"]["trial"] == 0 and best["defaults"]["params"] == searched(BASE)
    assert best["config"]["min_df"] == SEARCH_MIN_DF
    assert best["config"] | {"data": None, "out": "x"} == (
        BASE.with_options(**best["best"]["params"], min_df=SEARCH_MIN_DF, out="x").options())
    assert best["command"].startswith("python -m training --data PATH --out DIR")
    assert (out / "accuracy_vs_size.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_every_epoch_is_reported_for_pruning(searches):
    study = optuna.load_study(study_name="imdb-sentiment", storage=f"sqlite:///{searches[0] / 'study.db'}")
    for trial in study.trials:
        steps = trial.intermediate_values
        assert sorted(steps) == list(range(1, trial.user_attrs["epochs_run"] + 1))
        assert list(steps.values()) == sorted(steps.values(), reverse=True)  # best loss so far
        assert min(steps.values()) == pytest.approx(trial.value)


@pytest.mark.slow
def test_search_is_seeded(searches):
    first, second = (rows(out) for out in searches)
    keep = [c for c in first[0] if c not in ("seconds", "train_seconds", "featurize_seconds")]
    assert [{c: t[c] for c in keep} for t in first] == [{c: t[c] for c in keep} for t in second]
    best = [json.loads((out / "best.json").read_text())["best"]["params"] for out in searches]
    assert best[0] == best[1]


class Unreadable(Sequence):
    """A split's texts or labels that fail the test when anything reads or even counts them."""

    def __len__(self) -> int:
        raise AssertionError("the hyperparameter search touched the test split")

    def __getitem__(self, index):
        raise AssertionError("the hyperparameter search touched the test split")


@pytest.mark.slow
def test_search_never_touches_the_test_split(monkeypatch, fixture_archive: Path, tmp_path: Path):
    def without_test(data=None):
        return dataclasses.replace(load_imdb(data), test=Split(Unreadable(), Unreadable()))

    with pytest.raises(AssertionError, match="touched the test split"):
        list(without_test(fixture_archive).test.texts)  # the trap works
    for module in (training.tune, training.train):
        monkeypatch.setattr(module, "load_imdb", without_test)
    study = run(fixture_archive, tmp_path, trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


@pytest.mark.slow
def test_size_budget_prunes_before_training(monkeypatch, fixture_archive: Path, tmp_path: Path):
    def no_training(*args, **kwargs):
        raise AssertionError("an over-budget trial was trained")

    monkeypatch.setattr(training.tune, "train", no_training)
    study = run(fixture_archive, tmp_path, trials=2, featurizer_budget=1_000)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert all("over the 1,000 B budget" in t["note"] and t["featurizer_bytes"] for t in rows(tmp_path))
    assert not (tmp_path / "best.json").exists()


@pytest.mark.parametrize(
    "model, hidden, vocab, featurizer_bytes, reason",
    [
        ("linear", 32, 300_000, 4_000_000, None),
        ("mlp", 32, 300_000, 4_000_000, None),  # 38.4 MB of first-layer weights
        ("mlp", 64, 300_000, 4_000_000, "model.onnx would hold at least 76,800,000 bytes"),
        ("linear", 32, 300_000, 6_000_000, "featurizer.json would be 6,000,000 bytes"),
    ],
)
def test_over_budget(model, hidden, vocab, featurizer_bytes, reason):
    found = over_budget(TrainConfig().with_options(model=model, hidden=hidden), vocab, featurizer_bytes)
    assert found == reason if reason is None else reason in found


def test_over_budget_linear_counts_one_weight_per_term():
    found = over_budget(TrainConfig().with_options(model="linear", hidden=32), 300_000, 4_000_000,
                        model_budget=1_000_000)
    assert "at least 1,200,000 bytes of weights (300,000 terms x 1 outputs)" in found


@pytest.mark.slow
def test_resume_runs_only_the_missing_trials(fixture_archive: Path, tmp_path: Path):
    run(fixture_archive, tmp_path, trials=1)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.load_study(study_name="imdb-sentiment", storage=storage).ask()  # left running by a "crash"
    study = run(fixture_archive, tmp_path, trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert len(run(fixture_archive, tmp_path, trials=2).trials) == 3  # nothing left to run


def test_train_with_features_never_scores_the_test_split(fixture_folder: Path, tmp_path: Path):
    config = BASE.with_options(data=str(fixture_folder), out=str(tmp_path), min_df=1)
    features = featurize(config, *train_validation_split(load_imdb(fixture_folder).train, 0.2, config.seed))
    with pytest.raises(ValueError, match="pass score_test=False"):
        train(config, features)
    with pytest.raises(ValueError, match="config asks for"):
        train(config.with_options(ngram_max=3), features, score_test=False)
    metrics = train(config, features, score_test=False)
    assert metrics["test"] is None and metrics["data"]["test"] is None
    assert json.loads((tmp_path / "metrics.json").read_text())["test"] is None


@pytest.mark.slow
def test_cli(run_module, fixture_archive: Path, tmp_path: Path):
    result = run_module("training.tune", "--data", str(fixture_archive), "--trials", "1",
                        "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "best trial 0: validation loss" in result.stdout
    assert (tmp_path / "best.json").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trials", "0"], "--trials and --cache-size must be at least 1"),
        (["--data", "/nonexistent/imdb.tar.gz"], "IMDB data not found at /nonexistent/imdb.tar.gz"),
    ],
)
def test_cli_errors(run_module, tmp_path: Path, args, message):
    result = run_module("training.tune", "--out", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr



def _trial(number: int, loss: float, accuracy: float, size: int) -> optuna.trial.FrozenTrial:
    return optuna.trial.FrozenTrial(
        number=number, trial_id=number, state=TrialState.COMPLETE, value=loss, datetime_start=None,
        datetime_complete=None, params={}, distributions={}, system_attrs={}, intermediate_values={},
        user_attrs={"validation_accuracy": accuracy, "validation_n": 2500, "artifact_bytes": size},
    )


def test_recommended_is_the_smallest_trial_within_one_standard_error_of_the_best():
    # One standard error at 93% on 2,500 reviews is 0.51 points.
    best = _trial(1, 0.18, 0.930, 30_000_000)
    within = _trial(2, 0.20, 0.9252, 2_000_000)
    outside = _trial(3, 0.19, 0.9245, 1_000_000)
    larger = _trial(4, 0.19, 0.929, 5_000_000)
    chosen = recommended([best, within, outside, larger], best, TrainConfig())
    assert chosen.number == 2
    assert recommended([best, outside], best, TrainConfig()).number == 1
