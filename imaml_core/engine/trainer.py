"""``MetaTrainer``: the one stateful object (theta, Adam, task stream) that the CLI, tests, benchmarks and
the GUI worker all drive with ``step()``.

A meta-iteration samples B tasks on the device, computes all B meta-gradients together (methods.py),
averages them and takes an Adam step. A non-finite loss, phi or gradient in any task aborts the
iteration before theta or the optimiser are touched; the report says what diverged and why.

iMAML's lambda lives here too (lam_state.py): fixed, or meta-learned in log space by its own Adam from
the same meta-batch, in the same step as theta, and left untouched whenever theta is. The other methods
adapt by plain GD and ignore lambda, ``lam_shape`` and ``learn_lam``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import CheckpointError, ConfigError
from imaml_core.common.report import EvalResult, StepReport
from imaml_core.engine.divergence import diagnose
from imaml_core.engine.evaluation import adapt_curves, evaluate
from imaml_core.engine.footprint import check_change_fits, check_fits
from imaml_core.engine.lam import FlatLam, Lam
from imaml_core.engine.lam_state import LamState
from imaml_core.engine.memory import measure_step
from imaml_core.engine.methods import MetaGradient, meta_gradient
from imaml_core.engine.mlp_derivatives import MLPMSEDerivatives
from imaml_core.engine.model import MLP, FunctionalModel, model_for
from imaml_core.engine.objective import TaskLoss
from imaml_core.engine.optim_state import adam, check_optimizer_tensors, load_optimizer_tensors, optimizer_tensors
from imaml_core.engine.params import ParamLayout, Params
from imaml_core.engine.streams import EVALUATION_TASKS, THETA_INIT, TRAINING_TASKS, VALIDATION_TASKS, generator
from imaml_core.tasks import TaskBatch, TaskFamily, classifies, family_for


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without it is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available here (use cpu or auto)")
    return torch.device(name)


class MetaTrainer:
    """Meta-trains theta on the tasks of a family (:mod:`imaml_core.tasks`) with the method and settings of an
    :class:`ExperimentConfig`."""

    def __init__(
        self,
        config: ExperimentConfig | None = None,
        theta: Params | None = None,
        model: FunctionalModel | None = None,
        iteration: int = 0,
        current_lam: Lam | None = None,
        tasks: TaskFamily | None = None,
    ) -> None:
        """``theta`` and ``iteration`` continue a run (e.g. from a checkpoint), and so does ``current_lam``,
        a learned lambda in ``config.lam_shape``'s structure (a number fills every entry). The config's
        ``lam`` is where lambda starts: a fixed lambda stays there and ignores ``current_lam``. ``tasks`` is
        the task family (default: the one ``config.task`` names, :func:`imaml_core.tasks.family_for`)."""
        cfg = (config or ExperimentConfig()).validate()
        self._config = cfg
        self.tasks: TaskFamily = tasks or family_for(cfg)
        self.device = resolve_device(cfg.device)
        self.dtype = getattr(torch, cfg.dtype)
        self.model: FunctionalModel = model or model_for(cfg, self.tasks)
        init = (
            theta
            if theta is not None
            else self.model.init_params(generator(self.device, cfg.seed, THETA_INIT), self.dtype, self.device)
        )
        shapes = self.model.shapes() if hasattr(self.model, "shapes") else {}
        if set(init) == set(shapes):
            init = {k: init[k] for k in shapes}  # canonical order (files may sort keys)
        self.layout = ParamLayout.of(init)
        check_fits(cfg, self.model, self.layout.numel, self.examples(cfg), self.device)
        self.theta = self.layout.flatten({k: v.detach() for k, v in init.items()}).to(self.device, self.dtype)
        self.theta = self.theta.clone()
        self.optimizer = adam(self.theta, cfg.meta_lr)
        learned = cfg.learn_lam and cfg.method == "imaml"
        self._lam = LamState(
            self.layout,
            cfg.lam_shape,
            learned,
            cfg.lam,
            cfg.lam_lr,
            self.dtype,
            self.device,
            current_lam if learned else None,
        )
        self._tasks = generator(self.device, cfg.seed, TRAINING_TASKS)
        val_gen = generator(self.device, cfg.seed, VALIDATION_TASKS)
        self.val_set = self._draw(cfg.val_tasks, cfg.shots, self.eval_query, val_gen, "val")
        self.iteration = iteration

    # -- configuration ----------------------------------------------------------------------------
    @property
    def config(self) -> ExperimentConfig:
        return self._config

    def apply_config(self, config: ExperimentConfig) -> None:
        """Use new *live* settings from the next meta-iteration on; restart fields must not change."""
        config.validate()
        restart = [k for k in config.changed(self._config) if not ExperimentConfig.is_live(k)]
        if restart:
            raise ConfigError(f"changing {', '.join(restart)} needs a restart (a new theta)")
        check_change_fits(self._config, config, self.model, self.layout.numel, self.examples, self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = config.meta_lr
        self._lam.set_lr(config.lam_lr)
        self._lam.rebase(config.lam)
        self._config = config

    def examples(self, config: ExperimentConfig) -> tuple[int, int]:
        """Support and query examples per task under ``config`` (per class times the ways, to classify)."""
        per_class = self.tasks.n_outputs if classifies(self.tasks) else 1
        return config.shots * per_class, config.query * per_class

    # -- tasks and losses -------------------------------------------------------------------------
    def sample_batch(self, n: int | None = None, shots: int | None = None, query: int | None = None) -> TaskBatch:
        """The next ``n`` tasks of the training stream (default: the config's meta-batch, shots and query).

        ``step()`` draws its tasks here too, so a caller that samples moves the stream exactly as a
        meta-iteration would: a loop that calls ``sample_batch`` then ``meta_gradient`` then
        ``apply_meta_gradient`` sees the tasks ``step()`` would have seen."""
        cfg = self._config
        return self._draw(
            cfg.meta_batch if n is None else n,
            cfg.shots if shots is None else shots,
            cfg.query if query is None else query,
            self._tasks,
        )

    def _draw(self, n: int, shots: int, query: int, gen: torch.Generator, split: str = "train") -> TaskBatch:
        return self.tasks.sample(n, shots, query, gen, self.dtype, self.device, split=split)

    @property
    def eval_query(self) -> int:
        """Query examples per task (per class) in validation and evaluation: the family's ``eval_query``
        (100 points for a sinusoid), else the training ``query``."""
        return int(getattr(self.tasks, "eval_query", None) or self._config.query)

    def predict(self, phi: Tensor, x: Tensor) -> Tensor:
        """The model's predictions under flat task parameters phi (B, P) for examples x (B, N, ...)."""
        return self.model.forward(self.layout.unflatten(phi), x)

    def losses(self, x: Tensor, y: Tensor) -> TaskLoss:
        """Per-task loss (the family's) of flat task parameters (B, P) on examples x, y of shape (B, N, ...)."""

        def per_task(phi: Tensor) -> Tensor:
            return self.tasks.loss_per_task(self.predict(phi, x), y)

        exact = None
        if self._config.analytic_grads and isinstance(self.model, MLP) and self.tasks.loss_name == "MSE":
            n_layers = len(self.model.widths) - 1
            exact = MLPMSEDerivatives(self.layout, n_layers, x, y, compiled=self._config.compile)
        return TaskLoss(per_task, exact)

    def task_losses(self, tasks: TaskBatch) -> tuple[TaskLoss, TaskLoss]:
        """The support (inner) and query (outer) losses of ``tasks``, as the meta-gradient methods take them."""
        return self.losses(tasks.x_support, tasks.y_support), self.losses(tasks.x_query, tasks.y_query)

    def meta_gradient(self, tasks: TaskBatch, should_stop: Callable[[], bool] | None = None) -> MetaGradient:
        """Per-task meta-gradients of ``tasks`` at the current theta with the current config (theta unchanged).

        ``step()`` averages these over the batch and hands the mean to ``apply_meta_gradient``."""
        train, test = self.task_losses(tasks)
        return meta_gradient(self._config, train, test, self.theta, len(tasks), should_stop, self._lam.engine())

    def params(self) -> Params:
        """A copy of theta as a parameter dict (contiguous tensors, ready to save)."""
        return {k: v.detach().clone().contiguous() for k, v in self.layout.unflatten(self.theta).items()}

    # -- lambda -----------------------------------------------------------------------------------
    @property
    def lam_learned(self) -> bool:
        """Whether this run meta-learns lambda (``learn_lam`` with iMAML)."""
        return self._lam.learned

    def current_lam(self) -> float | dict[str, Tensor]:
        """The current lambda (a copy) in ``lam_shape``'s structure: a float, a 0-d tensor per parameter
        tensor, or a tensor of each parameter's shape, keyed by parameter name."""
        return self._lam.value()

    def engine_lam(self) -> FlatLam:
        """The current lambda as the batched engine takes it: a float, or a flat (P,) tensor (read only)."""
        return self._lam.engine()

    def log_lam_gradient(self, mg: MetaGradient) -> float | dict[str, Tensor]:
        """d meta-loss / d log lambda from the tasks of ``mg`` (an iMAML ``meta_gradient``), averaged over
        them, in ``lam()``'s structure: what a learned lambda's Adam steps along."""
        if mg.lam_grad is None:
            raise ConfigError("the gradient of lambda needs an iMAML meta-gradient")
        return self._lam.structured(self._lam.log_gradient(mg.lam_grad))

    # -- one meta-iteration -----------------------------------------------------------------------
    def step(self, should_stop: Callable[[], bool] | None = None) -> StepReport:
        """Run one meta-iteration with the current config and return its report.

        ``should_stop`` (polled between inner steps and CG iterations, e.g. from another thread's flag)
        abandons the iteration with :class:`StepCancelled`, leaving theta, Adam and the iteration count
        untouched.
        """
        cfg = self._config
        start = time.perf_counter()
        tasks = self.sample_batch()
        train, test = self.task_losses(tasks)
        pre = test.value(self.theta.expand(cfg.meta_batch, -1))
        message = ""
        try:
            with measure_step(self.device) as mem:
                mg = meta_gradient(cfg, train, test, self.theta, cfg.meta_batch, should_stop, self._lam.engine())
        except torch.OutOfMemoryError:
            mg = None
            message = (
                f"out of memory on {self.device.type} with meta-batch {cfg.meta_batch} and "
                f"{cfg.inner_steps} inner steps: lower them and continue"
            )
        grad = mg.grad.mean(dim=0) if mg is not None else None
        if mg is not None:
            message = diagnose(cfg, mg, grad)
        log_lam_grad = None
        if not message and self._lam.learned and mg is not None and mg.lam_grad is not None:
            log_lam_grad = self._lam.log_gradient(mg.lam_grad)
            if not bool(torch.isfinite(log_lam_grad).all()):
                message = "meta-iteration skipped, theta and lambda unchanged: the gradient of lambda is not finite"
        diverged = bool(message)
        clipped = 0
        if not diverged:
            message = self.apply_meta_gradient(grad)
            diverged = bool(message)
            if not diverged and log_lam_grad is not None:
                clipped = self._lam.step(log_lam_grad)
        val = accuracy = float("nan")
        if not diverged and cfg.val_every and self.iteration % cfg.val_every == 0:
            val, accuracy = self.validation()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        report = self._report(cfg, mg, grad, pre, val, mem["bytes"] if mg else 0, start, message)
        report.lam_clipped = clipped
        report.val_accuracy = accuracy
        return report

    def apply_meta_gradient(self, grad: Tensor) -> str:
        """One Adam step on theta along ``grad`` (flat, (P,)), counted as a finished meta-iteration.

        Only theta moves here; ``step()`` also steps a learned lambda after a successful theta step.

        Returns "" on success. A step that would leave theta non-finite is undone (theta and Adam state
        restored, the iteration not counted) and the returned message says why."""
        theta = self.theta.clone()
        state = {k: v.clone() if isinstance(v, Tensor) else v for k, v in self.optimizer.state[self.theta].items()}
        self.theta.grad = grad
        self.optimizer.step()
        self.theta.grad = None
        if bool(torch.isfinite(self.theta.sum())):
            self.iteration += 1
            return ""
        with torch.no_grad():
            self.theta.copy_(theta)
        if state:
            self.optimizer.state[self.theta] = state
        else:
            self.optimizer.state.pop(self.theta, None)
        return (
            "meta-iteration skipped, theta unchanged: the Adam update overflowed "
            f"(meta-gradient norm {float(grad.norm()):.3g}); lower meta_lr or check the inner settings"
        )

    def _report(
        self,
        cfg: ExperimentConfig,
        mg: MetaGradient | None,
        grad: Tensor | None,
        pre: Tensor,
        val: float,
        memory: int,
        start: float,
        message: str,
    ) -> StepReport:
        nan = float("nan")
        cg = mg.cg if mg is not None else None
        ran_cg = cg is not None and cfg.cg_steps > 0
        return StepReport(
            iteration=self.iteration,
            config=cfg,
            meta_loss=float(mg.post_loss.double().mean()) if mg is not None else nan,
            pre_loss=float(pre.double().mean()),
            val_loss=val,
            cg_residual=float(cg.residual.float().mean()) if ran_cg else nan,
            cg_iterations=float(cg.iterations.float().mean()) if ran_cg else 0.0,
            cg_nonpositive=int(cg.nonpositive_curvature.sum()) if ran_cg else 0,
            stationarity=float(mg.stationarity.float().mean()) if mg is not None else nan,
            memory_bytes=memory,
            seconds=time.perf_counter() - start,
            grad_norm=float(grad.double().norm()) if grad is not None else nan,  # float64: no overflow
            diverged=bool(message),
            message=message,
            task_post_loss=mg.post_loss.detach().cpu().numpy().copy() if mg is not None else np.zeros(0),
            lam_by_layer=self._lam.by_layer() if cfg.method == "imaml" else {},
        )

    # -- evaluation -------------------------------------------------------------------------------
    def validation(self) -> tuple[float, float]:
        """Post-adaptation query loss and accuracy (NaN for regression) on the fixed validation set, with the
        training inner steps."""
        cfg = self._config
        curves = adapt_curves(
            cfg, self.tasks, self.losses, self.predict, self.theta, self.val_set, cfg.inner_steps, self._lam.engine()
        )
        accuracy = float(curves.metric[-1].double().mean()) if curves.metric is not None else float("nan")
        return float(curves.loss[-1].double().mean()), accuracy

    def validation_loss(self) -> float:
        """Post-adaptation query loss on the fixed validation set, with the training inner steps."""
        return self.validation()[0]

    def evaluate(
        self, tasks: int = 600, shots: int | None = None, steps: int = 10, seed: int = 1, adapt_lam: str = "trained"
    ) -> EvalResult:
        """Mean query loss (and accuracy, for classification) on ``tasks`` fresh tasks of the test split, after
        0..steps adaptation steps (see :mod:`imaml_core.engine.evaluation`; ``adapt_lam`` "zero" adapts iMAML by
        plain GD)."""
        if tasks < 1 or steps < 0 or (shots is not None and shots < 1):
            raise ConfigError("evaluate needs tasks >= 1, shots >= 1 and steps >= 0")
        cfg = self._config
        shots = cfg.shots if shots is None else shots
        gen = generator(self.device, seed, EVALUATION_TASKS)
        batch = self._draw(tasks, shots, self.eval_query, gen, "test")
        result = evaluate(
            cfg, self.tasks, self.losses, self.predict, self.theta, batch, steps, self._lam.engine(), adapt_lam
        )
        result.shots = shots
        return result

    # -- exact continuation -----------------------------------------------------------------------
    def resume_state(self) -> dict[str, Tensor]:
        """Everything training changes, as CPU copies: theta (``params.<name>``), the ``iteration``, the
        training task stream's generator state (``tasks.rng``, uint8), theta's Adam (``adam.theta.*``)
        and, when lambda is learned, log lambda (``lam.log``) and its Adam (``adam.lam.*``).

        A trainer of the same config and device that loads it (``load_resume_state``) continues exactly
        as this one would: the same tasks, the same Adam steps, the same validation iterations."""
        state = {f"params.{k}": v for k, v in self.params().items()}
        state["iteration"] = torch.tensor(self.iteration, dtype=torch.int64)
        state["tasks.rng"] = self._tasks.get_state()
        state.update(optimizer_tensors(self.optimizer, "adam.theta"))
        state.update(self._lam.resume_state())
        return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}

    def load_resume_state(self, state: Mapping[str, Tensor]) -> None:
        """Continue from a ``resume_state()``. Everything is checked before anything changes: a state that
        does not fit this trainer (names, shapes, dtype, device type, lambda's structure) is a
        :class:`CheckpointError` and leaves the trainer as it was."""
        names = {f"params.{k}": s for k, s in zip(self.layout.names, self.layout.shapes, strict=True)}
        lam_keys = self._lam.check_resume_state(state)
        known = ("iteration", "tasks.rng", "adam.theta.")
        extra = [k for k in state if k not in names and k not in lam_keys and not k.startswith(known)]
        missing = [k for k in (*names, "iteration", "tasks.rng") if k not in state]
        if missing or extra:
            which = f"lacks '{missing[0]}'" if missing else f"has an unexpected '{extra[0]}'"
            raise CheckpointError(f"the resume state {which} for this config (hidden {self._config.hidden})")
        for key, shape in names.items():
            t = state[key]
            if tuple(t.shape) != shape or t.dtype != self.dtype or not bool(torch.isfinite(t).all()):
                raise CheckpointError(
                    f"resume tensor '{key}' is {t.dtype} {tuple(t.shape)}, expected finite {self.dtype} {shape}"
                )
        iteration = state["iteration"]
        if iteration.numel() != 1 or iteration.is_floating_point() or int(iteration) < 0:
            raise CheckpointError("the resume state's iteration must be one non-negative integer")
        try:
            torch.Generator(device=self.device).set_state(state["tasks.rng"])
        except (RuntimeError, TypeError):
            device = self.device.type
            raise CheckpointError(f"the resume state's task generator does not fit a {device} generator") from None
        check_optimizer_tensors(self.optimizer, "adam.theta", dict(state))
        with torch.no_grad():
            self.theta.copy_(self.layout.flatten({k: state[f"params.{k}"] for k in self.layout.names}))
        self.iteration = int(iteration)
        self._tasks.set_state(state["tasks.rng"])
        load_optimizer_tensors(self.optimizer, "adam.theta", dict(state))
        self._lam.load_resume_state(state)
