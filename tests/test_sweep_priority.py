"""A local sweep's trials run at the sweep's own priority: Ray nices its workers to 15 by default, and
niced trials all but stop beside any busy process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imaml_core.experiments.sweep import sweep_available

pytestmark = pytest.mark.skipif(not sweep_available(), reason='needs the sweep extra: pip install ".[sweep]"')

PROBE = """
import os, ray
from imaml_core.experiments.sweep._ray import ray_session
with ray_session(None, 1):
    niceness = ray.remote(lambda: os.nice(0))
    print(os.nice(0), ray.get(niceness.remote()))
"""


def test_a_local_sweeps_workers_run_at_the_drivers_niceness():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    driver, worker = done.stdout.split()[-2:]
    assert worker == driver  # not Ray's default of the driver's + 15
