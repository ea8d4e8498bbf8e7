"""Run every benchmark in order, each in a fresh process, and collect the tables into bench/RESULTS.md.

``python -m bench`` (full sizes, a few minutes each) or ``python -m bench --quick`` (seconds; writes
under bench/results/quick/, RESULTS.md included, and leaves bench/RESULTS.md alone). The optional
comparison with torchopt and higher (bench/external.py) runs here only when those import; otherwise its
last saved table is kept.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .common import RESULTS, environment, parse_args

SCRIPTS = ("gradient_accuracy", "compute_memory", "batching", "learning_per_second")
FIGURES = {
    "gradient_accuracy": "gradient_accuracy.png",
    "compute_memory": "compute_memory.png",
    "batching": "batching.png",
    "learning_per_second": "learning_per_second.png",
}

INTRO = """# Benchmark results

Produced by `{command}` from the repository root (`make bench` runs the same). Each script also runs on
its own, e.g. `PYTHONPATH=. .venv/bin/python -m bench.batching`; `--quick` gives tiny sizes in seconds.
Raw numbers: `bench/results/*.csv`; figures: `bench/results/*.png`.

Timing scripts run PyTorch with **{threads} intra-op thread** (`torch.set_num_threads(1)`) and report
medians after a warm-up; speed-ups are ratios of two measurements taken alternately in the same run. The
machine is shared (2 cores, other work running), so absolute times carry noise of tens of percent; the
ratios are steadier, and the batching table also gives ratios of process CPU time.
"""

NOTES = """## GPU

Not run: no device was lent in the session that produced these numbers (CPU only).

## Optional comparisons (torchopt, higher, learn2learn)

`bench/external.py` needs libraries the project does not depend on; it runs in a throwaway venv beside
the project's, with the pinned CPU torch (an unpinned torch pulls multi-GB CUDA wheels):

```sh
python3 -m venv /tmp/benchvenv
/tmp/benchvenv/bin/pip install torch==2.13.0 torchopt higher safetensors tomli-w psutil tqdm
PYTHONPATH=$PWD /tmp/benchvenv/bin/python -m bench.external
```

learn2learn was not available: its wheel failed to build against torch 2.13 on this machine.
"""


def run(name: str, quick: bool, out: Path, python: str = sys.executable) -> float:
    """Run one script in a fresh process (no state or allocator history shared between benchmarks)."""
    start = time.perf_counter()
    cmd = [python, "-m", f"bench.{name}", *(["--quick"] if quick else []), "--out", str(out)]
    print(f"\n=== {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parent.parent)
    return time.perf_counter() - start


def collect(
    out: Path, target: Path, env_before: dict[str, str], env_after: dict[str, str], runtimes: dict[str, float]
) -> str:
    command = "PYTHONPATH=. .venv/bin/python -m bench" + (" --quick" if out.name == "quick" else "")
    parts = [INTRO.format(command=command, threads=1)]
    env_rows = [
        ("date", env_before["date"]),
        ("torch", env_before["torch"]),
        ("python", env_before["python"]),
        ("CPU", f"{env_before['cpu']} ({env_before['cores']} cores)"),
        ("torch threads", "1"),
        ("load average (1/5/15 min) before → after", f"{env_before['load_average']} → {env_after['load_average']}"),
        ("script runtimes", ", ".join(f"{k} {v:.0f} s" for k, v in runtimes.items())),
    ]
    parts.append("| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in env_rows) + "\n")
    for name in (*SCRIPTS, "external"):
        section = out / f"{name}.md"
        if not section.exists():
            continue
        text = section.read_text(encoding="utf-8").rstrip()
        if name in FIGURES:
            text += f"\n\n![{name}]({os.path.relpath(out / FIGURES[name], target.parent)})"
        parts.append(text + "\n")
    parts.append(NOTES)
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    before = environment()
    runtimes: dict[str, float] = {}
    for name in SCRIPTS:
        runtimes[name] = run(name, args.quick, args.out)
    if importlib.util.find_spec("torchopt") or importlib.util.find_spec("higher"):
        runtimes["external"] = run("external", args.quick, args.out)
    target = RESULTS.parent / "RESULTS.md" if args.out.resolve() == RESULTS else args.out / "RESULTS.md"
    text = collect(args.out, target, before, environment(), runtimes)
    target.write_text(text, encoding="utf-8")
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
