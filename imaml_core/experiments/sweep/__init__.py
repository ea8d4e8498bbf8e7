"""Sweeps: many runs of one base config, chosen by Optuna (TPE) and executed by Ray Tune. Qt-free.

A sweep folder is a runs folder (every trial is a run folder in the run store's format, so ``imaml runs
list DIR`` and the window's Runs panel show them) plus the sweep's own record, sweep.json (see _record.py).

The base config may be of any task family. What a sweep optimises (``--metric``, one table with each
metric's direction in _metrics.py), always as the mean over the trial's seeds after the last meta-iteration:

- minimised, any family: ``val_loss``, the validation loss (post-adaptation query loss on the fixed
  validation set: MSE for regression, cross-entropy for classification); ``eval_loss``, the loss on the
  evaluation tasks: ``MetaTrainer.evaluate`` on 600 fresh tasks (the same tasks for every trial) adapted
  with the trial's own inner steps;
- minimised, regression only: ``val_mse`` and ``eval_mse``, the same numbers under the names regression
  sweeps have always used; ``mse_per_second``, validation MSE × the seconds the meta-iterations took:
  lowest when a setting is both accurate and cheap (halving the time is worth as much as halving the
  error). Seconds are wall-clock time, so compare it within one sweep on one kind of machine;
- maximised, classification only: ``val_accuracy``, the validation accuracy, and ``eval_accuracy``, the
  accuracy on the 600 evaluation tasks (adapted as for ``eval_loss``).

A metric that does not apply to the base config's family (an MSE of a classification family, whose loss is
cross-entropy; an accuracy of regression) is refused before Ray starts. Optuna's direction, Ray Tune's
mode, which trial is best, and the order of a summary follow the metric's mode, which sweep.json records.
ASHA always compares the mean validation loss (lower is better), whatever the metric: for every family it
is the number each report has, and for classification it moves with the accuracy without its steps of
1/(tasks × queries).

``--seeds K`` trains K runs per trial (seeds ``seed``, ``seed+1``, ...), one run folder each
(``trial-<id>-seed<k>``), side by side in the trial's worker; ASHA and Optuna see their mean.

The Ray-free parts load with this package: the search space (``parse_search``, ``load_spec``,
``SearchSpace``, ``Dimension``), the settings (``SweepSettings``), the reader a viewer polls
(``read_sweep`` -> ``SweepSummary`` with ``TrialSummary`` rows) and what explains the metric
(``param_importance`` -> ``Importance``, importing Optuna when called). ``run_sweep`` and ``resume_sweep``
import Ray and Optuna (the ``imaml-studio[sweep]`` extra) only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imaml_core.experiments.sweep._address import keep_ray_on_loopback, probe_address
from imaml_core.experiments.sweep._metrics import (
    METRIC_TABLE,
    METRICS,
    Metric,
    check_metric,
    default_metric,
    metric_mode,
)
from imaml_core.experiments.sweep._record import (
    SWEEP_FILE,
    SWEEP_STATUSES,
    TRIAL_STATUSES,
    SweepSettings,
    SweepSummary,
    TrialSummary,
    check_base,
    is_sweep,
    read_sweep,
)
from imaml_core.experiments.sweep._space import (
    DISTRIBUTIONS,
    Dimension,
    SearchSpace,
    SweepError,
    load_spec,
    make_dimension,
    parse_search,
)
from imaml_core.experiments.sweep.importance import Importance, param_importance

if TYPE_CHECKING:
    from imaml_core.common.config import ExperimentConfig

__all__ = [
    "DISTRIBUTIONS",
    "METRICS",
    "METRIC_TABLE",
    "SWEEP_FILE",
    "SWEEP_STATUSES",
    "TRIAL_STATUSES",
    "Dimension",
    "Importance",
    "Metric",
    "SearchSpace",
    "SweepError",
    "SweepSettings",
    "SweepSummary",
    "TrialSummary",
    "check_metric",
    "default_metric",
    "is_sweep",
    "load_spec",
    "make_dimension",
    "metric_mode",
    "param_importance",
    "parse_search",
    "read_sweep",
    "resume_sweep",
    "run_sweep",
    "sweep_available",
]


def sweep_available() -> bool:
    """Whether Ray Tune and Optuna are installed (without importing them)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("ray", "optuna"))


def _load_driver(address: str | None) -> Any:
    if not sweep_available():
        raise SweepError('sweeps need Ray Tune and Optuna: pip install "imaml-studio[sweep]"')
    from importlib import import_module

    keep_ray_on_loopback(address)

    return import_module("._driver", __name__)


def run_sweep(
    out: str | Path, base: ExperimentConfig, space: SearchSpace, settings: SweepSettings, on_event: Any = None
) -> SweepSummary:
    """Run a new sweep into folder ``out`` and return how it ended (see ``_driver.run_sweep``).
    ``on_event(kind, trial)`` hears each trial start, end (finished / pruned / failed) and restart. A metric
    that ``base``'s task family does not have is refused before Ray starts."""
    check_metric(settings.validate().metric, base.validate(), space)
    if settings.address:
        probe_address(settings.address)  # before Ray is imported: a wrong address fails within seconds
    return _load_driver(settings.address).run_sweep(out, base, space, settings, on_event)


def resume_sweep(out: str | Path, address: str | None = None, on_event: Any = None) -> SweepSummary:
    """Continue the sweep in ``out`` without repeating trials that ended (see ``_driver.resume_sweep``);
    a record whose base config is not valid is refused before Ray starts."""
    if address:
        probe_address(address)
    summary = read_sweep(out)
    check_base(summary)
    return _load_driver(address or summary.settings.address).resume_sweep(out, address, on_event)
