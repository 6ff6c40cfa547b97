"""The fabric simulator on small hand-written CSL programs: routes, wavelets, tasks, DSD
operations, memcpy, memory limits, collectives and deadlock reports."""

from __future__ import annotations

import numpy as np
import pytest

from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_file
from kernelc.runtime.fabric.values import FabricError

CHAIN_LAYOUT = """
param width: u16;
param n: u16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = width, .height = 1 });
const c0: color = @get_color(0);
layout {
  @set_rectangle(width, 1);
  for (@range(u16, width)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .n = n,
                                       .first = x == 0, .last = x == width - 1, .c = c0 });
    if (x == 0) {
      @set_color_config(x, 0, c0, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
    } else if (x == width - 1) {
      @set_color_config(x, 0, c0, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
    } else {
      @set_color_config(x, 0, c0, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ MIDDLE } } });
    }
  }
  @export_name("a", [*]f32, true);
  @export_name("compute", fn()void);
}
"""

CHAIN_PE = """
param memcpy_params: comptime_struct;
param n: u16;
param first: bool;
param last: bool;
param c: color;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
var a = @zeros([n]f32);
var a_ptr: [*]f32 = &a;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });
const out = @get_dsd(fabout_dsd, .{ .fabric_color = c, .extent = n,
                                    .output_queue = @get_output_queue(2) });
const in = @get_dsd(fabin_dsd, .{ .fabric_color = c, .extent = n,
                                  .input_queue = @get_input_queue(2) });
const exit_id: local_task_id = @get_local_task_id(9);
fn compute() void {
  if (first) {
    @fmovs(out, a_dsd, .{ .async = true, .activate = exit_id });
  } else if (last) {
    @fadds(a_dsd, a_dsd, in, .{ .async = true, .activate = exit_id });
  } else {
    sys_mod.unblock_cmd_stream();
  }
}
task exit() void {
  sys_mod.unblock_cmd_stream();
}
comptime {
  @bind_local_task(exit, exit_id);
  @export_symbol(a_ptr, "a");
  @export_symbol(compute);
}
"""


def program(layout: str, *pes: tuple[str, str]) -> m.Program:
    return m.Program(
        parse_file(layout, "layout.csl"), tuple(parse_file(text, name) for name, text in pes)
    )


def chain(middle: str = "EAST", width: int = 4, n: int = 8) -> Simulator:
    layout = CHAIN_LAYOUT.replace("MIDDLE", middle)
    return Simulator(program(layout, ("pe.csl", CHAIN_PE)), {"width": width, "n": n})


def test_wavelets_cross_the_row_and_are_added_on_arrival() -> None:
    sim = chain()
    data = np.arange(32, dtype=np.float32).reshape(1, 4, 8)
    sim.h2d("a", data, 0, 0, 4, 1)
    cycles = sim.launch("compute")
    got = sim.d2h("a", 0, 0, 4, 1, 8).view(np.float32)
    np.testing.assert_array_equal(got[0, 3], data[0, 3] + data[0, 0])
    np.testing.assert_array_equal(got[0, :3], data[0, :3])
    # the last of 8 wavelets leaves PE 0 at setup + 7 and needs 3 hops: the receiver finishes
    # one cycle after it; the launch reaches PE 3 after 3 extra cycles of dispatch.
    assert cycles >= machine.LAUNCH_CYCLES + machine.DSD_SETUP_CYCLES + 7 + 3
    assert cycles < machine.LAUNCH_CYCLES + machine.DSD_SETUP_CYCLES + 7 + 3 + 20
    stats = sim.stats()
    assert stats["busy_cycles_per_pe"][0][0] > 0
    assert stats["memory_bytes_per_pe"][0][0] == 32 + machine.code_bytes(
        parse_file(CHAIN_PE, "pe.csl").decls
    )


def test_link_time_grows_with_the_number_of_hops() -> None:
    short = chain(width=2)
    long = chain(width=6)
    for sim, w in ((short, 2), (long, 6)):
        sim.h2d("a", np.ones((1, w, 8), np.float32), 0, 0, w, 1)
    extra = long.launch("compute") - short.launch("compute")
    # four more hops cost four cycles (the launch also reaches the receiver four cycles later;
    # the receiver waits for whichever comes last, so the two delays overlap)
    assert extra == 4


def test_broken_route_is_reported_as_deadlock_with_coordinates() -> None:
    sim = chain(middle="SOUTH")
    with pytest.raises(FabricError) as err:
        sim.launch("compute")
    text = str(err.value)
    assert "deadlock" in text
    assert "PE (3, 0): @fadds waits for 0 of 8 wavelets on color 0" in text
    assert "leave the program rectangle at PE (1, 0) going SOUTH" in text


