"""``imaml train``, ``imaml eval`` and ``imaml profile``: the commands that load the engine (and PyTorch,
imported when a command runs, so ``imaml runs`` stays light)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from imaml_core.cli.common import UsageError
from imaml_core.cli.common import non_negative as _non_negative
from imaml_core.cli.common import positive as _positive
from imaml_core.cli.tasks import TASK_FLAGS, add_task_arguments, config_for_task
from imaml_core.common.config import DEVICES, INNER_SOLVERS, LAM_SHAPES, METHODS, ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.common.files import create_exclusive
from imaml_core.common.report import StepReport
from imaml_core.experiments.runs import RunRecorder
from imaml_core.experiments.training import TrainingSession


def _csv_ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _csv_methods(text: str) -> list[str]:
    methods = [v.strip() for v in text.split(",") if v.strip()]
    for m in methods:
        if m not in METHODS:
            raise argparse.ArgumentTypeError(f"unknown method {m!r} (choose from {', '.join(METHODS)})")
    return methods


# Command-line flag -> config field, for the settings `train` and `profile` may override.
_OVERRIDES = {
    "method": str,
    "inner_solver": str,
    "lam": float,
    "lam_shape": str,
    "learn_lam": bool,
    "lam_lr": float,
    "cg_steps": int,
    "cg_tol": float,
    "inner_steps": int,
    "inner_lr": float,
    "meta_lr": float,
    "meta_batch": int,
    "shots": int,
    "seed": int,
    "device": str,
    **TASK_FLAGS,
}


def add_train_parsers(sub: Any) -> None:
    """The ``train``, ``eval`` and ``profile`` subcommands."""
    train = sub.add_parser("train", help="meta-train into a run folder (config, metrics, theta, resume state)")
    train.add_argument("--config", type=Path, help="TOML config (flags below override it)")
    train.add_argument("--method", choices=METHODS)
    train.add_argument("--inner-solver", choices=INNER_SOLVERS)
    for flag in ("lam", "lam_lr", "cg_tol", "inner_lr", "meta_lr"):
        train.add_argument(f"--{flag.replace('_', '-')}", type=float, help=ExperimentConfig.doc(flag))
    train.add_argument("--lam-shape", choices=LAM_SHAPES, help=ExperimentConfig.doc("lam_shape"))
    train.add_argument("--learn-lam", action=argparse.BooleanOptionalAction, help=ExperimentConfig.doc("learn_lam"))
    for flag in ("cg_steps", "inner_steps", "meta_batch", "shots", "seed"):
        train.add_argument(f"--{flag.replace('_', '-')}", type=int, help=ExperimentConfig.doc(flag))
    train.add_argument("--device", choices=DEVICES)
    add_task_arguments(train)
    train.add_argument("--iterations", type=int, default=2000, help="meta-iterations (default 2000)")
    train.add_argument("--save-every", type=int, default=500, help="checkpoint every N iterations (0: end only)")
    train.add_argument("--out", type=Path, help="folder of a new run (a run already there is replaced)")
    train.add_argument("--resume", type=Path, help="run folder to continue exactly, to --iterations in total")
    train.add_argument("--name", help="the run's name (default: the folder's name)")
    train.add_argument("--notes", help="free text kept in run.json")
    train.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard scalars even if installed")
    train.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    train.add_argument(
        "--threads", type=int, help="CPU threads (default: measured, one or every core, whichever is faster now)"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    ev = sub.add_parser("eval", help="adapt a checkpoint to fresh test tasks: query loss (and accuracy)")
    ev.add_argument("params", type=Path, help="meta_params.safetensors")
    ev.add_argument("--tasks", type=int, default=600)
    ev.add_argument("--shots", type=int, default=None, help="support examples (per class) (default: the checkpoint's)")
    ev.add_argument(
        "--steps",
        type=int,
        default=None,
        help="adaptation steps (default: 16 for up to 5-way classification, 25 beyond; else the run's inner steps)",
    )
    ev.add_argument("--data", metavar="PATH", help="where the checkpoint's Omniglot is now, if it moved")
    ev.add_argument(
        "--adapt-lam",
        choices=("trained", "zero"),
        default="trained",
        help="iMAML: adapt with the run's lambda (default) or with lambda 0, by plain GD (the iMAML authors' eval)",
    )
    ev.add_argument("--seed", type=int, default=1)
    ev.add_argument("--device", choices=DEVICES, default="auto")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--threads", type=int, help="CPU threads (default: by problem size)")

    prof = sub.add_parser("profile", help="seconds and memory per meta-iteration by method and inner steps")
    prof.add_argument("--method", type=_csv_methods, default=list(METHODS), help="comma-separated methods")
    prof.add_argument("--inner-steps", type=_csv_ints, default=[5, 25, 100], help="comma-separated counts")
    prof.add_argument("--meta-batch", type=int, default=25)
    prof.add_argument("--iterations", type=int, default=5, help="timed meta-iterations per row (median)")
    prof.add_argument("--inner-solver", choices=INNER_SOLVERS)
    prof.add_argument("--cg-steps", type=int)
    prof.add_argument("--shots", type=int)
    prof.add_argument("--device", choices=DEVICES)
    add_task_arguments(prof)
    prof.add_argument("--json", action="store_true")
    prof.add_argument(
        "--threads", type=int, help="CPU threads for every row (default: measured per row, as training does)"
    )


def _config_from_args(args: argparse.Namespace, base: ExperimentConfig, from_file: bool) -> ExperimentConfig:
    return config_for_task(args, base, _OVERRIDES, from_file)


# -- train ----------------------------------------------------------------------------------------------
class _StopFlag:
    """SIGINT/SIGTERM finish the current meta-iteration, then training stops and saves."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, _frame: Any) -> None:
        self.signal = signum


