"""lambda per layer and per parameter: inner solves, the implicit gradients of theta and lambda, and bad input.

Everything runs in float64 against closed forms, finite differences of closed forms and dense-Hessian
solves, so the tolerances below are set by rounding and finite-difference truncation, not by the
solvers' stopping rules.
"""

import pytest
import torch

from imaml_core import implicit_hypergradients, implicit_meta_gradient, solve_inner
from imaml_core.engine.implicit import implicit_batched
from imaml_core.engine.inner import gd_step, solve_batched
from imaml_core.engine.lam import flat_lam, lam_of_shape, reduce_to_lam
from imaml_core.engine.mlp_derivatives import MLPMSEDerivatives
from imaml_core.engine.model import MLP
from imaml_core.engine.objective import TaskLoss
from imaml_core.engine.params import ParamLayout
from imaml_core.tasks.sinusoid import mse_per_task

from .helpers import F64, dense_hessian, flat, rel_err, tiny_mlp_problem

# ---------------------------------------------------------------------------------------------------------
# Linear regression: phi*(theta, lam) = (X^T X / n + Lambda)^-1 (X^T y / n + Lambda theta) in closed form.


def _regression(seed: int = 0, n: int = 40, d: int = 7):
    gen = torch.Generator().manual_seed(seed)
    x, xt = torch.randn(n, d, generator=gen, dtype=F64), torch.randn(25, d, generator=gen, dtype=F64)
    y, yt = torch.randn(n, generator=gen, dtype=F64), torch.randn(25, generator=gen, dtype=F64)
    theta = {"w": torch.randn(d - 2, generator=gen, dtype=F64), "b": torch.randn(2, generator=gen, dtype=F64)}
    layout = ParamLayout.of(theta)

    def train(p):
        return 0.5 * ((x @ layout.flatten(p) - y) ** 2).mean()

    def test(p):
        return 0.5 * ((xt @ layout.flatten(p) - yt) ** 2).mean()

    def phi_star(theta_flat, lam_flat):
        lam_vec = lam_flat * torch.ones(d, dtype=F64)
        h = x.T @ x / n + torch.diag(lam_vec)
        return torch.linalg.solve(h, x.T @ y / n + lam_vec * theta_flat)

    def outer(theta_flat, lam_flat):
        return 0.5 * ((xt @ phi_star(theta_flat, lam_flat) - yt) ** 2).mean()

    return theta, layout, train, test, phi_star, outer


def _lams(kind: str, layout: ParamLayout):
    gen = torch.Generator().manual_seed(11)
    if kind == "scalar":
        return 0.7
    if kind == "layer":
        return {"w": torch.tensor(0.3, dtype=F64), "b": torch.tensor(1.7, dtype=F64)}
    return {
        n: 0.2 + 2 * torch.rand(s, generator=gen, dtype=F64) for n, s in zip(layout.names, layout.shapes, strict=True)
    }


def _perturbed(lam, name, index, h):
    """lam with entry ``index`` of ``lam[name]`` moved by h (a float lam has one entry)."""
    if not isinstance(lam, dict):
        return lam + h
    out = {k: v.clone() for k, v in lam.items()}
    out[name].view(-1)[index] += h
    return out


@pytest.mark.parametrize("kind", ["scalar", "layer", "parameter"])
def test_hypergradients_match_finite_differences_of_the_closed_form_float64(kind):
    theta, layout, train, test, phi_star, outer = _regression()
    lam = _lams(kind, layout)
    theta_flat = layout.flatten(theta)

    def f(t_flat, lam_value):
        return float(outer(t_flat, flat_lam(lam_value, layout, F64, "cpu")))

    h = 1e-5
    fd_theta = torch.tensor(
        [(f(theta_flat + h * e, lam) - f(theta_flat - h * e, lam)) / (2 * h) for e in torch.eye(7, dtype=F64)],
        dtype=F64,
    )
    if isinstance(lam, dict):
        fd_lam = {
            n: torch.tensor(
                [
                    (f(theta_flat, _perturbed(lam, n, i, h)) - f(theta_flat, _perturbed(lam, n, i, -h))) / (2 * h)
                    for i in range(t.numel())
                ],
                dtype=F64,
            ).reshape(t.shape)
            for n, t in lam.items()
        }
    else:
        fd_lam = (f(theta_flat, lam + h) - f(theta_flat, lam - h)) / (2 * h)

    phi, info = solve_inner(train, theta, lam=lam, steps=2, solver="hf", hf_cg_steps=50)
    g_theta, g_lam, cg = implicit_hypergradients(train, test, phi, theta, lam, cg_steps=100, cg_tol=1e-14)

    assert cg.converged and not cg.nonpositive_curvature
    # Central differences with h = 1e-5 on a smooth rational function: truncation ~h^2 and rounding
    # ~eps/h are both near 1e-10 relative, far inside the 1e-6 the exactness requirement asks for.
    assert rel_err(flat(g_theta), fd_theta) < 1e-6
    if isinstance(lam, dict):
        assert set(g_lam) == set(lam) and all(g_lam[n].shape == lam[n].shape for n in lam)
        assert rel_err(flat(g_lam), flat(fd_lam)) < 1e-6
    else:
        assert isinstance(g_lam, float)
        assert abs(g_lam - fd_lam) / abs(fd_lam) < 1e-6


