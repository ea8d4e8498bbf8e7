"""The editable settings, as data: which control edits each ``ExperimentConfig`` field, its label and range.

Qt-free, so the run state (markers name fields by their labels) and the control panel share one table.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.model.tasks import TASK_CHOICES, classifies
from imaml_core.common.config import ExperimentConfig


@dataclass(frozen=True)
class Spec:
    """How one config field is edited: ``kind`` is log, ilog (integer log), int (linear), combo, check, spin
    (a whole number typed), list, path. ``lo``/``hi`` are a slider's handle range only: what a field accepts
    is the config's range (``ExperimentConfig.allowed``), and a typed value beyond the handle is kept."""

    name: str
    label: str
    kind: str
    lo: float = 0
    hi: float = 1
    choices: tuple[tuple[str, str], ...] = ()  # (shown text, config value)


GROUPS: tuple[tuple[str, tuple[Spec, ...]], ...] = (
    (
        "Meta-gradient",
        (
            Spec(
                "method",
                "method",
                "combo",
                choices=(("iMAML", "imaml"), ("MAML", "maml"), ("FOMAML", "fomaml"), ("Reptile", "reptile")),
            ),
            Spec("lam", "λ", "log", 0.01, 100.0),
            Spec(
                "lam_shape",
                "λ shape",
                "combo",
                choices=(("scalar", "scalar"), ("per layer", "layer"), ("per parameter", "parameter")),
            ),
            Spec("learn_lam", "learn λ", "check"),
            Spec("lam_lr", "λ step size", "log", 1e-4, 1.0),
            Spec("cg_steps", "CG iterations", "int", 0, 50),
            Spec("cg_tol", "CG tolerance", "log", 1e-8, 0.5),
        ),
    ),
    (
        "Inner loop",
        (
            Spec("inner_solver", "inner solver", "combo", choices=(("GD", "gd"), ("HF (Newton-CG)", "hf"))),
            Spec("inner_steps", "inner steps", "ilog", 1, 200),
            Spec("inner_lr", "inner step size", "log", 1e-4, 1.0),
        ),
    ),
    (
        "Outer loop",
        (
            Spec("meta_lr", "meta step size", "log", 1e-5, 0.1),
            Spec("meta_batch", "meta-batch", "ilog", 1, 256),
        ),
    ),
    (
        "Tasks and run",
        (
            Spec("task", "task family", "combo", choices=TASK_CHOICES),
            Spec("data", "Omniglot folder", "path"),
            Spec("ways", "ways (N)", "int", 2, 50),
            Spec("shots", "shots (K)", "int", 1, 50),
            Spec("query", "queries", "int", 1, 100),
            Spec("seed", "seed", "spin", 0, 2**31 - 1),
            Spec("device", "device", "combo", choices=(("CPU", "cpu"), ("CUDA", "cuda"), ("auto", "auto"))),
        ),
    ),
)
ADVANCED: tuple[Spec, ...] = (
    Spec("hf_cg_steps", "HF CG per step", "int", 1, 50),
    Spec("inner_safeguard", "GD safeguard", "check"),
    Spec("analytic_grads", "analytic grads", "check"),
    Spec("val_every", "validate every", "spin", 0, 100000),
    Spec("val_tasks", "validation tasks", "spin", 1, 100000),
    Spec("hidden", "hidden widths", "list"),
    Spec("filters", "conv filters", "ilog", 1, 256),
    Spec("glyph_classes", "glyph classes", "spin", 10, 100000),
    Spec("dtype", "dtype", "combo", choices=(("float32", "float32"), ("float64", "float64"))),
)
OBJECT_PREFIX = {
    "log": "slider",
    "ilog": "slider",
    "int": "slider",
    "combo": "combo",
    "check": "check",
    "spin": "spin",
    "list": "edit",
    "path": "edit",
}


def relevant(config: ExperimentConfig, name: str) -> bool:
    """Whether ``name`` affects a run of ``config`` (unused settings are shown dimmed, still editable)."""
    imaml = config.method == "imaml"
    if name in ("lam", "lam_shape", "learn_lam", "cg_steps", "cg_tol", "inner_solver"):
        return imaml
    if name == "lam_lr":
        return imaml and config.learn_lam
    if name == "hf_cg_steps":
        return imaml and config.inner_solver == "hf"
    if name == "inner_safeguard":
        return imaml and config.inner_solver == "gd"
    if name == "inner_lr":
        return not (imaml and config.inner_solver == "hf")
    if name in ("ways", "filters"):
        return classifies(config)
    if name == "data":
        return config.task == "omniglot"
    if name == "glyph_classes":
        return config.task == "glyphs"
    if name == "hidden":
        return not classifies(config)
    return True


LABELS = {spec.name: spec.label for _title, specs in GROUPS for spec in specs} | {s.name: s.label for s in ADVANCED}
METHOD_NAMES = {value: text for spec in GROUPS[0][1] if spec.name == "method" for text, value in spec.choices}
