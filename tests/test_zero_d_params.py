"""Parameters with no dimensions (a scalar bias, a learnable temperature) through every public entry point.

A 0-d parameter takes one coordinate of the flat vector and must come back with shape (). Everything runs
in float64 against closed forms and dense-Hessian solves on problems of a few coordinates, where CG is
exact after as many iterations as there are coordinates, so the tolerances below are set by rounding.
"""

import pytest
import torch
from torch import nn
from torch.func import functional_call

from imaml_core import (
    ExperimentConfig,
    MetaTrainer,
    ModuleModel,
    implicit_hypergradients,
    implicit_meta_gradient,
    solve_inner,
)
from imaml_core.engine.params import ParamLayout
from imaml_core.tasks.sinusoid import mse_per_task

from .helpers import F64, dense_hessian, flat, rel_err

# ---------------------------------------------------------------------------------------------------------
# y = x . w + b with a scalar b: the proximal inner problem is linear, so its minimiser is a dense solve.


def _linear(seed: int = 0, n: int = 30):
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 2, generator=gen, dtype=F64), torch.randn(n, generator=gen, dtype=F64)
    theta = {"w": torch.randn(2, generator=gen, dtype=F64), "b": torch.tensor(0.4, dtype=F64)}
    design = torch.cat([x, torch.ones(n, 1, dtype=F64)], dim=1)  # columns: w[0], w[1], b

    def train(p):
        return 0.5 * ((x @ p["w"] + p["b"] - y) ** 2).mean()

    def phi_star(lam_diag: torch.Tensor) -> torch.Tensor:
        """argmin_phi train(phi) + 1/2 (phi - theta)^T Lambda (phi - theta), flat."""
        system = design.T @ design / n + torch.diag(lam_diag)
        return torch.linalg.solve(system, design.T @ y / n + lam_diag * flat(theta))

    return theta, train, design, phi_star


LINEAR_LAMS = {
    "scalar": (0.7, [0.7, 0.7, 0.7]),
    "per-coordinate": ({"w": torch.tensor([0.3, 1.1], dtype=F64), "b": torch.tensor(1.9, dtype=F64)}, [0.3, 1.1, 1.9]),
    "one-element": ({"w": torch.tensor(0.5, dtype=F64), "b": torch.tensor([2.2], dtype=F64)}, [0.5, 0.5, 2.2]),
}


@pytest.mark.parametrize("kind", LINEAR_LAMS)
@pytest.mark.parametrize("solver", ["gd", "hf"])
def test_solve_inner_with_a_scalar_bias_reaches_the_closed_form_float64(kind, solver):
    theta, train, design, phi_star = _linear()
    lam, diag = LINEAR_LAMS[kind]
    lam_diag = torch.tensor(diag, dtype=F64)
    want = phi_star(lam_diag)
    curvature = torch.linalg.eigvalsh(design.T @ design / len(design) + torch.diag(lam_diag))
    # GD with step 1/L contracts the error by 1 - mu/L per step (at most 0.63 for these lambdas): 300
    # steps reach rounding. HF: one Newton step with CG exact on 3 coordinates; the second changes nothing.
    phi, info = solve_inner(
        train, theta, lam, steps=300 if solver == "gd" else 2, lr=float(1 / curvature.max()), solver=solver
    )
    assert phi["b"].shape == () and phi["w"].shape == (2,)
    # a 3x3 well-conditioned solve against an iterative one converged to rounding: a few ulps
    assert rel_err(flat(phi), want) < 1e-12
    assert info.finite and info.stationarity < 1e-12


# ---------------------------------------------------------------------------------------------------------
# y = t * tanh(x . w + b) with a scalar bias b and a scalar temperature t: non-quadratic, so the implicit
# gradients are checked against dense Hessian solves at the inner solution.


def _tempered(seed: int = 1, n: int = 12):
    gen = torch.Generator().manual_seed(seed)
    xs, xq = torch.randn(n, 2, generator=gen, dtype=F64), torch.randn(n + 3, 2, generator=gen, dtype=F64)
    ys, yq = torch.randn(n, generator=gen, dtype=F64), torch.randn(n + 3, generator=gen, dtype=F64)
    theta = {
        "w": torch.tensor([0.6, -0.4], dtype=F64),
        "b": torch.tensor(0.1, dtype=F64),
        "t": torch.tensor(1.3, dtype=F64),
    }

    def loss_on(x, y):
        def f(p):
            return ((p["t"] * torch.tanh(x @ p["w"] + p["b"]) - y) ** 2).mean()

        return f

    return theta, loss_on(xs, ys), loss_on(xq, yq)