@pytest.mark.parametrize("kind", ["layer", "parameter"])
@pytest.mark.parametrize("solver", ["gd", "hf"])
def test_inner_solvers_reach_the_closed_form_with_vector_lambda_float64(kind, solver):
    theta, layout, train, _, phi_star, _ = _regression(seed=1)
    lam = _lams(kind, layout)
    lam_flat = flat_lam(lam, layout, F64, "cpu")
    want = phi_star(layout.flatten(theta), lam_flat)
    x_h = torch.autograd.functional.hessian(lambda v: train(layout.unflatten(v)), layout.flatten(theta))
    eig = torch.linalg.eigvalsh(x_h + torch.diag(lam_flat))
    # GD with step 1/L contracts the error by 1 - mu/L per step; 3000 steps take it below rounding.
    phi, info = solve_inner(
        train,
        theta,
        lam=lam,
        steps=3000 if solver == "gd" else 2,
        lr=float(1 / eig.max()),
        solver=solver,
        hf_cg_steps=50,
    )
    # Both converge to rounding on this 7-dimensional quadratic (HF: one Newton step with exact CG).
    assert rel_err(flat(phi), want) < 1e-12
    assert info.stationarity < 1e-12 and info.finite


# ---------------------------------------------------------------------------------------------------------
# A non-convex tanh MLP against dense Hessian solves.


def _mlp_lam(theta):
    """Mixed shapes: a row-wise lambda for the first weight, one number for its bias, full tensors after."""
    gen = torch.Generator().manual_seed(5)
    lam = {}
    for name, p in theta.items():
        if name == "0.weight":
            shape = (p.shape[0], 1)
        elif name == "0.bias":
            shape = ()
        else:
            shape = p.shape
        lam[name] = 1.5 + 2.5 * torch.rand(shape, generator=gen, dtype=F64)
    return lam


def test_hypergradients_match_dense_hessian_solves_on_a_tanh_mlp_float64():
    theta, train, test = tiny_mlp_problem(seed=3)
    lam = _mlp_lam(theta)
    layout = ParamLayout.of(theta)
    lam_flat = flat_lam(lam, layout, F64, "cpu")
    phi, info = solve_inner(train, theta, lam=lam, steps=30, solver="hf", hf_cg_steps=200)
    assert info.stationarity < 1e-10
    h = dense_hessian(train, phi) + torch.diag(lam_flat)
    assert float(torch.linalg.eigvalsh(h).min()) > 0  # CG needs an SPD system
    u = torch.linalg.solve(h, flat(torch.func.grad(test)(phi)))
    want_theta = lam_flat * u
    want_lam = reduce_to_lam(-u * (flat(phi) - flat(theta)), lam, layout)

    g_theta, g_lam, cg = implicit_hypergradients(train, test, phi, theta, lam, cg_steps=500, cg_tol=1e-13)
    assert cg.converged and not cg.nonpositive_curvature
    # CG's relative residual 1e-13 times the condition number of the scaled system (~1e2) bounds the error.
    assert rel_err(flat(g_theta), want_theta) < 1e-8
    assert rel_err(flat(g_lam), flat(want_lam)) < 1e-8
    assert g_lam["0.weight"].shape == (6, 1) and g_lam["0.bias"].shape == ()


