"""The implicit meta-gradient through the public API, against closed forms and dense-Hessian solves."""

import torch

from imaml_core import implicit_meta_gradient, solve_inner

from .helpers import F64, dense_hessian, flat, rel_err, tiny_mlp_problem


def _linear_regression(seed: int, n: int = 40, d: int = 7):
    gen = torch.Generator().manual_seed(seed)
    x, xt = torch.randn(n, d, generator=gen, dtype=F64), torch.randn(25, d, generator=gen, dtype=F64)
    y, yt = torch.randn(n, generator=gen, dtype=F64), torch.randn(25, generator=gen, dtype=F64)
    theta = {"w": torch.randn(d - 2, generator=gen, dtype=F64), "b": torch.randn(2, generator=gen, dtype=F64)}

    def pred(p, inp):
        return inp @ torch.cat([p["w"], p["b"]])

    def train(p):
        return 0.5 * ((pred(p, x) - y) ** 2).mean()

    def test(p):
        return 0.5 * ((pred(p, xt) - yt) ** 2).mean()

    return x, y, xt, yt, theta, train, test


def test_implicit_gradient_matches_linear_regression_closed_form_float64():
    x, y, xt, yt, theta, train, test = _linear_regression(0)
    lam = 0.3
    h = x.T @ x / x.shape[0]
    eye = torch.eye(h.shape[0], dtype=F64)
    phi_star = torch.linalg.solve(h + lam * eye, x.T @ y / x.shape[0] + lam * flat(theta))
    g_star = torch.linalg.solve(eye + h / lam, xt.T @ (xt @ phi_star - yt) / xt.shape[0])

    phi, info = solve_inner(train, theta, lam=lam, steps=3, solver="hf", hf_cg_steps=50)
    assert rel_err(flat(phi), phi_star) < 1e-12  # Newton on a quadratic: exact after one step
    assert info.stationarity < 1e-12
    g, cg = implicit_meta_gradient(train, test, phi, lam=lam, cg_steps=100, cg_tol=1e-14)
    # The system is 7x7 and well conditioned; CG to 1e-14 leaves rounding-level error.
    assert rel_err(flat(g), g_star) < 1e-10
    assert cg.converged and not cg.nonpositive_curvature


def test_gradient_descent_inner_solve_reaches_closed_form():
    x, y, _, _, theta, train, _ = _linear_regression(1)
    lam = 1.0
    h = x.T @ x / x.shape[0]
    phi_star = torch.linalg.solve(h + lam * torch.eye(7, dtype=F64), x.T @ y / x.shape[0] + lam * flat(theta))
    lr = 1.0 / float(torch.linalg.eigvalsh(h).max() + lam)  # 1/L: monotone, linear convergence
    phi, info = solve_inner(train, theta, lam=lam, steps=2000, lr=lr)
    assert rel_err(flat(phi), phi_star) < 1e-12
    assert info.stationarity < 1e-12 and info.finite


def test_implicit_gradient_matches_dense_hessian_on_nonconvex_mlp_float64():
    theta, train, test = tiny_mlp_problem(seed=3)
    lam = 2.0
    phi, info = solve_inner(train, theta, lam=lam, steps=30, solver="hf", hf_cg_steps=200)
    assert info.stationarity < 1e-10
    h = dense_hessian(train, phi)
    eye = torch.eye(h.shape[0], dtype=F64)
    assert float(torch.linalg.eigvalsh(eye + h / lam).min()) > 0  # CG needs an SPD system
    v = torch.func.grad(test)(phi)
    g_dense = torch.linalg.solve(eye + h / lam, flat(v))
    g, cg = implicit_meta_gradient(train, test, phi, lam=lam, cg_steps=500, cg_tol=1e-13)
    # Relative CG residual 1e-13 times cond(I + H/lam) (~1e2 here) bounds the error well below 1e-8.
    assert rel_err(flat(g), g_dense) < 1e-8
    assert cg.converged


def test_zero_cg_steps_is_first_order():
    theta, train, test = tiny_mlp_problem(seed=4)
    g, cg = implicit_meta_gradient(train, test, theta, lam=1.0, cg_steps=0)
    assert torch.equal(flat(g), flat(torch.func.grad(test)(theta)))
    assert cg.iterations == 0


def test_public_api_keeps_dtype_and_rejects_bad_lambda():
    theta, train, test = tiny_mlp_problem(seed=5)
    phi, _ = solve_inner(train, theta, lam=1.0, steps=2, lr=0.01)
    assert all(v.dtype == F64 for v in phi.values())
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        try:
            solve_inner(train, theta, lam=bad, steps=1, lr=0.01)
        except ValueError as exc:
            assert "lam" in str(exc)
        else:
            raise AssertionError(f"lam={bad} accepted")
