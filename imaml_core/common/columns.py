"""The metrics CSV's columns, one row per meta-iteration: written by report.py, read by runs/_history.py.

Only names, no imports: the history reader's process loads this without PyTorch.
"""

REPORT_COLUMNS = (  # what a StepReport measures, one number per meta-iteration, in file order
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
    "val_accuracy",
)
CONFIG_COLUMNS = ("lam", "cg_steps", "inner_steps", "inner_lr", "meta_lr", "meta_batch")  # the live settings used
CSV_FIELDS = ("iteration", "method", *REPORT_COLUMNS, *CONFIG_COLUMNS)  # metrics.csv's columns, in file order
TEXT_COLUMNS = ("method",)  # the columns that hold text; the others are numbers
