"""Meta-gradient accuracy against an exact answer (the paper's Figure 2a), in float64.

Two problems whose exact meta-gradient g* = (I + H/lam)^-1 grad L_test(phi*) of the proximal problem is
known: linear regression (phi* and g* in closed form) and a small tanh MLP (phi* by the engine's Newton-CG
solver to stationarity ~1e-12, g* by a dense solve with the autograd Hessian). Against g* we measure:

- iMAML: the public ``implicit_meta_gradient`` at phi_K (K steps of the engine's proximal GD), for
  CG iterations 0..20 (0 = first-order), for several K and at phi* itself;
- MAML: autograd through N unrolled steps of the same proximal GD (phi_0 = theta), N = 1..200;
- FOMAML: grad L_test(phi_N), no Jacobian.

The engine is used only through ``solve_inner`` and ``implicit_meta_gradient``; MAML is plain autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from imaml_core import implicit_meta_gradient, solve_inner  # noqa: E402

from .common import markdown_table, parse_args, setup_timing, write_csv, write_markdown  # noqa: E402

F64 = torch.float64
Params = dict[str, Tensor]
TARGET = 1e-6  # iMAML's relative error at the exact inner solution with enough CG iterations
CG_MAX = 20


@dataclass
class Problem:
    """A proximal meta-learning problem with its exact inner solution and meta-gradient."""

    name: str
    theta: Params
    train: Callable[[Params], Tensor]
    test: Callable[[Params], Tensor]
    lam: float
    lr: float  # inner GD step 1/(L + lam): monotone, linear convergence
    phi_star: Params
    g_star: Tensor
    eig_range: tuple[float, float]  # eigenvalues of I + H/lam at phi*
    stationarity: float  # of phi*


def flat(p: Params) -> Tensor:
    return torch.cat([v.reshape(-1) for v in p.values()])


def unflat(like: Params, v: Tensor) -> Params:
    out, i = {}, 0
    for k, t in like.items():
        out[k] = v[i : i + t.numel()].reshape(t.shape)
        i += t.numel()
    return out


def rel_err(g: Tensor, g_star: Tensor) -> float:
    return float((g - g_star).norm() / g_star.norm())


def dense_hessian(loss: Callable[[Params], Tensor], at: Params) -> Tensor:
    return torch.autograd.functional.hessian(lambda v: loss(unflat(at, v)), flat(at))


def linear_problem(seed: int = 0, d: int = 30, n: int = 20, lam: float = 1.0) -> Problem:
    """Least squares with features of spread scales (a spread Hessian spectrum); closed-form phi*, g*."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0.5, -1.0, d, dtype=F64)
    x = torch.randn(n, d, generator=gen, dtype=F64) * scales
    xt = torch.randn(n, d, generator=gen, dtype=F64) * scales
    w_true = torch.randn(d, generator=gen, dtype=F64)
    y = x @ w_true + 0.1 * torch.randn(n, generator=gen, dtype=F64)
    yt = xt @ w_true + 0.1 * torch.randn(n, generator=gen, dtype=F64)
    theta = {"w": torch.randn(d, generator=gen, dtype=F64) * 0.5}

    def train(p: Params) -> Tensor:
        return 0.5 * ((x @ p["w"] - y) ** 2).mean()

    def test(p: Params) -> Tensor:
        return 0.5 * ((xt @ p["w"] - yt) ** 2).mean()

    h = x.T @ x / n
    eye = torch.eye(d, dtype=F64)
    phi = torch.linalg.solve(h + lam * eye, x.T @ y / n + lam * theta["w"])
    g_star = torch.linalg.solve(eye + h / lam, xt.T @ (xt @ phi - yt) / n)
    eig = torch.linalg.eigvalsh(eye + h / lam)
    lr = 1.0 / (float(torch.linalg.eigvalsh(h).max()) + lam)
    stat = float((h @ phi - x.T @ y / n + lam * (phi - theta["w"])).norm())
    name = f"linear regression (P={d}, n={n}, λ={lam:g})"
    return Problem(name, theta, train, test, lam, lr, {"w": phi}, g_star, (float(eig[0]), float(eig[-1])), stat)


