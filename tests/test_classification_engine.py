"""The conv net's meta-gradients on few-shot classification, exact in float64.

A tiny conv net (2 filters, the paper's 4 stride-2 blocks and batch norm on each task's own batch) on
synthetic glyphs has a couple of hundred coordinates, so every Hessian is dense and every solve direct.
The engine's batched forward is checked against a per-task ``nn.Module`` loop, its Hessian-vector products
against dense Hessians, iMAML's meta-gradient against the dense solve (I + H/lam)^-1 g and MAML's against
a per-task autograd loop through the unrolled steps. Tolerances are rounding-level where the maths is exact
(forward, HVP) and set by the inner solver's stationarity where it is not.
"""

import pytest
import torch
from torch.func import functional_call

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.engine.convnet import ConvNet
from imaml_core.engine.methods import adapt

from .helpers import F64, rel_err

TINY = {"task": "glyphs", "glyph_classes": 40, "filters": 2, "ways": 3, "shots": 2, "query": 3, "dtype": "float64"}


def _trainer(**changes) -> MetaTrainer:
    return MetaTrainer(ExperimentConfig(**{**TINY, "meta_batch": 2, "val_tasks": 2, **changes}))


def _per_task_losses(trainer: MetaTrainer, x, y):
    """Task b's loss as a function of its own flat parameters, through ``nn.Module`` (no task axis)."""
    module = trainer.model.module().double()

    def loss(b: int, flat: torch.Tensor) -> torch.Tensor:
        params = trainer.layout.unflatten(flat)
        logits = functional_call(module, params, (x[b],))
        return torch.nn.functional.cross_entropy(logits, y[b])

    return loss


def test_the_batched_conv_net_equals_a_per_task_module_loop_float64():
    net = ConvNet(4, filters=3)
    gen = torch.Generator().manual_seed(0)
    theta = net.init_params(gen, F64, torch.device("cpu"))
    params = {k: v + 0.3 * torch.randn(3, *v.shape, generator=gen, dtype=F64) for k, v in theta.items()}
    x = torch.rand(3, 6, 1, 28, 28, generator=gen, dtype=F64)
    module = net.module().double()
    want = torch.stack([functional_call(module, {k: v[b] for k, v in params.items()}, (x[b],)) for b in range(3)])
    assert rel_err(net.forward(params, x), want) < 1e-13
    # Batch norm uses each task's own batch: another task's images change nothing of this one's output.
    x2 = x.clone()
    x2[1] = torch.rand(6, 1, 28, 28, generator=gen, dtype=F64)
    out = net.forward(params, x2)
    assert torch.equal(out[0], net.forward(params, x)[0]) and not torch.allclose(out[1], want[1])
    assert set(module.state_dict()) == set(net.shapes())


def test_hessian_vector_products_match_dense_hessians_float64():
    trainer = _trainer()
    tasks = trainer.sample_batch()
    support = trainer.losses(tasks.x_support, tasks.y_support)
    gen = torch.Generator().manual_seed(1)
    phi = trainer.theta.expand(2, -1) + 0.1 * torch.randn(2, trainer.layout.numel, generator=gen, dtype=F64)
    loss, grad, matvec, _ = support.hvp_operator(phi)
    one = _per_task_losses(trainer, tasks.x_support, tasks.y_support)
    v = torch.randn(2, trainer.layout.numel, generator=gen, dtype=F64)
    hv = matvec(v)
    for b in range(2):
        assert float(loss[b]) == pytest.approx(float(one(b, phi[b])), rel=1e-13)
        dense = torch.autograd.functional.hessian(lambda f, b=b: one(b, f), phi[b])
        assert rel_err(hv[b], dense @ v[b]) < 1e-11
        assert rel_err(grad[b], torch.autograd.functional.jacobian(lambda f, b=b: one(b, f), phi[b])) < 1e-12


