"""One torch thread against every core, per meta-batch and net: where ``imaml_core.engine.threads`` draws its line.

    PYTHONPATH=. .venv/bin/python -m bench.threads [--quick] [--out DIR]

For each (meta-batch, hidden widths) the same trainer steps with 1 thread and with all cores alternately,
so both meet the same background load; each timed step follows an untimed one with the same thread count,
because a step right after a switch is slowed by the pool winding down or up. OpenMP's wait policy is
fixed when torch loads, so the rows with passive waits (as the window runs) come from a child process
started with ``OMP_WAIT_POLICY=PASSIVE``. "policy picks" is what ``recommended_threads`` chooses for the
row under that wait policy.

``--busy`` adds the rows that matter beside other work: with one busy single-threaded process, then with a
busy process running two threads of its own, at meta-batch 25, 100 and 400, a ``ThreadTuner`` (what ``imaml
train`` and ``imaml profile`` use) chooses by measuring, then 1 thread, 2 threads and its choice are timed
alternately. Goal: the choice within 10% of the faster of 1 and 2 threads, and never over 1.2× one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from imaml_core import ExperimentConfig, MetaTrainer  # noqa: E402
from imaml_core.engine.heap import keep_freed_memory  # noqa: E402
from imaml_core.engine.threads import (  # noqa: E402
    ThreadTuner,
    available_cores,
    openmp_waits_passively,
    recommended_threads,
)

from .common import cpu_model, markdown_table, parse_args, write_csv, write_markdown  # noqa: E402

SPINNING = [
    (25, (40, 40)),
    (50, (40, 40)),
    (100, (40, 40)),
    (150, (40, 40)),
    (200, (40, 40)),
    (400, (40, 40)),
    (25, (100, 100)),
    (10, (200, 200)),
]
PASSIVE = [(25, (40, 40)), (400, (40, 40)), (100, (200, 200))]  # the last: 4.08M elements, above the bar
QUICK = [(25, (40, 40)), (200, (40, 40))]


def measure(cases: Sequence[tuple[int, tuple[int, ...]]], repeats: int) -> list[dict]:
    """Median seconds per meta-iteration with 1 thread and with every core, alternating, per case."""
    keep_freed_memory()
    n = available_cores()
    passive = openmp_waits_passively()
    before = torch.get_num_threads()
    rows = []
    for batch, hidden in cases:
        trainer = MetaTrainer(ExperimentConfig(meta_batch=batch, hidden=list(hidden), val_every=0))
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(repeats):
            for threads, out in zip((1, n), times, strict=True):
                torch.set_num_threads(threads)
                trainer.step()  # untimed: lets the pool settle after the switch
                start = time.perf_counter()
                trainer.step()
                out.append(time.perf_counter() - start)
        one, many = statistics.median(times[0]), statistics.median(times[1])
        rows.append(
            {
                "meta_batch": batch,
                "hidden": "-".join(map(str, hidden)),
                "elements": batch * trainer.theta.numel(),
                "openmp_wait": "passive" if passive else "spinning",
                "one_thread_ms": one * 1e3,
                "all_cores_ms": many * 1e3,
                "cores": n,
                "faster": 1 if one <= many else n,
                "policy_picks": recommended_threads(batch, trainer.theta.numel(), passive=passive),
                "repeats": repeats,
            }
        )
    torch.set_num_threads(before)
    return rows


def passive_rows(cases: Sequence[tuple[int, tuple[int, ...]]], repeats: int) -> list[dict]:
    """The same measurement in a child process whose OpenMP threads sleep between parallel regions."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    spec = json.dumps({"cases": [[b, list(h)] for b, h in cases], "repeats": repeats})
    out = subprocess.run(
        [sys.executable, "-m", "bench.threads", "--child", spec],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the passive-wait child failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


BUSY_BATCHES = (25, 100, 400)
# What runs beside the benchmark: one spinning Python thread, or a process keeping two threads of its own busy.
BUSY_LOADS = {
    "one busy single-threaded process": [[sys.executable, "-c", "while True: pass"]],
    "a busy two-threaded process": [
        [
            sys.executable,
            "-c",
            "import torch; torch.set_num_threads(2); a = torch.randn(400, 400)\nwhile True: a @ a",
        ]
    ],
}
CHOICE_GOAL, ONE_THREAD_GOAL = 1.10, 1.20


def busy_rows(repeats: int, batches: Sequence[int] = BUSY_BATCHES) -> list[dict]:
    """Per load and meta-batch: what the tuner chooses beside it, and 1 thread, 2 threads and the choice
    timed alternately (each timed step after an untimed one with the same count)."""
    rows = []
    for load, commands in BUSY_LOADS.items():
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
        try:
            time.sleep(1.0)  # let the load start (and torch load in it)
            for batch in batches:
                rows.append({"load": load, **_busy_row(batch, repeats)})
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return rows


def _busy_row(batch: int, repeats: int) -> dict:
    trainer = MetaTrainer(ExperimentConfig(meta_batch=batch, val_every=0))
    tuner = ThreadTuner((1, 2))
    while tuner.chosen is None:
        tuner.apply()
        tuner.observe(trainer.step().seconds)
    chosen = tuner.chosen
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for n in (1, 2):
            torch.set_num_threads(n)
            trainer.step()
            times[n].append(trainer.step().seconds)
    one, two = (statistics.median(times[n]) for n in (1, 2))
    picked = one if chosen == 1 else two
    return {
        "meta_batch": batch,
        "tuner_chose": chosen,
        "one_thread_ms": one * 1e3,
        "two_threads_ms": two * 1e3,
        "choice_vs_faster": picked / min(one, two),
        "choice_vs_one_thread": picked / one,
        "repeats": repeats,
    }


def busy_summary(rows: list[dict]) -> str:
    table = [
        [
            r["load"],
            r["meta_batch"],
            r["one_thread_ms"],
            r["two_threads_ms"],
            r["tuner_chose"],
            r["choice_vs_faster"],
            r["choice_vs_one_thread"],
            "PASS" if r["choice_vs_faster"] <= CHOICE_GOAL and r["choice_vs_one_thread"] <= ONE_THREAD_GOAL else "FAIL",
        ]
        for r in rows
    ]
    headers = ["beside", "meta-batch", "1 thread ms", "2 threads ms", "tuner chose", "÷ faster", "÷ 1 thread", "goal"]
    return "\n".join(
        [
            "### Beside busy processes: the tuner's choice (`python -m bench.threads --busy`)",
            "",
            f"Spinning OpenMP waits (as `imaml train` runs); medians of {rows[0]['repeats'] if rows else '?'}, "
            f"timed alternately after the tuner chose. Goal: ÷ faster ≤ {CHOICE_GOAL:g}, ÷ 1 thread ≤ "
            f"{ONE_THREAD_GOAL:g}.",
            "",
            markdown_table(headers, table),
        ]
    )


def plot(rows: list[dict], path: Path) -> None:
    labels = [f"{r['meta_batch']}×{r['hidden']}\n{r['openmp_wait']}" for r in rows]
    ratio = [r["one_thread_ms"] / r["all_cores_ms"] for r in rows]
    fig, ax = plt.subplots(figsize=(11, 4))
    colors = ["tab:green" if r["faster"] == r["policy_picks"] else "tab:red" for r in rows]
    ax.bar(range(len(rows)), ratio, color=colors)
    ax.axhline(1.0, color="grey", lw=1, ls="--")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set(ylabel="1-thread time / all-cores time", title="Speed-up from every core (green: the policy picks it right)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(rows: list[dict]) -> str:
    table = [
        [
            r["meta_batch"],
            r["hidden"],
            r["elements"],
            r["openmp_wait"],
            r["one_thread_ms"],
            r["all_cores_ms"],
            r["one_thread_ms"] / r["all_cores_ms"],
            r["policy_picks"],
            "yes" if r["faster"] == r["policy_picks"] else "no",
        ]
        for r in rows
    ]
    agree = sum(r["faster"] == r["policy_picks"] for r in rows)
    return "\n".join(
        [
            f"## Threads: one against every core ({cpu_model()}, {rows[0]['cores'] if rows else '?'} cores)",
            "",
            "Default config but for meta-batch and hidden widths; each trainer steps with 1 thread and with all "
            f"cores alternately, medians of {rows[0]['repeats'] if rows else '?'} each. Rows with passive OpenMP "
            "waits (as the window runs) come from a child process.",
            "",
            markdown_table(
                [
                    "meta-batch",
                    "hidden",
                    "(B, P) elements",
                    "OpenMP waits",
                    "1 thread ms",
                    "all cores ms",
                    "speed-up",
                    "policy picks",
                    "policy picks the faster",
                ],
                table,
            ),
            "",
            f"- The policy (`imaml_core/engine/threads.py`) picks the faster setting in {agree} of {len(rows)} rows "
            f"(compared on medians){_misses(rows)}",
        ]
    )


def _misses(rows: list[dict]) -> str:
    """The rows the policy gets wrong, with how far from a tie each is."""
    missed = [r for r in rows if r["faster"] != r["policy_picks"]]
    if not missed:
        return "."
    shown = "; ".join(
        f"meta-batch {r['meta_batch']} of a {r['hidden']} net, {r['openmp_wait']}: "
        f"{r['one_thread_ms'] / r['all_cores_ms']:.3g}×"
        for r in missed
    )
    return f". The others, with 2 threads' speed-up: {shown}."


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--busy", action="store_true", help="only the rows beside busy processes (the tuner)")


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    if args.child is not None:  # a child measuring under the wait policy it was started with
        spec = json.loads(args.child)
        print(json.dumps(measure([(b, tuple(h)) for b, h in spec["cases"]], spec["repeats"])))
        return ""
    repeats = 3 if args.quick else 12
    if args.busy:
        busy = busy_rows(3 if args.quick else 7, BUSY_BATCHES[:1] if args.quick else BUSY_BATCHES)
        write_csv(args.out / "threads_busy.csv", busy)
        text = busy_summary(busy)
        write_markdown(args.out, "threads_busy", text)
        return text
    rows = measure(QUICK if args.quick else SPINNING, repeats)
    rows += passive_rows(QUICK[-1:] if args.quick else PASSIVE, repeats)
    write_csv(args.out / "threads.csv", rows)
    plot(rows, args.out / "threads.png")
    text = summary(rows)
    write_markdown(args.out, "threads", text)
    return text


if __name__ == "__main__":
    main()
