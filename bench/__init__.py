"""Benchmarks of iMAML Studio's engine: the paper's Figure 2, batching, and learning per second.

Run everything with ``python -m bench`` (or one script with ``python -m bench.<name>``); ``--quick`` runs
tiny sizes in seconds. Results go to ``bench/results/`` and ``bench/RESULTS.md``.
"""
