"""Progress of long simulations and builds: one line on a terminal, rewritten in place.

A simulation of a large grid runs for minutes and prints nothing until it ends, so while a
reporter is active the simulators and the placement search describe what they have done so far
(simulated cycles, PEs still busy, supersteps, instructions) on one line of standard error,
with the time elapsed. The line appears only when standard error is a terminal and the command
has run for ``DELAY`` seconds (``KERNELC_PROGRESS_DELAY`` overrides it), is rewritten at most
every ``INTERVAL`` seconds, never wider than the terminal, and is erased when each phase ends,
so nothing of it stays in the output. The ``kernelc`` command (and the simulators' own command
lines) report unless ``--quiet`` or ``KERNELC_PROGRESS=0``; the Python API only when
``KERNELC_PROGRESS=1``.

Code that runs long asks for ``phase(label)`` and calls its ``update`` in its loop; without an
active reporter that is a no-op, and an update between two permitted writes costs one clock read.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TextIO

DELAY = 2.0  # seconds a command runs before the line appears
INTERVAL = 0.1  # seconds between two writes of the line
COLUMNS = 80  # the width when the terminal does not say

Detail = str | Callable[[], str]  # a callable is only called when the line is written


class Reporter:
    """The line on one terminal stream; ``clock`` and ``columns`` are parameters for tests."""

    def __init__(
        self,
        stream: TextIO,
        *,
        delay: float = DELAY,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] | None = None,
    ) -> None:
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self.columns = columns or (lambda: _columns(stream))
        self.start = clock()
        self.ready = self.start + delay
        self.next = self.ready
        self.shown = 0  # characters of the line now on the terminal
        self.label = ""  # the label of the line now on the terminal

    def show(self, label: str, detail: Detail) -> None:
        """Write the line if the delay and the interval since the last write have passed, or,
        after the delay, at once when a new step begins (a short step is not skipped)."""
        now = self.clock()
        if now < self.ready or (now < self.next and label == self.label):
            return
        self.next = now + self.interval
        self.label = label
        text = detail() if callable(detail) else detail
        line = self.line(label, text, now - self.start)
        self.stream.write("\r" + line + " " * max(0, self.shown - len(line)) + "\r")
        self.stream.flush()
        self.shown = len(line)

    def line(self, label: str, detail: str, seconds: float) -> str:
        """``label: detail  elapsed``, cut to one character less than the terminal's width."""
        body = f"{label}: {detail}" if detail else label
        text = f"{body}  {elapsed(seconds)}"
        width = max(self.columns() - 1, 8)
        return text if len(text) <= width else text[: width - 3] + "..."

    def clear(self) -> None:
        """Erase the line (the cursor is left at the start of the empty line)."""
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
            self.shown = 0


class Phase:
    """What one long-running step reports under its label."""

    reporting = True

    def __init__(self, reporter: Reporter, label: str) -> None:
        self.reporter, self.label = reporter, label

    def update(self, detail: Detail = "") -> None:
        self.reporter.show(self.label, detail)


class Silent:
    """The phase when nothing is reported."""

    reporting = False

    def update(self, detail: Detail = "") -> None:
        return None


SILENT = Silent()
_UNDECIDED = object()
_ACTIVE: ContextVar[object] = ContextVar("kernelc_progress")


def elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or COLUMNS
    except (OSError, ValueError, AttributeError):
        return COLUMNS


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, AttributeError):  # a closed or replaced stream
        return False


def _delay() -> float:
    text = os.environ.get("KERNELC_PROGRESS_DELAY")
    try:
        return DELAY if text is None else max(0.0, float(text))
    except ValueError:
        return DELAY


@contextlib.contextmanager
def reporting(enabled: bool = True, stream: TextIO | None = None) -> Iterator[None]:
    """Report progress on ``stream`` (standard error) while the block runs, if it is a
    terminal, ``enabled`` and not ``KERNELC_PROGRESS=0``; either way, code inside has decided
    (see ``from_environment``)."""
    stream = sys.stderr if stream is None else stream
    wanted = enabled and os.environ.get("KERNELC_PROGRESS") != "0"
    reporter = Reporter(stream, delay=_delay()) if wanted and _is_terminal(stream) else None
    token = _ACTIVE.set(reporter)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        if reporter is not None:
            reporter.clear()


def from_environment() -> contextlib.AbstractContextManager[None]:
    """The Python API's choice: report when ``KERNELC_PROGRESS=1``, unless a caller (the
    ``kernelc`` command, with or without ``--quiet``) has decided already."""
    if _ACTIVE.get(_UNDECIDED) is not _UNDECIDED:
        return contextlib.nullcontext()
    return reporting(os.environ.get("KERNELC_PROGRESS") == "1")


@contextlib.contextmanager
def phase(label: str) -> Iterator[Phase | Silent]:
    """A phase to update while the block runs; its line is erased when the block ends."""
    reporter = _ACTIVE.get(None)
    if not isinstance(reporter, Reporter):
        yield SILENT
        return
    try:
        yield Phase(reporter, label)
    finally:
        reporter.clear()
