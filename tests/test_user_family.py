"""A task family of the user's own, named ``package.module:name`` (the worked example in
docs/examples/gaussian_blobs.py): the `imaml` command trains, evaluates, lists, resumes and reloads it like a
built-in family, and a name that does not give a family ends in one `error:` line and exit 2."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from imaml_core import ExperimentConfig, MetaTrainer, load_checkpoint, load_model
from imaml_core.cli import main
from imaml_core.common.errors import ConfigError
from imaml_core.engine.model import MLP, model_for
from imaml_core.tasks import family_for

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
MODULE = "gaussian_blobs"
TASK = f"{MODULE}:blobs"
QUIET = ["--quiet", "--no-tensorboard", "--threads", "1"]  # one thread: no thread tuning beside other work
MACHINE_COLUMNS = ("seconds", "memory_bytes")  # metrics.csv columns that measure the machine, not the training


@pytest.fixture(scope="module", autouse=True)
def example_importable():
    """docs/examples on sys.path (as PYTHONPATH puts it for the command), and torch's thread count and the
    imported example gone again afterwards."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(EXAMPLES))
        yield
    sys.modules.pop(MODULE, None)
    torch.set_num_threads(threads)


def train(*args: str) -> None:
    assert main(["train", *args, *QUIET]) == 0


def metric_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k not in MACHINE_COLUMNS} for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder holding one 30-iteration run of the example, 3-way, with the family's suggested settings."""
    root = tmp_path_factory.mktemp("runs")
    train("--task", TASK, "--ways", "3", "--iterations", "30", "--save-every", "0", "--out", str(root / "blobs"))
    return root


# -- training -----------------------------------------------------------------------------------------------
def test_train_takes_the_family_defaults_and_validation_loss_falls_and_accuracy_rises(runs_root):
    run = runs_root / "blobs"
    config = ExperimentConfig.load(run / "config.toml")
    assert config.task == TASK and config.ways == 3
    # The family's `defaults` fill what the command line left out; an "accuracy" family draws Q = K queries.
    assert (config.inner_steps, config.hidden, config.shots, config.query) == (20, [32, 32], 5, 5)
    # θ at iteration 0 on the same fixed validation set (same seed: same initialisation, same tasks).
    loss_0, accuracy_0 = MetaTrainer(config).validation()
    last = metric_rows(run)[-1]
    assert last["iteration"] == "30"
    loss_30, accuracy_30 = float(last["val_loss"]), float(last["val_accuracy"])
    # Seen on this example: loss 0.77 -> 0.52 and accuracy 0.78 -> 0.83 over 1500 fixed validation points.
    # The margins leave room for other BLAS builds while still failing if meta-learning does nothing.
    assert loss_30 < 0.8 * loss_0, (loss_0, loss_30)
    assert accuracy_30 > accuracy_0 + 0.02, (accuracy_0, accuracy_30)


