"""Gaussian blobs: N-way K-shot classification of points in the plane, a task family of your own.

A worked example for docs/TASK_FAMILIES.md. Each task places its N classes at N random centres in the box
[-4, 4]^2; a class's examples are its centre plus Gaussian noise of standard deviation ``SPREAD``. Class i of
a task is the one at centre i, and centres are drawn afresh for every task, so a label means nothing
before the support set is seen: the network has to adapt to each task, and meta-learning finds an
initialisation from which a few gradient steps do that well.

Train it with ``imaml train --task gaussian_blobs:blobs --ways 3 --out runs/blobs`` (this folder on
``PYTHONPATH``). ``blobs`` is a factory: it takes the run's config and builds the family with the config's
``ways``. ``three_way`` shows the other form, a ready-made family object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from imaml_core import ExperimentConfig
from imaml_core.tasks import PreviewTask

BOX = (-4.0, 4.0)  # where the class centres lie, in both coordinates
SPREAD = 1.0  # standard deviation of a class's points around its centre


@dataclass(frozen=True)
class BlobTasks:
    """B tasks of N classes: points (B, N*K, 2) and labels (B, N*K) in 0..N-1, class-major."""

    x_support: Tensor  # (B, N*K, 2), the trainer's dtype
    y_support: Tensor  # (B, N*K), int64
    x_query: Tensor  # (B, N*Q, 2)
    y_query: Tensor  # (B, N*Q)
    centres: Tensor  # (B, N, 2): each task's class centres

    def __len__(self) -> int:
        return self.centres.shape[0]

    def slice(self, start: int, stop: int) -> BlobTasks:
        """Tasks start..stop-1 (evaluation adapts ``eval_chunk`` tasks at a time)."""
        return BlobTasks(
            *(t[start:stop] for t in (self.x_support, self.y_support, self.x_query, self.y_query, self.centres))
        )


class GaussianBlobs:
    """The family: what the engine reads (see docs/TASK_FAMILIES.md for every attribute)."""

    label = "Gaussian blobs"  # what evaluation reports call the data
    loss_name = "cross-entropy"  # not "MSE": that name switches the MLP to hand-written MSE derivatives
    metric_name = "accuracy"  # validation and evaluation report it beside the loss
    input_range = BOX
    input_shape = (2,)  # one example is a point (x1, x2): the engine builds an MLP with 2 inputs
    eval_query = 10  # query points per class in validation and evaluation
    eval_chunk = 500  # tasks adapted at once in evaluation: a small MLP's activations are small
    # Settings suggested with this family (``imaml train`` without --config; flags still win). iMAML's implicit
    # gradient is exact at the inner problem's solution, so the inner solver gets enough steps to get there.
    defaults: dict[str, object] = {
        "shots": 5,
        "meta_batch": 10,
        "hidden": [32, 32],
        "inner_steps": 20,
        "inner_lr": 0.3,
        "lam": 2.0,
        "meta_lr": 0.003,
        "val_tasks": 50,
    }

    def __init__(self, ways: int = 3, name: str = "gaussian_blobs:blobs") -> None:
        self.name = name  # the registry sets it to the ``--task`` text that loaded the family
        self.ways = ways
        self.n_outputs = ways  # one logit per class

    def sample(
        self,
        n: int,
        shots: int,
        query: int,
        generator: torch.Generator,
        dtype: torch.dtype,
        device: torch.device,
        split: str = "train",
    ) -> BlobTasks:
        """``n`` tasks, ``shots`` support and ``query`` query points per class. Every draw comes from
        ``generator`` on ``device``, so a seed fixes the tasks and a resumed run sees the same ones.

        All splits share one distribution (as the sinusoid's do): ``split`` only names the stream. A family
        with held-out data would draw "val" and "test" tasks from classes that "train" never shows."""
        like = {"dtype": dtype, "device": device}
        lo, hi = BOX
        centres = torch.rand(n, self.ways, 2, generator=generator, **like) * (hi - lo) + lo
        points = centres[:, :, None, :] + SPREAD * torch.randn(
            n, self.ways, shots + query, 2, generator=generator, **like
        )  # (n, N, K+Q, 2)
        labels = torch.arange(self.ways, device=device).view(1, self.ways, 1)

        def part(a: int, b: int) -> tuple[Tensor, Tensor]:
            x = points[:, :, a:b].reshape(n, self.ways * (b - a), 2)
            return x, labels.expand(n, self.ways, b - a).reshape(n, self.ways * (b - a))

        (xs, ys), (xq, yq) = part(0, shots), part(shots, shots + query)
        return BlobTasks(xs, ys, xq, yq, centres)

    def loss_per_task(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Mean cross-entropy of each task: logits (B, M, N), labels (B, M) -> (B,)."""
        b, m, k = prediction.shape
        return F.cross_entropy(prediction.reshape(b * m, k), target.reshape(b * m), reduction="none").view(b, m).mean(1)

    def metric_per_task(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Fraction of each task's points classified right: (B, M, N), (B, M) -> (B,)."""
        return (prediction.argmax(dim=-1) == target).to(prediction.dtype).mean(dim=1)

    def preview_task(self, shots: int, generator: torch.Generator) -> PreviewTask:
        """One task on the CPU in float64: its centres (flattened) and its support points and labels."""
        tasks = self.sample(1, shots, 1, generator, torch.float64, torch.device("cpu"))
        params = tuple(float(v) for v in tasks.centres[0].reshape(-1))
        return PreviewTask(params, tasks.x_support[0].numpy().copy(), tasks.y_support[0].numpy().astype(np.float64))

    def truth(self, params: tuple[float, ...], x: np.ndarray) -> np.ndarray:
        """The best label at points ``x`` (M, 2): the nearest centre's (equal spreads make it the Bayes rule)."""
        centres = np.asarray(params, dtype=np.float64).reshape(-1, 2)
        points = np.asarray(x, dtype=np.float64).reshape(-1, 2)
        distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
        return distances.argmin(axis=1).astype(np.float64)


def blobs(config: ExperimentConfig) -> GaussianBlobs:
    """The factory ``--task gaussian_blobs:blobs`` names: the family with the run's ``ways``. The engine may
    call it several times per command (to train, to save, to load), so it builds nothing expensive."""
    return GaussianBlobs(config.ways)


three_way = GaussianBlobs(3, name="gaussian_blobs:three_way")  # a family object: ``--task gaussian_blobs:three_way``
