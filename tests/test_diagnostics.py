"""Every user error is a KernelcError located at the right line and column, with a message that
says what is wrong; the CLI prints it as `file:line:col: error: ...`, the line and a caret, exits 2
and shows no traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import targets
from kernelc.cli import main

ELEMENTWISE = "kernel k(a: f32[N]) -> b: f32[N] {{\n  for i in 0 .. N {{\n    {}\n  }}\n}}\n"
"""A one-statement kernel; the statement is on line 3, starting at column 5."""

STAGES = """kernel scale(x: f32[N]) -> y: f32[N] {
  for i in 0 .. N { y[i] = 2.0 * x[i]; }
}
kernel add(x: f32[N], z: f32[N]) -> y: f32[N] {
  for i in 0 .. N { y[i] = x[i] + z[i]; }
}
"""


@dataclass(frozen=True)
class Case:
    """Source text, what to do with it, and the expected message (or its stable prefix)."""

    text: str
    message: str
    line: int
    col: int
    action: Callable[[kc.Program], object] = lambda prog: None
    exact: bool = True


def bound(**params: int) -> Callable[[kc.Program], object]:
    return lambda prog: prog.graph(params=params)


def interpreted(inputs: dict, **params: int) -> Callable[[kc.Program], object]:
    return lambda prog: kc.interpret(prog, inputs, params=params or None)


CASES = {
    "syntax error": Case(
        ELEMENTWISE.format("b[i] = a[i] +;"), "unexpected ';'; expected ", 3, 18, exact=False
    ),
    "unexpected character": Case(
        ELEMENTWISE.format("b[i] = a[i] $ 2.0;"), "unexpected character '$'", 3, 17
    ),
    "unexpected end of file": Case(
        "kernel k(a: f32[N]) -> b: f32[N] {\n  for i in 0 .. N { b[i] = a[i]; }\n",
        "unexpected end of file; expected ",
        2,
        35,
        exact=False,
    ),
    "unknown name": Case(ELEMENTWISE.format("b[i] = a[j];"), "unknown name 'j'", 3, 14),
    "type mismatch": Case(
        "kernel k(a: f32[N], c: i32[N]) -> b: f32[N] {\n  for i in 0 .. N {\n"
        "    b[i] = a[i] + c[i];\n  }\n}\n",
        "type mismatch: f32 and i32; convert one side, e.g. f32(...)",
        3,
        17,
    ),
    "wrong rank": Case(
        "kernel k(a: f32[N, M]) -> b: f32[N] {\n  for i in 0 .. N {\n    b[i] = a[i];\n  }\n}\n",
        "'a' has rank 2 but is indexed with 1 index",
        3,
        12,
    ),
    "unknown function": Case(
        ELEMENTWISE.format("b[i] = tanh(a[i]);"),
        "unknown function 'tanh'; the language has abs, bool, exp, f16, f32, floor, fma, i32, "
        "log, max, min, rand, randbits, search, select, sqrt, u16, u32",
        3,
        12,
    ),
    "wrong argument count": Case(
        ELEMENTWISE.format("b[i] = max(a[i]);"), "max takes 2 arguments, got 1", 3, 12
    ),
    "assignment to a let": Case(
        ELEMENTWISE.format("let x = a[i];\n    x = 2.0;\n    b[i] = x;"),
        "cannot assign to 'x': it is a let; declare it with var",
        4,
        5,
    ),
    "store to an input": Case(
        ELEMENTWISE.format("a[i] = 1.0;"),
        "cannot store to input 'a'; only outputs are writable",
        3,
        5,
    ),
    "duplicate definition": Case(
        "kernel k(a: f32[N]) -> b: f32[N] {\n  for i in 0 .. N { b[i] = a[i]; }\n}\n" * 2,
        "'k' is defined twice",
        4,
        8,
    ),
    "duplicate local": Case(
        ELEMENTWISE.format("let x = a[i];\n    let x = 2.0;\n    b[i] = x;"),
        "'x' is already defined in this kernel; choose another name",
        4,
        9,
    ),
    "unknown type": Case(
        "kernel k(a: f64[N]) -> b: f32[N] {\n  for i in 0 .. N { b[i] = 0.0; }\n}\n",
        "unknown type 'f64'; expected one of f16, f32, i32, u16, u32, bool",
        1,
        13,
    ),
    "literal out of range": Case(
        "kernel k(a: u16[N]) -> b: u16[N] {\n  for i in 0 .. N { b[i] = a[i] + 70000; }\n}\n",
        "literal 70000 does not fit in u16 [0, 65535]",
        2,
        35,
    ),
    "float index": Case(
        ELEMENTWISE.format("b[i] = a[a[i]];"), "an index must be an integer, got f32", 3, 14
    ),
    "scalar output": Case(
        "kernel k(a: f32[N]) -> b: f32 {\n  for i in 0 .. N { }\n}\n",
        "output 'b' must be a tensor; give it a shape such as f32[1]",
        1,
        24,
    ),
    "tensor default": Case(
        "kernel k(a: f32[N] = 1.0) -> b: f32[N] {\n  for i in 0 .. N { b[i] = a[i]; }\n}\n",
        "tensor parameter 'a' cannot have a default; only scalars can",
        1,
        22,
    ),
    "stencil reach outside the array": Case(
        ELEMENTWISE.format("b[i] = a[i + 1];"),
        "index i + 1 of 'a' (dimension 0) reaches 8 when i = 7, outside 0 .. 7; tighten the "
        "loop bounds or guard the access",
        3,
        14,  # the start of the index expression, which is underlined whole
        bound(N=8),
    ),
    "shape mismatch between graph stages": Case(
        STAGES + "graph g(a: f32[N], b: f32[M]) -> c: f32[N] {\n  t = scale(a);\n"
        "  c = add(t, b);\n}\n",
        "shape mismatch: 'z' of 'add' needs extent 8 in dimension 0, but the tensor passed has 4 "
        "(shape (4,))",
        9,
        14,
        bound(N=8, M=4),
    ),
    "write conflict between tasks": Case(
        STAGES + "graph g(a: f32[N]) -> c: f32[N] {\n  c[0:N/2+1] = scale(a[0:N/2+1]);\n"
        "  c[N/2:N] = scale(a[N/2:N]);\n}\n",
        "write conflict: 'scale' writes c[4:8], which overlaps c[0:5] written by 'scale', and "
        "neither task depends on the other",
        9,
        14,
        bound(N=8),
    ),
    "intermediate never produced": Case(
        STAGES + "graph g(a: f32[N]) -> c: f32[N] {\n  let t: f32[N];\n  c = scale(t);\n}\n",
        "'scale' reads t[0:8], but no earlier task writes all of it",
        9,
        7,
        bound(N=8),
    ),
    "unknown kernel in a graph": Case(
        STAGES + "graph g(a: f32[N]) -> c: f32[N] {\n  c = scael(a);\n}\n",
        "unknown kernel 'scael'",
        8,
        7,
    ),
    "unknown tensor in a graph": Case(
        STAGES + "graph g(a: f32[N]) -> c: f32[N] {\n  c = scale(q);\n}\n",
        "unknown tensor 'q'",
        8,
        13,
    ),
    "slice outside a tensor": Case(
        STAGES + "graph g(a: f32[N]) -> c: f32[N] {\n  c = scale(a[1:N+1]);\n}\n",
        "slice 1:9 of 'a' (dimension 0) is outside 0 .. 8",
        8,
        15,
        bound(N=8),
    ),
    "missing input": Case(
        ELEMENTWISE.format("b[i] = a[i];"),
        "input 'a' (f32[4]) is missing; give an array for it (CLI: --in NAME=PATH.npy, --in-dir "
        "DIR or --random-inputs SEED)",
        1,
        10,
        interpreted({}, N=4),
    ),
    "input of the wrong dtype": Case(
        ELEMENTWISE.format("b[i] = a[i];"),
        "input 'a' has dtype float64, but the kernel declares f32 (float32); convert it with "
        ".astype(np.float32)",
        1,
        10,
        interpreted({"a": np.zeros(3)}),
    ),
    "input not contiguous": Case(
        ELEMENTWISE.format("b[i] = a[i];"),
        "input 'a' is not C-contiguous (a strided view or a transpose); pass "
        "np.ascontiguousarray(...)",
        1,
        10,
        interpreted({"a": np.zeros(6, np.float32)[::2]}),
    ),
    "size conflict between -D and an input": Case(
        ELEMENTWISE.format("b[i] = a[i];"),
        "input 'a' has N = 3, but -D N=5",
        1,
        10,
        interpreted({"a": np.zeros(3, np.float32)}, N=5),
    ),
    "unknown -D name": Case(
        ELEMENTWISE.format("b[i] = a[i];"),
        "'k' has no size or scalar parameter 'Q' (it has: N)",
        1,
        8,
        bound(N=2, Q=1),
    ),
    "missing size": Case(
        ELEMENTWISE.format("b[i] = a[i];"),
        "size 'N' has no value; pass -D N=VALUE or give an input whose shape fixes it",
        1,
        8,
        bound(),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_user_error_is_located(name: str) -> None:
    case = CASES[name]
    with pytest.raises(kc.KernelcError) as info:
        case.action(kc.loads(case.text, filename="t.k"))
    err = info.value
    if case.exact:
        assert err.message == case.message
    else:
        assert err.message.startswith(case.message)
    assert (err.span.file, err.span.line, err.span.col) == ("t.k", case.line, case.col)
    head, source, caret = err.render().splitlines()[:3]
    assert head == f"t.k:{case.line}:{case.col}: error: {err.message}"
    assert source == case.text.splitlines()[case.line - 1]
    assert caret.index("^") == case.col - 1 and set(caret.strip()) <= {"^", "~"}


def test_there_are_enough_distinct_diagnostics() -> None:
    assert len({c.message for c in CASES.values()}) >= 14


def test_notes_point_at_the_other_location() -> None:
    with pytest.raises(kc.KernelcError) as info:
        kc.loads(CASES["duplicate definition"].text, filename="t.k")
    ((span, text),) = info.value.notes
    assert (span.line, span.col, text) == (1, 8, "first defined here")
    assert "t.k:1:8: note: first defined here" in info.value.render()


def test_unknown_target_from_the_api() -> None:
    prog = kc.loads(ELEMENTWISE.format("b[i] = a[i];"), filename="t.k")
    with pytest.raises(kc.KernelcError) as info:
        kc.run(prog, "gpu", {"a": np.zeros(2, np.float32)})
    assert info.value.message == f"unknown target 'gpu'; available: {', '.join(targets.names())}"


def test_unknown_target_option_from_the_api() -> None:
    prog = kc.loads(ELEMENTWISE.format("b[i] = a[i];"), filename="t.k")
    with pytest.raises(kc.KernelcError) as info:
        kc.build(prog, "interp", params={"N": 2}, threads=4)
    assert info.value.message == "target 'interp' does not take option 'threads' (it takes: none)"


def test_missing_file() -> None:
    with pytest.raises(kc.KernelcError) as info:
        kc.load("no/such/file.k")
    assert info.value.message == "cannot read no/such/file.k: No such file or directory"


# -------------------------------------------------------------------- command-line arguments


def cli_error(capsys, *argv: str) -> tuple[str, str, str]:
    """Run the CLI in-process; return the error line, the command line shown and the caret."""
    assert main(list(argv)) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    return lines[0], lines[1], lines[2]


def test_bad_define_value_points_at_the_argument(capsys) -> None:
    head, line, caret = cli_error(
        capsys, "build", "examples/sobel.k", "--target", "interp", "-D", "H=abc"
    )
    col = line.index("H=abc") + 1
    assert head == (
        f"<command line>:1:{col}: error: 'abc' is not a number; -D takes integers, floats, "
        "true or false"
    )
    assert line == "kernelc build examples/sobel.k --target interp -D H=abc"
    assert caret == " " * (col - 1) + "^~~~~"


@pytest.mark.parametrize(
    ("define", "message"),
    [
        ("H=2.5", "size 'H' must be an integer, got 2.5"),
        ("Q=3", "'sobel' has no size or scalar parameter 'Q' (it has: H, W)"),
    ],
)
def test_define_the_kernel_refuses_points_at_the_argument(define, message, capsys) -> None:
    argv = ["build", "examples/sobel.k", "-t", "interp", "-D", "W=8", "-D", define]
    assert main(argv) == 2
    head, line, caret, note, source, mark = capsys.readouterr().err.splitlines()
    col = line.index(define) + 1
    assert head == f"<command line>:1:{col}: error: -D {define}: {message}"
    assert caret == " " * (col - 1) + "^" + "~" * (len(define) - 1)
    assert note == "examples/sobel.k:10:8: note: checked against this declaration"
    assert source.startswith("kernel sobel(") and mark == "       ^~~~~"


@pytest.mark.parametrize(
    ("define", "message"),
    [
        ("n=2.5", "parameter 'n' is i32, got 2.5"),
        ("n=3000000000", "i32 parameter 'n' cannot hold 3000000000"),
        ("on=2", "parameter 'on' is bool, got 2"),
        ("s=true", "parameter 's' is f32, got True"),
    ],
)
def test_scalar_parameter_values_are_checked_against_their_type(
    define, message, tmp_path, capsys
) -> None:
    source = tmp_path / "k.k"
    source.write_text(
        "kernel k(a: f32[N], n: i32 = 1, on: bool = true, s: f32 = 1.0) -> b: f32[N] {\n"
        "  for i in 0 .. N { b[i] = select(on, a[i] * s, f32(n)); }\n}\n"
    )
    assert main(["build", str(source), "-t", "interp", "-D", "N=4", "-D", define]) == 2
    head = capsys.readouterr().err.splitlines()[0]
    assert head.endswith(f"error: -D {define}: {message}"), head
    assert head.startswith("<command line>:1:")


def test_malformed_define(capsys) -> None:
    head, line, caret = cli_error(capsys, "build", "examples/sobel.k", "-t", "interp", "-D", "H")
    assert head == f"<command line>:1:{line.rindex('H') + 1}: error: -D needs NAME=VALUE, got 'H'"


def test_unknown_target_points_at_the_argument(capsys) -> None:
    head, line, caret = cli_error(capsys, "run", "examples/sobel.k", "--target", "gpu")
    col = line.index("gpu") + 1
    assert head.startswith(f"<command line>:1:{col}: error: unknown target 'gpu'; available: ")
    assert "interp" in head
    assert caret == " " * (col - 1) + "^~~"


def test_unknown_emit_kind(capsys) -> None:
    head, line, _ = cli_error(
        capsys, "build", "examples/sobel.k", "-t", "interp", "--emit", "llvm", "-D", "H=4"
    )
    assert head == (
        f"<command line>:1:{line.index('llvm') + 1}: error: target 'interp' cannot emit 'llvm' "
        "(it can emit: ir, dot)"
    )


def test_unknown_output_name(capsys) -> None:
    head, line, _ = cli_error(
        capsys,
        "run",
        "examples/sobel.k",
        "-t",
        "interp",
        "-D",
        "H=4",
        "-D",
        "W=4",
        "--random-inputs",
        "0",
        "--out",
        "nope=x.npy",
    )
    assert head == (
        f"<command line>:1:{line.index('nope') + 1}: error: --out needs NAME=PATH.npy with NAME "
        "one of: mag"
    )


def test_argparse_errors_use_the_same_format(capsys) -> None:
    head, line, caret = cli_error(capsys, "frob")
    assert head.startswith("<command line>:1:9: error: argument command: invalid choice: 'frob'")
    assert head.endswith("(see kernelc --help)")
    assert caret == "        ^~~~"
    assert main(["build", "examples/sobel.k"]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --target/-t (see kernelc build --help)" in err


# ----------------------------------------------------------------------- the CLI as a process

RUN_CASES = {
    "syntax": (CASES["syntax error"].text, ["build", "t.k", "--target", "interp"], (3, 18)),
    "unknown function": (
        CASES["unknown function"].text,
        ["build", "t.k", "--target", "interp", "-D", "N=4"],
        (3, 12),
    ),
    "write conflict": (
        CASES["write conflict between tasks"].text,
        ["build", "t.k", "--target", "interp", "-D", "N=8", "-o", "out"],
        (9, 14),
    ),
    "missing input": (
        CASES["missing input"].text,
        ["run", "t.k", "--target", "interp", "-D", "N=4"],
        (1, 10),
    ),
}


@pytest.mark.parametrize("name", RUN_CASES)
def test_cli_process_reports_errors_without_traceback(tmp_path: Path, name: str) -> None:
    text, argv, (line, col) = RUN_CASES[name]
    (tmp_path / "t.k").write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "kernelc", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    head, source, caret = proc.stderr.splitlines()[:3]
    assert head.startswith(f"t.k:{line}:{col}: error: ")
    assert source == text.splitlines()[line - 1]
    assert caret.index("^") == col - 1
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()


def test_cli_process_bad_define(tmp_path: Path) -> None:
    (tmp_path / "t.k").write_text(CASES["missing input"].text)
    proc = subprocess.run(
        [sys.executable, "-m", "kernelc", "run", "t.k", "-t", "interp", "-D", "N=4x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    head, line, caret = proc.stderr.splitlines()
    col = line.index("N=4x") + 1
    assert head == (
        f"<command line>:1:{col}: error: '4x' is not a number; -D takes integers, floats, true "
        "or false"
    )
    assert caret.index("^") == col - 1


def test_an_output_never_stored_to_is_a_located_warning(capsys) -> None:
    kc.loads(
        "kernel k(a: f32[N]) -> (b: f32[N], c: f32[N]) {\n  for i in 0 .. N { b[i] = a[i]; }\n}\n",
        "t.k",
    )
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (
        "t.k:1:36: warning: output 'c' of 'k' is never stored to; it stays all zeros"
    )
    assert lines[2] == " " * 35 + "^"
