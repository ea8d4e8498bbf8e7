"""How the default config was chosen: train each candidate for 2,000 meta-iterations, then evaluate.

Each row: post-adaptation query MSE on 600 fresh tasks (10 shots, 10 adaptation steps with the config's
own solver, seed 1), exactly what `imaml train` + `imaml eval --tasks 600 --shots 10 --steps 10` measure.

    PYTHONPATH=. .venv/bin/python -m bench.defaults_sweep [--iterations 2000] [--only N]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from imaml_core import ExperimentConfig, MetaTrainer

CANDIDATES: list[dict[str, object]] = [
    {"method": "maml", "inner_steps": 1, "inner_lr": 0.01},
    {"inner_solver": "gd", "lam": 1.0, "inner_steps": 10},
    {"inner_solver": "gd", "lam": 5.0, "inner_steps": 10},
    {"inner_solver": "gd", "lam": 10.0, "inner_steps": 10},
    {"inner_solver": "gd", "lam": 10.0, "inner_steps": 20},
    {"inner_solver": "gd", "lam": 20.0, "inner_steps": 10},
    {"inner_solver": "gd", "lam": 20.0, "inner_steps": 10, "seed": 1},
    {"inner_solver": "gd", "lam": 30.0, "inner_steps": 10},
    {"inner_solver": "hf", "lam": 0.5, "inner_steps": 5},
    {"inner_solver": "hf", "lam": 1.0, "inner_steps": 5},
    {"inner_solver": "hf", "lam": 10.0, "inner_steps": 3, "hf_cg_steps": 5},
]


def run(settings: dict[str, object], iterations: int) -> dict[str, object]:
    trainer = MetaTrainer(ExperimentConfig(val_every=0, **settings))
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.step()
    seconds = time.perf_counter() - start
    result = trainer.evaluate(tasks=600, shots=10, steps=10, seed=1)
    return {"settings": settings, "mse": result.mse, "ci95": result.ci95, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--only", type=int, default=None, help="run only candidate N")
    args = parser.parse_args()
    torch.set_num_threads(1)
    picked = CANDIDATES if args.only is None else [CANDIDATES[args.only]]
    print("| settings (others default) | MSE after 10 steps (600 tasks) | train s |")
    print("|---|---|---|")
    for settings in picked:
        row = run(settings, args.iterations)
        print(f"| `{json.dumps(settings)}` | {row['mse']:.3f} ± {row['ci95']:.3f} | {row['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
