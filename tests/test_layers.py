"""The layers of docs/ARCHITECTURE.md hold: import-linter's contracts (layers, private modules, no cycles,
Qt-free and torch-free packages) are kept, and the listing commands really run without PyTorch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.experiments.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (the dev extra)")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def _run_without_torch(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints JSON, and we learn whether torch was imported."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps({{'torch': 'torch' in sys.modules}}))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    config = ExperimentConfig(hidden=[8], meta_batch=2, val_tasks=2)
    ids = []
    for _ in range(2):
        trainer = MetaTrainer(config)
        with store.create(config, tensorboard=False) as run:
            trainer.step()
            run.save_checkpoint(trainer)
            ids.append(run.id)
    return root, ids


@pytest.mark.parametrize("command", ["list", "show", "diff"])
def test_imaml_runs_commands_run_without_torch(runs_folder, command):
    root, ids = runs_folder
    args = {
        "list": ["list", str(root)],
        "show": ["show", str(root / ids[0])],
        "diff": ["diff", *(str(root / i) for i in ids)],
    }[command]
    code = (
        "import contextlib, io\nfrom imaml_core.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    rc = main({['runs', *args]!r})\nassert rc == 0, rc"
    )
    assert _run_without_torch(code) == {"torch": False}


def test_the_history_reader_and_the_run_store_load_without_torch(runs_folder):
    root, _ = runs_folder
    code = (
        "from imaml_core.experiments.runs import HistoryReader, RunStore\n"
        f"rows = RunStore({str(root)!r}).list()\nassert len(rows) == 2\n"
        f"with HistoryReader() as reader:\n    reader.read(rows[0].path, max_points=5).result(timeout=120)"
    )
    assert _run_without_torch(code) == {"torch": False}
