"""The allowed choices (model kinds, term frequencies, weightings) are defined once, in training.model."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from training.model import CHOICES, MODEL_KINDS, TERM_FREQUENCIES, WEIGHTINGS, ModelSettings, SentimentModel
from training.train import OPTIONS, TrainConfig, argument_parser
from training.tune import SPACE, suggest

REPO = Path(__file__).resolve().parents[2]


def test_the_choices_are_the_model_settings_types():
    assert (MODEL_KINDS, TERM_FREQUENCIES, WEIGHTINGS) == (("linear", "mlp"), ("binary", "log"), ("nb", "idf", "none"))
    assert CHOICES == {"kind": MODEL_KINDS, "term_frequency": TERM_FREQUENCIES, "weighting": WEIGHTINGS}
    assert set(CHOICES) <= set(ModelSettings.__dataclass_fields__)


def test_the_command_line_offers_exactly_those_choices():
    offered = {action.dest: tuple(action.choices) for action in argument_parser()._actions if action.choices}
    assert offered == {"model": MODEL_KINDS, "term_frequency": TERM_FREQUENCIES, "weighting": WEIGHTINGS}
    assert {o.name: o.choices for o in OPTIONS if o.choices} == offered


def test_the_search_draws_from_those_choices():
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    suggest(trial, TrainConfig())
    drawn = {name: tuple(trial.distributions[name].choices) for name in ("model", "term_frequency", "weighting")}
    assert drawn == {"model": MODEL_KINDS, "term_frequency": TERM_FREQUENCIES, "weighting": WEIGHTINGS}
    assert (SPACE["model"], SPACE["term_frequency"], SPACE["weighting"]) == (
        "linear or mlp", "binary or log", "nb, idf or none")


def test_the_model_refuses_what_is_not_a_choice():
    with pytest.raises(ValueError, match="choose one of linear, mlp"):
        SentimentModel(10, ModelSettings(kind="lstm"))  # type: ignore[arg-type]


@pytest.mark.parametrize("choices", [MODEL_KINDS, TERM_FREQUENCIES, WEIGHTINGS], ids=["model", "tf", "weighting"])
def test_no_other_file_spells_a_list_of_choices(choices):
    """Outside training/model.py, no line names two values of one choice as string literals."""
    quoted = [re.compile(rf"""["']{value}["']""") for value in choices]
    files = sorted((REPO / "training").glob("*.py")) + sorted((REPO / "benchmarks").glob("*.py"))
    offenders = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                 for path in files if path.name != "model.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if sum(bool(q.search(line)) for q in quoted) >= 2]
    assert not offenders, "choices spelled out again:\n" + "\n".join(offenders)
