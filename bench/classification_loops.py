"""The per-task contenders of ``bench/classification.py``: one iMAML-GD meta-gradient on the conv net, task by task.

Each function returns the mean meta-gradient (flat, (P,), in the trainer's layout) of a batch of image tasks
at θ. All of them run the engine's algorithm exactly, so that the benchmark compares implementations, not
algorithms: plain (unsafeguarded) gradient descent on L_support(φ) + λ/2 ||φ − θ||² from θ, then CG on
(I + H/λ) g = ∇L_query(φ) started at g = ∇L_query(φ) and stopped at non-positive curvature, as
imaml_core/engine/cg.py does.

- ``official_shape_meta_gradient``: the shape of the iMAML authors' code (aravindr93/imaml_dev). Per task a
  deep copy of the ``nn.Module`` learner, ``torch.optim.SGD`` on the support loss plus the proximal term
  (which autograd differentiates, as ``Learner.regularization_loss`` adds it to the loss), and every
  Hessian-vector product runs the forward pass, the gradient graph and a double backward anew
  (``Learner.hessian_vector_product``). Its CG operator is the paper's I + H/λ, not the code's damped one.
- ``careful_meta_gradient``: what a careful person writes with today's PyTorch. One module, no copies:
  ``torch.func.functional_call`` on views of flat θ / φ tensors, the proximal gradient λ(φ − θ) added by
  hand, and Hessian-vector products either by double backward through a gradient graph built once per task
  (``hvp="double_backward"``) or forward-over-reverse, ``torch.func.jvp`` of ``torch.func.grad``
  (``hvp="jvp"``), which recomputes the gradient for every product but stores no graph.
- ``torchopt_meta_gradient`` (optional, only where torchopt imports): ``torchopt.diff.implicit.custom_root``
  around the same inner GD, solved by ``torchopt.linear_solve.solve_cg``.

``check_gradients`` measures how far each contender's meta-gradients are from the engine's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.tasks.classification import ImageTasks

MetaGradientFn = Callable[[MetaTrainer, nn.Module, ImageTasks], Tensor]
HVPS = ("double_backward", "jvp")


def load_theta(trainer: MetaTrainer, module: nn.Module) -> None:
    """Copy the trainer's θ into ``module`` (same parameter names: ``ConvNet.module()``)."""
    params = trainer.layout.unflatten(trainer.theta.detach())
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(params[name])


