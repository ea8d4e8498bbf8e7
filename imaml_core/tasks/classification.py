"""N-way K-shot image classification (Omniglot's protocol, Finn et al. 2017 and the iMAML paper).

A family holds three pools of images, ``(classes, drawers, H, W)`` uint8 with ink high, one per split
(meta-training, validation, test: disjoint by class). A task picks N classes of one split, K support and Q
query drawers of each (no drawer in both), and rotates each class by its own random multiple of 90° (a
rotated character is a new class, as in the paper). Class i of a task gets label i; the classes are drawn in
random order, so labels are permuted per task. Sampling runs on the trainer's device from its generator,
so a seed fixes the tasks.

The loss is cross-entropy; the number users read is accuracy (``metric_per_task``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from imaml_core.common.errors import ConfigError
from imaml_core.tasks.protocol import PreviewTask

SPLITS = ("train", "val", "test")
PREVIEW_QUERIES = 2  # query images per class in a preview task (enough to see right and wrong at a glance)


@dataclass(frozen=True)
class ImageTasks:
    """B classification tasks: images (B, N*K, 1, H, W) and labels (B, N*K) in 0..N-1, class-major."""

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor
    classes: Tensor  # (B, N): each task's classes (indices into its split's pool)
    rotations: Tensor  # (B, N): each class's rotation, in quarter turns

    def __len__(self) -> int:
        return self.classes.shape[0]

    def slice(self, start: int, stop: int) -> ImageTasks:
        """Tasks start..stop-1 (for chunked evaluation)."""
        return ImageTasks(*(t[start:stop] for t in self.tensors()))

    def tensors(self) -> tuple[Tensor, ...]:
        return (self.x_support, self.y_support, self.x_query, self.y_query, self.classes, self.rotations)


def cross_entropy_per_task(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of each task over its examples: logits (B, M, N), labels (B, M) -> (B,)."""
    b, m, n = logits.shape
    return F.cross_entropy(logits.reshape(b * m, n), labels.reshape(b * m), reduction="none").view(b, m).mean(1)


