"""Shared test setup. GUI tests run offscreen; OpenMP waits passively (see app/__init__.py for why)."""

import os

# Both must be set before Qt or torch is first loaded, i.e. before any test module is imported.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