def test_eval_json_reports_the_family_loss_and_accuracy_after_adaptation(runs_root, capsys):
    ckpt = runs_root / "blobs" / "meta_params.safetensors"
    assert main(["eval", str(ckpt), "--tasks", "60", "--json", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == TASK and out["data"] == "Gaussian blobs" and out["loss_name"] == "cross-entropy"
    assert "mse" not in out  # the loss is not an MSE, so no key calls it one
    # An "accuracy" family is evaluated with the paper's 16 steps (up to 5 ways).
    assert out["steps"] == 16 and len(out["accuracy_per_step"]) == 17
    # Before adaptation a label means nothing (chance: 1/3); a few steps on the support set find the classes.
    assert out["accuracy_per_step"][0] < 0.5 < 0.7 < out["accuracy"] <= 1.0
    assert out["loss_per_step"][-1] < out["loss_per_step"][0]


def test_runs_list_shows_the_user_family_as_the_task(runs_root, capsys):
    assert main(["runs", "list", str(runs_root), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["task"] == TASK and row["iterations"] == 30 and 0.0 <= row["val_accuracy"] <= 1.0
    assert main(["runs", "list", str(runs_root)]) == 0
    table = capsys.readouterr().out
    assert "task" in table.splitlines()[0] and TASK in table


def test_load_model_rebuilds_an_mlp_that_classifies_the_family_points(runs_root):
    module = load_model(runs_root / "blobs" / "meta_params.safetensors")
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 32), (32, 32), (32, 3)]
    tasks = family_for(ExperimentConfig(task=TASK, ways=3)).sample(
        2, 5, 5, torch.Generator().manual_seed(0), torch.float32, torch.device("cpu")
    )
    with torch.no_grad():
        logits = module(tasks.x_support)  # (B, N*K, 2) -> (B, N*K, N)
    assert logits.shape == (2, 15, 3) and bool(torch.isfinite(logits).all())


def test_a_checkpoint_needs_its_family_importable_to_load_but_a_listing_does_not(runs_root, monkeypatch, capsys):
    ckpt = runs_root / "blobs" / "meta_params.safetensors"
    monkeypatch.delitem(sys.modules, MODULE)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(EXAMPLES)])
    with pytest.raises(ConfigError, match="cannot import the task family gaussian_blobs:blobs"):
        load_model(ckpt)
    assert main(["eval", str(ckpt), "--tasks", "5", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "ModuleNotFoundError" in err
    assert main(["runs", "list", str(runs_root), "--json"]) == 0  # listing reads the run's files only
    assert json.loads(capsys.readouterr().out)[0]["task"] == TASK


# -- exact resume -------------------------------------------------------------------------------------------
def test_resume_to_20_equals_20_straight_bitwise(tmp_path):
    common = ["--task", TASK, "--ways", "3", "--save-every", "0"]
    train(*common, "--iterations", "20", "--out", str(tmp_path / "straight"))
    train(*common, "--iterations", "10", "--out", str(tmp_path / "cut"))
    train("--resume", str(tmp_path / "cut"), "--iterations", "20")
    a = load_checkpoint(tmp_path / "cut" / "meta_params.safetensors")
    b = load_checkpoint(tmp_path / "straight" / "meta_params.safetensors")
    assert a.iteration == b.iteration == 20
    assert all(torch.equal(a.params[k], b.params[k]) for k in b.params)
    assert metric_rows(tmp_path / "cut") == metric_rows(tmp_path / "straight")  # validations included, bit for bit


# -- the family as code -------------------------------------------------------------------------------------
def test_a_family_object_loads_by_name_and_gets_the_mlp_of_its_input_shape():
    import gaussian_blobs

    tasks = family_for(ExperimentConfig(task=f"{MODULE}:three_way", ways=7))
    assert tasks is gaussian_blobs.three_way and tasks.name == f"{MODULE}:three_way"
    # An object is used as it is (3 ways); the factory builds from the config's ways.
    assert model_for(ExperimentConfig(), tasks).widths == (2, 40, 40, 3)
    built = family_for(ExperimentConfig(task=TASK, ways=7))
    assert built.name == TASK and isinstance(model_for(ExperimentConfig(), built), MLP) and built.n_outputs == 7


def test_the_example_draws_only_from_its_generator_and_its_truth_is_the_nearest_centre():
    tasks = family_for(ExperimentConfig(task=TASK, ways=4))
    global_state = torch.random.get_rng_state()

    def draw():
        return tasks.sample(3, 2, 4, torch.Generator().manual_seed(5), torch.float64, torch.device("cpu"), "test")

    a, b = draw(), draw()
    assert torch.equal(torch.random.get_rng_state(), global_state)  # the global generator never moves
    for name in ("x_support", "y_support", "x_query", "y_query", "centres"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.x_support.shape == (3, 8, 2) and a.y_query.shape == (3, 16) and a.y_query.dtype == torch.int64
    assert len(a) == 3 and len(a.slice(1, 3)) == 2
    preview = tasks.preview_task(2, torch.Generator().manual_seed(0))
    centres = torch.tensor(preview.params).reshape(4, 2).numpy()
    assert tasks.truth(preview.params, centres).tolist() == [0.0, 1.0, 2.0, 3.0]


# -- a name that does not give a family -------------------------------------------------------------------
USER_CODE = """
import dataclasses
import types


def broken(config):
    raise ValueError("this family needs 3 ways")


def gives_a_class(config):
    return dict


class NoMetric:
    loss_name = "cross-entropy"
    metric_name = "accuracy"
    input_shape = (2,)
    n_outputs = 3

    def sample(self, n, shots, query, generator, dtype, device, split="train"): ...

    def loss_per_task(self, prediction, target): ...

    def preview_task(self, shots, generator): ...


@dataclasses.dataclass(frozen=True)
class Frozen(NoMetric):
    name: str = "a name of its own"  # frozen: the registry cannot rename it
    metric_name: None = None


not_a_family = 42
half = types.SimpleNamespace(sample=None, input_shape=(2,))
no_metric = NoMetric()
frozen = Frozen()
"""


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Modules of a user's own in ``tmp_path`` (one that works badly, one that fails to import), importable
    during the test and forgotten afterwards."""
    (tmp_path / "userfam_cases.py").write_text(textwrap.dedent(USER_CODE))
    (tmp_path / "userfam_broken.py").write_text('raise RuntimeError("no data folder here")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("userfam_cases", "userfam_broken"):
        sys.modules.pop(name, None)


def test_a_family_that_cannot_take_the_registry_name_keeps_its_own(user_modules):
    tasks = family_for(ExperimentConfig(task="userfam_cases:frozen"))
    assert type(tasks).__name__ == "Frozen" and tasks.name == "a name of its own"


@pytest.mark.parametrize(
    ("task", "says"),
    [
        ("userfam_nowhere:family", "cannot import the task family userfam_nowhere:family: ModuleNotFoundError"),
        ("userfam_broken:family", "cannot import the task family userfam_broken:family: RuntimeError: no data"),
        ("gaussian_blobs:nothing", "the module gaussian_blobs has no task family 'nothing'"),
        ("userfam_cases:not_a_family", "userfam_cases:not_a_family is not a task family (it lacks loss_per_task,"),
        ("userfam_cases:half", "is not a task family (it lacks loss_per_task, loss_name, preview_task, n_outputs)"),
        ("userfam_cases:broken", "failed to build: ValueError: this family needs 3 ways"),
        ("userfam_cases:gives_a_class", "gives the class dict, not a task family made from it"),
        ("userfam_cases:no_metric", "names a metric ('accuracy') but lacks metric_per_task"),
        ("no_colon_here", "task must be one of sinusoid, omniglot, glyphs or package.module:name"),
    ],
)
def test_a_name_that_gives_no_family_is_one_error_line_and_exit_2(task, says, user_modules, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", task, "--out", str(out), "--iterations", "1", *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert says in err, err
    assert not out.exists()  # refused before the run folder is made
