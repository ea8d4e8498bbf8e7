"""The per-task loops side by side: how fast is each way of writing the meta-iteration one task at a time?

A speed-up only means something against a baseline that is not needlessly slow. This script times the
engine and the three loops of ``bench/reference_loop.py`` (careful plain autograd; the authors' code's
shape, which rebuilds the gradient graph for every Hessian-vector product; this package's per-task API)
alternately in one run, one thread, on trainers with the same seed, so every loop sees the same tasks.
tests/test_batched.py checks that all of them compute the engine's meta-gradient.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

from imaml_core import ExperimentConfig, MetaTrainer

from .common import device_name, markdown_table, parse_args, setup_timing, write_csv, write_markdown
from .reference_loop import LOOPS, per_task_step

LABELS = {
    "careful": "careful plain autograd, gradient graph built once per task (the reference)",
    "official_shape": "authors' code's shape (aravindr93/imaml_dev): graph rebuilt for every H v",
    "public_api": "per-task public API (`solve_inner`, `implicit_meta_gradient`)",
}


def measure(batch: int, rounds: int) -> dict[str, float]:
    """Median seconds of the engine and of every loop, alternated in one run."""
    cfg = ExperimentConfig(meta_batch=batch, val_every=0)
    engine = MetaTrainer(cfg)
    loops = {name: MetaTrainer(cfg) for name in LOOPS}
    runs: dict[str, Callable[[], object]] = {
        name: (lambda t=trainer, fn=LOOPS[name]: per_task_step(t, fn)) for name, trainer in loops.items()
    }
    runs["engine"] = engine.step
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in runs.items():
            if name == "engine":
                fn()  # as in bench.batching: the engine timed in its steady state, after one of its own steps
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out: dict[str, float] = {f"{k}_seconds": statistics.median(v) for k, v in times.items()}
    thetas = [t.theta for t in loops.values()]
    out["theta_difference"] = max(float((a - thetas[0]).abs().max()) for a in thetas[1:])
    return {"meta_batch": batch, "rounds": rounds, **out}


def summary(row: dict[str, float], where: str) -> str:
    eng = row["engine_seconds"]
    ref = row["careful_seconds"]
    table = markdown_table(
        ["loop", "ms per meta-iteration", "loop / reference loop", "engine speed-up against it"],
        [
            [LABELS[name], row[f"{name}_seconds"] * 1e3, row[f"{name}_seconds"] / ref, row[f"{name}_seconds"] / eng]
            for name in LOOPS
        ],
    )
    return "\n".join(
        [
            f"## Per-task loops ({where})",
            "",
            f"Default config at meta-batch {row['meta_batch']}; medians of {row['rounds']} rounds, the engine "
            f"({eng * 1e3:.3g} ms, each timed step after an untimed one) and the loops alternated. After the same "
            f"meta-iterations the loops' θ differ by {row['theta_difference']:.2g} at most (float32).",
            "",
            table,
        ]
    )


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv)
    setup_timing()
    row = measure(5 if args.quick else 25, 3 if args.quick else 15)
    write_csv(args.out / "loops.csv", [row])
    text = summary(row, device_name("cpu"))
    write_markdown(args.out, "loops", text)
    return text


if __name__ == "__main__":
    main()
