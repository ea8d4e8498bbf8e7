"""Text from files, made safe to print: names, notes and messages read from a run folder or a checkpoint
may hold terminal escapes or newlines, which would repaint a user's terminal or forge a second
``error:`` line. ``printable`` shows every control character as an escape instead."""

from __future__ import annotations

import re

# C0 controls (newline and tab included), DEL and the C1 controls: the ANSI escapes' leading bytes among them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with each control character written as a Python escape (``\\x1b``, ``\\n``): one line, inert."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def parse_version(value: object) -> int | None:
    """A ``format_version`` as the non-negative integer it must be, or None: ``True``, ``-7``, ``"¹"``
    (a digit to ``str.isdigit`` but not to ``int``) and ``"1"`` where an integer is due are not versions."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def parse_version_text(value: object) -> int | None:
    """A ``format_version`` held as text (safetensors metadata is text): ASCII digits only, or None."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 9:
        return None
    return int(value)