def _prepare_out(out: Path) -> None:
    """A folder for a new run: refused when it is a runs folder (the new run's files would hide the runs in
    it from every listing), and probed for writing."""
    held = _runs_inside(out)
    if held:
        raise UsageError(
            f"--out {out} holds {held} run folder{'s' if held > 1 else ''} (it is a runs folder): "
            f"give a new folder for this run, e.g. --out {out / 'my-run'}"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".imaml-write-test.{secrets.token_hex(6)}"
        os.close(create_exclusive(probe))  # a new name, never through a link
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to --out {out}: {exc.strerror or exc}") from None


def _runs_inside(folder: Path) -> int:
    """How many run folders (a run.json inside) ``folder`` holds, without following links."""
    try:
        children = list(folder.iterdir())
    except OSError:
        return 0
    return sum(1 for c in children if not c.is_symlink() and c.is_dir() and (c / "run.json").exists())


def _open_run(args: argparse.Namespace) -> tuple[Any, Any]:
    """The run to train and its trainer: a new run in --out, or the run in --resume restored exactly."""
    from imaml_core.engine.trainer import MetaTrainer
    from imaml_core.experiments.runs import Run

    tensorboard = False if args.no_tensorboard else None
    if (args.out is None) == (args.resume is None):
        raise UsageError("train needs either --out DIR (a new run) or --resume DIR (continue a run)")
    if args.resume is None:
        base = ExperimentConfig.load(args.config) if args.config else ExperimentConfig()
        cfg = _config_from_args(args, base, from_file=args.config is not None)
        trainer = MetaTrainer(cfg)
        _prepare_out(args.out)
        name = args.name or ("" if cfg.task != "glyphs" else f"{args.out.name} (synthetic glyphs)")
        run = Run.create(args.out, cfg, name, args.notes or "", tensorboard=tensorboard)
        run.save_checkpoint(trainer)  # resumable, and theta on disk, from iteration 0
        return run, trainer
    given = [k for k in (*_OVERRIDES, "config") if getattr(args, k, None) is not None]
    if given:
        flag = given[0].replace("_", "-")
        raise UsageError(f"--resume continues with the run's own config.toml; --{flag} does not apply")
    run = Run.open(args.resume, tensorboard)
    trainer = run.trainer()
    if args.iterations <= trainer.iteration:
        raise UsageError(
            f"--iterations counts the total: {args.iterations} is not more than the {trainer.iteration} "
            f"meta-iterations {args.resume} has done"
        )
    run.continue_from_checkpoint(trainer.iteration)
    try:
        if args.name is not None or args.notes is not None:
            run.rename(args.name if args.name is not None else run.info.name, args.notes)
    except BaseException:
        run.close()  # a failed start leaves no lock behind
        raise
    return run, trainer


def cmd_train(args: argparse.Namespace) -> int:
    _non_negative("iterations", args.iterations)
    _non_negative("save-every", args.save_every)
    run, trainer = _open_run(args)
    from imaml_core.engine.threads import ThreadTuner

    cfg = trainer.config
    tuner = ThreadTuner() if args.threads is None and trainer.device.type == "cpu" else None
    recorder = RunRecorder(run, args.save_every, saved_iteration=trainer.iteration)
    session = TrainingSession(trainer, recorder, threads=tuner)
    stop = _StopFlag()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    bar = _progress(args, trainer.iteration)
    status = "failed"  # unless the loop ends normally

    def show(report: StepReport) -> None:
        if bar is not None and not report.diverged:
            bar.update(1)
            bar.set_postfix(loss=f"{report.meta_loss:.3f}", refresh=False)

    try:
        last = session.train(args.iterations, stop=lambda: stop.signal is not None, on_report=show)
        error = session.stop_reason or session.record_error
        if not error:
            status = "finished" if trainer.iteration >= args.iterations else "paused"
    finally:
        if bar is not None:
            bar.close()
        try:
            if session.recorder is not None:
                session.close(status)
            else:  # recording failed: what is on disk stays as the last save left it
                with contextlib.suppress(ImamlError, OSError):
                    run.set_status("failed")
                run.close()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    summary = {
        "out": str(run.path),
        "id": run.id,
        "status": status,
        "iterations": trainer.iteration,
        "interrupted": stop.signal is not None,
        "meta_loss": last.meta_loss if last is not None else math.nan,
        "val_loss": trainer.validation_loss(),
        "seconds": session.seconds,
        "method": cfg.method,
    }
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        note = " (interrupted)" if stop.signal is not None else ""
        print(
            f"saved run {run.id} in {run.path} after {trainer.iteration} meta-iterations{note}; "
            f"validation {trainer.tasks.loss_name} {summary['val_loss']:.4f}",
            file=sys.stderr,
        )
    if error:
        raise UsageError(f"training stopped: {error}")
    return 0


def _progress(args: argparse.Namespace, done: int) -> Any:
    if args.quiet or args.json or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=args.iterations, initial=done, unit="it", dynamic_ncols=True)


