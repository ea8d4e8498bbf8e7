"""Every reader of a run's or a sweep's files, fed random bytes, random JSON/TOML trees and mutations of a
valid file: the answer is a value, an "unreadable" row or one line of error, never a traceback, never a
hang, and no file changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imaml_core import CheckpointError, ImamlError, load_checkpoint
from imaml_core.cli import main
from imaml_core.experiments.runs import Run, RunError, RunStore
from imaml_core.experiments.sweep import read_sweep

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MEMBERS = ("run.json", "config.toml", "metrics.csv", "meta_params.safetensors", "resume.safetensors")

json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
toml_trees = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.recursive(
        st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20) | st.floats(allow_nan=False),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), c, max_size=3),
        max_leaves=10,
    ),
    max_size=6,
)


def _mutate(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    """Flip, drop or duplicate bytes of ``data`` at the given positions."""
    out = bytearray(data)
    for at, how in cuts:
        if not out:
            break
        i = at % len(out)
        if how % 3 == 0:
            out[i] ^= 0xFF
        elif how % 3 == 1:
            del out[i : i + 1 + how % 17]
        else:
            out[i:i] = out[i : i + 1 + how % 17]
    return bytes(out)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "run"
    args = ["--meta-batch", "2", "--inner-steps", "2", "--iterations", "3", "--save-every", "0", "--quiet"]
    assert main(["train", *args, "--no-tensorboard", "--learn-lam", "--out", str(folder)]) == 0
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_everything(root: Path, run: Path) -> None:
    """Everything a user or the window does to read a runs folder: list it, show the run, open it to
    continue, read its history, its θ. Each may refuse, in one line; none may raise anything else."""
    rows = RunStore(root).list()
    assert len(rows) == 2 and any(r.readable for r in rows)  # the good run always lists
    for row in rows:
        assert row.readable or (row.reason and "\n" not in row.reason)
    try:
        opened = Run.open(run, tensorboard=False)
        opened.metrics()
        opened.trainer()
    except RunError as exc:
        assert "\n" not in str(exc)
    try:
        load_checkpoint(run / "meta_params.safetensors")
    except CheckpointError as exc:
        assert "\n" not in str(exc)


def _check(tmp_path: Path, template: Path, member: str, content: bytes) -> None:
    root = tmp_path / "runs"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root / "good")
    shutil.copytree(template, root / "bad")
    (root / "bad" / member).write_bytes(content)
    before = _files(root)
    _read_everything(root, root / "bad")
    assert _files(root) == before


@FUZZ
@given(member=st.sampled_from(MEMBERS), content=st.binary(max_size=400))
def test_random_bytes_in_any_member(tmp_path, template, member, content):
    _check(tmp_path, template, member, content)


@FUZZ
@given(member=st.sampled_from(MEMBERS), cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 99)), max_size=4))
def test_mutations_of_a_valid_member(tmp_path, template, member, cuts):
    _check(tmp_path, template, member, _mutate((template / member).read_bytes(), cuts))


@FUZZ
@given(tree=json_trees, keep=st.booleans())
def test_random_json_trees_as_run_json(tmp_path, template, tree, keep):
    if keep and isinstance(tree, dict):  # a tree that passes the format check, to reach the field checks
        tree = {**tree, "format": "imaml-studio-run", "format_version": 1}
    _check(tmp_path, template, "run.json", json.dumps(tree).encode())


@FUZZ
@given(tree=toml_trees)
def test_random_toml_trees_as_config_toml(tmp_path, template, tree):
    _check(tmp_path, template, "config.toml", tomli_w.dumps(tree).encode())


@FUZZ
@given(tree=json_trees, field=st.sampled_from(["settings", "space", "base", "trials", "status", None]))
def test_random_json_in_sweep_json_is_one_line(tmp_path, tree, field):
    folder = tmp_path / "sweep"
    folder.mkdir(exist_ok=True)
    valid = {
        "format": "imaml-studio-sweep",
        "format_version": 1,
        "settings": {},
        "space": [],
        "base": {},
        "trials": [],
        "status": "finished",
    }
    record = {**valid, field: tree} if field else tree
    (folder / "sweep.json").write_text(json.dumps(record))
    try:
        summary = read_sweep(folder)
    except ImamlError as exc:
        assert "\n" not in str(exc)
    else:
        [t.row() for t in summary.trials]  # what printing the summary reads
