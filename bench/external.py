"""Optional: the engine against torchopt's implicit differentiation (iMAML) and higher's MAML, same tasks.

Not needed by ``make test`` or ``python -m bench``'s core; it runs only where torchopt / higher import,
e.g. in a throwaway venv beside the project's (see RESULTS.md for the exact commands). Both libraries are
driven the way their own examples do it: a Python loop over the tasks of a meta-batch.

- iMAML: ``torchopt.diff.implicit.custom_root`` around the same proximal GD (10 steps, lr 0.01, λ 20),
  with ``solve_cg(maxiter=5)`` (the same linear system as ours; torchopt's iMAML example uses
  ``solve_normal_cg``, CG on the normal equations). Compared with the engine running unsafeguarded GD, so
  both compute the same meta-gradient; we check that they agree on one batch before timing.
- MAML: ``higher.innerloop_ctx`` with SGD(lr 0.01), 10 unrolled steps, against the engine's ``maml``.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata

import torch
from torch import Tensor, nn

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.tasks.sinusoid import TaskBatch, sample_tasks

from .common import markdown_table, parse_args, setup_timing, write_csv, write_markdown

Tuple = tuple[Tensor, ...]


def _net(params: Tuple, x: Tensor) -> Tensor:
    """The engine's 1-40-40-1 ReLU MLP on tuple parameters (w0, b0, w1, b1, w2, b2)."""
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i].T + params[i + 1]
        if i < len(params) - 2:
            h = torch.relu(h)
    return h


def _mse(params: Tuple, x: Tensor, y: Tensor) -> Tensor:
    return ((_net(params, x) - y) ** 2).mean()


class TorchoptIMAML:
    """Per-task iMAML with torchopt's implicit differentiation, as in torchopt's iMAML example."""

    def __init__(self, theta: Tuple, cfg: ExperimentConfig) -> None:
        import torchopt

        self.cfg = cfg
        self.meta = tuple(t.detach().clone().requires_grad_(True) for t in theta)
        self.opt = torch.optim.Adam(self.meta, lr=cfg.meta_lr)
        lam, steps, lr = cfg.lam, cfg.inner_steps, cfg.inner_lr

        def objective(params: Tuple, meta: Tuple, x: Tensor, y: Tensor) -> Tensor:
            reg = sum(((p - m) ** 2).sum() for p, m in zip(params, meta, strict=True))
            return _mse(params, x, y) + 0.5 * lam * reg

        @torchopt.diff.implicit.custom_root(
            torch.func.grad(objective, argnums=0),
            argnums=1,
            solve=torchopt.linear_solve.solve_cg(maxiter=cfg.cg_steps, atol=0),
        )
        def inner(params: Tuple, meta: Tuple, x: Tensor, y: Tensor) -> Tuple:
            with torch.enable_grad():
                for _ in range(steps):
                    grads = torch.autograd.grad(objective(params, meta, x, y), params)
                    params = tuple(
                        (p - lr * g).detach().requires_grad_(True) for p, g in zip(params, grads, strict=True)
                    )
            return params

        self.inner = inner

    def meta_gradient(self, tasks: TaskBatch) -> Tuple:
        losses = []
        for i in range(len(tasks)):
            init = tuple(t.detach().clone().requires_grad_(True) for t in self.meta)
            phi = self.inner(init, self.meta, tasks.x_support[i], tasks.y_support[i])
            losses.append(_mse(phi, tasks.x_query[i], tasks.y_query[i]))
        return torch.autograd.grad(torch.stack(losses).mean(), self.meta)

    def step(self, tasks: TaskBatch) -> None:
        grads = self.meta_gradient(tasks)
        for p, g in zip(self.meta, grads, strict=True):
            p.grad = g
        self.opt.step()


