"""One PE program per role: offsets that only run-time code uses are computed from ``<layout>``
coordinates in the PE program, so the distinct (file, params) pairs of a layout (what cslc
compiles) stay few however large the rectangle. The build's count is checked against the fabric
simulator's evaluation of the emitted layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.emit import file_text
from kernelc.cli import main
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.layout import evaluate_layout
from kernelc.runtime.fabric.parser import parse_program
from kernelc.runtime.fabric.runner import distinct_programs
from kernelc.runtime.fabric.values import FabricError

ROOT = Path(__file__).resolve().parents[1]

# example, sizes, grid, most roles allowed
CASES = [
    ("sobel", ["H=200", "W=200"], "50x50", 36),
    ("sobel", ["H=200", "W=200"], "20x30", 36),
    ("gemm", ["M=64", "N=64", "K=64"], "8x8", 9),
    ("pca", ["B=8", "P=64", "K=8"], "6x7", 36),
    ("xs_lookup", ["NI=6", "NG=32", "NM=4", "MAXN=5", "L=240"], "8x5", 36),
]


def _build(tmp_path: Path, example: str, sizes: list[str], grid: str) -> dict:
    out = tmp_path / f"{example}_{grid}"
    args = ["build", str(ROOT / "examples" / f"{example}.k"), "--target", "csl", "--grid", grid]
    for s in sizes:
        args += ["-D", s]
    assert main([*args, "--quiet", "-o", str(out)]) == 0
    return {"out": out, **json.loads((out / "kernelc.json").read_text())}


def _simulated_count(out: Path, width: int, height: int) -> int:
    program = parse_program(out, "layout.csl")
    ctx = evaluate_layout(program.layout, {"width": width, "height": height}, machine.WSE2)
    return distinct_programs(ctx.tiles)


@pytest.mark.parametrize(("example", "sizes", "grid", "most"), CASES)
def test_roles_are_few_and_match_the_simulator(tmp_path, capsys, example, sizes, grid, most):
    doc = _build(tmp_path, example, sizes, grid)
    width, height = doc["grid"]
    count = doc["distinct_pe_programs"]
    assert 1 < count <= most < width * height
    assert f"csl: {count:,} distinct PE programs (roles)" in capsys.readouterr().out
    assert _simulated_count(doc["out"], width, height) == count


def test_the_count_does_not_grow_with_the_grid(tmp_path) -> None:
    counts = [
        _build(tmp_path, "sobel", ["H=240", "W=240"], grid)["distinct_pe_programs"]
        for grid in ("8x8", "24x24", "60x60")
    ]
    assert counts[1] == counts[2] <= 36


@pytest.mark.parametrize(
    ("source", "sizes", "grid", "most"),
    [
        ("tests/conformance/softmax.k", ["R=120", "C=90"], "9x11", 36),
        ("tests/conformance/heat.k", [], "7x5", 36),
        ("examples/omp/pipeline.c", ["CH=16"], "8x1", 8),
    ],
)
def test_reductions_maps_and_task_steps_have_few_roles(tmp_path, source, sizes, grid, most):
    out = tmp_path / "out"
    args = ["build", str(ROOT / source), "--target", "csl", "--grid", grid, "--quiet"]
    for s in sizes:
        args += ["-D", s]
    assert main([*args, "-o", str(out)]) == 0
    doc = json.loads((out / "kernelc.json").read_text())
    width, height = doc["grid"]
    assert 1 <= doc["distinct_pe_programs"] <= most
    assert _simulated_count(out, width, height) == doc["distinct_pe_programs"]


def test_run_time_offsets_read_the_coordinates(tmp_path) -> None:
    doc = _build(tmp_path, "gemm", ["M=64", "N=64", "K=64"], "4x4")
    text = (doc["out"] / "pe_gemm.csl").read_text()
    assert 'const layout_mod = @import_module("<layout>");' in text
    assert "layout_mod.get_y_coord()" in text
    assert "param rows_start" not in text and "param cols_start" not in text
    assert "read_coords();" in text


def _layout_with(tmp_path: Path, old: str, new: str) -> Path:
    directory = tmp_path / "gemm"
    shutil.copytree(ROOT / "tests" / "golden" / "csl" / "gemm", directory)
    layout = directory / "layout.csl"
    text = layout.read_text()
    assert old in text
    layout.write_text(text.replace(old, new))
    return directory


def test_memcpy_params_of_another_kind_of_column_are_rejected(tmp_path) -> None:
    directory = _layout_with(
        tmp_path, ".memcpy_params = memcpy.get_params(x)", ".memcpy_params = memcpy.get_params(0)"
    )
    with pytest.raises(FabricError) as err:
        Simulator(parse_program(directory, "layout.csl"), {"width": 2, "height": 2}, "wse2")
    assert "PE (1, 0): memcpy params are for a column placed 'first' in the row, this PE's is " in (
        str(err.value)
    )


def test_collectives_params_of_another_place_are_rejected(tmp_path) -> None:
    directory = _layout_with(tmp_path, "c2d.get_params(x, y,", "c2d.get_params(0, y,")
    with pytest.raises(FabricError) as err:
        Simulator(parse_program(directory, "layout.csl"), {"width": 2, "height": 2}, "wse2")
    assert "PE (1, 0): collectives params belong to another PE" in str(err.value)


def test_a_run_time_value_keeps_the_compile_time_params_it_is_computed_from() -> None:
    b = Builder(machine.WSE2, 4, 4, "pe.csl")
    rows = b.pe_param("rows", "i16", m.call("block_size", m.lit(10), m.Name("height"), m.Name("y")))
    start = b.pe_param(
        "rows_start", "i32", m.call("block_start", m.lit(10), m.Name("height"), m.Name("y"))
    )
    end = b.pe_param("rows_end", "i32", m.add(m.Name(start), m.Name(rows)))
    unused = b.pe_param("spare", "i32", m.Name("x"))
    access = m.TensorAccess(("q",), (m.Name(rows),), m.Index(m.Name("a"), (m.Name("q"),)))
    b.const("a_dsd", m.builtin("get_dsd", m.Name("mem1d_dsd"), m.struct(tensor_access=access)))
    b.scalar("last", "i32", m.Int(0))
    b.code(m.FnDecl("f", (), m.Named("void"), (m.Assign(m.Name("last"), "=", m.Name(end)),)))
    b.launch("f")
    assert [p.name for p in b.runtime_params()] == [start, end]
    assert [p.name for p in b.given_params()] == [rows]
    assert unused not in {p.name for p in (*b.runtime_params(), *b.given_params())}
    text = file_text(b.pe_program([]))
    assert "param rows: i16;" in text and "param rows_start" not in text
    assert "rows_end = rows_start + @as(i32, rows);" in text
    assert "fn f() void {\n  read_coords();" in text


def test_user_names_do_not_clash_with_the_coordinate_code(tmp_path) -> None:
    source = tmp_path / "clash.k"
    source.write_text(
        "size M = 12, N = 10, K = 8;\n"
        "kernel read_coords(block_size: f32[M, K], layout_mod: f32[K, N])"
        " -> block_start: f32[M, N] {\n"
        "  for i in 0 .. M, j in 0 .. N {\n"
        "    block_start[i, j] = sum(k in 0 .. K) block_size[i, k] * layout_mod[k, j];\n"
        "  }\n"
        "}\n"
    )
    args = ["check", str(source), "--target", "csl", "--grid", "4x4", "--quiet"]
    assert main(args) == 0
