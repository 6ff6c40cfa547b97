"""Errors of the emulated Groq compiler, located at the emitted line that caused them."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


class TspError(Exception):
    """What the Groq compiler or runtime would refuse, as ``file:line: error: message``."""


def caller() -> str:
    """``file:line`` of the innermost frame outside the emulator: the emitted line at fault."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent != HERE:
            return f"{path.name}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>:0"


def fail(message: str, where: str | None = None) -> TspError:
    return TspError(f"{where or caller()}: error: {message}")
