"""The hand-written MLP gradient and Hessian-vector product equal autograd's (float64)."""

import pytest
import torch

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.engine.objective import TaskLoss

from .helpers import F64, rel_err


@pytest.mark.parametrize("hidden", [[40, 40], [7], [5, 6, 4]])
def test_analytic_gradient_and_hvp_match_autograd_float64(hidden):
    trainer = MetaTrainer(ExperimentConfig(dtype="float64", hidden=hidden, meta_batch=4, val_tasks=2))
    tasks = trainer.sample_batch(4, 10, 10)
    fast = trainer.losses(tasks.x_support, tasks.y_support)
    assert fast.derivatives is not None
    slow = TaskLoss(fast.fn)
    gen = torch.Generator().manual_seed(0)
    phi = trainer.theta.expand(4, -1) + 0.1 * torch.randn(4, trainer.theta.numel(), generator=gen, dtype=F64)
    v = torch.randn(phi.shape, generator=gen, dtype=F64)
    (l1, g1), (l2, g2) = fast.value_and_grad(phi), slow.value_and_grad(phi)
    _, _, h1, _ = fast.hvp_operator(phi)
    _, _, h2, _ = slow.hvp_operator(phi)
    # Same arithmetic in a different order: agreement to a few ulps of float64.
    assert torch.allclose(l1, l2, rtol=1e-13, atol=0)
    assert torch.allclose(fast.value(phi), l2, rtol=1e-13, atol=0)  # the forward-only loss too
    at_theta = trainer.theta.expand(4, -1)  # one row in memory, stride 0 across tasks
    assert torch.allclose(fast.value(at_theta), slow.value(at_theta), rtol=1e-13, atol=0)
    assert rel_err(g1, g2) < 1e-12
    assert rel_err(h1(v), h2(v)) < 1e-12


def test_analytic_gradient_follows_the_layout_order_of_theta():
    """Checkpoints list tensors alphabetically; gradients must land where the layout puts each name."""
    from imaml_core.engine.mlp_derivatives import MLPMSEDerivatives
    from imaml_core.engine.params import ParamLayout

    trainer = MetaTrainer(ExperimentConfig(dtype="float64", meta_batch=3, val_tasks=2))
    params = trainer.params()
    shuffled = {k: params[k] for k in sorted(params)}
    layout = ParamLayout.of(shuffled)
    tasks = trainer.sample_batch(3, 10, 10)
    phi = layout.flatten({k: v[None].expand(3, *v.shape) for k, v in shuffled.items()}, batch=3)
    exact = MLPMSEDerivatives(layout, 3, tasks.x_support, tasks.y_support)

    def loss(p):
        return ((trainer.model.forward(layout.unflatten(p), tasks.x_support) - tasks.y_support) ** 2).mean((1, 2))

    assert rel_err(exact.value_and_grad(phi)[1], TaskLoss(loss).value_and_grad(phi)[1]) < 1e-12
    assert torch.allclose(exact.value(phi), loss(phi), rtol=1e-13, atol=0)


