"""What one meta-iteration will hold in memory, estimated from the shapes before it runs, so a setting that
cannot fit (a meta-batch of 100,000, MAML unrolled through hundreds of conv-net steps) is refused with the
reason instead of swapping the machine or dying mid-iteration.

The estimate counts, per task, the activations autograd keeps for the support set (one inner step's graph;
every step's for MAML, which unrolls; a double-backward graph for iMAML's Hessian-vector products), the
query set's forward and backward, and the (B, P) vectors the solvers keep (phi, gradients, CG's four). It is
a model of the big terms, within a small factor of what ``bench.memory`` measures, and errs high: only a
step that needs more than the memory free now is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import psutil
import torch

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError

VECTORS_PER_TASK = 12  # (B, P) tensors alive at once: theta's copy, phi, gradients, CG's r, p, Ap, x, lambda…


def activation_floats(model: object) -> int:
    """Floats one example's forward pass keeps for backward (pre-activations, normalised and activated
    outputs), from the built-in models' shapes; 0 for a model of the user's own (not estimated)."""
    widths = getattr(model, "widths", None)
    if widths is not None:  # MLP
        return 3 * sum(widths[1:])
    if hasattr(model, "filters") and hasattr(model, "in_shape"):  # ConvNet
        height, width = model.in_shape[1:]  # type: ignore[attr-defined]
        floats = height * width
        for _ in range(model.layers):  # type: ignore[attr-defined]
            height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1
            floats += 4 * model.filters * height * width  # type: ignore[attr-defined]  # conv, norm, ReLU, mask
        return floats
    return 0


def step_bytes(config: ExperimentConfig, model: object, n_params: int, examples: tuple[int, int]) -> int:
    """Estimated peak bytes of one meta-iteration; ``examples`` is (support, query) examples per task."""
    support, query = examples
    act = activation_floats(model)
    if config.method == "maml":
        inner = support * act * config.inner_steps + 2 * n_params * config.inner_steps
    elif config.method == "imaml" and config.inner_solver == "hf":
        inner = 2 * support * act
    else:
        inner = support * act
    per_task = inner + 2 * query * act + VECTORS_PER_TASK * n_params
    return per_task * config.meta_batch * torch.finfo(getattr(torch, config.dtype)).bits // 8


def free_bytes(device: torch.device) -> int:
    """Memory free for tensors now: the GPU's free memory, or the machine's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(psutil.virtual_memory().available)


def check_fits(
    config: ExperimentConfig, model: object, n_params: int, examples: tuple[int, int], device: torch.device
) -> None:
    """Refuse (:class:`ConfigError`, with the numbers) a meta-iteration estimated to need more than is free."""
    need, free = step_bytes(config, model, n_params, examples), free_bytes(device)
    if need > free:
        raise ConfigError(
            f"meta-batch {config.meta_batch} with {config.inner_steps} inner steps ({config.method}) needs about "
            f"{need / 1e9:.1f} GB for one meta-iteration, more than the {free / 1e9:.1f} GB free on {device.type}: "
            "lower the meta-batch or the inner steps"
        )


def check_change_fits(
    old: ExperimentConfig,
    new: ExperimentConfig,
    model: object,
    n_params: int,
    examples: Callable[[ExperimentConfig], tuple[int, int]],
    device: torch.device,
) -> None:
    """``check_fits`` for a change of live settings from ``old`` to ``new``; the error's ``fields`` are the
    changed settings that would not fit even alone (all of them when only their combination does not), so
    a window that sent several edits at once refuses the right one."""
    try:
        check_fits(new, model, n_params, examples(new), device)
    except ConfigError as exc:
        changed = new.changed(old)
        alone = []
        for name in changed:
            single = old.replace(**{name: getattr(new, name)})
            try:
                check_fits(single, model, n_params, examples(single), device)
            except ConfigError:
                alone.append(name)
        raise ConfigError(str(exc), tuple(alone or changed)) from None
