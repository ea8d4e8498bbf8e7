"""What every ``imaml`` command shares: the usage error, the parser that raises it, and argument checks."""

from __future__ import annotations

import argparse
from typing import NoReturn

from imaml_core.common.errors import ImamlError

EXIT_USAGE = 2


class UsageError(ImamlError):
    """Bad command-line input."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def non_negative(name: str, value: int) -> None:
    if value < 0:
        raise UsageError(f"--{name} must be >= 0, got {value}")


def positive(name: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"--{name} must be >= 1, got {value}")
