"""Source locations and user-facing errors.

Every mistake a user can make is raised as :class:`KernelcError` carrying a :class:`Span`, so the
CLI can print ``file:line:col: error: message`` with the source line and a caret, and exit 2
without a traceback. Internal bugs are ordinary Python exceptions and keep their tracebacks.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

_SOURCES: dict[str, str] = {}


def register_source(filename: str, text: str) -> None:
    """Remember a source text so diagnostics can quote its lines."""
    _SOURCES[filename] = text


@dataclass(frozen=True)
class Span:
    """A position in a source file (1-based line and column) with an optional end."""

    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


UNKNOWN_SPAN = Span("<unknown>", 1, 1)


def command_line_span(argument: str, col: int = 1) -> Span:
    """A span pointing into one command-line argument, which is registered as its own source."""
    name = "<command line>"
    register_source(name, argument)
    return Span(name, 1, col, 1, len(argument) + 1)


@dataclass
class KernelcError(Exception):
    """A user error: bad source, bad parameters, bad inputs or bad command-line use."""

    message: str
    span: Span = UNKNOWN_SPAN
    notes: list[tuple[Span, str]] = field(default_factory=list)
    severity: str = "error"
    parameter: str | None = (
        None  # the parameter value at fault (a -D NAME), for the CLI to point at
    )

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        parts = [_render_one(self.span, self.severity, self.message)]
        parts.extend(_render_one(span, "note", text) for span, text in self.notes)
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.render()


class Unsupported(KernelcError):
    """A valid program that a target cannot compile (yet): the message names the construct."""


def _render_one(span: Span, severity: str, message: str) -> str:
    head = f"{span}: {severity}: {message}"
    text = _SOURCES.get(span.file)
    if text is None:
        return head
    lines = text.splitlines()
    if not 1 <= span.line <= len(lines):
        return head
    line = lines[span.line - 1].expandtabs(1)
    width = 1
    if span.end_line == span.line and span.end_col > span.col:
        width = span.end_col - span.col
    caret = " " * (span.col - 1) + "^" + "~" * (width - 1)
    return f"{head}\n{line}\n{caret}"


def warn(message: str, span: Span) -> None:
    """Print a located warning to stderr; warnings never stop a build."""
    print(_render_one(span, "warning", message), file=sys.stderr)
