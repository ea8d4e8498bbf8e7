"""CPU threads: the size rule (one thread for small batched tensors, every core for large ones, a far higher
bar where OpenMP's idle threads sleep) and the tuner that measures instead (ThreadTuner)."""

from __future__ import annotations

import pytest
import torch

from imaml_core.engine.threads import (
    PARALLEL_WORK,
    PARALLEL_WORK_PASSIVE,
    ThreadTuner,
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


class _FakeMachine:
    """Step times by thread count, as a busy or idle machine would give them; records what was applied."""

    def __init__(self, seconds: dict[int, float]) -> None:
        self.seconds = seconds
        self.applied: list[int] = []

    def step(self, tuner: ThreadTuner) -> int:
        n = tuner.apply()
        tuner.observe(self.seconds[n])
        return n


def test_the_tuner_keeps_the_faster_count_it_measured():
    machine = _FakeMachine({1: 0.010, 2: 4.68})  # beside a busy two-threaded process: two spinning threads collapse
    tuner = ThreadTuner((1, 2), trial_steps=3, set_threads=machine.applied.append)
    used = [machine.step(tuner) for _ in range(12)]
    assert used[:8] == [1] * 4 + [2] * 4  # one untimed and three timed steps of each
    assert tuner.chosen == 1 and set(used[8:]) == {1} and tuner.measured == {1: 0.010, 2: 4.68}
    assert machine.applied == [1, 2, 1]  # torch's count is set only when it changes


def test_the_tuner_prefers_fewer_threads_when_more_are_barely_faster():
    machine = _FakeMachine({1: 0.0100, 2: 0.0098})  # within PREFER_FEWER: a free core is worth more
    tuner = ThreadTuner((1, 2), trial_steps=2, set_threads=machine.applied.append)
    for _ in range(6):
        machine.step(tuner)
    assert tuner.chosen == 1
    machine = _FakeMachine({1: 0.0100, 2: 0.0060})  # idle, a large meta-batch: both cores pay
    tuner = ThreadTuner((1, 2), trial_steps=2, set_threads=machine.applied.append)
    for _ in range(6):
        machine.step(tuner)
    assert tuner.chosen == 2


def test_the_tuner_measures_again_when_the_machine_changes():
    machine = _FakeMachine({1: 0.010, 2: 0.006})
    tuner = ThreadTuner((1, 2), trial_steps=2, window=5, set_threads=machine.applied.append)
    for _ in range(6):
        machine.step(tuner)
    assert tuner.chosen == 2 and tuner.measurements == 1
    machine.seconds = {1: 0.011, 2: 0.300}  # another process takes the second core
    for _ in range(5):
        machine.step(tuner)  # the drift window fills with slow steps
    assert tuner.chosen is None  # measuring again
    for _ in range(6):
        machine.step(tuner)
    assert tuner.chosen == 1 and tuner.measurements == 2


def test_one_candidate_is_chosen_without_measuring():
    tuner = ThreadTuner((1,), set_threads=lambda n: None)
    assert tuner.chosen == 1 and tuner.apply() == 1
