"""Lark parse failures as located diagnostics, shared by the frontends.

Each frontend supplies its parser (to spell terminals), friendly words for its token names, and a
``place(line, col, end_line, end_col)`` function that turns a position in the parsed text into a
span of the user's file (a pragma is parsed on its own, so its positions need shifting).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from lark import Lark
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from kernelc.diagnostics import KernelcError, Span

Place = Callable[..., Span]

TOKEN_WORDS: dict[str, str] = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "SEMICOLON": "';'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
}
"""How an error message names the tokens that both grammars share."""


def syntax_error(
    exc: UnexpectedInput,
    text: str,
    parser: Lark,
    words: Mapping[str, str],
    place: Place,
    end: str = "end of file",
) -> KernelcError:
    """The error for a failed parse of ``text``; ``end`` names the end of that text."""
    line, col = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else end
        return KernelcError(f"unexpected character {char!r}", place(line, col))
    expected = _expected(exc.expected, parser, words)
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        lines = text.splitlines() or [""]
        return KernelcError(
            f"unexpected {end}; expected {expected}", place(len(lines), len(lines[-1]) + 1)
        )
    assert isinstance(exc, UnexpectedToken)
    token = str(exc.token)
    return KernelcError(
        f"unexpected {token!r}; expected {expected}", place(line, col, line, col + len(token))
    )


def _expected(names: set[str], parser: Lark, words: Mapping[str, str]) -> str:
    spelled = sorted({words.get(n) or _terminal_text(n, parser) for n in names})
    if len(spelled) > 6:
        spelled = spelled[:6] + ["..."]
    return ", ".join(spelled) if spelled else "something else"


def _terminal_text(name: str, parser: Lark) -> str:
    term = next((t for t in parser.terminals if t.name == name), None)
    if term is not None and term.pattern.type == "str":
        return repr(term.pattern.value)
    return name.lower().replace("_", " ")


@contextmanager
def unwrap_visit_errors() -> Iterator[None]:
    """Lark wraps whatever a transformer or visitor raises in a VisitError; a KernelcError inside
    is the user's located error and is re-raised as itself, so it never reaches them as a
    traceback. Anything else is a bug in the frontend and keeps its wrapper."""
    try:
        yield
    except VisitError as exc:
        inner: BaseException = exc
        while isinstance(inner, VisitError):  # a transform run inside another one
            inner = inner.orig_exc
        if isinstance(inner, KernelcError):
            raise inner from None
        raise
