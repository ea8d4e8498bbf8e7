"""What a sweep can optimise (``--metric``): one table of metrics, each with its direction and the task
families it applies to. Ray-free; the family of a config is looked up only by :func:`check_metric`.

Every metric is the mean over a trial's seeds, taken after the last meta-iteration (before that, the
trial reports an estimate: the validation value stands in for the evaluation one, and mse_per_second
projects the seconds to all iterations). ``min`` metrics are minimised, ``max`` metrics maximised: Optuna's
direction, Ray Tune's mode, which trial is best and how a summary is sorted all follow :func:`metric_mode`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from imaml_core.common.config import ExperimentConfig
from imaml_core.experiments.sweep._space import SearchSpace, SweepError

ANY, REGRESSION, CLASSIFICATION = "any", "regression", "classification"  # the families a metric applies to


@dataclass(frozen=True)
class Metric:
    """One ``--metric``: ``stage`` "val" (the fixed validation set) or "eval" (600 evaluation tasks, the same
    for every trial, adapted with the trial's own inner steps); ``quantity`` "loss" (the family's loss:
    MSE for regression, cross-entropy for classification) or "accuracy"; ``per_second`` multiplies by the
    seconds the meta-iterations took."""

    name: str
    mode: str
    stage: str
    quantity: str
    families: str
    doc: str
    per_second: bool = False


METRIC_TABLE: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("val_mse", "min", "val", "loss", REGRESSION, "the final validation MSE"),
        Metric("eval_mse", "min", "eval", "loss", REGRESSION, "the final MSE on 600 evaluation tasks"),
        Metric(
            "mse_per_second",
            "min",
            "val",
            "loss",
            REGRESSION,
            "val_mse times the seconds training took",
            per_second=True,
        ),
        Metric("val_loss", "min", "val", "loss", ANY, "the final validation loss (MSE or cross-entropy)"),
        Metric("eval_loss", "min", "eval", "loss", ANY, "the final loss on 600 evaluation tasks"),
        Metric("val_accuracy", "max", "val", "accuracy", CLASSIFICATION, "the final validation accuracy"),
        Metric(
            "eval_accuracy", "max", "eval", "accuracy", CLASSIFICATION, "the final accuracy on 600 evaluation tasks"
        ),
    )
}
METRICS = tuple(METRIC_TABLE)


def metric_mode(name: str) -> str:
    """The direction ``name`` is optimised in, "min" or "max" (a :class:`SweepError` for an unknown name)."""
    try:
        return METRIC_TABLE[name].mode
    except KeyError:
        raise SweepError(f"--metric must be one of {', '.join(METRICS)}, got {name!r}") from None


def rank_key(value: float | None, mode: str) -> float:
    """A key that sorts values best first for ``mode``; a missing or non-finite value sorts last."""
    if value is None or not math.isfinite(value):
        return math.inf
    return value if mode == "min" else -value


def worst_value(mode: str) -> float:
    """The value that ranks a trial last (a failed trial's): +inf when minimising, -inf when maximising."""
    return math.inf if mode == "min" else -math.inf


def _is_classification(config: ExperimentConfig) -> bool:
    from imaml_core.tasks import classifies, family_for

    return classifies(family_for(config))


def default_metric(base: ExperimentConfig) -> str:
    """The metric of a sweep that names none: val_accuracy for a classification family, else val_mse."""
    return "val_accuracy" if _is_classification(base) else "val_mse"


def check_metric(name: str, base: ExperimentConfig, space: SearchSpace | None = None) -> None:
    """A one-line :class:`SweepError` when ``name`` does not apply to the family of ``base`` (or of a task
    family the search may pick): an MSE metric of a classification family, whose loss is cross-entropy, or
    an accuracy of a regression family, which has none."""
    metric_mode(name)  # an unknown metric is the error naming the known ones
    metric = METRIC_TABLE[name]
    if metric.families == ANY:
        return
    for config in _family_configs(base, space):
        classification = _is_classification(config)
        family = config.task if config.task == base.task else f"the searched task {config.task}"
        if metric.families == REGRESSION and classification:
            raise SweepError(
                f"--metric {name} measures an MSE, but {family} is classification (its loss is "
                f"cross-entropy): use {_instead(metric, CLASSIFICATION)}"
            )
        if metric.families == CLASSIFICATION and not classification:
            raise SweepError(
                f"--metric {name} needs a classification task family, but {family} has no accuracy: "
                f"use {_instead(metric, REGRESSION)}"
            )


def _instead(metric: Metric, family: str) -> str:
    """The metrics of ``family`` measured where ``metric`` is (validation or evaluation), as text."""
    names = [
        m.name
        for m in METRIC_TABLE.values()
        if m.families in (ANY, family) and m.stage == metric.stage and not m.per_second
    ]
    return " or ".join(names)


def _family_configs(base: ExperimentConfig, space: SearchSpace | None) -> Iterable[ExperimentConfig]:
    """``base``, and ``base`` with each task family a searched ``task`` may pick."""
    if space is None or "task" not in space.fields:
        return [base]
    return [base.replace(task=t) for t in space["task"].choices]
