"""The CSL type checker: one small program per rule, each with the exact error cslc-style."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernelc.csl import model as m
from kernelc.runtime.fabric.parser import parse_file, parse_program
from kernelc.runtime.fabric.typecheck import CslTypeError, check_program

GOLDEN = Path(__file__).parent / "golden" / "csl"


def check(text: str, params: dict[str, int] | None = None, root: Path = Path(".")) -> None:
    """Type-check one file as a whole program (it is its own layout)."""
    f = parse_file(text, "t.csl")
    check_program(m.Program(f, ()), root, "wse2", params or {})


def error(text: str, params: dict[str, int] | None = None, root: Path = Path(".")) -> str:
    with pytest.raises(CslTypeError) as err:
        check(text, params, root)
    return str(err.value)


def first(text: str, **kw) -> str:
    return error(text, **kw).splitlines()[0]


A = "var a = @zeros([4]f32);\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # runtime integers of another signedness or width do not mix
        (
            "var i: i16 = 0;\nvar u: u16 = 0;\nfn f() void {\n  i = i + u;\n}\n"
            "comptime {\n  @export_symbol(f);\n}\n",
            "t.csl:4:9: error: incompatible types: 'i16' and 'u16'",
        ),
        (
            "var i: i16 = 0;\nvar u: u16 = 0;\nfn f() void {\n  u = i;\n}\n"
            "comptime {\n  @export_symbol(f);\n}\n",
            "t.csl:4:7: error: expected type 'u16', found 'i16'",
        ),
        # a literal coerces only when it fits
        ("var x: u8 = 300;\n", "t.csl:1:13: error: expected type 'u8', found 'comptime_int'"),
        # floats do not become integers without @as
        (
            "var x: f32 = 1.5;\nvar y: i32 = 0;\nfn f() void {\n  y = x;\n}\n"
            "comptime {\n  @export_symbol(f);\n}\n",
            "t.csl:4:7: error: expected type 'i32', found 'f32'",
        ),
        # *T is not [*]T: a many-pointer comes from a pointer to an array
        (A + "var p: [*]f32 = &a[1];\n", "t.csl:2:17: error: expected type '[*]f32', found '*f32'"),
        # if-expression branches of one type
        (
            A + "var c: bool = true;\nvar p: [*]f32 = &a;\nfn f() void {\n"
            "  p = if (c) &a[1] else &a;\n}\ncomptime {\n  @export_symbol(f);\n}\n",
            "t.csl:5:7: error: incompatible types: '*f32' and '*[4]f32'",
        ),
        # calls: argument types and count
        (
            "var i: i16 = 0;\nfn g(x: u16) void {\n  return;\n}\nfn f() void {\n  g(i);\n}\n"
            "comptime {\n  @export_symbol(f);\n}\n",
            "t.csl:6:5: error: expected type 'u16', found 'i16'",
        ),
        (
            "fn g(x: u16) void {\n  return;\n}\nfn f() void {\n  g(1, 2);\n}\n"
            "comptime {\n  @export_symbol(f);\n}\n",
            "t.csl:5:3: error: expected 1 argument(s), found 2",
        ),
        # colors, task IDs and queues are their own types
        (
            "const c: color = @get_color(3);\nfn f() void {\n  @activate(c);\n}\n"
            "comptime {\n  @export_symbol(f);\n}\n",
            "t.csl:3:13: error: expected type 'local_task_id' or 'data_task_id' or "
            "'control_task_id', found 'color'",
        ),
        (
            "const c: color = @get_color(3);\ntask t() void {\n  return;\n}\n"
            "comptime {\n  @bind_local_task(t, @get_data_task_id(c));\n}\n",
            "t.csl:6:23: error: expected type 'local_task_id', found 'data_task_id'",
        ),
        (
            "const q: input_queue = @get_output_queue(2);\n",
            "t.csl:1:24: error: expected type 'input_queue', found 'output_queue'",
        ),
        # DSD extents are comptime-known
        (
            A
            + "var n: u16 = 4;\n"
            + "const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });\n",
            "t.csl:3:55: error: a DSD extent must be comptime-known; 'u16' is a runtime value",
        ),
        # comptime-only types need const
        (
            "fn f() void {\n  var k = 3;\n}\ncomptime {\n  @export_symbol(f);\n}\n",
            "t.csl:2:3: error: variable of type 'comptime_int' must be const or comptime",
        ),
        (
            "fn f() void {\n  y = 1;\n}\ncomptime {\n  @export_symbol(f);\n}\n",
            "t.csl:2:3: error: use of undeclared identifier 'y'",
        ),
    ],
)
def test_rule_is_enforced(text: str, message: str) -> None:
    assert first(text) == message


@pytest.mark.parametrize(
    "text",
    [
        "var u: u16 = 0;\nfn f() void {\n  u = u + 1;\n  u = @as(u16, -1 + 2);\n}\n",
        "var i: i16 = 0;\nvar u: u16 = 0;\n"
        "fn f() void {\n  u = @as(u16, i);\n  u = @bitcast(u16, i);\n}\n",
        A
        + "var p: [*]f32 = &a;\nvar q: [*]f32 = @ptrcast([*]f32, &a[1]);\nconst r: *[4]f32 = &a;\n",
        A + "var c: bool = true;\nvar p: [*]f32 = &a;\nfn f() void {\n"
        "  p = if (c) @ptrcast([*]f32, &a[1]) else &a;\n}\n",
        "fn size(n: u16) i16 {\n  return 1 + n / 401;\n}\nconst k: i16 = size(20);\n",
    ],
)
def test_valid_programs_pass(text: str) -> None:
    check(text)


def test_error_has_a_caret_under_the_operator() -> None:
    text = (
        "var i: i16 = 0;\nvar u: u16 = 0;\nfn f() void {\n  i = i + u;\n}\n"
        "comptime {\n  @export_symbol(f);\n}\n"
    )
    assert error(text).splitlines()[1:] == ["  i = i + u;", "        ^"]


def test_params_are_evaluated_at_compile_time() -> None:
    text = "param N: i16;\nvar a = @zeros([N]f32);\nvar p: *[4]f32 = &a;\n"
    check(text, {"N": 4})
    assert first(text, params={"N": 5}) == (
        "t.csl:3:18: error: expected type '*[4]f32', found '*[5]f32'"
    )


def test_dead_comptime_branches_are_not_checked() -> None:
    text = (
        "param P: i16;\nvar i: i16 = 0;\nvar u: u16 = 0;\nfn f() void {\n"
        "  if (P == 2) {\n    u = i;\n  }\n}\ncomptime {\n  @export_symbol(f);\n}\n"
    )
    check(text, {"P": 3})
    assert first(text, params={"P": 2}) == "t.csl:6:9: error: expected type 'u16', found 'i16'"


def test_imported_module_members_are_typed(tmp_path: Path) -> None:
    (tmp_path / "lib.csl").write_text("param n: u16;\nfn g(x: u16) void {\n  return;\n}\n")
    text = (
        'const lib = @import_module("lib.csl", .{ .n = 3 });\nvar i: i16 = 0;\n'
        "fn f() void {\n  lib.g(i);\n}\ncomptime {\n  @export_symbol(f);\n}\n"
    )
    assert first(text, root=tmp_path) == "t.csl:4:9: error: expected type 'u16', found 'i16'"
    bad = 'const lib = @import_module("lib.csl", .{ .n = 70000 });\n'
    assert (
        first(bad, root=tmp_path) == "t.csl:1:47: error: expected type 'u16', found 'comptime_int'"
    )


def test_library_symbols_are_typed() -> None:
    text = (
        'const mpi_x = @import_module("<collectives_2d/pe>", .{});\nvar s: i16 = 0;\n'
        "fn f() void {\n  if (s == mpi_x.pe_id) {\n    return;\n  }\n}\n"
        "comptime {\n  @export_symbol(f);\n}\n"
    )
    assert first(text) == "t.csl:4:9: error: incompatible types: 'i16' and 'u16'"


@pytest.mark.parametrize("routine", ["sqrt_f32", "exp_f32", "log_f32"])
def test_math_routines_take_f32(routine: str) -> None:
    """kernelc's programs call these three; an i32 argument needs an explicit conversion."""
    text = (
        'const math = @import_module("<math>");\nvar k: i32 = 2;\nvar y: f32 = 0.0;\n'
        f"fn f() void {{\n  y = math.{routine}(k);\n}}\n"
        "comptime {\n  @export_symbol(f);\n}\n"
    )
    assert "expected type 'f32', found 'i32'" in first(text)
    check(text.replace("(k)", "(@as(f32, k))"))


