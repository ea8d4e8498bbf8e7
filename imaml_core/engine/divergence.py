"""What went wrong when a meta-iteration produced non-finite numbers, in one line a person can act on.

A diverging task is data, not an exception: the trainer skips the update and puts this message in its
report.
"""

from __future__ import annotations

import torch
from torch import Tensor

from imaml_core.common.config import ExperimentConfig
from imaml_core.engine.inner import finite_rows
from imaml_core.engine.methods import MetaGradient


def diagnose(cfg: ExperimentConfig, mg: MetaGradient, grad: Tensor) -> str:
    """Empty when everything is finite; otherwise what diverged, in which tasks, and the likely cause.

    ``mg`` holds the per-task results of the meta-batch and ``grad`` their mean, the update Adam would take.
    """
    bad_phi = ~finite_rows(mg.phi)
    bad_loss = ~torch.isfinite(mg.post_loss)
    bad_grad = ~finite_rows(mg.grad)
    if not bool((bad_phi | bad_loss | bad_grad).any()) and bool(torch.isfinite(grad).all()):
        return ""
    what = (
        "the adapted parameters phi"
        if bool(bad_phi.any())
        else ("the query loss" if bool(bad_loss.any()) else "the meta-gradient")
    )
    tasks = torch.nonzero(bad_phi | bad_loss | bad_grad).flatten().tolist()
    shown = ", ".join(str(t) for t in tasks[:5]) + (" ..." if len(tasks) > 5 else "")
    if cfg.method == "imaml" and cfg.inner_solver == "gd" and not cfg.inner_safeguard or cfg.method != "imaml":
        cause = (
            f"inner step size {cfg.inner_lr:g} is likely too large (the default task family's curvature reaches ~100; "
            f"try inner_lr < {2 / (100 + (cfg.lam if cfg.method == 'imaml' else 0.0)):.3g})"
        )
    elif bool(bad_phi.any()) or bool(bad_loss.any()):
        cause = "the inner problem is badly scaled: try a larger lambda or fewer inner steps"
    else:
        cause = f"lambda = {cfg.lam:g} is too small for this curvature: try a larger lambda or fewer CG steps"
    return (
        f"meta-iteration skipped, theta unchanged: {what} became non-finite in "
        f"{len(tasks)} of {cfg.meta_batch} tasks ({shown}); {cause}"
    )