def accuracy_per_task(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of each task's examples classified right: (B, M, N), (B, M) -> (B,)."""
    return (logits.argmax(dim=-1) == labels).to(logits.dtype).mean(dim=1)


def draw_tasks(
    pool: Tensor, n: int, ways: int, shots: int, query: int, gen: torch.Generator, dtype: torch.dtype
) -> ImageTasks:
    """``n`` tasks from ``pool`` ((C, D, H, W) uint8, on the generator's device): see the module's docstring."""
    classes_available, drawers, h, w = pool.shape
    device = pool.device
    classes = torch.rand(n, classes_available, generator=gen, device=device).argsort(dim=1)[:, :ways]
    picks = torch.rand(n, ways, drawers, generator=gen, device=device).argsort(dim=2)[..., : shots + query]
    rotations = torch.randint(0, 4, (n, ways), generator=gen, device=device)
    images = pool[classes.unsqueeze(-1), picks]  # (n, ways, shots + query, H, W)
    for quarter in (1, 2, 3):
        turn = rotations == quarter
        if bool(turn.any()):
            images[turn] = torch.rot90(images[turn], quarter, dims=(-2, -1))
    images = images.to(dtype).div_(255.0).unsqueeze(3)  # (n, ways, shots + query, 1, H, W)
    labels = torch.arange(ways, device=device).view(1, ways, 1)

    def part(lo: int, hi: int) -> tuple[Tensor, Tensor]:
        x = images[:, :, lo:hi].reshape(n, ways * (hi - lo), 1, h, w)
        return x, labels.expand(n, ways, hi - lo).reshape(n, ways * (hi - lo))

    (xs, ys), (xq, yq) = part(0, shots), part(shots, shots + query)
    return ImageTasks(xs, ys, xq, yq, classes, rotations)


class ImageClassification:
    """A classification family over per-split image pools (a :class:`~imaml_core.tasks.protocol.TaskFamily`).

    ``load`` returns the pools, ``{"train"|"val"|"test": (C, D, H, W) uint8}``; it runs at the first draw,
    so building a family (to learn its model's shape, or to name it) reads no data."""

    loss_name = "cross-entropy"
    metric_name = "accuracy"
    eval_chunk = 25  # tasks adapted at once in evaluation: a conv net's activations are large
    input_range = (0.0, 1.0)

    def __init__(
        self,
        name: str,
        ways: int,
        load: Callable[[], Mapping[str, np.ndarray]],
        label: str,
        image_size: int = 28,
        synthetic: bool = False,
    ) -> None:
        self.name = name
        self.label = label  # what tables, plots and run names call the data ("synthetic glyphs")
        self.synthetic = synthetic
        self.ways = ways
        self.n_outputs = ways
        self.input_shape = (1, image_size, image_size)
        self._load = load
        self._pools: dict[str, np.ndarray] | None = None
        self._on_device: dict[tuple[str, str], Tensor] = {}

    @property
    def defaults(self) -> dict[str, object]:
        """The paper's settings for Omniglot (iMAML, 5-way 1-shot), suggested when a user picks the family:
        K = 1, meta-batch 32, 16 inner steps of size 0.1, lambda 2, 5 CG steps (and Q = K queries per class:
        ``registry.with_family_defaults``)."""
        return {
            "shots": 1,
            "meta_batch": 32,
            "inner_steps": 16,
            "inner_lr": 0.1,
            "lam": 2.0,
            "cg_steps": 5,
            "val_tasks": 50,
        }

    def pools(self) -> dict[str, np.ndarray]:
        """The three pools (loaded once)."""
        if self._pools is None:
            pools = {k: np.asarray(v) for k, v in self._load().items()}
            for split in SPLITS:
                pool = pools.get(split)
                if pool is None or pool.ndim != 4 or pool.dtype != np.uint8 or pool.shape[2:] != self.input_shape[1:]:
                    raise ConfigError(f"{self.label}: the {split} split is missing or not (classes, drawers, H, W)")
            self._pools = pools
        return self._pools

    def check(self, shots: int, query: int) -> None:
        """Refuse settings the data cannot give: more ways than classes, more shots + queries than drawers."""
        for split, pool in self.pools().items():
            classes, drawers = pool.shape[:2]
            if classes < self.ways:
                raise ConfigError(
                    f"{self.label}: {self.ways}-way tasks need {self.ways} classes; its {split} split has {classes}"
                )
            if drawers < shots + query:
                raise ConfigError(
                    f"{self.label}: {shots} shots + {query} queries per class need {shots + query} images per "
                    f"class; it has {drawers}"
                )

    def _pool(self, split: str, device: torch.device) -> Tensor:
        key = (split, str(device))
        if key not in self._on_device:
            self._on_device[key] = torch.from_numpy(np.array(self.pools()[split])).to(device)
        return self._on_device[key]

    def sample(
        self,
        n: int,
        shots: int,
        query: int,
        generator: torch.Generator,
        dtype: torch.dtype,
        device: torch.device,
        split: str = "train",
    ) -> ImageTasks:
        self.check(shots, query)
        return draw_tasks(self._pool(split, torch.device(device)), n, self.ways, shots, query, generator, dtype)

    def loss_per_task(self, prediction: Tensor, target: Tensor) -> Tensor:
        return cross_entropy_per_task(prediction, target)

    def metric_per_task(self, prediction: Tensor, target: Tensor) -> Tensor:
        return accuracy_per_task(prediction, target)

    def preview_task(self, shots: int, generator: torch.Generator, query: int = PREVIEW_QUERIES) -> PreviewTask:
        """One validation task in float64: support images (N*K, H, W) with labels (N*K,), and ``query`` query
        images per class with theirs; ``params`` holds each class's index in the validation pool, then its
        rotation in quarter turns."""
        tasks = self.sample(1, shots, query, generator, torch.float64, torch.device("cpu"), split="val")
        params = tuple(float(v) for v in (*tasks.classes[0].tolist(), *tasks.rotations[0].tolist()))
        return PreviewTask(
            params,
            tasks.x_support[0, :, 0].numpy().copy(),
            tasks.y_support[0].numpy().astype(np.float64),
            tasks.x_query[0, :, 0].numpy().copy(),
            tasks.y_query[0].numpy().astype(np.float64),
        )

    def truth(self, params: tuple[float, ...], x: np.ndarray) -> np.ndarray:
        raise ConfigError(f"{self.label} is classification: a task has labels, not a function to plot")