# ------------------------------------------------------------- defects put back by hand


def _gemm_with(tmp_path: Path, old: str, new: str) -> str:
    shutil.copytree(GOLDEN / "gemm", tmp_path / "gemm")
    pe = tmp_path / "gemm" / "pe_gemm.csl"
    text = pe.read_text()
    assert old in text
    pe.write_text(text.replace(old, new))
    program = parse_program(tmp_path / "gemm", "layout.csl")
    with pytest.raises(CslTypeError) as err:
        check_program(program, tmp_path / "gemm", "wse2", {"width": 2, "height": 2})
    return str(err.value).splitlines()[0]


def test_emitted_gemm_passes() -> None:
    program = parse_program(GOLDEN / "gemm", "layout.csl")
    check_program(program, GOLDEN / "gemm", "wse2", {"width": 2, "height": 2})


def test_gemm_pointer_branches_of_two_types_are_rejected(tmp_path: Path) -> None:
    got = _gemm_with(
        tmp_path,
        "@ptrcast([*]f32, &b[gemm_step / height_ * 1024])",
        "&b[gemm_step / height_ * 1024]",
    )
    assert got.endswith("error: incompatible types: '*f32' and '*[1024]f32'")
    assert got.startswith("pe_gemm.csl:81:11:")


def test_gemm_signed_step_counter_is_rejected(tmp_path: Path) -> None:
    got = _gemm_with(tmp_path, "var gemm_step: u16 = 0;", "var gemm_step: i16 = 0;")
    assert got.endswith("error: incompatible types: 'i16' and 'u16'")
    assert got.startswith("pe_gemm.csl:")
