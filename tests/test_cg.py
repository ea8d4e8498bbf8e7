"""Conjugate gradient against dense solves, per task and batched, and its behaviour on indefinite operators."""

import pytest
import torch

from imaml_core import conjugate_gradient
from imaml_core.engine.cg import batched_cg

from .helpers import F64, rel_err


def _spd(n: int, seed: int, cond: float = 1e3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    eig = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), n, dtype=F64)
    return q @ torch.diag(eig) @ q.T


def test_cg_matches_dense_solve_on_dict_parameters_float64():
    a = _spd(30, 0)
    gen = torch.Generator().manual_seed(1)
    b = {"w": torch.randn(5, 4, generator=gen, dtype=F64), "b": torch.randn(10, generator=gen, dtype=F64)}
    vec = torch.cat([b["w"].reshape(-1), b["b"]])

    def matvec(x):
        out = a @ torch.cat([x["w"].reshape(-1), x["b"]])
        return {"w": out[:20].reshape(5, 4), "b": out[20:]}

    x, info = conjugate_gradient(matvec, b, max_iters=200, tol=1e-13)
    exact = torch.linalg.solve(a, vec)
    # Condition number 1e3: a relative residual of 1e-13 bounds the relative error by ~1e-10.
    assert rel_err(torch.cat([x["w"].reshape(-1), x["b"]]), exact) < 1e-10
    assert info.converged and not info.nonpositive_curvature
    assert info.residual <= 1e-13 and 0 < info.iterations <= 200
    assert x["w"].dtype == F64 and x["w"].shape == (5, 4)


def test_batched_cg_stops_each_task_at_its_own_tolerance():
    mats = torch.stack([_spd(12, s, cond=c) for s, c in [(0, 2.0), (1, 1e4), (2, 50.0)]])
    b = torch.randn(3, 12, dtype=F64, generator=torch.Generator().manual_seed(3))
    x, info = batched_cg(lambda v: torch.einsum("bij,bj->bi", mats, v), b, max_iters=100, tol=1e-12)
    for i in range(3):
        assert rel_err(x[i], torch.linalg.solve(mats[i], b[i])) < 1e-8
    iters = info.iterations.tolist()
    assert iters[0] < iters[1]  # the well-conditioned task needs fewer iterations and stopped early
    assert bool(info.converged.all())


def test_cg_flags_non_positive_curvature_and_never_returns_nan():
    eig = torch.tensor([3.0, 1.0, -2.0, 0.5], dtype=F64)
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=F64, generator=torch.Generator().manual_seed(4)))
    a = q @ torch.diag(eig) @ q.T
    b = {"x": torch.ones(4, dtype=F64)}
    x, info = conjugate_gradient(lambda v: {"x": a @ v["x"]}, b, max_iters=50, tol=1e-12)
    assert info.nonpositive_curvature and not info.converged
    assert torch.isfinite(x["x"]).all()


def test_cg_first_direction_negative_returns_rhs_and_zero_operator_is_flagged():
    b = {"x": torch.tensor([1.0, 2.0], dtype=F64)}
    x, info = conjugate_gradient(lambda v: {"x": -v["x"]}, b, max_iters=5)
    assert info.nonpositive_curvature and torch.equal(x["x"], b["x"])
    x, info = conjugate_gradient(lambda v: {"x": 0 * v["x"]}, b, max_iters=5)
    assert info.nonpositive_curvature and torch.isfinite(x["x"]).all()


def test_cg_zero_rhs_and_zero_iterations():
    a = _spd(5, 5)
    x, info = conjugate_gradient(lambda v: {"x": a @ v["x"]}, {"x": torch.zeros(5, dtype=F64)}, max_iters=10)
    assert torch.count_nonzero(x["x"]) == 0 and info.converged and info.residual == 0
    x, info = conjugate_gradient(lambda v: {"x": a @ v["x"]}, {"x": torch.ones(5, dtype=F64)}, max_iters=0)
    assert info.iterations == 0 and torch.count_nonzero(x["x"]) == 0


def test_numerically_singular_direction_is_flagged_not_overflowed():
    """Found by hypothesis: curvature 2e-313 > 0 made alpha = r.r / p.Ap overflow to inf."""
    b = {"x": torch.tensor([0.7], dtype=F64)}
    x, info = conjugate_gradient(lambda v: {"x": 2.2250738585e-313 * v["x"]}, b, max_iters=3)
    assert torch.isfinite(x["x"]).all() and info.nonpositive_curvature


def test_zero_right_hand_side_from_a_nonzero_start_reports_the_true_residual():
    """b = 0 has the answer x = 0; started elsewhere, CG must iterate towards it and report ||A x||
    (absolute: there is no ||b|| to divide by), not claim convergence it did not reach."""
    import torch

    from imaml_core.engine.cg import batched_cg

    diag = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    x, info = batched_cg(lambda v: diag * v, torch.zeros_like(diag), 2, tol=1e-12, x0=torch.ones_like(diag))
    true = float(torch.linalg.vector_norm(diag * x))
    assert float(info.residual[0]) == pytest.approx(true, rel=1e-9) and true > 1e-3
    assert not bool(info.converged[0])
    x, info = batched_cg(lambda v: diag * v, torch.zeros_like(diag), 3, tol=1e-12, x0=torch.ones_like(diag))
    assert float(torch.linalg.vector_norm(x)) < 1e-10 and bool(info.converged[0])  # exact in 3 steps