def mlp_problem(seed: int = 0, hidden: Sequence[int] = (8, 8), shots: int = 10, lam: float = 2.0) -> Problem:
    """A 1-8-8-1 tanh MLP on one sinusoid task (tanh: the Hessian exists everywhere, unlike ReLU)."""
    gen = torch.Generator().manual_seed(seed)
    widths = (1, *hidden, 1)
    theta: Params = {}
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        theta[f"{2 * i}.weight"] = (2 * torch.rand(b, a, generator=gen, dtype=F64) - 1) / math.sqrt(a)
        theta[f"{2 * i}.bias"] = (2 * torch.rand(b, generator=gen, dtype=F64) - 1) / math.sqrt(a)
    xs = torch.rand(shots, 1, generator=gen, dtype=F64) * 10 - 5
    xq = torch.rand(12, 1, generator=gen, dtype=F64) * 10 - 5
    ys, yq = 2.0 * torch.sin(xs + 0.5), 2.0 * torch.sin(xq + 0.5)
    layers = len(widths) - 1

    def net(p: Params, x: Tensor) -> Tensor:
        for i in range(layers):
            x = x @ p[f"{2 * i}.weight"].T + p[f"{2 * i}.bias"]
            if i < layers - 1:
                x = torch.tanh(x)
        return x

    def train(p: Params) -> Tensor:
        return ((net(p, xs) - ys) ** 2).mean()

    def test(p: Params) -> Tensor:
        return ((net(p, xq) - yq) ** 2).mean()

    phi, info = solve_inner(train, theta, lam=lam, steps=15, solver="hf", hf_cg_steps=500)
    h = dense_hessian(train, phi)
    eye = torch.eye(h.shape[0], dtype=F64)
    eig = torch.linalg.eigvalsh(eye + h / lam)
    if float(eig[0]) <= 0:
        raise RuntimeError(f"I + H/lam is not positive definite at phi* (min eigenvalue {float(eig[0]):.3g})")
    g_star = torch.linalg.solve(eye + h / lam, flat(torch.func.grad(test)(phi)))
    # GD step from the largest curvature seen at theta and at phi* (with a margin for the path between).
    top = max(float(torch.linalg.eigvalsh(dense_hessian(train, theta))[-1]), float(torch.linalg.eigvalsh(h)[-1]))
    lr = 1.0 / (1.2 * top + lam)
    p = sum(v.numel() for v in theta.values())
    name = f"tanh MLP 1-{'-'.join(map(str, hidden))}-1 (P={p}, {shots} shots, λ={lam:g})"
    return Problem(name, theta, train, test, lam, lr, phi, g_star, (float(eig[0]), float(eig[-1])), info.stationarity)


def imaml_errors(prob: Problem, phi: Params, cg_max: int = CG_MAX) -> list[float]:
    """Relative error of the engine's implicit gradient at phi after 0..cg_max CG iterations."""
    errs = []
    for c in range(cg_max + 1):
        g, _ = implicit_meta_gradient(prob.train, prob.test, phi, lam=prob.lam, cg_steps=c, cg_tol=0.0)
        errs.append(rel_err(flat(g), prob.g_star))
    return errs


def inner_gd(prob: Problem, steps: int) -> Params:
    phi, _ = solve_inner(prob.train, prob.theta, lam=prob.lam, steps=steps, lr=prob.lr)
    return phi


def maml_gradient(prob: Problem, steps: int) -> tuple[Tensor, Tensor]:
    """d L_test(phi_N) / d theta through N unrolled proximal GD steps (and phi_N, for a consistency check)."""
    theta = flat(prob.theta).clone().requires_grad_(True)
    like = prob.theta
    phi = theta
    for _ in range(steps):
        (g,) = torch.autograd.grad(prob.train(unflat(like, phi)), phi, create_graph=True)
        phi = phi - prob.lr * (g + prob.lam * (phi - theta))
    (grad,) = torch.autograd.grad(prob.test(unflat(like, phi)), theta)
    return grad, phi.detach()


def fomaml_gradient(prob: Problem, phi: Params) -> Tensor:
    return flat(torch.func.grad(prob.test)(phi))


def run_problem(prob: Problem, inner_ks: Sequence[int], steps: Sequence[int], imaml_extra: Sequence[int]) -> list[dict]:
    rows: list[dict] = []
    base = {"problem": prob.name}
    for k in [*inner_ks, 0]:  # 0 stands for the exact inner solution phi*
        phi = prob.phi_star if k == 0 else inner_gd(prob, k)
        for c, e in enumerate(imaml_errors(prob, phi)):
            rows.append(
                {**base, "method": "imaml", "inner": "exact" if k == 0 else k, "cg_iterations": c, "rel_error": e}
            )
    for n in sorted({*steps, *imaml_extra}):
        phi = inner_gd(prob, n)
        g_imaml, _ = implicit_meta_gradient(prob.train, prob.test, phi, lam=prob.lam, cg_steps=CG_MAX, cg_tol=0.0)
        rows.append(
            {
                **base,
                "method": "imaml_vs_steps",
                "inner": n,
                "cg_iterations": CG_MAX,
                "rel_error": rel_err(flat(g_imaml), prob.g_star),
            }
        )
        if n not in steps:
            continue
        rows.append(
            {
                **base,
                "method": "fomaml",
                "inner": n,
                "cg_iterations": "",
                "rel_error": rel_err(fomaml_gradient(prob, phi), prob.g_star),
            }
        )
        g_maml, phi_unrolled = maml_gradient(prob, n)
        # The unrolled path must be the engine's GD path, or the comparison is not like for like.
        assert rel_err(phi_unrolled, flat(phi)) < 1e-10, "MAML unroll and engine GD disagree"
        rows.append(
            {**base, "method": "maml", "inner": n, "cg_iterations": "", "rel_error": rel_err(g_maml, prob.g_star)}
        )
    return rows


