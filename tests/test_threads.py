"""The CPU thread policy: one thread for small batched tensors, every core for large ones, with a far
higher bar where OpenMP's idle threads sleep (the window) than where they spin (a headless run)."""

from __future__ import annotations

import pytest
import torch

from imaml_core.engine.threads import (
    PARALLEL_WORK,
    PARALLEL_WORK_PASSIVE,
    available_cores,
    openmp_waits_passively,
    recommended_threads,
    use_threads_for,
)

CORES = available_cores()
P = 1761  # parameters of the default 1-40-40-1 net


@pytest.mark.parametrize(
    ("meta_batch", "passive", "expected"),
    [(25, False, 1), (50, False, 1), (100, False, CORES), (400, False, CORES), (400, True, 1), (3000, True, CORES)],
)
def test_threads_follow_the_size_of_a_batched_tensor(meta_batch, passive, expected):
    assert recommended_threads(meta_batch, P, passive=passive) == expected


def test_the_thresholds_sit_between_the_sizes_where_two_threads_tie_and_where_they_win():
    # spinning: 2 threads tie up to 88k elements (meta-batch 50) and win from 176k (100); sleeping: they
    # lose at 704k (meta-batch 400) and win or tie at 4.08M (100 tasks of a 200-200 net, 40,801 parameters each)
    assert 50 * P < PARALLEL_WORK <= 100 * P
    assert 400 * P < PARALLEL_WORK_PASSIVE <= 100 * 40_801


def test_the_wait_policy_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", " passive ")
    assert openmp_waits_passively()
    assert recommended_threads(400, P) == 1
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert not openmp_waits_passively()
    assert recommended_threads(400, P) == CORES


def test_gpu_runs_keep_torchs_setting():
    before = torch.get_num_threads()
    try:
        assert use_threads_for(400, P, torch.device("cuda")) == before
        assert use_threads_for(400, P, torch.device("cpu")) == recommended_threads(400, P)
    finally:
        torch.set_num_threads(before)
