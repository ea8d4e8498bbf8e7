"""The CUDA benchmarks in one script: compute/memory vs inner steps, batching up to meta-batch 1,000, classification.

On a machine with a CUDA device: ``PYTHONPATH=. .venv/bin/python -m bench.gpu`` (a few minutes;
``--quick`` for a smoke test). Results go to ``bench/results/gpu/`` with the card's name in every
table; CUDA memory is the peak allocated during a meta-iteration above what was allocated before it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .common import RESULTS, environment, parse_args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0], argv)
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to run")
        return
    out = args.out / "gpu" if args.out.resolve() in (RESULTS, RESULTS / "quick") else args.out
    out.mkdir(parents=True, exist_ok=True)
    quick = ["--quick"] if args.quick else []
    batches = "1,5,25" if args.quick else "1,5,25,100,400,1000"
    runs = {
        "compute_memory": ["--device", "cuda", *quick],
        "batching": ["--device", "cuda", "--batches", batches, *quick],
        "classification": ["--device", "cuda", "--quick"],  # meta-batch 32 on CUDA even when quick
    }
    env = environment()
    lines = [f"# GPU runs: {torch.cuda.get_device_name(0)}", "", f"torch {env['torch']}, {env['date']}", ""]
    for name, extra in runs.items():
        start = time.perf_counter()
        cmd = [sys.executable, "-m", f"bench.{name}", "--out", str(out), *extra]
        print("===", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=Path(__file__).resolve().parent.parent)
        lines += [
            (out / f"{name}.md").read_text(encoding="utf-8"),
            f"({name}: {time.perf_counter() - start:.0f} s)",
            "",
        ]
    (out / "GPU.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out / 'GPU.md'}")


if __name__ == "__main__":
    main()