def test_scalar_lambda_hypergradients_are_the_meta_gradient_and_its_projection():
    theta, train, test = tiny_mlp_problem(seed=4)
    lam = 2.5
    phi, _ = solve_inner(train, theta, lam=lam, steps=20, solver="hf", hf_cg_steps=100)
    g_theta, g_lam, cg = implicit_hypergradients(train, test, phi, theta, lam, cg_steps=50, cg_tol=1e-12)
    g_meta, cg_meta = implicit_meta_gradient(train, test, phi, lam, cg_steps=50, cg_tol=1e-12)
    # the same float path, the same operations: equal bit for bit
    assert torch.equal(flat(g_theta), flat(g_meta)) and cg == cg_meta
    want = -float(flat(g_theta) @ (flat(phi) - flat(theta))) / lam
    # one dot product summed in a different order: a few ulps
    assert isinstance(g_lam, float) and abs(g_lam - want) <= 1e-12 * abs(want)


def test_a_dict_of_equal_lambdas_gives_the_scalar_answer():
    theta, train, test = tiny_mlp_problem(seed=6)
    phi, _ = solve_inner(train, theta, lam=3.0, steps=20, solver="hf", hf_cg_steps=100)
    layer = lam_of_shape(3.0, "layer", theta)
    full = lam_of_shape(3.0, "parameter", theta)
    g0, l0, _ = implicit_hypergradients(train, test, phi, theta, 3.0, cg_steps=200, cg_tol=1e-13)
    for lam in (layer, full):
        g, gl, _ = implicit_hypergradients(train, test, phi, theta, lam, cg_steps=200, cg_tol=1e-13)
        # the scaled system is the scalar one divided by sqrt(lam): equal up to CG's 1e-13 residual
        assert rel_err(flat(g), flat(g0)) < 1e-10
        assert abs(sum(float(t.sum()) for t in gl.values()) - l0) < 1e-10 * abs(l0)


def test_zero_cg_steps_with_vector_lambda_is_first_order():
    theta, train, test = tiny_mlp_problem(seed=7)
    lam = _mlp_lam(theta)
    layout = ParamLayout.of(theta)
    phi, _ = solve_inner(train, theta, lam=lam, steps=5, lr=0.05)
    v = flat(torch.func.grad(test)(phi))
    g_theta, g_lam, cg = implicit_hypergradients(train, test, phi, theta, lam, cg_steps=0)
    assert torch.equal(flat(g_theta), v) and cg.iterations == 0
    want = reduce_to_lam(-v / flat_lam(lam, layout, F64, "cpu") * (flat(phi) - flat(theta)), lam, layout)
    assert rel_err(flat(g_lam), flat(want)) < 1e-14  # same products, one division reordered


# ---------------------------------------------------------------------------------------------------------
# The batched engine with a flat lambda equals the per-task computation.

BATCH = 4


def _relu_batch(compiled: bool = False):
    gen = torch.Generator().manual_seed(2)
    model = MLP((8, 6))
    params = model.init_params(gen, F64, torch.device("cpu"))
    layout = ParamLayout.of(params)
    theta = layout.flatten(params)[None].expand(BATCH, -1)
    amp = 0.5 + 4.5 * torch.rand(BATCH, 1, 1, generator=gen, dtype=F64)
    phase = 3.14 * torch.rand(BATCH, 1, 1, generator=gen, dtype=F64)
    xs, xq = (10 * torch.rand(BATCH, n, 1, generator=gen, dtype=F64) - 5 for n in (10, 12))
    ys, yq = amp * torch.sin(xs + phase), amp * torch.sin(xq + phase)

    def losses(x, y, exact: bool, rows=slice(None)):
        def fn(phi):
            return mse_per_task(model.forward(layout.unflatten(phi), x[rows]), y[rows])

        derivs = MLPMSEDerivatives(layout, 3, x[rows], y[rows], compiled=compiled) if exact else None
        return TaskLoss(fn, derivs)

    lam = flat_lam(_mlp_lam(params), layout, F64, "cpu")
    return theta, lam, xs, ys, xq, yq, losses


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("solver, safeguard", [("gd", False), ("gd", True), ("hf", False)])
def test_batched_solves_and_implicit_gradients_with_flat_lambda_equal_one_task_at_a_time(exact, solver, safeguard):
    theta, lam, xs, ys, xq, yq, losses = _relu_batch()

    def run(rows, lam_rows):
        phi, info = solve_batched(
            losses(xs, ys, exact, rows),
            theta[rows],
            lam=lam_rows,
            steps=6,
            lr=0.05,
            solver=solver,
            safeguard=safeguard,
            hf_cg_steps=20,
        )
        res = implicit_batched(
            losses(xs, ys, exact, rows), losses(xq, yq, exact, rows), phi, lam_rows, 15, 1e-12, theta[rows]
        )
        return phi, info.stationarity, res.grad, res.lam_grad, res.stationarity

    together = run(slice(None), lam)
    alone = [torch.cat(parts) for parts in zip(*(run(slice(i, i + 1), lam) for i in range(BATCH)), strict=True)]
    # a (B, P) lambda whose rows are the shared (P,) one: the per-task form of the same problem
    per_row = run(slice(None), lam.expand(BATCH, -1).clone())
    for a, b, c in zip(together, alone, per_row, strict=True):
        # identical algorithms per task (CG and step decisions are per task): only summation order differs
        assert rel_err(a, b) < 1e-10
        assert rel_err(c, b) < 1e-10


