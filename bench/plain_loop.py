"""Is the reference loop a fair baseline? The same meta-iteration written a second way, by hand.

``bench.batching`` measures the engine against ``imaml_core.reference_loop``, which runs the per-task public
API (``solve_inner`` and ``implicit_meta_gradient``, the batched code with one task). A speed-up only
means something if that loop is not needlessly slow, so this script times it against a plain loop as
someone would write it from the paper: per task, a list of weight tensors, autograd for gradients and
Hessian-vector products (double backward), the same safeguarded proximal GD and the same CG (started at
the test gradient, per-task tolerance, stop at non-positive curvature). tests/test_batched.py checks that
it computes the engine's meta-gradient. All three are timed alternately in one run, one thread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.inner import GROW
from imaml_core.reference_loop import per_task_step
from imaml_core.sinusoid import TaskBatch

from .common import device_name, markdown_table, parse_args, setup_timing, write_csv, write_markdown

Weights = list[Tensor]  # [W_0, b_0, W_1, b_1, ...] of one task


def _mlp(p: Weights, x: Tensor) -> Tensor:
    for i in range(0, len(p), 2):
        x = torch.nn.functional.linear(x, p[i], p[i + 1])
        if i + 2 < len(p):
            x = torch.relu(x)
    return x


def _dot(a: Weights, b: Weights) -> Tensor:
    return sum((u * v).sum() for u, v in zip(a, b, strict=True))


def _task_gradient(theta: Weights, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor, cfg: ExperimentConfig) -> Weights:
    """iMAML meta-gradient of one task: safeguarded proximal GD, then CG on (I + H/lam) g = grad L_test."""
    lam = cfg.lam

    def objective(p: Weights) -> tuple[Tensor, Weights]:
        p = [t.detach().requires_grad_(True) for t in p]
        diff = [a - t for a, t in zip(p, theta, strict=True)]
        obj = ((_mlp(p, xs) - ys) ** 2).mean() + 0.5 * lam * _dot(diff, diff)
        return obj.detach(), list(torch.autograd.grad(obj, p))

    phi, step = theta, cfg.inner_lr
    obj, g = objective(phi)
    for _ in range(cfg.inner_steps):
        trial = [a - step * b for a, b in zip(phi, g, strict=True)]
        t_obj, t_g = objective(trial)
        if not cfg.inner_safeguard:
            phi, obj, g = trial, t_obj, t_g
        elif bool(t_obj <= obj):
            phi, obj, g, step = trial, t_obj, t_g, step * GROW
        else:
            step *= 0.5
    phi = [t.detach().requires_grad_(True) for t in phi]
    v = list(torch.autograd.grad(((_mlp(phi, xq) - yq) ** 2).mean(), phi))
    train_grad = torch.autograd.grad(((_mlp(phi, xs) - ys) ** 2).mean(), phi, create_graph=True)

    def A(u: Weights) -> Weights:  # (I + H/lam) u by double backward through the kept gradient graph
        hu = torch.autograd.grad(train_grad, phi, u, retain_graph=True)
        return [a + h / lam for a, h in zip(u, hu, strict=True)]

    x = v
    r = [b - a for b, a in zip(v, A(x), strict=True)]
    p, rr = r, _dot(r, r)
    threshold = (cfg.cg_tol**2) * _dot(v, v)
    tiny = torch.finfo(rr.dtype).eps ** 2
    for _ in range(cfg.cg_steps):
        if not bool(rr > threshold):
            break
        ap = A(p)
        pap = _dot(p, ap)
        if not bool(pap > rr * tiny):  # non-positive curvature: keep the last iterate
            break
        alpha = rr / pap
        x = [a + alpha * b for a, b in zip(x, p, strict=True)]
        r = [a - alpha * b for a, b in zip(r, ap, strict=True)]
        rr_new = _dot(r, r)
        p, rr = [a + (rr_new / rr) * b for a, b in zip(r, p, strict=True)], rr_new
    return [t.detach() for t in x]


def plain_meta_gradient(trainer: MetaTrainer, tasks: TaskBatch) -> Tensor:
    """Mean iMAML meta-gradient (flat, (P,)) of ``tasks``, task by task with plain autograd."""
    cfg = trainer.config
    if cfg.method != "imaml" or cfg.inner_solver != "gd":
        raise ValueError("the plain loop is written for iMAML with the GD inner solver")
    names = [name for pair in trainer.model.linear_names for name in pair]  # W_0, b_0, W_1, ... (any θ order)
    params = trainer.layout.unflatten(trainer.theta.detach())
    theta = [params[name] for name in names]
    total = [torch.zeros_like(t) for t in theta]
    for i in range(len(tasks)):
        grads = _task_gradient(theta, tasks.x_support[i], tasks.y_support[i], tasks.x_query[i], tasks.y_query[i], cfg)
        for t, g in zip(total, grads, strict=True):
            t += g
    return trainer.layout.flatten(dict(zip(names, total, strict=True))) / len(tasks)


def measure(batch: int, rounds: int) -> dict[str, float]:
    """Median seconds of the engine, the reference loop and the plain loop, alternated in one run."""
    cfg = ExperimentConfig(meta_batch=batch, val_every=0)
    engine, reference, plain = MetaTrainer(cfg), MetaTrainer(cfg), MetaTrainer(cfg)
    runs: dict[str, Callable[[], object]] = {
        "reference": lambda: per_task_step(reference),
        "plain": lambda: per_task_step(plain, plain_meta_gradient),
        "engine": engine.step,
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()
    for _ in range(rounds):
        for name, fn in runs.items():
            if name == "engine":
                fn()  # as in bench.batching: the engine timed in its steady state, after one of its own steps
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out = {f"{k}_seconds": statistics.median(v) for k, v in times.items()}
    out["theta_difference"] = float((plain.theta - reference.theta).abs().max())
    return {"meta_batch": batch, "rounds": rounds, **out}


def summary(row: dict[str, float], where: str) -> str:
    eng, ref, plain = (row[f"{k}_seconds"] for k in ("engine", "reference", "plain"))
    table = markdown_table(
        ["loop", "ms per meta-iteration", "engine speed-up against it"],
        [
            ["reference (`imaml_core.reference_loop`)", ref * 1e3, ref / eng],
            ["plain autograd", plain * 1e3, plain / eng],
        ],
    )
    return "\n".join(
        [
            f"## Is the reference loop fair? ({where})",
            "",
            f"Default config at meta-batch {row['meta_batch']}; medians of {row['rounds']} rounds, the engine "
            f"({eng * 1e3:.3g} ms, each timed step after an untimed one) and both loops alternated. The plain "
            "loop is the same algorithm written from the paper with lists of tensors and autograd; after the "
            f"same meta-iterations its θ and the reference loop's differ by {row['theta_difference']:.2g} at "
            "most (float32).",
            "",
            table,
        ]
    )


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv)
    setup_timing()
    row = measure(5 if args.quick else 25, 3 if args.quick else 15)
    write_csv(args.out / "plain_loop.csv", [row])
    text = summary(row, device_name("cpu"))
    write_markdown(args.out, "plain_loop", text)
    return text


if __name__ == "__main__":
    main()
