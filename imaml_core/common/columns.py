"""The metrics CSV's columns, one row per meta-iteration: written by report.py, read by runs/_history.py.

Only names, no imports: the history reader's process loads this without PyTorch.
"""

CSV_FIELDS = (  # in file order
    "iteration",
    "method",
    "meta_loss",
    "pre_loss",
    "val_loss",
    "cg_residual",
    "cg_iterations",
    "cg_nonpositive",
    "stationarity",
    "memory_bytes",
    "seconds",
    "diverged",
    "lam",
    "cg_steps",
    "inner_steps",
    "inner_lr",
    "meta_lr",
    "meta_batch",
)
TEXT_COLUMNS = ("method",)  # the columns that hold text; the others are numbers