def test_route_that_does_not_accept_the_direction_is_reported() -> None:
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST").replace(
        ".rx = .{ WEST }, .tx = .{ RAMP }", ".rx = .{ NORTH }, .tx = .{ RAMP }"
    )
    sim = Simulator(program(layout, ("pe.csl", CHAIN_PE)), {"width": 3, "n": 4})
    with pytest.raises(FabricError) as err:
        sim.launch("compute")
    assert "stuck at PE (2, 0): its route does not accept WEST" in str(err.value)


def test_a_task_that_is_never_unblocked_is_reported() -> None:
    pe = CHAIN_PE.replace(
        "@bind_local_task(exit, exit_id);", "@bind_local_task(exit, exit_id);\n  @block(exit_id);"
    )
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST")
    sim = Simulator(program(layout, ("pe.csl", pe)), {"width": 3, "n": 4})
    with pytest.raises(FabricError) as err:
        sim.launch("compute")
    text = str(err.value)
    assert "PE (0, 0): task 'exit' (local task ID 9) is activated but blocked" in text
    assert "PE (2, 0)" in text


def test_memory_beyond_48_kb_is_refused() -> None:
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST")
    with pytest.raises(FabricError) as err:
        Simulator(program(layout, ("pe.csl", CHAIN_PE)), {"width": 2, "n": 12000})
    assert "needs" in str(err.value) and "'a' 48,000 bytes" in str(err.value)


def test_memcpy_colors_are_reserved() -> None:
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST").replace("@get_color(0)", "@get_color(21)")
    with pytest.raises(FabricError, match="reserved by memcpy"):
        Simulator(program(layout, ("pe.csl", CHAIN_PE)), {"width": 2, "n": 4})


def test_export_of_an_array_instead_of_a_pointer_is_refused() -> None:
    pe = CHAIN_PE.replace('@export_symbol(a_ptr, "a");', '@export_symbol(a, "a");')
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST")
    with pytest.raises(FabricError, match="through a pointer variable"):
        Simulator(program(layout, ("pe.csl", pe)), {"width": 2, "n": 4})


OPS_LAYOUT = """
param n: u16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = 1 });
layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "ops.csl", .{ .memcpy_params = memcpy.get_params(0), .n = n });
  @export_name("a", [*]f32, true);
  @export_name("b", [*]f32, true);
  @export_name("r", [*]f32, true);
  @export_name("go", fn()void);
}
"""

OPS_PE = """
param memcpy_params: comptime_struct;
param n: u16;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const math = @import_module("<math>");
var a = @zeros([n]f32);
var b = @zeros([n]f32);
var r = @zeros([6 * n]f32);
var a_ptr: [*]f32 = &a;
var b_ptr: [*]f32 = &b;
var r_ptr: [*]f32 = &r;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> b[i] });
const rd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> r[i] });
const rev = @get_dsd(mem4d_dsd, .{ .tensor_access = |i|{n} -> a[n - 1 - i] });
fn half(x: f32) f32 {
  return if (x > 0.0) x * 0.5 else -x;
}
fn go() void {
  @fmacs(rd, ad, bd, 3.0);
  @fsubs(@increment_dsd_offset(rd, n, f32), ad, 1.5);
  @fmaxs(@increment_dsd_offset(rd, 2 * n, f32), ad, bd);
  @map(math.sqrt_f32, bd, @increment_dsd_offset(rd, 3 * n, f32));
  @map(half, ad, @increment_dsd_offset(rd, 4 * n, f32));
  @fmovs(@increment_dsd_offset(rd, 5 * n, f32), rev);
  sys_mod.unblock_cmd_stream();
}
comptime {
  @export_symbol(a_ptr, "a");
  @export_symbol(b_ptr, "b");
  @export_symbol(r_ptr, "r");
  @export_symbol(go);
}
"""


def test_dsd_operations_compute_elementwise_in_f32() -> None:
    n = 7
    rng = np.random.default_rng(1)
    a = rng.uniform(-2, 2, n).astype(np.float32)
    b = rng.uniform(0, 3, n).astype(np.float32)
    sim = Simulator(program(OPS_LAYOUT, ("ops.csl", OPS_PE)), {"n": n})
    sim.h2d("a", a.reshape(1, 1, n), 0, 0, 1, 1)
    sim.h2d("b", b.reshape(1, 1, n), 0, 0, 1, 1)
    sim.launch("go")
    r = sim.d2h("r", 0, 0, 1, 1, 6 * n).view(np.float32).reshape(6, n)
    product = (b * np.float32(3.0)).astype(np.float32)
    np.testing.assert_array_equal(r[0], (a + product).astype(np.float32))
    np.testing.assert_array_equal(r[1], (a - np.float32(1.5)).astype(np.float32))
    np.testing.assert_array_equal(r[2], np.maximum(a, b))
    np.testing.assert_array_equal(r[3], np.sqrt(b))
    np.testing.assert_array_equal(r[4], np.where(a > 0, a * np.float32(0.5), -a))
    np.testing.assert_array_equal(r[5], a[::-1])