@pytest.mark.parametrize(
    "n_in, hidden, n_out",
    [(2, [5, 4], 3), (3, [6], 1), (1, [4, 1, 3], 2), (1, [1, 5], 1), (1, [5, 1], 1), (1, [], 1), (3, [], 2)],
)
@pytest.mark.parametrize("shuffled", [False, True])
def test_analytic_derivatives_of_nets_whose_inputs_and_outputs_are_not_1_wide(n_in, hidden, n_out, shuffled):
    """The sinusoid nets are 1-wide at both ends, where the code takes shortcuts; other widths, 1-wide hidden
    layers and nets without a hidden layer take the general paths, which must be exact too, in any layout
    order (``shuffled``: names sorted, as checkpoints list them)."""
    from imaml_core.engine.mlp_derivatives import MLPMSEDerivatives
    from imaml_core.engine.model import MLP
    from imaml_core.engine.params import ParamLayout

    gen = torch.Generator().manual_seed(3)
    model = MLP(hidden, n_in=n_in, n_out=n_out)
    params = model.init_params(gen, F64, torch.device("cpu"))
    if shuffled:
        params = {k: params[k] for k in sorted(params, reverse=True)}
    layout = ParamLayout.of(params)
    batch, n = 3, 7
    phi = layout.flatten(params)[None] + 0.1 * torch.randn(batch, layout.numel, generator=gen, dtype=F64)
    x = torch.randn(batch, n, n_in, generator=gen, dtype=F64)
    y = torch.randn(batch, n, n_out, generator=gen, dtype=F64)
    v = torch.randn(phi.shape, generator=gen, dtype=F64)
    exact = TaskLoss(lambda p: None, MLPMSEDerivatives(layout, len(hidden) + 1, x, y))
    slow = TaskLoss(lambda p: ((model.forward(layout.unflatten(p), x) - y) ** 2).mean((1, 2)))
    (l1, g1), (l2, g2) = exact.value_and_grad(phi), slow.value_and_grad(phi)
    assert torch.allclose(l1, l2, rtol=1e-13, atol=0)
    assert torch.allclose(exact.value(phi), l2, rtol=1e-13, atol=0)
    assert rel_err(g1, g2) < 1e-12
    assert rel_err(exact.hvp_operator(phi)[2](v), slow.hvp_operator(phi)[2](v)) < 1e-12


def test_compiled_derivatives_match_eager_and_fall_back_when_compiling_fails(monkeypatch):
    from imaml_core.engine import mlp_derivatives

    cfg = ExperimentConfig(meta_batch=3, val_every=0, val_tasks=2, hidden=[8], dtype="float64")
    eager, compiled = MetaTrainer(cfg), MetaTrainer(cfg.replace(compile=True))
    tasks = eager.sample_batch(3, 10, 10)
    phi = eager.theta.expand(3, -1).clone()
    v = torch.randn(phi.shape, dtype=F64, generator=torch.Generator().manual_seed(1))
    fast = compiled.losses(tasks.x_support, tasks.y_support)
    slow = eager.losses(tasks.x_support, tasks.y_support)
    # Compiled kernels may reorder floating-point sums: agreement to ~1e-12 in float64.
    assert rel_err(fast.value_and_grad(phi)[1], slow.value_and_grad(phi)[1]) < 1e-12
    assert rel_err(fast.hvp_operator(phi)[2](v), slow.hvp_operator(phi)[2](v)) < 1e-12
    # the whole inner step, compiled branch-free, against eager's row restore: step sizes from tiny to
    # huge make some tasks reject their step, so both branches of the safeguard are compared
    loss, grad = slow.value_and_grad(phi)
    step = torch.tensor([1e-3, 10.0, 1e3], dtype=F64)
    for safeguard in (True, False):
        a = fast.derivatives.gd_step(phi, grad, loss, step, phi, 20.0, safeguard)
        b = slow.derivatives.gd_step(phi, grad.clone(), loss.clone(), step, phi, 20.0, safeguard)
        for got, want in zip(a, b, strict=True):
            assert rel_err(got, want) < 1e-12
        if safeguard:
            moved = (b[0] != phi).any(dim=1)
            assert bool(moved.any()) and not bool(moved.all()), moved  # accepted and rejected tasks both

    def broken(fn, dynamic=True):
        def fail(*args):
            raise RuntimeError("no C++ compiler")

        return fail

    monkeypatch.setattr(mlp_derivatives.torch, "compile", broken)
    fallback = mlp_derivatives._CompiledOrEager(mlp_derivatives.value_and_grad)
    with pytest.warns(RuntimeWarning, match="using eager mode"):
        out = fallback(mlp_derivatives.Plan.of(compiled.layout, 2), phi, tasks.x_support, tasks.y_support)
    assert rel_err(out[1], slow.value_and_grad(phi)[1]) == 0
