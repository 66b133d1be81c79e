"""The hyperparameter search space and the rule that picks the model, defined once for both searches.

``python -m training.tune`` (Optuna's TPE, on one machine) draws from ``PARAMS`` through
``suggest``; ``python -m training.jobs tune`` (SageMaker's Bayesian tuning) sends the same
``PARAMS`` as ``sagemaker_ranges()``. Both then choose with ``smallest_within_one_standard_error``.

Two differences are SageMaker's, not ours: its integer ranges have no step, so a stepped integer
(``max_features``) goes as the categorical list of its steps; and it has no conditional
parameters, so the mlp-only ``hidden`` and ``dropout`` are searched for every job (a linear
model ignores them; the local search draws them only for the mlp).

The categorical choices are ``training.model``'s (defined there only), so importing this loads torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from training.model import MODEL_KINDS, TERM_FREQUENCIES, WEIGHTINGS

Kind = Literal["int", "float", "categorical"]


@dataclass(frozen=True)
class Param:
    """One searched setting: an integer or float range (``step``, ``log``) or categorical ``choices``."""

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    step: int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    mlp_only: bool = False  # drawn by the local search only when model == "mlp"
    note: str = ""

    def describe(self) -> str:
        """How best.json and README describe this setting, e.g. ``"0.001 to 0.1, log scale"``."""
        if self.kind == "categorical":
            text = _one_of(self.choices)
        else:
            text = f"{_number(self.low)} to {_number(self.high)}"
            if self.step:
                text += f", step {_number(self.step)}"
            if self.log:
                text += ", log scale"
        return text + (" (mlp only)" if self.mlp_only else "")

    def values(self) -> tuple[Any, ...]:
        """Every value of a categorical or stepped integer setting."""
        if self.kind == "categorical":
            return self.choices
        if self.kind == "int" and self.step:
            assert self.low is not None and self.high is not None
            return tuple(range(int(self.low), int(self.high) + 1, self.step))
        raise ValueError(f"{self.name} is a continuous range")


def _number(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:g}"


def _one_of(choices: Sequence[object]) -> str:
    """``("a", "b", "c")`` → ``"a, b or c"``."""
    *rest, last = map(str, choices)
    return f"{', '.join(rest)} or {last}" if rest else last


PARAMS: tuple[Param, ...] = (
    Param("ngram_max", "int", 2, 3),
    Param("max_features", "int", 50_000, 300_000, step=50_000),
    Param("term_frequency", "categorical", choices=TERM_FREQUENCIES),
    Param("weighting", "categorical", choices=WEIGHTINGS),
    Param("model", "categorical", choices=MODEL_KINDS),
    # Adam updates all vocab × hidden first-layer weights every step: hidden 64 took ~4 min a trial here.
    Param("hidden", "categorical", choices=(8, 16, 32), mlp_only=True),
    Param("dropout", "float", 0.0, 0.6, mlp_only=True),
    Param("lr", "float", 1e-3, 1e-1, log=True),
    Param("weight_decay", "categorical", choices=(0.0, 1e-6, 1e-5, 1e-4, 1e-3)),
    Param("batch_size", "categorical", choices=(128, 256, 512, 1024)),
)
BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}
# min_df only ever caps the vocabulary, which max_features sets already: in IMDB's 22,500 training
# reviews the 300,000th most frequent bigram (trigram) is in 2 (4) of them, so the search fixes
# min_df = 2 and lets max_features choose the size alone.
FIXED: dict[str, Any] = {"min_df": 2}


# -- the local search (Optuna) ------------------------------------------------------------------
class Trial(Protocol):
    """The part of ``optuna.trial.BaseTrial`` that ``draw`` uses (optuna is not imported here)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


