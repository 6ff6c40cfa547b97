"""Inputs that used to escape the frontends as Python exceptions (issue 14): each is now a
located KernelcError, and the CLI reports it with exit 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import kernelc as kc

ROOT = Path(__file__).resolve().parent.parent

DSL = {
    "leading zero": (
        "kernel k(a: f32[N]) -> b: f32[N] {\n  for i in 0 .. N { b[i] = a[i] * f32(01); }\n}\n",
        (2, 39),
        "integer literal '01' has a leading zero; write 1 (the language has no octal literals, "
        "and C would read it as octal)",
    ),
    "leading zero in a size": (
        "size N = 08;\nkernel k(a: f32[N]) -> b: f32[N] {\n  for i in 0 .. N { b[i] = a[i]; }\n}\n",
        (1, 10),
        "integer literal '08' has a leading zero; write 8 (the language has no octal literals, "
        "and C would read it as octal)",
    ),
    "slice in an expression": (
        "kernel k(a: f32[N, N]) -> b: f32[N] {\n  for i in 0 .. N { b[i] = a[:, i] + 1.0; }\n}\n",
        (2, 30),
        "a slice of 'a' is only allowed as the first argument of search or as a graph task's "
        "argument; index every dimension here",
    ),
    "slice inside a search's index": (
        "kernel k(a: f32[N, N], c: i32[N]) -> b: i32[N] {\n"
        "  for i in 0 .. N { b[i] = search(a[c[0:2], :], 1.0); }\n}\n",
        (2, 39),
        "a slice of 'c' is only allowed as the first argument of search or as a graph task's "
        "argument; index every dimension here",
    ),
}


@pytest.mark.parametrize("name", DSL)
def test_dsl_error_is_located(name: str) -> None:
    text, (line, col), message = DSL[name]
    with pytest.raises(kc.KernelcError) as info:
        kc.loads(text, filename="t.k")
    assert info.value.message == message
    assert (info.value.span.line, info.value.span.col) == (line, col)


def test_zero_and_hexadecimal_literals_are_accepted() -> None:
    kc.loads("kernel k(a: i32[N]) -> b: i32[N] { for i in 0 .. N { b[i] = a[i] + 0 + 0x0f; } }")


PIPELINE = (ROOT / "examples/omp/pipeline.c").read_text()

C = {
    "stray token after a clause": (
        PIPELINE.replace("depend(out: sums[tid])", "depend(out: sums[tid]) ^"),
        (23, 69),
        "unexpected '^'; expected a name",
    ),
    "octal constant with a digit 9": (
        PIPELINE.replace("float s = 0.0f;", "float s = 09 + 0.0f;"),
        (25, 17),
        "invalid digit '9' in octal constant '09'",
    ),
}


@pytest.mark.parametrize("name", C)
def test_c_error_inside_a_pragma_is_located(name: str) -> None:
    text, (line, col), message = C[name]
    with pytest.raises(kc.KernelcError) as info:
        kc.loads(text, filename="fuzz.c", lang="c")
    assert info.value.message == message
    assert (info.value.span.line, info.value.span.col) == (line, col)


@pytest.mark.parametrize(
    ("file", "text", "where"),
    [
        ("t.k", DSL["leading zero"][0], (2, 39)),
        ("t.k", DSL["slice in an expression"][0], (2, 30)),
        ("fuzz.c", C["stray token after a clause"][0], (23, 69)),
    ],
)
def test_cli_reports_them_without_traceback(
    tmp_path: Path, file: str, text: str, where: tuple[int, int]
) -> None:
    (tmp_path / file).write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "kernelc", "build", file, "--target", "interp"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    head, source, caret = proc.stderr.splitlines()[:3]
    assert head.startswith(f"{file}:{where[0]}:{where[1]}: error: ")
    assert source == text.splitlines()[where[0] - 1]
    assert caret.index("^") == where[1] - 1
