"""Checking ``--address`` before Ray is asked to join it.

Ray retries an address where nothing answers for a long time (minutes), printing a warning a second. A
plain TCP connection with a short timeout tells at once whether anything listens there, so a mistyped
address or a cluster that is down is one line ``error: ...`` within seconds, before Ray is even imported.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from imaml_core.experiments.sweep._space import SweepError

CONNECT_TIMEOUT_S = 5.0
# Ray reads this once, when it is imported: "0" makes it take 127.0.0.1 as this machine's address, as it
# does on Windows and macOS, instead of the address other machines reach it by.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def probe_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A one-line :class:`SweepError` when nothing accepts a connection at ``address`` (HOST:PORT, or
    ray://HOST:PORT for Ray Client). ``auto`` (the cluster this machine belongs to) is left to Ray."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SweepError(f"--address {address!r}: expected HOST:PORT (e.g. 192.168.1.10:6379)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise SweepError(f"cannot reach a Ray cluster at {address}: {reason}") from None


def is_loopback(address: str) -> bool:
    """Whether ``address`` (HOST:PORT) names this machine's loopback interface."""
    host = address.split("://", 1)[-1].rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keep_ray_on_loopback(address: str | None) -> None:
    """Before Ray is imported: a sweep that starts Ray itself, or joins a cluster on loopback addresses,
    keeps Ray on 127.0.0.1 (Ray would otherwise offer, and ask the cluster for, this machine's network
    address, where a loopback cluster does not listen)."""
    if address is None or is_loopback(address):
        os.environ.setdefault(LOOPBACK_ENV, "0")
