"""Few-shot learning on real Omniglot (the small subsets in ../shared/data/omniglot): every method at equal
meta-iterations and at equal training seconds, several seeds, 95% intervals over the test tasks, with the
untrained network as the floor.

    PYTHONPATH=. .venv/bin/python -m bench.learning_omniglot [--quick] [--data PATH] [--seeds N]

Split by alphabet (``--split alphabet``: the subsets' 8 alphabets, 5 for meta-training, 1 for validation,
2 for test; no character of a test alphabet is ever trained on). The paper's network (4 × 64-filter conv
blocks with per-task batch norm). Each method trains from the same θ on the same task stream; θ is kept
every ``SNAPSHOT`` iterations with its training seconds, so "equal seconds" takes, for every method, the last
snapshot within the training time of the fastest method's run. Evaluation (not timed) adapts 600 test tasks
with the paper's protocol (16 steps for 5-way, 25 for 20-way), iMAML with its trained λ (not λ = 0).
This machine's budget is small: the tables say how far it gets, not what the paper's 20,000+ iterations reach
(its Table 2 is printed beside them, separately).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.tasks import eval_steps, with_family_defaults

from .common import markdown_table, parse_args, write_csv, write_markdown

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
SNAPSHOT = 10
EVAL_SEED = 4242
# label -> config changes from the family's suggested (paper) settings
METHODS = {
    "iMAML-GD": {"method": "imaml", "inner_solver": "gd"},
    "iMAML-HF": {"method": "imaml", "inner_solver": "hf", "inner_steps": 5, "hf_cg_steps": 5},
    "MAML": {"method": "maml"},
    "FOMAML": {"method": "fomaml"},
    "Reptile": {"method": "reptile"},
}
# (ways, meta-batch, iterations, equal seconds too) per setting: what a 2-core CPU affords in about half an hour
# for 5-way, and about 45 minutes for 20-way (evaluating a 20-way snapshot on 600 tasks takes about two minutes)
SETTINGS = {"5-way 1-shot": (5, 8, 150, True), "20-way 1-shot": (20, 2, 60, True)}
QUICK = {"5-way 1-shot": (5, 2, 4, True), "20-way 1-shot": (20, 1, 2, False)}
PAPER = {  # the iMAML paper's Table 2 (Omniglot, accuracy %, 95% intervals where reported)
    "5-way 1-shot": {"MAML": "98.7 ± 0.4", "FOMAML": "98.3 ± 0.5", "Reptile": "97.68 ± 0.04",
                     "iMAML-GD": "99.16 ± 0.35", "iMAML-HF": "99.50 ± 0.26"},
    "20-way 1-shot": {"MAML": "95.8 ± 0.3", "FOMAML": "89.4 ± 0.5", "Reptile": "89.43 ± 0.14",
                      "iMAML-GD": "94.46 ± 0.42", "iMAML-HF": "96.18 ± 0.36"},
}  # fmt: skip


def base_config(data: Path, ways: int, meta_batch: int, seed: int) -> ExperimentConfig:
    config = ExperimentConfig(task="omniglot", data=str(data), split="alphabet", ways=ways, seed=seed)
    config = with_family_defaults(config, {"data", "split", "ways"})
    return config.replace(meta_batch=meta_batch, val_every=0)


def train(config: ExperimentConfig, iterations: int) -> list[tuple[int, float, dict[str, torch.Tensor]]]:
    """(iteration, training CPU seconds, theta) every ``SNAPSHOT`` iterations and at the end. CPU seconds of
    this process, not wall-clock: other work on a shared machine then slows no method more than another."""
    trainer = MetaTrainer(config)
    snapshots = [(0, 0.0, trainer.params())]
    seconds = 0.0
    while trainer.iteration < iterations:
        start = time.process_time()
        trainer.step()
        seconds += time.process_time() - start
        if trainer.iteration % SNAPSHOT == 0 or trainer.iteration == iterations:
            snapshots.append((trainer.iteration, seconds, trainer.params()))
    return snapshots


def accuracy(config: ExperimentConfig, theta: dict[str, torch.Tensor], tasks: int) -> tuple[float, float]:
    """Test accuracy (%) and its 95% half-width after adapting ``theta`` the config's method's way: the
    paper's 16 or 25 GD steps, and for iMAML-HF its own Newton steps (25 Newton steps of 5 CG products each
    would cost a 20-way evaluation over half an hour here)."""
    trainer = MetaTrainer(config, theta=theta)
    steps = config.inner_steps if config.inner_solver == "hf" and config.method == "imaml" else eval_steps(config)
    result = trainer.evaluate(tasks=tasks, steps=steps, seed=EVAL_SEED)
    return 100 * float(result.accuracy), 100 * float(result.accuracy_ci95)


def run_setting(name: str, data: Path, seeds: int, eval_tasks: int, sizes: dict) -> tuple[list[dict], str]:
    ways, meta_batch, iterations, timed_too = sizes[name]
    rows: list[dict] = []
    runs = {}
    for seed in range(seeds):
        for label, changes in METHODS.items():
            config = base_config(data, ways, meta_batch, seed).replace(**changes)
            started = time.perf_counter()
            runs[label, seed] = (config, train(config, iterations))
            print(f"{name} {label} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    budget = {seed: min(snaps[-1][1] for (_, s), (_, snaps) in runs.items() if s == seed) for seed in range(seeds)}
    floors = {}  # the untrained theta of each seed, adapted by plain GD (the same start for every method)
    for seed in range(seeds):
        config, snaps = runs[next(iter(METHODS)), seed]
        floors[seed] = accuracy(config.replace(method="fomaml"), snaps[0][2], eval_tasks)
    for (label, seed), (config, snaps) in runs.items():
        final = snaps[-1]
        timed = [s for s in snaps if s[1] <= budget[seed]][-1]
        at_it, at_it_ci = accuracy(config, final[2], eval_tasks)
        at_s, at_s_ci = (at_it, at_it_ci) if timed is final else (math.nan, math.nan)
        if timed_too and timed is not final:
            at_s, at_s_ci = accuracy(config, timed[2], eval_tasks)
        rows.append(
            {
                "setting": name, "method": label, "seed": seed, "meta_batch": meta_batch,
                "iterations": final[0], "seconds": final[1], "untrained": floors[seed][0],
                "untrained_ci": floors[seed][1], "acc_equal_iterations": at_it, "ci_equal_iterations": at_it_ci,
                "budget_seconds": budget[seed], "iterations_in_budget": timed[0],
                "acc_equal_seconds": at_s, "ci_equal_seconds": at_s_ci,
            }
        )  # fmt: skip
        print(f"  {label} seed {seed}: {final[0]} it {at_it:.1f}%, {timed[0]} it in {budget[seed]:.0f} s "
              f"{at_s:.1f}%", flush=True)  # fmt: skip
    return rows, table(name, rows, eval_tasks)


def table(name: str, rows: list[dict], eval_tasks: int) -> str:
    headers = ["method", "untrained (GD)", "equal iterations", "equal CPU seconds", "CPU s / iteration"]
    body = []
    for label in METHODS:
        mine = [r for r in rows if r["method"] == label]
        if not mine:
            continue

        def both(key: str, ci: str, mine: list[dict] = mine) -> str:
            if any(math.isnan(r[key]) for r in mine):
                return "not measured"
            per_seed = ", ".join(f"{r[key]:.1f} ± {r[ci]:.1f}" for r in mine)
            return f"{np.mean([r[key] for r in mine]):.1f} ({per_seed})"

        it = f" @{mine[0]['iterations']} it"
        secs = f" ({', '.join(str(r['iterations_in_budget']) for r in mine)} it)"
        per_it = np.mean([r["seconds"] / max(r["iterations"], 1) for r in mine])
        body.append([label, both("untrained", "untrained_ci"), both("acc_equal_iterations", "ci_equal_iterations") + it,
                     both("acc_equal_seconds", "ci_equal_seconds") + secs, f"{per_it:.2f}"])  # fmt: skip
    first = rows[0]
    head = (
        f"**{name}**, meta-batch {first['meta_batch']}, {len({r['seed'] for r in rows})} seeds; accuracy % on "
        f"{eval_tasks} test tasks (mean over seeds, then each seed ± its 95% interval); equal seconds = the "
        f"fastest method's CPU seconds, {', '.join(f'{r:.0f}' for r in sorted({r['budget_seconds'] for r in rows}))} "
        "s per seed"
    )
    return head + "\n\n" + markdown_table(headers, body)


def paper_table() -> str:
    headers = ["method", *PAPER]
    body = [[label, *(PAPER[s][label] for s in PAPER)] for label in METHODS]
    return "The paper's Table 2 (full Omniglot, 20,000+ meta-iterations; not comparable with the rows above)\n\n" + (
        markdown_table(headers, body)
    )


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DATA, help="Omniglot's folder (default: the shared subsets)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--eval-tasks", type=int, default=600)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated: " + ", ".join(SETTINGS))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    if not args.data.exists():
        print(f"skipped: no Omniglot at {args.data} (pass --data)")
        return
    torch.set_num_threads(os.cpu_count() or 1)
    sizes = QUICK if args.quick else SETTINGS
    eval_tasks = 20 if args.quick else args.eval_tasks
    load = os.getloadavg()
    rows, parts = [], []
    for name in args.settings.split(","):
        setting_rows, text = run_setting(name.strip(), args.data, 1 if args.quick else args.seeds, eval_tasks, sizes)
        rows += setting_rows
        parts.append(text)
    write_csv(args.out / "learning_omniglot.csv", rows)
    note = (
        f"Omniglot subsets, alphabet split; iMAML adapts with its trained λ; {torch.get_num_threads()} threads; "
        f"load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end."
    )
    write_markdown(args.out, "learning_omniglot", "\n\n".join([note, *parts, paper_table()]))


if __name__ == "__main__":
    main()