class HigherMAML:
    """Per-task second-order MAML with higher's differentiable SGD, as in higher's MAML example."""

    def __init__(self, theta: Tuple, cfg: ExperimentConfig) -> None:
        import higher

        self.higher = higher
        self.cfg = cfg
        self.model = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))
        with torch.no_grad():
            for p, t in zip(self.model.parameters(), theta, strict=True):
                p.copy_(t)
        self.meta_opt = torch.optim.Adam(self.model.parameters(), lr=cfg.meta_lr)
        self.inner_opt = torch.optim.SGD(self.model.parameters(), lr=cfg.inner_lr)

    def step(self, tasks: TaskBatch) -> None:
        self.meta_opt.zero_grad()
        for i in range(len(tasks)):
            with self.higher.innerloop_ctx(self.model, self.inner_opt, copy_initial_weights=False) as (fmodel, diffopt):
                for _ in range(self.cfg.inner_steps):
                    diffopt.step(((fmodel(tasks.x_support[i]) - tasks.y_support[i]) ** 2).mean())
                loss = ((fmodel(tasks.x_query[i]) - tasks.y_query[i]) ** 2).mean() / len(tasks)
                loss.backward()
        self.meta_opt.step()


def _theta_tuple(trainer: MetaTrainer) -> Tuple:
    p = trainer.params()
    return tuple(p[k] for k in ("0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"))


def _median_alternating(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv)
    setup_timing()
    warnings.filterwarnings("ignore", category=FutureWarning)  # torchopt still calls functorch.vjp
    repeats = 2 if args.quick else 7
    cfg = ExperimentConfig(inner_safeguard=False, val_every=0)  # plain GD: the algorithm torchopt runs
    rows: list[dict] = []
    lines = ["## Optional: against torchopt and higher", ""]
    gen = torch.Generator().manual_seed(99)
    batch = lambda: sample_tasks(cfg.meta_batch, cfg.shots, cfg.query, gen)  # noqa: E731

    candidates: dict[str, tuple[str, type]] = {"torchopt": ("imaml", TorchoptIMAML), "higher": ("maml", HigherMAML)}
    for lib, (method, cls) in candidates.items():
        try:
            __import__(lib)
        except ImportError as exc:
            lines.append(f"- {lib}: not available ({exc})")
            continue
        run_cfg = cfg.replace(method=method)
        engine = MetaTrainer(run_cfg)
        external = cls(_theta_tuple(engine), run_cfg)
        agree = float("nan")
        if lib == "torchopt":
            # Same meta-gradient? CG run to convergence on both sides (with 5 steps they differ by design:
            # ours starts CG at the first-order answer, torchopt's at zero).
            check_cfg = run_cfg.replace(cg_steps=100, cg_tol=0.0)
            tasks = batch()
            ours = MetaTrainer(check_cfg, theta=engine.params()).meta_gradient(tasks).grad.mean(0)
            theirs = torch.cat([g.reshape(-1) for g in cls(_theta_tuple(engine), check_cfg).meta_gradient(tasks)])
            agree = float((ours - theirs).norm() / ours.norm())
        times = _median_alternating({"engine": engine.step, lib: lambda e=external: e.step(batch())}, repeats)
        rows.append(
            {
                "library": f"{lib} {metadata.version(lib)}",
                "method": method,
                "meta_batch": run_cfg.meta_batch,
                "engine_seconds": times["engine"],
                "library_seconds": times[lib],
                "engine_speedup": times[lib] / times["engine"],
                "meta_gradient_rel_diff": agree,
            }
        )
    table = [
        [
            r["library"],
            r["method"],
            r["meta_batch"],
            r["engine_seconds"] * 1e3,
            r["library_seconds"] * 1e3,
            r["engine_speedup"],
            r["meta_gradient_rel_diff"],
        ]
        for r in rows
    ]
    if rows:
        write_csv(args.out / "external.csv", rows)
        headers = [
            "library",
            "method",
            "meta-batch",
            "engine ms",
            "library ms",
            "engine speed-up",
            "grad rel. diff (CG 100)",
        ]
        lines = [*lines[:2], markdown_table(headers, table), "", *lines[2:]]
    lines.append(
        f"\nSame config for both: λ {cfg.lam:g}, {cfg.inner_steps} inner GD steps of {cfg.inner_lr:g} "
        f"(unsafeguarded), {cfg.cg_steps} CG steps, {cfg.shots} shots; median of {repeats} alternated runs. "
        "The gradient check (torchopt only: higher's MAML has no per-task counterpart in the public API) "
        "runs CG to 100 steps on both sides on one batch."
    )
    text = "\n".join(lines)
    write_markdown(args.out, "external", text)
    return text


if __name__ == "__main__":
    main()