def cg(apply_a: Callable[[Tensor], Tensor], v: Tensor, steps: int, tol: float, plain: bool = False) -> Tensor:
    """One task's CG on A x = v from x = v, the engine's rule: stop at relative residual ``tol``, or at
    non-positive curvature (keeping the last iterate), or after ``steps`` iterations. ``plain``: textbook CG
    as torchopt's ``solve_cg`` runs it, from x = 0 and without the curvature stop."""
    x = torch.zeros_like(v) if plain else v.clone()
    r = v - apply_a(x)
    p, rr = r.clone(), torch.dot(r, r)
    threshold = (tol * torch.linalg.vector_norm(v)) ** 2
    tiny = torch.finfo(v.dtype).eps ** 2
    for _ in range(steps):
        if not bool(rr > threshold):
            break
        ap = apply_a(p)
        pap = torch.dot(p, ap)
        if not plain and not bool(pap > rr * tiny):
            break
        alpha = rr / pap
        x.add_(alpha * p)
        r.sub_(alpha * ap)
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def _task(tasks: ImageTasks, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return tasks.x_support[i], tasks.y_support[i], tasks.x_query[i], tasks.y_query[i]


def official_shape_meta_gradient(trainer: MetaTrainer, module: nn.Module, tasks: ImageTasks) -> Tensor:
    """Mean meta-gradient of ``tasks``, in the shape of the authors' code (see the module's docstring)."""
    cfg = trainer.config
    lam = cfg.lam
    load_theta(trainer, module)
    names = [name for name, _ in module.named_parameters()]
    w_0 = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    total = torch.zeros_like(trainer.theta)
    for i in range(len(tasks)):
        xs, ys, xq, yq = _task(tasks, i)
        learner = copy.deepcopy(module)
        params = list(learner.parameters())
        inner_opt = torch.optim.SGD(params, lr=cfg.inner_lr)
        for _ in range(cfg.inner_steps):
            inner_opt.zero_grad()
            offset = torch.cat([p.reshape(-1) for p in params]) - w_0
            loss = F.cross_entropy(learner(xs), ys) + 0.5 * lam * torch.sum(offset**2)
            loss.backward()
            inner_opt.step()
        v = torch.cat([g.reshape(-1) for g in torch.autograd.grad(F.cross_entropy(learner(xq), yq), params)])

        def apply_a(u: Tensor, learner: nn.Module = learner, params: list = params, xs=xs, ys=ys) -> Tensor:
            grads = torch.autograd.grad(F.cross_entropy(learner(xs), ys), params, create_graph=True)
            h = torch.sum(torch.cat([g.reshape(-1) for g in grads]) * u)
            hvp = torch.cat([g.reshape(-1) for g in torch.autograd.grad(h, params)])
            return u + hvp / lam

        g = cg(apply_a, v, cfg.cg_steps, cfg.cg_tol)
        total += trainer.layout.flatten(dict(zip(names, _split_like(g, params), strict=True)))
    return total / len(tasks)


def _split_like(flat: Tensor, params: list[Tensor]) -> list[Tensor]:
    return [t.reshape(p.shape) for t, p in zip(torch.split(flat, [p.numel() for p in params]), params, strict=True)]


def careful_meta_gradient(
    trainer: MetaTrainer, module: nn.Module, tasks: ImageTasks, hvp: str = "double_backward", plain_cg: bool = False
) -> Tensor:
    """Mean meta-gradient of ``tasks`` with functional_call on flat parameters (see the module's docstring);
    ``plain_cg`` runs torchopt's CG (see ``cg``) instead of the engine's, to check torchopt against."""
    if hvp not in HVPS:
        raise ValueError(f"hvp must be one of {HVPS}")
    cfg = trainer.config
    lam, layout = cfg.lam, trainer.layout
    theta = trainer.theta.detach()

    def loss(flat: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(torch.func.functional_call(module, layout.unflatten(flat), (x,)), y)

    total = torch.zeros_like(theta)
    for i in range(len(tasks)):
        xs, ys, xq, yq = _task(tasks, i)
        phi = theta
        for _ in range(cfg.inner_steps):
            leaf = phi.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(loss(leaf, xs, ys), leaf)
            phi = phi - cfg.inner_lr * torch.add(g, phi - theta, alpha=lam)
        leaf = phi.detach().requires_grad_(True)
        (v,) = torch.autograd.grad(loss(leaf, xq, yq), leaf)
        if hvp == "double_backward":
            (train_grad,) = torch.autograd.grad(loss(leaf, xs, ys), leaf, create_graph=True)

            def hessian_vector(u: Tensor, train_grad: Tensor = train_grad, leaf: Tensor = leaf) -> Tensor:
                return torch.autograd.grad(train_grad, leaf, u, retain_graph=True)[0]

        else:
            grad_fn = torch.func.grad(lambda p, xs=xs, ys=ys: loss(p, xs, ys))

            def hessian_vector(u: Tensor, grad_fn: Callable = grad_fn, at: Tensor = leaf) -> Tensor:
                return torch.func.jvp(grad_fn, (at.detach(),), (u,))[1]

        apply_a = lambda u, hv=hessian_vector: torch.add(u, hv(u), alpha=1.0 / lam)  # noqa: E731
        total += cg(apply_a, v, cfg.cg_steps, cfg.cg_tol, plain_cg)
        del leaf
    return total / len(tasks)


def torchopt_meta_gradient(trainer: MetaTrainer, module: nn.Module, tasks: ImageTasks) -> Tensor:
    """Mean meta-gradient of ``tasks`` through torchopt's implicit differentiation, one task at a time (as
    torchopt's iMAML example loops over tasks). torchopt solves (H + λI) u = v and returns λu: with CG from
    zero that is, in exact arithmetic, CG from zero on (I + H/λ) g = v. Its CG has no curvature stop, so its
    answer differs from the engine's by design; it equals ``careful_meta_gradient(..., plain_cg=True)``."""
    import torchopt

    cfg = trainer.config
    lam, layout = cfg.lam, trainer.layout
    names = layout.names

    def forward(params: tuple[Tensor, ...], x: Tensor) -> Tensor:
        return torch.func.functional_call(module, dict(zip(names, params, strict=True)), (x,))

    def objective(params: tuple, meta: tuple, x: Tensor, y: Tensor) -> Tensor:
        reg = sum(((p - m) ** 2).sum() for p, m in zip(params, meta, strict=True))
        return F.cross_entropy(forward(params, x), y) + 0.5 * lam * reg

    @torchopt.diff.implicit.custom_root(
        torch.func.grad(objective, argnums=0),
        argnums=1,
        solve=torchopt.linear_solve.solve_cg(maxiter=cfg.cg_steps, rtol=cfg.cg_tol, atol=0.0),
    )
    def inner(params: tuple, meta: tuple, x: Tensor, y: Tensor) -> tuple:
        with torch.enable_grad():
            for _ in range(cfg.inner_steps):
                grads = torch.autograd.grad(objective(params, meta, x, y), params)
                steps = zip(params, grads, strict=True)
                params = tuple((p - cfg.inner_lr * g).detach().requires_grad_(True) for p, g in steps)
        return params

    theta = layout.unflatten(trainer.theta.detach())
    meta = tuple(theta[n].clone().requires_grad_(True) for n in names)
    total = torch.zeros_like(trainer.theta)
    for i in range(len(tasks)):
        xs, ys, xq, yq = _task(tasks, i)
        init = tuple(t.detach().clone().requires_grad_(True) for t in meta)
        phi = inner(init, meta, xs, ys)
        grads = torch.autograd.grad(F.cross_entropy(forward(phi, xq), yq), meta)
        total += layout.flatten(dict(zip(names, grads, strict=True)))
    return total / len(tasks)


LOOPS: dict[str, MetaGradientFn] = {
    "official_shape": official_shape_meta_gradient,
    "careful_double_backward": lambda t, m, b: careful_meta_gradient(t, m, b, "double_backward"),
    "careful_jvp": lambda t, m, b: careful_meta_gradient(t, m, b, "jvp"),
}


# -- meta-gradients: do the contenders compute the same thing? ----------------------------------------------
def _relative(g: Tensor, ref: Tensor) -> Tensor:
    """‖g − ref‖ / ‖ref‖ per row of (B, P) tensors."""
    return torch.linalg.vector_norm(g - ref, dim=-1) / torch.linalg.vector_norm(ref, dim=-1)


def _per_task(fn: Callable, trainer: MetaTrainer, module: torch.nn.Module, tasks: ImageTasks) -> Tensor:
    """A loop's meta-gradient of every task on its own, (B, P): the loops work task by task anyway."""
    return torch.stack([fn(trainer, module, tasks.slice(i, i + 1)) for i in range(len(tasks))])


def _compare(g: Tensor, ref: Tensor) -> dict[str, float]:
    per_task = _relative(g, ref)
    return {
        "rel_diff": float(_relative(g.mean(0), ref.mean(0))),
        "task_median": float(per_task.median()),
        "task_worst": float(per_task.max()),
    }


def check_gradients(cfg: ExperimentConfig, loops: dict[str, Callable]) -> dict[str, dict]:
    """Per contender: how far its meta-gradients are from the engine's on the same tasks and θ (the mean's
    relative difference, and the median and worst task's), in float32, the timed setting, and in float64 on
    the same number of tasks, where rounding is out of the way and only a difference of algorithm would
    show. torchopt's CG starts at zero and has no curvature stop: it is compared with the careful loop
    running that CG.

    The engine's entry also holds the FLOPs of one meta-gradient, counted on the careful double-backward loop:
    every contender does that arithmetic (the authors' shape more: it reruns the forward pass for every H v),
    and ``FlopCounterMode`` overcounts the backward of the engine's grouped convolutions."""
    out: dict[str, dict] = {}
    trainer = MetaTrainer(cfg)
    module = trainer.model.module().to(trainer.device)
    tasks = trainer.sample_batch()
    mg = trainer.meta_gradient(tasks)
    with FlopCounterMode(display=False) as counter:
        LOOPS["careful_double_backward"](trainer, module, tasks)
    trainer64 = MetaTrainer(cfg.replace(dtype="float64"))
    module64 = trainer64.model.module().to(trainer64.device, torch.float64)
    tasks64 = trainer64.sample_batch()
    ref64 = trainer64.meta_gradient(tasks64).grad
    for name, fn in loops.items():
        if name == "torchopt":
            plain = lambda t, m, b: careful_meta_gradient(t, m, b, plain_cg=True)  # noqa: E731
            out[name] = _compare(_per_task(fn, trainer, module, tasks), _per_task(plain, trainer, module, tasks))
            continue
        out[name] = _compare(_per_task(fn, trainer, module, tasks), mg.grad)
        out[name]["worst64"] = _compare(_per_task(fn, trainer64, module64, tasks64), ref64)["task_worst"]
        print(f"checked {name}: {out[name]}", flush=True)
    out["engine"] = {
        **_compare(mg.grad, mg.grad),
        "worst64": 0.0,
        "flops": counter.get_total_flops(),
        "nonpositive": int(mg.cg.nonpositive_curvature.sum()),
        "params": trainer.theta.numel(),
    }
    return out
