"""Seed groups: runs that differ only by seed are summarised as a mean with a Student-t 95% interval, in
the run store's statistics and in ``imaml runs list --group-seeds``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from imaml_core.cli import main
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.stats import mean_ci95, t_quantile
from imaml_core.experiments.runs import RunStore, seed_band, seed_groups, seed_interval

T_975_2 = 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))  # t(0.975, 2) in closed form: (2p-1)·√(2 / (4p(1-p)))
# The statistics are a few float64 operations on three numbers, and t is solved by bisection to the last
# bit: they agree with the hand computation to rounding, far inside 1e-12.
EXACT = 1e-12


def make_run(store: RunStore, config: ExperimentConfig, name: str, finals: list[float], accuracy: bool = False) -> str:
    """A run folder whose metrics.csv holds ``finals`` as its validation losses, one row per iteration (no
    training: the values are what the test chooses)."""
    with store.create(config, name=name, tensorboard=False) as run:
        run_id = run.info.id
    header = "iteration,meta_loss,val_loss" + (",val_accuracy" if accuracy else "")
    lines = [header]
    for i, value in enumerate(finals, start=1):
        lines.append(f"{i},{2.0 / i!r},{value!r}" + (f",{value / 10!r}" if accuracy else ""))
    (run.path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run_id


@pytest.fixture
def three_seeds(tmp_path) -> tuple[Path, list[str]]:
    """Three seeds of one setting (final validation losses 1, 2 and 4), a fourth run that changes seed and
    λ, and a classification run with the same seed as one of them."""
    store = RunStore(tmp_path)
    base = ExperimentConfig(hidden=[8], meta_batch=2)
    ids = [make_run(store, base.replace(seed=s), "imaml λ=20", [9.0, v]) for s, v in ((0, 1.0), (1, 2.0), (2, 4.0))]
    make_run(store, base.replace(seed=3, lam=2.0), "imaml λ=2", [5.0, 5.0])
    make_run(store, base.replace(seed=0, task="glyphs"), "glyphs", [5.0, 3.0], accuracy=True)
    return tmp_path, ids


def test_t_quantile_is_exact_for_one_and_two_degrees_of_freedom():
    # df 1 is the Cauchy distribution (tan π(p - 1/2)); df 2 has the closed form above
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=EXACT)
    assert t_quantile(0.975, 2) == pytest.approx(T_975_2, rel=EXACT)
    # many degrees of freedom: the normal quantile plus its first Cornish-Fisher term; the next term is
    # about 3e-8 at df 10^4, hence the tolerance
    z, df = 1.959963984540054, 10_000
    assert t_quantile(0.975, df) == pytest.approx(z + (z**3 + z) / (4 * df), abs=1e-7)


def test_mean_and_interval_of_three_values_match_the_hand_computation():
    values = [1.0, 2.0, 4.0]
    mean = 7 / 3
    s = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    got = seed_interval(values)
    assert got.n == 3
    assert got.mean == pytest.approx(mean, rel=EXACT)
    assert got.ci95 == pytest.approx(T_975_2 * s / math.sqrt(3), rel=EXACT)
    assert seed_interval([5.0]).ci95 is None and seed_interval([5.0]).mean == 5.0  # one seed: no spread to estimate
    # evaluation's interval is the same t interval (as a pair, NaN without spread)
    assert mean_ci95(values) == pytest.approx((mean, T_975_2 * s / math.sqrt(3)), rel=EXACT)
    assert math.isnan(mean_ci95([5.0])[1])


def test_the_band_aligns_by_iteration_and_ends_with_the_shortest_run():
    a = (np.array([1, 2, 3, 4]), np.array([1.0, 2.0, 3.0, 4.0]))
    b = (np.array([1, 2, 3]), np.array([3.0, np.nan, 5.0]))  # NaN: no value at iteration 2 (a validation column)
    x, mean, half = seed_band([a, b])
    assert x.tolist() == [1, 2, 3]
    assert mean.tolist() == [2.0, 2.0, 4.0]  # iteration 2 uses the one run that has a value
    assert math.isnan(half[1])  # one value: no interval
    s = math.sqrt(2.0)  # sample standard deviation of (1, 3) and of (3, 5)
    expected = 12.706204736174696 * s / math.sqrt(2)  # t(0.975, 1) = tan(0.475 π)
    assert half[0] == pytest.approx(expected, rel=EXACT) and half[2] == pytest.approx(expected, rel=EXACT)


def test_runs_that_differ_only_by_seed_group_and_others_do_not(three_seeds):
    root, ids = three_seeds
    groups = seed_groups(RunStore(root).list())
    by_size = sorted(groups, key=lambda g: -g.n)
    assert set(by_size[0].ids) == set(ids) and sorted(by_size[0].seeds) == [0, 1, 2]
    assert [g.n for g in by_size] == [3, 1, 1]  # seed and λ differ: alone; another family: alone
    assert {g.config.task for g in groups} == {"sinusoid", "glyphs"}
    final = by_size[0].final("val_loss")
    assert final.mean == pytest.approx(7 / 3, rel=EXACT) and final.n == 3


def test_a_repeat_of_a_seed_is_not_a_new_sample_and_each_group_reads_by_seed(three_seeds):
    """A rerun of seed 1 (or a fork that changes nothing) would make the interval falsely tight: it stays
    out of the group. The group lists its runs by seed, whatever order the folder lists them in."""
    root, ids = three_seeds
    store = RunStore(root)
    rerun = make_run(store, ExperimentConfig(hidden=[8], meta_batch=2, seed=1), "imaml λ=20 again", [9.0, 2.0])
    for listing in (store.list(), list(reversed(store.list()))):
        groups = seed_groups(listing)
        (three,) = [g for g in groups if g.n == 3]
        assert three.seeds == (0, 1, 2) and three.ids[0] == ids[0] and three.ids[2] == ids[2]
        (seed_one,) = {ids[1], rerun} - set(three.ids)  # one run of seed 1 in the group, the other alone
        assert [g.ids for g in groups if seed_one in g.ids] == [(seed_one,)]


def test_the_band_takes_each_runs_iterations_in_any_order_once():
    a = (np.array([3, 1, 2, 1]), np.array([3.0, 0.0, 2.0, 1.0]))  # iteration 1 twice: its last value counts
    b = (np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0]))
    x, mean, _half = seed_band([a, b])
    assert x.tolist() == [1, 2, 3] and mean.tolist() == [1.0, 2.0, 3.0]


def test_runs_list_group_seeds_prints_one_row_per_group(three_seeds, capsys):
    root, _ = three_seeds
    (root / "broken").mkdir()
    (root / "broken" / "run.json").write_text("{")
    assert main(["runs", "list", str(root), "--group-seeds"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["name", "task", "method", "λ", "seeds", "n"]
    (group,) = [line for line in lines if line.startswith("imaml λ=20 ")]
    assert sorted(group.split()[5].split(",")) == ["0", "1", "2"] and "2.333 ± 3.8" in group  # t(0.975, 2)·s/√3 = 3.79…
    assert any("imaml λ=2 " in line and "± —" in line for line in lines)  # a group of one: no interval
    assert any(line.startswith("broken") and line.rstrip().endswith("unreadable") for line in lines)
    assert "warning: unreadable" in err


def test_runs_list_group_seeds_json_has_the_documented_keys(three_seeds, capsys):
    root, ids = three_seeds
    assert main(["runs", "list", str(root), "--group-seeds", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 3
    for entry in data:
        assert {
            "runs",
            "seeds",
            "n",
            "val_loss_mean",
            "val_loss_ci95",
            "val_accuracy_mean",
            "val_accuracy_ci95",
        } <= set(entry)
    (group,) = [e for e in data if e["n"] == 3]
    assert set(group["runs"]) == set(ids) and sorted(group["seeds"]) == [0, 1, 2]
    s = math.sqrt(7 / 3)  # the sample variance of (1, 2, 4) is 7/3
    assert group["val_loss_mean"] == pytest.approx(7 / 3, rel=EXACT)
    assert group["val_loss_ci95"] == pytest.approx(T_975_2 * s / math.sqrt(3), rel=EXACT)
    assert group["val_accuracy_mean"] is None  # regression runs have no accuracy
    (glyphs,) = [e for e in data if e["task"] == "glyphs"]
    assert glyphs["val_accuracy_mean"] == pytest.approx(0.3, rel=EXACT) and glyphs["val_accuracy_ci95"] is None


def test_a_cache_of_settings_is_reused_until_a_runs_config_changes(three_seeds):
    root, ids = three_seeds
    store = RunStore(root)
    cache: dict = {}
    first = seed_groups(store.list(), cache)
    assert len(cache) == 5 and [g.n for g in first] == [g.n for g in seed_groups(store.list(), cache)]
    run = next(r for r in store.list() if r.id == ids[0])
    ExperimentConfig.load(Path(run.path) / "config.toml").replace(lam=3.0).save(Path(run.path) / "config.toml")
    groups = seed_groups(store.list(), cache)
    assert sorted(g.n for g in groups) == [1, 1, 1, 2]  # the run with another λ left its group