def test_mem1d_stride_must_fit_in_an_i8() -> None:
    pe = OPS_PE.replace("|i|{n} -> b[i]", "|i|{n} -> b[i * 200]")
    with pytest.raises(FabricError, match="does not fit in an i8"):
        Simulator(program(OPS_LAYOUT, ("ops.csl", pe)), {"n": 3})


BCAST_LAYOUT = """
param width: i16;
param height: i16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = width, .height = height });
const c2d = @import_module("<collectives_2d/params>");
layout {
  @set_rectangle(width, height);
  for (@range(i16, width)) |x| {
    for (@range(i16, height)) |y| {
      const p = c2d.get_params(x, y, .{
        .x_colors = .{ @get_color(0), @get_color(1) },
        .x_entrypoints = .{ @get_local_task_id(8), @get_local_task_id(9) },
        .y_colors = .{ @get_color(2), @get_color(3) },
        .y_entrypoints = .{ @get_local_task_id(10), @get_local_task_id(11) },
      });
      @set_tile_code(x, y, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .c2d_params = p });
    }
  }
  @export_name("v", [*]f32, true);
  @export_name("s", [*]f32, true);
  @export_name("go", fn()void);
}
"""

BCAST_PE = """
param memcpy_params: comptime_struct;
param c2d_params: comptime_struct;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const mpi_x = @import_module("<collectives_2d/pe>", .{ .dim_params = c2d_params.x });
var v = @zeros([4]f32);
var s = @zeros([4]f32);
var v_ptr: [*]f32 = &v;
var s_ptr: [*]f32 = &s;
const b_id: local_task_id = @get_local_task_id(12);
const r_id: local_task_id = @get_local_task_id(13);
fn go() void {
  mpi_x.init();
  mpi_x.broadcast(1, @ptrcast([*]u32, &v), 4, b_id);
}
task bcast_done() void {
  mpi_x.reduce_fadds(0, &v, &s, 4, r_id);
}
task reduce_done() void {
  sys_mod.unblock_cmd_stream();
}
comptime {
  @bind_local_task(bcast_done, b_id);
  @bind_local_task(reduce_done, r_id);
  @export_symbol(v_ptr, "v");
  @export_symbol(s_ptr, "s");
  @export_symbol(go);
}
"""


def test_collectives_broadcast_then_reduce_along_rows() -> None:
    sim = Simulator(program(BCAST_LAYOUT, ("pe.csl", BCAST_PE)), {"width": 3, "height": 2})
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    sim.h2d("v", data, 0, 0, 3, 2)
    sim.launch("go")
    v = sim.d2h("v", 0, 0, 3, 2, 4).view(np.float32)
    s = sim.d2h("s", 0, 0, 1, 2, 4).view(np.float32)
    for row in range(2):
        for x in range(3):
            np.testing.assert_array_equal(v[row, x], data[row, 1])
        np.testing.assert_array_equal(s[row, 0], 3 * data[row, 1])


def test_collective_that_a_pe_never_joins_is_a_deadlock() -> None:
    pe = BCAST_PE.replace(
        "  mpi_x.broadcast(1, @ptrcast([*]u32, &v), 4, b_id);",
        "  if (mpi_x.pe_id != 2) {\n    mpi_x.broadcast(1, @ptrcast([*]u32, &v), "
        "4, b_id);\n  } else {\n    sys_mod.unblock_cmd_stream();\n  }",
    )
    sim = Simulator(program(BCAST_LAYOUT, ("pe.csl", pe)), {"width": 3, "height": 1})
    with pytest.raises(FabricError) as err:
        sim.launch("go")
    assert "PE (0, 0): collective broadcast #0 along x (root 1) waits for PE(s) (2, 0)" in str(
        err.value
    )


def test_memcpy_col_major_order_matches_the_sdk_layout() -> None:
    from kernelc.runtime.fabric.sdk import SdkRuntime

    host = np.arange(2 * 3 * 4, dtype=np.float32)
    rows = SdkRuntime._host_view(
        host,
        2,
        3,
        4,
        __import__("kernelc.runtime.fabric.sdk", fromlist=["MemcpyOrder"]).MemcpyOrder.COL_MAJOR,
    )
    # element k of PE (i, j) sits at j + h * (i + w * k) in COL_MAJOR order
    assert rows[1, 2, 3] == host[1 + 2 * (2 + 3 * 3)]


