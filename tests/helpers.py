"""Small exact problems shared by the engine tests (float64 throughout)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from imaml_core.engine.model import MLP

F64 = torch.float64


def rel_err(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


def flat(d: dict[str, Tensor]) -> Tensor:
    return torch.cat([v.reshape(-1) for v in d.values()])


def tiny_mlp_problem(seed: int = 0, hidden: tuple[int, ...] = (6, 5), shots: int = 8):
    """A non-convex regression problem on a small tanh MLP: (theta, train_loss, test_loss).

    tanh keeps the loss twice differentiable everywhere, so the dense Hessian at the inner solution is
    well defined (a ReLU net's inner minimiser can sit on a kink, where no Hessian exists).
    """
    gen = torch.Generator().manual_seed(seed)
    theta = {k: v for k, v in MLP(hidden).init_params(gen, F64, torch.device("cpu")).items()}
    n_layers = len(hidden) + 1
    xs = torch.rand(shots, 1, generator=gen, dtype=F64) * 10 - 5
    xq = torch.rand(12, 1, generator=gen, dtype=F64) * 10 - 5
    ys, yq = 2.0 * torch.sin(xs + 0.5), 2.0 * torch.sin(xq + 0.5)

    def net(p: dict[str, Tensor], x: Tensor) -> Tensor:
        for i in range(n_layers):
            x = x @ p[f"{2 * i}.weight"].T + p[f"{2 * i}.bias"]
            if i < n_layers - 1:
                x = torch.tanh(x)
        return x

    def loss_on(x: Tensor, y: Tensor):
        def f(p: dict[str, Tensor]) -> Tensor:
            return ((net(p, x) - y) ** 2).mean()

        return f

    return theta, loss_on(xs, ys), loss_on(xq, yq)


def dense_hessian(loss, params: dict[str, Tensor]) -> Tensor:
    """The full Hessian of ``loss`` at ``params`` as a (P, P) matrix, in the dict's flat order."""
    names = list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def on_flat(v: Tensor) -> Tensor:
        parts = torch.split(v, sizes)
        return loss({n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)})

    return torch.autograd.functional.hessian(on_flat, flat(params))


def interrupted_training(args: list[str], started: Path, sig: int) -> str:
    """``imaml train ARGS`` in a child process, sent ``sig`` once ``started`` exists (and about a second
    later, so usually some meta-iterations have finished; on a busy machine none may, which is fine too).
    Returns the child's stderr after asserting it exited 0."""
    import os
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "imaml_core", "train", *args],
        env={**os.environ, "PYTHONPATH": str(root)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err
