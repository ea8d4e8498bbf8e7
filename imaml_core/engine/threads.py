"""CPU threads for the engine: chosen by measuring (``ThreadTuner``), with a size rule as the first guess.

``ThreadTuner`` tries one thread and every core for a few meta-iterations each, keeps the faster, and
measures again when the step time drifts (another process starting or stopping, a new meta-batch). Beside
other work the right answer changes by orders of magnitude (two spinning OpenMP threads beside a busy
two-threaded process take hundreds of times longer than one), which no table of sizes can know.

The size rule below is what the window applies before it trains, and the tuner's answer when there is
only one core to choose from.

A small regression meta-iteration is thousands of small operations: spread over several threads, a small one costs
more in synchronisation than it saves, a large one (a big batched matmul, a (B, P) update) runs nearly
twice as fast on two cores. Where the crossover lies depends on how OpenMP's idle threads wait
(``python -m bench.threads`` measures both; bench/RESULTS.md holds the table):

- Spinning (OpenMP's default, a headless run): two threads tie with one up to meta-batch 50 of the default
  net (88k elements in a (B, P) tensor) and win from 100 (176k). So both cores from ``PARALLEL_WORK``
  elements, a bar inside that gap; one thread below, where the gain is within noise and a core stays free
  for other work.
- Sleeping (``OMP_WAIT_POLICY=PASSIVE``, which the window sets so that the GUI thread wins the CPU): every
  parallel region first wakes its threads, so two threads lose clearly at small sizes and win or tie only
  from about 4M elements. So one thread up to ``PARALLEL_WORK_PASSIVE`` (with the default net: every meta-batch
  the window's slider offers), and both cores above.

The CLI and the window call ``use_threads_for`` before training (``--threads`` overrides it); library users
keep full control of torch's setting.
"""

from __future__ import annotations

import os
import statistics
from collections import deque
from collections.abc import Callable, Sequence

import torch

PARALLEL_WORK = 150_000  # elements in a (meta-batch, parameters) tensor from which spinning threads pay
PARALLEL_WORK_PASSIVE = 4_000_000  # the same where OpenMP's threads sleep between regions


def openmp_waits_passively() -> bool:
    """Whether this process asks OpenMP to put idle threads to sleep. OpenMP reads the variable once, when
    torch loads; the window sets it before that (``app/__init__.py``), so reading it now gives the same
    answer unless someone changed it after importing torch."""
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def recommended_threads(meta_batch: int, n_params: int, passive: bool | None = None) -> int:
    """One thread for small batched tensors, every available core for large ones. ``passive``: whether
    OpenMP's idle threads sleep (default: as this process asked, ``openmp_waits_passively``)."""
    if passive is None:
        passive = openmp_waits_passively()
    if meta_batch * n_params < (PARALLEL_WORK_PASSIVE if passive else PARALLEL_WORK):
        return 1
    return available_cores()


def use_threads_for(meta_batch: int, n_params: int, device: torch.device) -> int:
    """Apply the recommendation on CPU (GPU runs keep torch's default); returns the thread count in use."""
    if device.type == "cpu":
        torch.set_num_threads(recommended_threads(meta_batch, n_params))
    return torch.get_num_threads()


TRIAL_STEPS = 3  # timed meta-iterations per candidate, after one untimed one that settles the thread pool
DRIFT = 0.5  # a step time this far (as a ratio) from the one measured means the machine changed: measure again
DRIFT_WINDOW = 15  # steps whose median is compared with the measured time
PREFER_FEWER = 0.03  # more threads must be this much faster to be kept (a core left free helps other work)


class ThreadTuner:
    """Chooses the CPU thread count by measuring the steps it is told about.

    Call :meth:`apply` before each meta-iteration (it sets torch's thread count) and :meth:`observe` with
    the step's seconds after it. ``set_threads`` is what applies a count (tests pass a recorder)."""

    def __init__(
        self,
        candidates: Sequence[int] | None = None,
        trial_steps: int = TRIAL_STEPS,
        drift: float = DRIFT,
        window: int = DRIFT_WINDOW,
        set_threads: Callable[[int], None] = torch.set_num_threads,
    ) -> None:
        self.candidates = tuple(sorted(set(candidates or (1, available_cores()))))
        if not self.candidates or self.candidates[0] < 1:
            raise ValueError(f"thread counts must be >= 1, got {candidates}")
        self.trial_steps = trial_steps
        self.drift = drift
        self._set = set_threads
        self._recent: deque[float] = deque(maxlen=window)
        self.chosen: int | None = None if len(self.candidates) > 1 else self.candidates[0]
        self.measured: dict[int, float] = {}  # median seconds per candidate, from the last measurement
        self.baseline = 0.0  # the chosen count's measured step time
        self.measurements = 0  # how many times the candidates were measured
        self._trying = 0  # index of the candidate being measured
        self._samples: list[float] = []
        self._applied: int | None = None

    @property
    def threads(self) -> int:
        """The count the next step runs with."""
        return self.chosen if self.chosen is not None else self.candidates[self._trying]

    def apply(self) -> int:
        """Set torch's thread count for the next step (only when it changes); returns it."""
        n = self.threads
        if n != self._applied:
            self._set(n)
            self._applied = n
        return n

    def observe(self, seconds: float) -> None:
        """The seconds of the step just run with :attr:`threads`."""
        if self.chosen is None:
            self._measure(seconds)
            return
        if len(self.candidates) == 1:
            return
        self._recent.append(seconds)
        if len(self._recent) == self._recent.maxlen:
            now = statistics.median(self._recent)
            if not self.baseline / (1 + self.drift) <= now <= self.baseline * (1 + self.drift):
                self._restart()

    def _measure(self, seconds: float) -> None:
        self._samples.append(seconds)
        if len(self._samples) <= self.trial_steps:  # the first sample after a switch is not kept
            return
        self.measured[self.candidates[self._trying]] = statistics.median(self._samples[1:])
        self._samples = []
        self._trying += 1
        if self._trying < len(self.candidates):
            return
        best = min(self.measured, key=self.measured.__getitem__)
        fewest = min(self.measured)
        if self.measured[fewest] <= self.measured[best] * (1 + PREFER_FEWER):
            best = fewest
        self.chosen, self.baseline = best, self.measured[best]
        self.measurements += 1
        self._recent.clear()

    def _restart(self) -> None:
        self.chosen, self._trying, self._samples = None, 0, []
        self._recent.clear()