TEMPERED_LAMS = {
    "layer": {"w": torch.tensor(0.8, dtype=F64), "b": torch.tensor(1.5, dtype=F64), "t": torch.tensor(2.5, dtype=F64)},
    "parameter": {
        "w": torch.tensor([0.9, 1.7], dtype=F64),
        "b": torch.tensor(1.2, dtype=F64),
        "t": torch.tensor([2.0], dtype=F64),  # a one-element entry for a 0-d parameter
    },
}


def _diag(lam, layout: ParamLayout) -> torch.Tensor:
    """Lambda's diagonal, built by hand: each entry repeated over the coordinates it covers."""
    return torch.cat([lam[n].reshape(-1).expand(size) for n, size in zip(layout.names, layout.sizes, strict=True)])


def _reduce(q: torch.Tensor, lam, layout: ParamLayout) -> dict[str, torch.Tensor]:
    """A per-coordinate quantity summed over the coordinates each lambda entry covers, by hand."""
    out, at = {}, 0
    for name, size in zip(layout.names, layout.sizes, strict=True):
        piece = q[at : at + size]
        at += size
        out[name] = (piece.sum() if lam[name].numel() == 1 else piece).reshape(lam[name].shape)
    return out


def _at_inner_solution(lam):
    """The tempered problem solved by Newton-CG, with the dense Hessian and query gradient at phi."""
    theta, train, test = _tempered()
    phi, info = solve_inner(train, theta, lam, steps=20, solver="hf", hf_cg_steps=50)
    h = dense_hessian(train, phi)
    v = flat(torch.func.grad(test)(phi))
    return theta, train, test, ParamLayout.of(theta), phi, info, h, v


def test_scalar_lambda_implicit_gradients_with_0d_parameters_match_the_dense_solve_float64():
    lam = 1.5
    theta, train, test, layout, phi, info, h, v = _at_inner_solution(lam)
    assert info.stationarity < 1e-12 and phi["t"].shape == () and phi["b"].shape == ()
    system = torch.eye(layout.numel, dtype=F64) + h / lam
    assert float(torch.linalg.eigvalsh(system).min()) > 0  # CG needs an SPD system
    want = torch.linalg.solve(system, v)

    g_meta, cg_meta = implicit_meta_gradient(train, test, phi, lam, cg_steps=50, cg_tol=1e-14)
    g_theta, g_lam, cg = implicit_hypergradients(train, test, phi, theta, lam, cg_steps=50, cg_tol=1e-14)
    assert {n: t.shape for n, t in g_meta.items()} == {"w": (2,), "b": (), "t": ()}
    assert cg.converged and cg_meta.converged and not cg.nonpositive_curvature
    # 4 coordinates: CG is exact after 4 iterations up to rounding times the condition number (about 6)
    assert rel_err(flat(g_meta), want) < 1e-10
    assert rel_err(flat(g_theta), want) < 1e-10
    want_lam = -float(want @ (flat(phi) - flat(theta))) / lam  # g_lam = -u . (phi - theta), u = g / lam
    assert isinstance(g_lam, float) and abs(g_lam - want_lam) < 1e-10 * abs(want_lam)


@pytest.mark.parametrize("kind", TEMPERED_LAMS)
def test_dict_lambda_with_0d_entries_matches_the_dense_solve_float64(kind):
    lam = TEMPERED_LAMS[kind]
    theta, train, test, layout, phi, info, h, v = _at_inner_solution(lam)
    lam_diag = _diag(lam, layout)
    assert info.stationarity < 1e-12
    system = h + torch.diag(lam_diag)
    assert float(torch.linalg.eigvalsh(system).min()) > 0  # CG needs an SPD system
    u = torch.linalg.solve(system, v)
    want_theta = lam_diag * u  # g_theta = Lambda (H + Lambda)^-1 v
    want_lam = _reduce(-u * (flat(phi) - flat(theta)), lam, layout)

    g_theta, g_lam, cg = implicit_hypergradients(train, test, phi, theta, lam, cg_steps=50, cg_tol=1e-14)
    g_meta, _ = implicit_meta_gradient(train, test, phi, lam, cg_steps=50, cg_tol=1e-14)
    assert cg.converged and not cg.nonpositive_curvature
    assert g_theta["b"].shape == () and g_theta["t"].shape == ()
    assert {n: t.shape for n, t in g_lam.items()} == {n: t.shape for n, t in lam.items()}
    # 4 coordinates: CG is exact after 4 iterations up to rounding times the condition number (about 6)
    assert rel_err(flat(g_theta), want_theta) < 1e-10
    assert rel_err(flat(g_meta), want_theta) < 1e-10
    assert rel_err(flat(g_lam), flat(want_lam)) < 1e-10


