"""Functional models: parameters are ``dict[str, Tensor]``; the engine calls ``forward`` with a task axis.

``MLP`` is the default regressor (1 input, 1 output) with a hand-batched forward (one ``baddbmm`` per layer for the
whole meta-batch); ``ConvNet`` (convnet.py) classifies images, one grouped convolution per layer. ``ModuleModel``
makes any ``nn.Module`` usable by vmapping ``functional_call`` over tasks, so the engine stays model-agnostic.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from imaml_core.common.config import ExperimentConfig
from imaml_core.engine.convnet import ConvNet
from imaml_core.engine.params import Params
from imaml_core.tasks import TaskFamily


class FunctionalModel(Protocol):
    """What the engine needs from a model."""

    def init_params(self, generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> Params:
        """Fresh parameters (no task axis)."""
        ...

    def forward(self, params: Params, x: Tensor) -> Tensor:
        """Predictions for a batch of tasks: params (B, *shape), x (B, N, in) -> (B, N, out)."""
        ...

    def module(self) -> nn.Module:
        """An ``nn.Module`` whose ``state_dict`` keys are the parameter names."""
        ...


class MLP:
    """Fully connected ReLU network ``in -> hidden... -> out``, laid out like ``nn.Sequential``."""

    def __init__(self, hidden: Sequence[int] = (40, 40), n_in: int = 1, n_out: int = 1) -> None:
        self.widths = (n_in, *hidden, n_out)

    def module(self) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(self.widths[:-1], self.widths[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(self.widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    @property
    def linear_names(self) -> list[tuple[str, str]]:
        return [(f"{2 * i}.weight", f"{2 * i}.bias") for i in range(len(self.widths) - 1)]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        for (w, b), a, c in zip(self.linear_names, self.widths[:-1], self.widths[1:], strict=True):
            out[w] = (c, a)
            out[b] = (c,)
        return out

    def init_params(self, generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> Params:
        """PyTorch's default ``nn.Linear`` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), seeded."""
        params: Params = {}
        for name, shape in self.shapes().items():
            fan_in = shape[1] if len(shape) == 2 else params[name.replace("bias", "weight")].shape[1]
            bound = fan_in**-0.5
            u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
            params[name] = (2 * u - 1) * bound
        return params

    def forward(self, params: Params, x: Tensor) -> Tensor:
        h = x
        last = len(self.linear_names) - 1
        for i, (w, b) in enumerate(self.linear_names):
            h = torch.baddbmm(params[b].unsqueeze(-2), h, params[w].transpose(-1, -2))
            if i < last:
                h = torch.relu(h)
        return h


class ModuleModel:
    """Any ``nn.Module`` as a functional model, batched over tasks with ``torch.func.vmap``."""

    def __init__(self, module: nn.Module) -> None:
        self._module = module
        self._batched = vmap(self._single)

    def _single(self, params: Params, x: Tensor) -> Tensor:
        return functional_call(self._module, params, (x,))

    def module(self) -> nn.Module:
        return self._module

    def init_params(self, generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> Params:
        return {k: v.detach().to(dtype=dtype, device=device).clone() for k, v in self._module.named_parameters()}

    def forward(self, params: Params, x: Tensor) -> Tensor:
        return self._batched(params, x)


def model_for(config: ExperimentConfig, tasks: TaskFamily) -> MLP | ConvNet:
    """The built-in model for a family's examples: the paper's conv net for images (C, H, W) with
    ``config.filters`` channels, else an MLP of ``config.hidden`` widths."""
    shape = tuple(tasks.input_shape)
    if len(shape) == 3:
        return ConvNet(tasks.n_outputs, config.filters, shape)  # type: ignore[arg-type]
    return MLP(config.hidden, n_in=prod(shape), n_out=tasks.n_outputs)
