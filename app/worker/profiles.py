"""The worker's queue of profile measurements (memory and seconds vs inner steps, per method): one runs per
turn of the worker's loop, between meta-iterations, so a long profile never blocks a pause. Qt-free."""

from __future__ import annotations

from dataclasses import replace

from app.model.messages import ProfileProgress, ProfileRequest, one_line
from imaml_core.engine.profiling import profile_rows


class ProfileQueue:
    """Measurements waiting to run and the rows measured so far; true while any is waiting."""

    def __init__(self) -> None:
        self._jobs: list[tuple[ProfileRequest, str, int]] = []
        self._progress = ProfileProgress()

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def start(self, request: ProfileRequest) -> None:
        """Queue one measurement per (method, inner steps), replacing what was waiting."""
        self._jobs = [(request, m, s) for m in request.methods for s in request.inner_steps]
        self._progress = ProfileProgress(total=len(self._jobs))

    def clear(self) -> None:
        self._jobs.clear()

    def run_one(self) -> tuple[ProfileProgress, str]:
        """Measure the next one; returns the progress and "" or why it failed (e.g. out of memory for a long
        unroll: the rest still run)."""
        request, method, steps = self._jobs.pop(0)
        error = ""
        try:
            rows = profile_rows(request.base, [method], [steps], iterations=request.iterations)
        except Exception as exc:
            error, rows = f"{method} with {steps} inner steps: {one_line(exc)}", []
        progress = self._progress
        self._progress = replace(progress, rows=(*progress.rows, *rows), done=progress.done + 1)
        return self._progress, error
