"""The preprocessor lines the subset accepts: system ``#include``s, object-like ``#define``s and
the ``#ifndef NAME / #define NAME value / #endif`` idiom that lets ``-D NAME=value`` override a
default. A ``#define`` whose value is an integer literal is a *size*: kernelc's ``-D`` overrides it
exactly as the C compiler's ``-D`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp import syntax

_LINE = re.compile(r"#\s*(\w*)")
_DEFINE = re.compile(r"#\s*define\s+([A-Za-z_]\w*)(\(?)")


@dataclass(frozen=True)
class Macro:
    """An object-like macro; ``size`` is its value when that is a plain integer literal."""

    name: str
    body: c.Expr | None
    size: int | None
    span: Span


def collect(items: tuple, filename: str) -> dict[str, Macro]:
    """Read the file's preprocessor lines in order; reject the ones kernelc cannot honour."""
    macros: dict[str, Macro] = {}
    guard: tuple[str, Span] | None = None
    for item in items:
        if not isinstance(item, c.Directive):
            if guard is not None and not isinstance(item, c.Directive):
                raise KernelcError(
                    f"only '#define {guard[0]}' may appear between '#ifndef {guard[0]}' and "
                    "'#endif'",
                    getattr(item, "span", guard[1]),
                )
            continue
        text = _joined(item.text)
        word = _LINE.match(text).group(1)
        span = item.span
        if word == "include":
            _check_include(text, span)
        elif word == "define":
            macro = _define(item, text, filename)
            if guard is not None and macro.name != guard[0]:
                raise KernelcError(
                    f"only '#define {guard[0]}' may appear between '#ifndef {guard[0]}' and "
                    "'#endif'",
                    span,
                )
            if macro.name in macros:
                raise KernelcError(
                    f"macro '{macro.name}' is defined twice",
                    span,
                    [(macros[macro.name].span, "first defined here")],
                )
            macros[macro.name] = macro
        elif word == "ifndef":
            if guard is not None:
                raise KernelcError("nested #ifndef is not supported", span)
            name = text.split()[1] if len(text.split()) > 1 else ""
            if not name.isidentifier():
                raise KernelcError("expected a macro name after #ifndef", span)
            guard = (name, span)
        elif word == "endif":
            if guard is None:
                raise KernelcError("#endif without #ifndef", span)
            guard = None
        else:
            raise KernelcError(
                f"preprocessor directive '#{word}' is not supported; kernelc accepts #include of "
                "system headers, object-like #define, and the '#ifndef NAME / #define NAME value "
                "/ #endif' idiom",
                span,
            )
    if guard is not None:
        raise KernelcError(f"'#ifndef {guard[0]}' has no matching #endif", guard[1])
    return macros


def _joined(text: str) -> str:
    return re.sub(r"\\\r?\n", " ", text)


def _check_include(text: str, span: Span) -> None:
    rest = text.split("include", 1)[1].strip()
    if rest.startswith('"'):
        raise KernelcError(
            f"#include {rest}: kernelc does not read included files; only system headers such "
            "as <math.h> and <omp.h> are accepted (define sizes in this file)",
            span,
        )
    if not rest.startswith("<"):
        raise KernelcError("expected <header> after #include", span)


def _define(item: c.Directive, text: str, filename: str) -> Macro:
    match = _DEFINE.match(text)
    if match is None:
        raise KernelcError("expected a macro name after #define", item.span)
    name = match.group(1)
    if match.group(2):
        raise KernelcError(
            f"function-like macro '{name}' is not supported; write a static inline function",
            item.span,
        )
    start = match.end()
    body_text = item.text[start:] if "\\" not in item.text else text[start:]
    body_text = _strip_comment(body_text)
    if not body_text.strip():
        return Macro(name, None, None, item.span)
    origin = Span(item.span.file, item.span.line, item.span.col + start)
    body = syntax.parse_macro(body_text, origin, filename)
    return Macro(name, body, _size_value(body), item.span)


def _strip_comment(text: str) -> str:
    return re.sub(r"//.*$|/\*.*?\*/", " ", text)


def _size_value(body: c.Expr) -> int | None:
    if isinstance(body, c.IntLit) and not body.suffix:
        return body.value
    return None
