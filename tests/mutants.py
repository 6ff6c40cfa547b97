"""Small random edits of source text, for fuzzing the frontends.

A mutant is a source with a few tokens or characters deleted, inserted, duplicated or swapped:
the near misses a person makes while editing, which the parsers must answer with a located error
or a program, never with a Python exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import kernelc as kc

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {
    path.relative_to(ROOT).as_posix(): path.read_text()
    for pattern in ("examples/*.k", "examples/omp/*.c")
    for path in sorted(ROOT.glob(pattern))
}

TOKEN = re.compile(r"\s+|[A-Za-z_]\w*|\d[\w.]*|#\w+|->|\.\.|[<>=!&|+\-*/%^]=?|.", re.S)
EXTRA = (
    "0", "01", "1", "-1", "0x", "1e", "2147483648", "4294967296", "99999999999", "1.5", "1.0f",
    "x", "i", "N", "(", ")", "[", "]", "{", "}", ",", ";", ":", "..", "=", "+=", "-", "*", "/",
    "%", "^", "~", "!", "?", "<<", "&&", "#", "\n", "#pragma omp task\n", "#define Z 0\n",
    "search(", "sum(k in 0 .. 3)", "let", "var", "for", "if", "else", "kernel", "graph", "size",
    "f16", "u16", "bool", "int", "float", "const", "omp_get_thread_num()", "depend(in: a[0:1])",
    "num_threads(2)", "collapse(3)", "reduction(+: s)", "private(i)", "map(to: a[0:0])",
    "teams", "parallel", "single", "taskwait", "barrier", "for (int q = 0; q < 2; q++)",
)  # fmt: skip


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


Draw = Callable[[int, int], int]
"""``draw(lo, hi)``: an integer in [lo, hi], from hypothesis or from a random.Random."""


def mutate(text: str, draw: Draw, edits: int) -> str:
    """``text`` with ``edits`` random edits, each on tokens or on characters."""
    for _ in range(edits):
        by_token = draw(0, 1) == 1
        parts = tokens(text) if by_token else list(text)
        if not parts:
            parts = [""]
        kind = draw(0, 3)
        at = draw(0, len(parts) - 1)
        if kind == 0:
            del parts[at]
        elif kind == 1:
            pool = EXTRA if draw(0, 1) else parts
            parts.insert(at, pool[draw(0, len(pool) - 1)])
        elif kind == 2:
            parts.insert(at, parts[at])
        else:
            other = draw(0, len(parts) - 1)
            parts[at], parts[other] = parts[other], parts[at]
        text = "".join(parts)
    return text


def compile_mutant(name: str, text: str) -> None:
    """Load, bind and build for ``interp`` as the CLI would; KernelcError is an answer, any
    other exception propagates."""
    filename = "fuzz.c" if name.endswith(".c") else "fuzz.k"
    try:
        program = kc.loads(text, filename=filename)
        kc.build(program, "interp")
    except kc.KernelcError:
        pass