def draw(trial: Trial) -> dict[str, Any]:
    """One point of the space from an Optuna trial: the model first (it decides what else is drawn),
    then every other setting in ``PARAMS`` order, the mlp-only ones last. This order is the one the
    studies in ``tuning/`` were run with, so a resumed study draws as before."""
    model = _suggest(trial, BY_NAME["model"])
    values: dict[str, Any] = {"model": model}
    for param in [p for p in PARAMS if not p.mlp_only and p.name != "model"]:
        values[param.name] = _suggest(trial, param)
    if model == "mlp":
        for param in [p for p in PARAMS if p.mlp_only]:
            values[param.name] = _suggest(trial, param)
    return values


def _suggest(trial: Trial, p: Param) -> Any:
    if p.kind == "categorical":
        return trial.suggest_categorical(p.name, list(p.choices))
    assert p.low is not None and p.high is not None
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), step=p.step or 1, log=p.log)
    return trial.suggest_float(p.name, p.low, p.high, log=p.log)


# -- SageMaker's automatic model tuning ---------------------------------------------------------
def sagemaker_ranges() -> dict[str, list[dict[str, Any]]]:
    """``PARAMS`` as CreateHyperParameterTuningJob's ``ParameterRanges`` (every value a string)."""
    ranges: dict[str, list[dict[str, Any]]] = {
        "IntegerParameterRanges": [], "ContinuousParameterRanges": [], "CategoricalParameterRanges": []}
    for p in PARAMS:
        if p.kind == "categorical" or (p.kind == "int" and p.step):
            ranges["CategoricalParameterRanges"].append({"Name": p.name, "Values": [str(v) for v in p.values()]})
        else:
            key = "IntegerParameterRanges" if p.kind == "int" else "ContinuousParameterRanges"
            assert p.low is not None and p.high is not None
            low, high = (int(p.low), int(p.high)) if p.kind == "int" else (p.low, p.high)
            ranges[key].append({"Name": p.name, "MinValue": str(low), "MaxValue": str(high),
                                "ScalingType": "Logarithmic" if p.log else "Linear"})
    return ranges


def from_hyperparameters(values: Mapping[str, str]) -> dict[str, Any]:
    """The searched settings of a tuning job's training job, back from SageMaker's strings to values."""
    found: dict[str, Any] = {}
    for p in PARAMS:
        if p.name not in values:
            continue
        text = values[p.name]
        if p.kind == "categorical":
            matches = [c for c in p.choices if str(c) == text]
            found[p.name] = matches[0] if matches else text
        elif p.kind == "int":
            found[p.name] = int(float(text))
        else:
            found[p.name] = float(text)
    return found


# -- choosing the model: the one-standard-error rule ----------------------------------------------
RULE = ("the smallest trial (featurizer.json + model.onnx bytes) whose validation accuracy is "
        "within one binomial standard error of the best trial's: smaller gaps are noise")


@dataclass(frozen=True)
class Outcome:
    """What the rule needs of one finished trial or training job."""

    key: Any  # a trial number, a training job's name
    loss: float  # validation log loss, the objective (lower is better)
    accuracy: float  # validation accuracy
    n: int  # validation reviews
    artifact_bytes: int  # featurizer.json + model.onnx
    order: int = 0  # ties go to the earlier one


def best_outcome(outcomes: Sequence[Outcome]) -> Outcome:
    """The lowest validation loss (the earlier on a tie)."""
    if not outcomes:
        raise ValueError("no finished trial to choose from")
    return min(outcomes, key=lambda o: (o.loss, o.order))


def smallest_within_one_standard_error(outcomes: Sequence[Outcome], best: Outcome | None = None) -> Outcome:
    """The smallest artifacts whose accuracy is less than one standard error below the best's.

    ``best`` (default: ``best_outcome``) has the lowest validation loss; a trial whose validation
    accuracy is less than sqrt(p(1-p)/n) below its accuracy p on n reviews is not measurably worse,
    and a smaller featurizer and model start and score faster.
    """
    best = best or best_outcome(outcomes)
    p = best.accuracy
    margin = math.sqrt(p * (1 - p) / best.n)
    close = [o for o in outcomes if o.accuracy >= p - margin]
    return min(close, key=lambda o: (o.artifact_bytes, o.order))
