"""The simulator's setup cache (runtime/fabric/setup.py): PEs whose module-scope setups read the
same param values get copies of one evaluated state; each keeps its own arrays and its own values
of params the setup never read, and a setup that depends on the PE itself is evaluated per PE."""

from __future__ import annotations

import numpy as np

from kernelc.csl import model as m
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_file

COLUMN_LAYOUT = """
param height: u16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = height });
layout {
  @set_rectangle(1, height);
  for (@range(u16, height)) |y| {
    @set_tile_code(0, y, "pe.csl", .{ .memcpy_params = memcpy.get_params(0), .n = 4,
                                       .k = 10 * y + 1, .big = y == height - 1 });
  }
  @export_name("a", [*]f32, true);
  @export_name("compute", fn()void);
}
"""

PE_HEAD = """
param memcpy_params: comptime_struct;
param n: u16;
param k: i32;
param big: bool;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const layout_mod = @import_module("<layout>");
"""

PE_TAIL = """
var a_ptr: [*]f32 = &a;
fn compute() void {
  a[0] += @as(f32, k);
  sys_mod.unblock_cmd_stream();
}
comptime {
  @export_symbol(a_ptr, "a");
  @export_symbol(compute);
}
"""


def column(body: str, height: int = 4) -> Simulator:
    layout = parse_file(COLUMN_LAYOUT, "layout.csl")
    pe = parse_file(PE_HEAD + body + PE_TAIL, "pe.csl")
    return Simulator(m.Program(layout, (pe,)), {"height": height})


def test_alike_pes_share_one_setup_but_keep_their_own_arrays_and_params() -> None:
    # the setup reads n and big (not k): PEs 0..2 agree, PE 3 has a larger array
    sim = column("var a = @zeros([if (big) 2 * n else n]f32);")
    pes = [sim.pe(0, y) for y in range(4)]
    assert pes[0].gt is pes[1].gt is pes[2].gt  # one evaluated setup, copied
    assert pes[3].gt is not pes[0].gt
    arrays = [pe.g["a"] for pe in pes]
    assert len({a.data.ctypes.data for a in arrays}) == 4  # distinct storage
    assert [len(a.data) for a in arrays] == [4, 4, 4, 8]
    assert all(pe.exports["a"].array is pe.g["a"] for pe in pes)
    sim.h2d("a", np.ones((4, 1, 4), dtype=np.float32).view(np.uint32), 0, 0, 1, 4)
    sim.launch("compute")
    got = sim.d2h("a", 0, 0, 1, 4, 4).view(np.float32)
    np.testing.assert_array_equal(got[:, 0, 0], [2, 12, 22, 32])  # each PE's own k
    np.testing.assert_array_equal(got[:, 0, 1:], 1)


def test_setup_that_reads_the_pe_coordinates_is_evaluated_per_pe() -> None:
    sim = column("var a = @constants([n]f32, @as(f32, layout_mod.get_y_coord()));")
    pes = [sim.pe(0, y) for y in range(4)]
    assert [float(pe.g["a"].data[1]) for pe in pes] == [0, 1, 2, 3]
    assert pes[0].gt is not pes[1].gt