def test_imaml_meta_gradient_matches_the_dense_implicit_solve_float64():
    lam = 10.0
    trainer = _trainer(method="imaml", inner_solver="hf", inner_steps=5, lam=lam, cg_steps=600, cg_tol=1e-14)
    tasks = trainer.sample_batch()
    mg = trainer.meta_gradient(tasks)
    # The solve is checked at the engine's own phi. (ReLU after batch norm puts kinks close to any phi of a
    # net this small, so the inner problem does not reach stationarity; the implicit formula's validity at a
    # stationary point is checked on smooth problems in test_implicit.py.)
    support = _per_task_losses(trainer, tasks.x_support, tasks.y_support)
    query = _per_task_losses(trainer, tasks.x_query, tasks.y_query)
    for b in range(2):
        phi = mg.phi[b].detach()
        hessian = torch.autograd.functional.hessian(lambda f, b=b: support(b, f), phi)
        system = torch.eye(len(phi), dtype=F64) + hessian / lam
        assert float(torch.linalg.eigvalsh(system).min()) > 0.05  # positive definite: CG's answer is unique
        g_query = torch.autograd.functional.jacobian(lambda f, b=b: query(b, f), phi)
        want = torch.linalg.solve(system, g_query)
        assert rel_err(mg.grad[b], want) < 1e-10  # CG run to 1e-14 on a well-conditioned system


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile"])
def test_unrolled_methods_match_a_per_task_autograd_loop_float64(method):
    trainer = _trainer(method=method, inner_steps=3, inner_lr=0.2)
    cfg = trainer.config
    tasks = trainer.sample_batch()
    mg = trainer.meta_gradient(tasks)
    support = _per_task_losses(trainer, tasks.x_support, tasks.y_support)
    query = _per_task_losses(trainer, tasks.x_query, tasks.y_query)
    unrolled = method == "maml"
    for b in range(2):
        theta = trainer.theta.detach().clone().requires_grad_(True)
        phi = theta
        for _ in range(cfg.inner_steps):
            if not unrolled:
                phi = phi.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(support(b, phi), phi, create_graph=unrolled)
            phi = phi - cfg.inner_lr * g
        if method == "maml":
            (want,) = torch.autograd.grad(query(b, phi), theta)
        elif method == "fomaml":
            end = phi.detach().requires_grad_(True)
            (want,) = torch.autograd.grad(query(b, end), end)
        else:
            want = trainer.theta - phi.detach()
        assert rel_err(mg.phi[b], phi.detach()) < 1e-12
        assert rel_err(mg.grad[b], want) < 1e-11


def test_maml_on_the_conv_net_matches_finite_differences_float64():
    trainer = _trainer(method="maml", inner_steps=2, inner_lr=0.2)
    cfg = trainer.config
    tasks = trainer.sample_batch()
    train, test = trainer.task_losses(tasks)
    grad = trainer.meta_gradient(tasks).grad.mean(0)

    def outer(theta: torch.Tensor) -> float:
        return float(test(adapt(cfg, train, theta.expand(2, -1), cfg.inner_steps)).mean())

    gen = torch.Generator().manual_seed(0)
    eps = 1e-6  # central differences: truncation ~eps^2, rounding ~1e-16/eps
    for _ in range(3):
        u = torch.randn(trainer.theta.shape, generator=gen, dtype=F64)
        u /= u.norm()
        fd = (outer(trainer.theta + eps * u) - outer(trainer.theta - eps * u)) / (2 * eps)
        assert abs(fd - float(grad @ u)) <= 1e-6 * max(1.0, abs(fd))


def test_any_conv_module_runs_through_the_generic_path_and_agrees_with_the_batched_net_float64():
    """``ModuleModel`` (vmap over ``functional_call``) of the same network gives the same meta-gradient."""
    from imaml_core import ModuleModel

    batched = _trainer(method="imaml", inner_steps=2)
    generic = MetaTrainer(batched.config, theta=batched.params(), model=ModuleModel(batched.model.module().double()))
    tasks = batched.sample_batch()
    a, b = batched.meta_gradient(tasks), generic.meta_gradient(tasks)
    assert rel_err(b.grad, a.grad) < 1e-10 and rel_err(b.phi, a.phi) < 1e-12