# ---------------------------------------------------------------------------------------------------------
# MetaTrainer with a ModuleModel whose module holds a scalar nn.Parameter.


class _TemperedNet(nn.Module):
    """A small tanh network whose output is scaled by a learnable scalar temperature."""

    def __init__(self, temperature: float = 0.8) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.tensor(temperature))
        self.body = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temperature * self.body(x)


def _trainer(lam_shape: str, learn_lam: bool = True, seed: int = 0, **overrides) -> MetaTrainer:
    torch.manual_seed(seed)  # the module's own initialisation
    cfg = ExperimentConfig(
        dtype="float64", meta_batch=3, val_every=0, val_tasks=2, lam_shape=lam_shape, learn_lam=learn_lam, **overrides
    )
    return MetaTrainer(cfg, model=ModuleModel(_TemperedNet().double()))


@pytest.mark.parametrize("lam_shape", ["scalar", "layer", "parameter"])
def test_trainer_steps_and_keeps_a_scalar_parameter_0d(lam_shape):
    trainer = _trainer(lam_shape)
    base = trainer.config.lam
    for _ in range(2):
        report = trainer.step()
        assert not report.diverged, report.message
    params = trainer.params()
    assert params["temperature"].shape == () and params["body.0.weight"].shape == (4, 1)
    lam = trainer.current_lam()
    if lam_shape == "scalar":
        assert isinstance(lam, float) and lam != base
    else:
        assert lam["temperature"].shape == ()  # one entry for one coordinate, in either structure
        assert lam["body.2.bias"].shape == (() if lam_shape == "layer" else (1,))
        assert float(lam["temperature"]) != base  # learned: two Adam steps moved it


@pytest.mark.parametrize("lam_shape", ["scalar", "layer", "parameter"])
def test_resume_state_with_a_scalar_parameter_round_trips_exactly(lam_shape):
    first = _trainer(lam_shape, seed=0)
    first.step()
    state = first.resume_state()
    assert state["params.temperature"].shape == ()
    second = _trainer(lam_shape, seed=1)  # another initialisation, overwritten by the state
    second.load_resume_state(state)
    again = second.resume_state()
    assert set(again) == set(state) and all(torch.equal(again[k], state[k]) for k in state)
    first.step()
    second.step()
    # the same tasks, the same arithmetic from the same state: equal bit for bit
    for name, value in first.params().items():
        assert torch.equal(second.params()[name], value)
    lam_a, lam_b = first.current_lam(), second.current_lam()
    assert lam_a == lam_b if lam_shape == "scalar" else all(torch.equal(lam_a[n], lam_b[n]) for n in lam_a)


@pytest.mark.parametrize("lam_shape", ["scalar", "layer", "parameter"])
def test_trainer_meta_gradient_with_a_scalar_parameter_matches_the_dense_solve_float64(lam_shape):
    trainer = _trainer(lam_shape, cg_steps=100, cg_tol=1e-14)
    assert not trainer.step().diverged  # a learned lambda now differs from entry to entry
    tasks = trainer.sample_batch()
    mg = trainer.meta_gradient(tasks)
    module = trainer.model.module()
    engine_lam = trainer.engine_lam()
    lam_diag = torch.as_tensor(engine_lam, dtype=F64).expand(trainer.layout.numel)

    def loss_on(x, y):
        def f(p):
            return mse_per_task(functional_call(module, p, (x,))[None], y[None])[0]

        return f

    for i in range(len(tasks)):
        phi = trainer.layout.unflatten(mg.phi[i])
        assert phi["temperature"].shape == ()
        h = dense_hessian(loss_on(tasks.x_support[i], tasks.y_support[i]), phi)
        v = flat(torch.func.grad(loss_on(tasks.x_query[i], tasks.y_query[i]))(phi))
        system = h + torch.diag(lam_diag)
        assert float(torch.linalg.eigvalsh(system).min()) > 0  # CG needs an SPD system
        want = lam_diag * torch.linalg.solve(system, v)
        # 14 coordinates: CG is exact after 14 iterations, and stops at a 1e-14 relative residual, so the
        # error is rounding
        assert rel_err(mg.grad[i], want) < 1e-10