@pytest.mark.parametrize("compiled", [False, True])
def test_analytic_and_autograd_backends_agree_on_a_vector_lambda_gd_step(compiled):
    theta, lam, xs, ys, _, _, losses = _relu_batch(compiled=compiled)
    fast, slow = losses(xs, ys, True), losses(xs, ys, False)
    gen = torch.Generator().manual_seed(8)
    phi = theta + 0.1 * torch.randn(theta.shape, generator=gen, dtype=F64)
    loss, grad = slow.value_and_grad(phi)
    diff = phi - theta
    obj, grad = loss + 0.5 * (lam * diff * diff).sum(1), grad + lam * diff  # the proximal objective
    step = torch.tensor([1e-3, 0.05, 10.0, 1e3], dtype=F64)  # huge steps make some tasks reject theirs
    for safeguard in (True, False):
        a = fast.derivatives.gd_step(phi, grad, obj, step, theta, lam, safeguard)
        b = gd_step(slow.value_and_grad, phi, grad.clone(), obj.clone(), step, theta, lam, safeguard)
        for got, want in zip(a, b, strict=True):
            # the same step from hand-written and autograd derivatives: agreement to a few ulps
            assert rel_err(got, want) < 1e-12
        if safeguard:
            moved = (b[0] != phi).any(dim=1)
            assert bool(moved.any()) and not bool(moved.all()), moved


# ---------------------------------------------------------------------------------------------------------
# Bad lambda: one line that names the entry, from every public entry point.


def _bad_cases(theta):
    ones = {k: torch.ones((), dtype=F64) for k in theta}
    cases = []
    for value, words in ((0.0, "positive"), (-1.0, "positive"), (float("nan"), "finite"), (float("inf"), "finite")):
        lam = dict(ones)
        lam["w"] = torch.tensor([1.0, 2.0, value, 1.0, 1.0], dtype=F64)
        cases.append((lam, "'w'", words))
    cases.append(({**ones, "b": torch.ones(3, dtype=F64)}, "'b'", "broadcast"))
    cases.append(({"w": ones["w"]}, "'b'", "no entry"))
    cases.append(({**ones, "c": torch.ones(())}, "'c'", "unknown"))
    return cases


@pytest.mark.parametrize("case", range(7))
@pytest.mark.parametrize("entry_point", ["solve_inner", "implicit_hypergradients"])
def test_bad_lambda_entries_raise_one_line_naming_the_entry(case, entry_point):
    theta, _, train, test, _, _ = _regression()
    lam, name, words = _bad_cases(theta)[case]
    with pytest.raises(ValueError) as exc:
        if entry_point == "solve_inner":
            solve_inner(train, theta, lam=lam, steps=1)
        else:
            implicit_hypergradients(train, test, theta, theta, lam, cg_steps=3)
    message = str(exc.value)
    assert name in message and words in message and "\n" not in message, message


@pytest.mark.parametrize("bad", [0.0, -2.0, float("nan"), float("inf")])
def test_bad_scalar_lambda_is_refused_by_implicit_hypergradients(bad):
    theta, _, train, test, _, _ = _regression()
    with pytest.raises(ValueError, match="lam"):
        implicit_hypergradients(train, test, theta, theta, bad)