# -- eval -----------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from imaml_core.engine.trainer import MetaTrainer

    _positive("tasks", args.tasks)
    if args.steps is not None:
        _non_negative("steps", args.steps)
    if args.shots is not None:
        _positive("shots", args.shots)
    from imaml_core.engine.checkpoint import load_checkpoint
    from imaml_core.engine.threads import use_threads_for
    from imaml_core.tasks import eval_steps

    ckpt = load_checkpoint(args.params)
    cfg = ckpt.config.replace(device=args.device, **({"data": str(args.data)} if args.data is not None else {}))
    steps = eval_steps(cfg) if args.steps is None else args.steps
    trainer = MetaTrainer(cfg, theta=ckpt.params, iteration=ckpt.iteration, current_lam=ckpt.current_lam)
    if args.threads is None:
        use_threads_for(args.tasks, trainer.theta.numel(), trainer.device)
    result = trainer.evaluate(tasks=args.tasks, shots=args.shots, steps=steps, seed=args.seed, adapt_lam=args.adapt_lam)
    out = result.to_dict()
    out["method"] = cfg.method
    out["task"] = cfg.task
    if args.json:
        print(json.dumps(out))
        return 0
    how = f"{cfg.method}, adapting with {result.adapt_lam} lambda" if cfg.method == "imaml" else cfg.method
    print(
        f"{result.data}, {how}: query {result.loss_name} after {steps} steps on {args.tasks} test tasks: "
        f"{result.mse:.4f} ± {result.ci95:.4f} (95%)"
    )
    if result.accuracy is not None:
        print(f"accuracy: {100 * result.accuracy:.2f}% ± {100 * result.accuracy_ci95:.2f}% (95%)")
    print("per step: " + " ".join(f"{v:.3f}" for v in result.mse_per_step))
    return 0


# -- profile --------------------------------------------------------------------------------------------
def cmd_profile(args: argparse.Namespace) -> int:
    from imaml_core.engine.profiling import profile_rows

    _positive("iterations", args.iterations)
    if not args.inner_steps:
        raise UsageError("--inner-steps needs at least one count")
    for s in args.inner_steps:
        _positive("inner-steps", s)
    names = ("inner_solver", "cg_steps", "shots", "device", *TASK_FLAGS)
    base = config_for_task(args, ExperimentConfig(), names, from_file=False).replace(meta_batch=args.meta_batch)
    rows = profile_rows(base, args.method, args.inner_steps, args.iterations, auto_threads=args.threads is None)
    if args.json:
        print(json.dumps({"rows": rows, "device": base.device}))
        return 0
    print(f"{'method':8} {'solver':6} {'steps':>5} {'s/iter':>10} {'memory':>12}")
    for r in rows:
        print(
            f"{r['method']:8} {r['inner_solver']:6} {r['inner_steps']:5d} {r['seconds_per_iteration']:10.4f} "
            f"{r['memory_bytes']:12d}"
        )
    return 0