def _series(rows: list[dict], problem: str, method: str, inner: object = None) -> tuple[list, list]:
    sel = [
        r for r in rows if r["problem"] == problem and r["method"] == method and (inner is None or r["inner"] == inner)
    ]
    key = "cg_iterations" if method == "imaml" else "inner"
    return [r[key] for r in sel], [max(r["rel_error"], 1e-17) for r in sel]


def plot(rows: list[dict], problems: list[Problem], inner_ks: Sequence[int], path: Path) -> None:
    fig, axes = plt.subplots(len(problems), 2, figsize=(11, 4.2 * len(problems)), squeeze=False)
    for row_axes, prob in zip(axes, problems, strict=True):
        left, right = row_axes
        colors = plt.cm.viridis([i / max(1, len(inner_ks)) for i in range(len(inner_ks) + 1)])
        for color, k in zip(colors, [*inner_ks, "exact"], strict=True):
            x, y = _series(rows, prob.name, "imaml", k)
            label = "φ* (exact inner solution)" if k == "exact" else f"φ after {k} GD steps"
            left.semilogy(x, y, "o-", ms=3, color=color, label=label)
        left.set(xlabel="CG iterations", ylabel="relative error ‖g − g*‖/‖g*‖", title=f"iMAML — {prob.name}")
        for method, style, label in (
            ("maml", "s-", "MAML (unrolled N steps)"),
            ("fomaml", "^-", "FOMAML"),
            ("imaml_vs_steps", "o-", f"iMAML ({CG_MAX} CG its)"),
        ):
            x, y = _series(rows, prob.name, method)
            right.loglog(x, y, style, ms=4, label=label)
        right.set(
            xlabel="inner GD steps N (MAML: unrolled)", ylabel="relative error", title=f"vs inner steps — {prob.name}"
        )
        for ax in (left, right):
            ax.axhline(TARGET, color="grey", ls="--", lw=1, label="1e-6")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Meta-gradient accuracy against the exact meta-gradient (float64)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(rows: list[dict], problems: list[Problem], inner_ks: Sequence[int], steps: Sequence[int]) -> str:
    out = ["## Gradient accuracy (paper Fig. 2a)", ""]
    facts = [
        (p.name, f"{p.eig_range[0]:.3g} … {p.eig_range[1]:.3g}", p.eig_range[1] / p.eig_range[0], p.lr, p.stationarity)
        for p in problems
    ]
    out += [markdown_table(["problem", "eig(I + H/λ) at φ*", "condition", "inner GD step", "‖∇G(φ*)‖"], facts), ""]
    table = []
    for p in problems:
        for k in [*inner_ks, "exact"]:
            _, errs = _series(rows, p.name, "imaml", k)
            reach = next((c for c, e in enumerate(errs) if e <= TARGET), None)
            table.append(
                [
                    p.name,
                    "φ*" if k == "exact" else f"{k} GD steps",
                    errs[0],
                    errs[5],
                    errs[10],
                    errs[CG_MAX],
                    reach if reach is not None else f"not within {CG_MAX}",
                ]
            )
    out += ["iMAML relative error vs CG iterations (CG 0 = first-order):", ""]
    out += [
        markdown_table(
            ["problem", "inner solution", "CG 0", "CG 5", "CG 10", f"CG {CG_MAX}", "CG its to ≤ 1e-6"], table
        ),
        "",
    ]
    table = []
    for p in problems:
        for n in steps:
            vals = [
                next(r["rel_error"] for r in rows if r["problem"] == p.name and r["method"] == m and r["inner"] == n)
                for m in ("maml", "fomaml", "imaml_vs_steps")
            ]
            table.append([p.name, n, *vals])
    out += ["Relative error vs inner steps N (same proximal GD path for all three):", ""]
    out += [markdown_table(["problem", "N", "MAML", "FOMAML", f"iMAML ({CG_MAX} CG)"], table)]
    floor = min(r["rel_error"] for r in rows if r["method"] == "imaml" and r["inner"] == "exact")
    worst = max(min(_series(rows, p.name, "imaml", "exact")[1]) for p in problems)
    out += [
        "",
        f"Check: iMAML at φ* reaches {worst:.2e} (worst problem; best {floor:.2e}) "
        f"{'≤' if worst <= TARGET else '>'} 1e-6 within {CG_MAX} CG iterations: "
        f"{'PASS' if worst <= TARGET else 'FAIL'}",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv)
    setup_timing()
    if args.quick:
        inner_ks, steps, extra = [10, 200], [1, 10, 50], [200]
    else:
        inner_ks, steps, extra = [10, 50, 200, 1000], [1, 2, 5, 10, 20, 50, 100, 200], [500, 1000]
    problems = [linear_problem(), mlp_problem()]
    rows: list[dict] = []
    for prob in problems:
        rows += run_problem(prob, inner_ks, steps, extra)
    write_csv(args.out / "gradient_accuracy.csv", rows)
    plot(rows, problems, inner_ks, args.out / "gradient_accuracy.png")
    text = summary(rows, problems, inner_ks, steps)
    write_markdown(args.out, "gradient_accuracy", text)
    return text


if __name__ == "__main__":
    main()
