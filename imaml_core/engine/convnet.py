"""The paper's few-shot classifier, batched over tasks: 4 x [3x3 conv, stride 2, batch norm, ReLU], then a
linear layer to N classes (Finn et al. 2017's Omniglot network, used by iMAML's Table 2).

Every task has its own parameters, so a layer's B convolutions run as one grouped convolution: the tasks'
images sit side by side as channel groups, ``(M, B*C, H, W)``, and the (B*O, C, 3, 3) stack of their kernels
convolves each group with its own task's kernel. Batch norm then normalises each (task, channel) over that
task's own batch — exactly per-task batch statistics, with no running statistics — because each channel of
the grouped output belongs to one task. Autograd differentiates all of it twice, for exact Hessian-vector
products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imaml_core.engine.params import Params

BN_EPS = 1e-5  # nn.BatchNorm2d's default: load_model's module normalises the same way


class ConvNet:
    """``layers`` conv blocks of ``filters`` channels on (C, H, W) images, then a linear layer to ``n_out``."""

    def __init__(self, n_out: int, filters: int = 64, in_shape: tuple[int, int, int] = (1, 28, 28), layers: int = 4):
        self.n_out, self.filters, self.in_shape, self.layers = n_out, filters, in_shape, layers
        height, width = in_shape[1:]
        for _ in range(layers):
            height, width = (height - 1) // 2 + 1, (width - 1) // 2 + 1  # 3x3, stride 2, padding 1
        self.features = filters * height * width

    def module(self) -> nn.Sequential:
        """The same network as an ``nn.Module`` (batch norm on the batch's own statistics, in train and eval)."""
        blocks: list[nn.Module] = []
        channels = self.in_shape[0]
        for _ in range(self.layers):
            blocks += [
                nn.Conv2d(channels, self.filters, 3, stride=2, padding=1),
                nn.BatchNorm2d(self.filters, eps=BN_EPS, track_running_stats=False),
                nn.ReLU(),
            ]
            channels = self.filters
        return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(self.features, self.n_out))

    def shapes(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        channels = self.in_shape[0]
        for i in range(self.layers):
            out[f"{3 * i}.weight"] = (self.filters, channels, 3, 3)
            out[f"{3 * i}.bias"] = (self.filters,)
            out[f"{3 * i + 1}.weight"] = (self.filters,)
            out[f"{3 * i + 1}.bias"] = (self.filters,)
            channels = self.filters
        out[f"{3 * self.layers + 1}.weight"] = (self.n_out, self.features)
        out[f"{3 * self.layers + 1}.bias"] = (self.n_out,)
        return out

    def init_params(self, generator: torch.Generator, dtype: torch.dtype, device: torch.device) -> Params:
        """PyTorch's defaults, seeded: conv and linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with
        a=sqrt(5) has that bound for weights too), batch norm scale 1 and shift 0."""
        params: Params = {}
        for name, shape in self.shapes().items():
            index = int(name.split(".")[0])
            if index % 3 == 1 and index < 3 * self.layers:  # a batch norm
                fill = 1.0 if name.endswith("weight") else 0.0
                params[name] = torch.full(shape, fill, dtype=dtype, device=device)
                continue
            weight = self.shapes()[f"{index}.weight"]
            fan_in = 1
            for size in weight[1:]:
                fan_in *= size
            u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
            params[name] = (2 * u - 1) * fan_in**-0.5
        return params

    def forward(self, params: Params, x: Tensor) -> Tensor:
        """Logits (B, M, n_out) of images x (B, M, C, H, W) under each task's parameters (B, *shape)."""
        b, m = x.shape[:2]
        h = x.transpose(0, 1).reshape(m, b * x.shape[2], *x.shape[3:])  # tasks as channel groups
        for i in range(self.layers):
            w, bias = params[f"{3 * i}.weight"], params[f"{3 * i}.bias"]
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), bias.reshape(-1), stride=2, padding=1, groups=b)
            scale, shift = params[f"{3 * i + 1}.weight"], params[f"{3 * i + 1}.bias"]
            h = F.batch_norm(h, None, None, scale.reshape(-1), shift.reshape(-1), training=True, eps=BN_EPS)
            h = torch.relu(h)
        features = h.reshape(m, b, -1).transpose(0, 1)  # (B, M, O*side*side), each task's own channels
        w, bias = params[f"{3 * self.layers + 1}.weight"], params[f"{3 * self.layers + 1}.bias"]
        return torch.baddbmm(bias.unsqueeze(-2), features, w.transpose(-1, -2))