DATA_PE = (
    CHAIN_PE.replace(
        "const exit_id: local_task_id = @get_local_task_id(9);",
        """const exit_id: local_task_id = @get_local_task_id(9);
const recv_id: data_task_id = @get_data_task_id(c);
var got: i16 = 0;
var total: f32 = 0.0;
task recv(v: f32) void {
  total += v;
  got += 1;
  if (got == n) {
    a[0] = total;
    sys_mod.unblock_cmd_stream();
  }
}""",
    )
    .replace(
        "@fadds(a_dsd, a_dsd, in, .{ .async = true, .activate = exit_id });",
        "@unblock(recv_id);",
    )
    .replace(
        "@bind_local_task(exit, exit_id);",
        "@bind_local_task(exit, exit_id);\n  if (last) {\n    @bind_data_task(recv, recv_id);\n"
        "    @block(recv_id);\n  }",
    )
)


def test_data_task_runs_once_per_wavelet_after_it_is_unblocked() -> None:
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST")
    sim = Simulator(program(layout, ("pe.csl", DATA_PE)), {"width": 3, "n": 5})
    data = np.arange(15, dtype=np.float32).reshape(1, 3, 5)
    sim.h2d("a", data, 0, 0, 3, 1)
    sim.launch("compute")
    got = sim.d2h("a", 2, 0, 1, 1, 1).view(np.float32)
    assert got[0, 0, 0] == np.float32(data[0, 0].sum())


def test_blocked_data_task_with_queued_wavelets_is_a_deadlock() -> None:
    never_unblocked = DATA_PE.replace("@unblock(recv_id);", "")
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST")
    sim = Simulator(program(layout, ("pe.csl", never_unblocked)), {"width": 3, "n": 5})
    with pytest.raises(FabricError) as err:
        sim.launch("compute")
    text = str(err.value)
    assert "PE (2, 0): data task 'recv' is blocked with 5 wavelet(s) queued on color 0" in text


def half_chain() -> Simulator:
    """The chain program on f16 arrays (nothing launched: host copies only)."""
    layout = CHAIN_LAYOUT.replace("MIDDLE", "EAST").replace("f32", "f16")
    pe = CHAIN_PE.replace("f32", "f16").replace("fmovs", "fmovh").replace("fadds", "faddh")
    return Simulator(program(layout, ("pe.csl", pe)), {"width": 2, "n": 4})


def test_16_bit_copies_move_the_low_half_of_each_host_word() -> None:
    sim = half_chain()
    values = np.array([1.5, -2.0, 65504.0, np.inf] * 2, dtype=np.float16).reshape(1, 2, 4)
    words = values.view(np.uint16).astype(np.uint32) | np.uint32(0xABCD0000)
    sim.h2d("a", words, 0, 0, 2, 1, bits=16)
    got = sim.d2h("a", 0, 0, 2, 1, 4, bits=16)
    assert got.dtype == np.uint32 and int(got.max()) <= 0xFFFF
    np.testing.assert_array_equal(got.astype(np.uint16).view(np.float16), values)


def test_memcpy_data_type_must_match_the_array() -> None:
    half, full = half_chain(), chain(width=2)
    words = np.zeros((1, 2, 4), np.uint32)
    with pytest.raises(FabricError, match="16-bit memcpy of 'a', whose elements are 32-bit"):
        full.h2d("a", words, 0, 0, 2, 1, bits=16)
    with pytest.raises(FabricError, match="32-bit memcpy of 'a', whose elements are 16-bit"):
        half.h2d("a", words, 0, 0, 2, 1)
    with pytest.raises(FabricError, match="32-bit memcpy of 'a', whose elements are 16-bit"):
        half.d2h("a", 0, 0, 2, 1, 4)


def test_an_if_expression_chain_without_else_is_evaluated_and_must_take_a_branch() -> None:
    """The SDK examples pick per-arch values with `if (@is_arch(..)) a else if (@is_arch(..)) b`."""
    chain_of = 'if (@is_arch("wse2")) @get_color(0) else if (@is_arch("wse3")) @get_color(1)'
    for arch, color in (("wse2", 0), ("wse3", 1)):
        layout = CHAIN_LAYOUT.replace("@get_color(0)", chain_of)
        sim = Simulator(program(layout, ("pe.csl", CHAIN_PE)), {"width": 2, "n": 4}, arch)
        assert sorted(sim.pe(0, 0).routes) == [color]
    layout = CHAIN_LAYOUT.replace("@get_color(0)", chain_of.replace("wse3", "wse9"))
    with pytest.raises(FabricError, match="an if-expression without else took no branch"):
        Simulator(program(layout, ("pe.csl", CHAIN_PE)), {"width": 2, "n": 4}, "wse3")
