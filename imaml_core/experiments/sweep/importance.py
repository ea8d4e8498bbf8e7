"""Parameter importance of a sweep: which searched fields explain its metric, as Optuna Dashboard shows it.

Computed from the sweep's record alone (a :class:`SweepSummary` from ``read_sweep``, never Ray Tune's state):
the finished trials with a finite metric become COMPLETE trials of an in-memory Optuna study, each with its
searched values under the dimension's Optuna distribution, and ``optuna.importance.get_param_importances``
weighs the fields with fANOVA (``FanovaImportanceEvaluator``: random forests of scikit-learn, which the
``sweep`` extra installs; seeded, so the same record always gives the same shares) or, where scikit-learn
does not import, with PED-ANOVA (``PedAnovaImportanceEvaluator``, which draws nothing at random). Every
output names the evaluator. Pruned trials are left out, as Optuna leaves them out: their metric is from an
earlier iteration.

Optuna is imported when :func:`param_importance` is called, so this module loads with the Ray-free reader.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from typing import Any

from imaml_core.experiments.sweep._record import SweepSummary
from imaml_core.experiments.sweep._space import Dimension

EVALUATORS = ("fANOVA", "PedANOVA")
EVALUATOR = "fANOVA" if importlib.util.find_spec("sklearn") else "PedANOVA"  # the default: fANOVA where it installs
FANOVA_SEED = 0
MIN_TRIALS = 3  # below this no share means anything, however few fields are searched


@dataclass(frozen=True)
class Importance:
    """Each searched field's share of the metric's importance (shares sum to 1, largest first), or the
    ``reason`` they could not be computed; ``evaluator`` names the method either way."""

    evaluator: str = EVALUATOR
    fields: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    trials: int = 0  # the completed trials it was computed from

    def to_json(self) -> dict[str, Any]:
        """``{"evaluator", "fields": {field: share}, "trials"}``, or ``{"evaluator", "reason"}`` without
        shares."""
        if self.reason:
            return {"evaluator": self.evaluator, "reason": self.reason}
        return {"evaluator": self.evaluator, "fields": dict(self.fields), "trials": self.trials}

    @classmethod
    def from_json(cls, data: Any) -> Importance:
        """The :class:`Importance` that :meth:`to_json` wrote (``imaml sweep --show DIR --json``'s
        ``importance``); anything else is a ``ValueError`` that says what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("evaluator"), str):
            raise ValueError("importance is not an object with an evaluator")
        if "reason" in data:
            if not isinstance(data["reason"], str) or not data["reason"]:
                raise ValueError("importance's reason is not a non-empty string")
            return cls(evaluator=data["evaluator"], reason=data["reason"])
        fields, trials = data.get("fields"), data.get("trials")
        if not isinstance(fields, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in fields.items()
        ):
            raise ValueError("importance's fields are not {field: share}")
        if not isinstance(trials, int) or isinstance(trials, bool):
            raise ValueError("importance's trials is not a count")
        return cls(evaluator=data["evaluator"], fields={k: float(v) for k, v in fields.items()}, trials=trials)

    def line(self) -> str:
        """One line for a person: ``importance (fANOVA, 12 completed trials): lam 0.71, inner_lr 0.29``; the
        count says how much the shares rest on (a sweep that prunes early completes few trials)."""
        if self.reason:
            return f"importance ({self.evaluator}): {self.reason}"
        shares = ", ".join(f"{name} {share:.2f}" for name, share in self.fields.items())
        return f"importance ({self.evaluator}, {self.trials} completed trials): {shares}"


def param_importance(summary: SweepSummary, evaluator: str = EVALUATOR) -> Importance:
    """The importance of each of ``summary``'s searched fields for its metric by ``evaluator`` (one of
    ``EVALUATORS``; see the module docstring); an :class:`Importance` with a ``reason`` when there are fewer
    completed trials with a finite metric than :func:`min_trials` asks, the metric is the same in all of
    them, or Optuna (or, for fANOVA, scikit-learn) is not installed."""
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {', '.join(EVALUATORS)}, got {evaluator!r}")
    found = _importance(summary, evaluator)
    return found if found.evaluator == evaluator else Importance(evaluator, found.fields, found.reason, found.trials)


def min_trials(fields: int) -> int:
    """How many completed trials the importance of ``fields`` searched fields needs: one more than the fields
    (even a model linear in them has that many coefficients, so fewer trials cannot tell the fields apart;
    with 2 trials where λ alone decides, fANOVA ranks another field first), and never fewer than
    ``MIN_TRIALS``."""
    return max(MIN_TRIALS, fields + 1)


def _importance(summary: SweepSummary, evaluator: str) -> Importance:
    done = [t for t in summary.trials if t.status == "finished" and t.metric is not None and math.isfinite(t.metric)]
    if not summary.space.dimensions:
        return Importance(reason="importance needs at least 1 searched field")
    needed = min_trials(len(summary.space.dimensions))
    if len(done) < needed:
        return Importance(reason=f"importance needs at least {needed} completed trials ({len(done)} so far)")
    try:
        import optuna
    except ImportError:
        return Importance(reason='importance needs Optuna: pip install "imaml-studio[sweep]"')
    if optuna.logging.get_verbosity() < optuna.logging.WARNING:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per call
    distributions = {d.field: _distribution(optuna, d) for d in summary.space.dimensions}
    direction = "maximize" if summary.mode == "max" else "minimize"
    study = optuna.create_study(direction=direction)
    values = []
    for t in done:
        try:
            params = summary.space.search_values(t.config)
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=t.metric))
        except (KeyError, TypeError, ValueError):
            continue  # a trial whose values are outside the recorded space says nothing about it
        values.append(t.metric)
    if len(values) < needed:
        return Importance(
            reason=f"importance needs at least {needed} completed trials inside the search space ({len(values)} so far)"
        )
    if max(values) == min(values):
        return Importance(reason=f"{summary.metric} is the same in every completed trial", trials=len(values))
    if evaluator == "fANOVA":
        try:
            weigh = optuna.importance.FanovaImportanceEvaluator(seed=FANOVA_SEED)
        except ImportError:
            return Importance(reason='fANOVA needs scikit-learn: pip install "imaml-studio[sweep]"')
    else:
        weigh = optuna.importance.PedAnovaImportanceEvaluator()
    shares = optuna.importance.get_param_importances(study, evaluator=weigh, params=list(distributions))
    ranked = sorted(shares.items(), key=lambda item: (-item[1], list(distributions).index(item[0])))
    return Importance(fields={name: float(share) for name, share in ranked}, trials=len(values))


def _distribution(optuna: Any, d: Dimension) -> Any:
    """The Optuna distribution a dimension is drawn from (choices as the search sees them: lists as JSON)."""
    if d.dist == "choice":
        return optuna.distributions.CategoricalDistribution(d.search_choices())
    if d.dist in ("int", "intlog"):
        return optuna.distributions.IntDistribution(int(d.low), int(d.high), log=d.log)
    return optuna.distributions.FloatDistribution(float(d.low), float(d.high), log=d.log)
