"""What the SDK's tutorials need from the fabric simulator, each on a small CSL program written
for this test: streaming-mode memcpy, the cslc buffer-column flags, params nobody reads,
pointers to one element, @map into a scalar, ``cerebras.sdk.sdk_utils``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.diagnostics import KernelcError, register_source
from kernelc.runtime.fabric import sdk_utils
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_file, parse_program
from kernelc.runtime.fabric.runner import compile_program
from kernelc.runtime.fabric.typecheck import check_program
from kernelc.runtime.fabric.values import FabricError
from kernelc.runtime.fabric.wavelets import wavelet_args

# One PE between two memcpy streams: every f32 wavelet in comes back out plus one.
STREAM_LAYOUT = """param in_id: i16;
param out_id: i16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = 1,
  .MEMCPYH2D_1 = @get_color(in_id), .MEMCPYD2H_1 = @get_color(out_id) });
layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0) });
  ROUTE
}
"""

STREAM_PE = """param memcpy_params: comptime_struct;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const out_oq: output_queue = @get_output_queue(3);
const recv_id: data_task_id = @get_data_task_id(sys_mod.MEMCPYH2D_1);
const out = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = sys_mod.MEMCPYD2H_1,
                                    .output_queue = out_oq });
var last: f32 = 0.0;
task recv(x: f32) void {
  last = x + 1.0;
  @fmovs(out, last);
}
comptime {
  @bind_data_task(recv, recv_id);
}
"""

# The two halves of a 32-bit wavelet as the two 16-bit arguments of a data task.
HALVES_PE = """param memcpy_params: comptime_struct;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const out_oq: output_queue = @get_output_queue(3);
const recv_id: data_task_id = @get_data_task_id(sys_mod.MEMCPYH2D_1);
const out = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = sys_mod.MEMCPYD2H_1,
                                    .output_queue = out_oq });
var table = @zeros([4]i16);
task recv(value: i16, index: i16) void {
  table[index] = value;
  @mov16(out, table[index] - index);
}
comptime {
  @bind_data_task(recv, recv_id);
}
"""


def stream_program(pe: str = STREAM_PE, route: str = "") -> m.Program:
    layout = STREAM_LAYOUT.replace("ROUTE", route)
    register_source("layout.csl", layout)
    register_source("pe.csl", pe)
    return m.Program(parse_file(layout, "layout.csl"), (parse_file(pe, "pe.csl"),))


def stream_sim(program: m.Program) -> Simulator:
    params = {"in_id": 0, "out_id": 1}
    check_program(program, Path("."), "wse2", params)
    sim = Simulator(program, params, "wse2")
    sim.start()
    return sim


def test_streaming_h2d_feeds_a_data_task_and_d2h_reads_what_it_sends() -> None:
    sim = stream_sim(stream_program())
    data = np.array([1.5, -2.0, 7.25], dtype=np.float32).reshape(1, 1, 3)
    sim.h2d_stream(0, data, 0, 0, 1, 1, 32)
    out = sim.d2h_stream(1, 0, 0, 1, 1, 3, 32).view(np.float32)
    np.testing.assert_array_equal(out.reshape(-1), [2.5, -1.0, 8.25])


def test_a_data_task_with_two_16_bit_params_gets_the_low_then_the_high_half() -> None:
    sim = stream_sim(stream_program(HALVES_PE))
    words = np.array([(0 << 16) | 42, (3 << 16) | 0xFFFE], dtype=np.uint32).reshape(1, 1, 2)
    sim.h2d_stream(0, words, 0, 0, 1, 1, 16)
    out = sim.d2h_stream(1, 0, 0, 1, 1, 2, 16)
    assert out.reshape(-1).tolist() == [42, 0xFFFB]  # -2 - 3 = -5, zero-extended
    assert sim.pe(0, 0).g["table"].data.tolist() == [42, 0, 0, -2]


def test_streaming_on_a_color_the_layout_did_not_give_memcpy_is_an_error() -> None:
    sim = stream_sim(stream_program())
    with pytest.raises(FabricError) as err:
        sim.h2d_stream(5, np.zeros((1, 1, 1), np.float32), 0, 0, 1, 1, 32)
    assert str(err.value).splitlines()[0] == (
        "<fabric simulator>:1:1: error: memcpy_h2d(streaming=True) on color 5: the layout gave "
        "<memcpy/get_params> no MEMCPYH2D_1 or MEMCPYH2D_2 of that color (its streaming colors: "
        "MEMCPYH2D_1 = 0, MEMCPYD2H_1 = 1)"
    )


def test_a_d2h_stream_waiting_for_wavelets_never_sent_is_a_deadlock() -> None:
    sim = stream_sim(stream_program())
    sim.h2d_stream(0, np.ones((1, 1, 2), np.float32), 0, 0, 1, 1, 32)
    with pytest.raises(FabricError) as err:
        sim.d2h_stream(1, 0, 0, 1, 1, 3, 32)
    assert "it waits for 3 wavelet(s) from PE (0, 0), which sent 2" in str(err.value)


def test_an_h2d_stream_nothing_reads_stalls_once_the_input_queue_is_full() -> None:
    unread = STREAM_PE.replace("@bind_data_task(recv, recv_id);", "")
    sim = stream_sim(stream_program(unread))
    n = machine.INPUT_QUEUE_WAVELETS + 3
    with pytest.raises(FabricError) as err:
        sim.h2d_stream(0, np.ones((1, 1, n), np.float32), 0, 0, 1, 1, 32)
    lines = str(err.value).splitlines()
    assert "deadlock in streaming memcpy_h2d on color 0" in lines[0]
    assert lines[1] == (
        f"  3 wavelet(s) wait for room in PE (0, 0)'s input queue "
        f"({machine.INPUT_QUEUE_WAVELETS} queued, {machine.INPUT_QUEUE_WAVELETS} fit, nothing "
        "reads them)"
    )


def test_routing_a_memcpy_streaming_color_is_an_error() -> None:
    route = (
        "@set_color_config(0, 0, @get_color(in_id), "
        ".{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });"
    )
    with pytest.raises(FabricError) as err:
        stream_sim(stream_program(route=route))
    assert "color 0 is used by memcpy's streaming color MEMCPYH2D_1" in str(err.value)


def test_a_streaming_color_the_layout_did_not_give_is_a_located_error() -> None:
    pe = STREAM_PE.replace("sys_mod.MEMCPYH2D_1", "sys_mod.MEMCPYH2D_2")
    with pytest.raises(FabricError) as err:
        stream_sim(stream_program(pe))
    assert (
        "sys_mod.MEMCPYH2D_2: the layout did not give <memcpy/get_params> .MEMCPYH2D_2 = <color>"
        in str(err.value)
    )


# ------------------------------------------------------------------ cslc buffer columns


def test_buffer_columns_move_the_offsets_and_widen_the_fabric(tmp_path: Path) -> None:
    (tmp_path / "layout.csl").write_text(STREAM_LAYOUT.replace("ROUTE", ""))
    (tmp_path / "pe.csl").write_text(STREAM_PE)
    common = {
        "arch": "wse2",
        "params": {"in_id": 0, "out_id": 1},
        "channels": 1,
        "memcpy": True,
        "out_dir": tmp_path / "out",
    }
    layout = tmp_path / "layout.csl"
    compile_program(layout, fabric_dims=(8, 3), fabric_offsets=(4, 1), **common)
    compile_program(
        layout, fabric_dims=(11, 3), fabric_offsets=(6, 1), west_buf=2, east_buf=1, **common
    )
    with pytest.raises(FabricError) as err:
        compile_program(
            layout, fabric_dims=(11, 3), fabric_offsets=(4, 1), west_buf=2, east_buf=1, **common
        )
    assert "--fabric-offsets=4,1: memcpy programs with 2 west buffer columns start at 6,1" in str(
        err.value
    )
    with pytest.raises(FabricError) as err:
        compile_program(
            layout, fabric_dims=(10, 3), fabric_offsets=(6, 1), west_buf=2, east_buf=1, **common
        )
    assert "(needs at least 11,3)" in str(err.value)


# ------------------------------------------------------------------------ the language

LAYOUT_1PE = """layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "pe.csl", .{});
}
"""


def one_pe(pe: str) -> Simulator:
    register_source("layout.csl", LAYOUT_1PE)
    register_source("pe.csl", pe)
    program = m.Program(parse_file(LAYOUT_1PE, "layout.csl"), (parse_file(pe, "pe.csl"),))
    check_program(program, Path("."), "wse2", {})
    return Simulator(program, {}, "wse2")


def test_a_param_nobody_reads_may_stay_unset_but_reading_it_is_an_error() -> None:
    sim = one_pe("param unused: u16;\nvar x: u16 = 3;\n")
    assert int(sim.pe(0, 0).g["x"]) == 3
    with pytest.raises(FabricError) as err:
        one_pe("param p: u16;\nvar x: u16 = p;\n")
    assert "param 'p' has no value" in str(err.value)


POINTERS = """var data = [3]i16 { 1, 2, 3 };
var total = @zeros([1]i16);
var sum = @zeros([1]i32);
const in = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> data[i] });
fn bump(all: *[3]i16, out: *i16) void {
  (all.*)[0] += 10;
  out.* = (all.*)[0] + (all.*)[2];
}
fn add(value: i16, acc: *i32) i32 {
  return acc.* + @as(i32, value);
}
comptime {
  bump(&data, &total[0]);
  @map(add, in, &sum[0], &sum[0]);
}
"""


def test_a_pointer_to_one_element_reads_and_writes_that_element() -> None:
    g = one_pe(POINTERS).pe(0, 0).g
    assert g["data"].data.tolist() == [11, 2, 3]
    assert g["total"].data.tolist() == [14]


def test_map_into_a_scalar_pointer_runs_once_per_element_as_a_reduction() -> None:
    assert one_pe(POINTERS).pe(0, 0).g["sum"].data.tolist() == [16]


# ------------------------------------------------------------------------ host helpers


def test_sdk_utils_widen_16_bit_data_and_view_the_low_halves() -> None:
    data = np.array([-1, 5, 7], dtype=np.int16)
    assert sdk_utils.input_array_to_u32(data, None, 3).tolist() == [0xFFFF, 5, 7]
    assert sdk_utils.input_array_to_u32(data, 1, 2).tolist() == [0xFFFF, (1 << 16) | 5, 7]
    words = np.array([0x0001FFFF, 0x00020005], dtype=np.uint32)
    assert sdk_utils.memcpy_view(words, np.dtype(np.int16)).tolist() == [-1, 5]
    assert sdk_utils.memcpy_view(words, np.dtype(np.uint32)).tolist() == [0x0001FFFF, 0x00020005]


# ------------------------------------------------------------------------ libraries

LIBRARY_PE = """const tsc = @import_module("<time>");
const random = @import_module("<random>");
const prt = @import_module("<simprint>");
const trace = @import_module("<debug>", .{ .key = "log", .buffer_size = 16 });
var stamp = @zeros([tsc.tsc_size_words]u16);
var draws = @zeros([4]f32);
fn run() void {
  tsc.enable_tsc();
  tsc.get_timestamp(&stamp);
  for (@range(u16, 4)) |i| {
    draws[i] = random.random_f32(-2.0, 2.0);
  }
  prt.print_string("tab\\there, ");
  prt.print_u16_decimal(@as(u16, 7));
  prt.print_string(" ");
  prt.print_u32_hex(@as(u32, 255));
  prt.print_string("\\n");
  trace.trace_string("value");
  trace.trace_u32(@as(u32, 42));
  trace.trace_timestamp();
}
comptime {
  run();
}
"""


def test_time_random_simprint_and_debug_libraries() -> None:
    sim = one_pe(LIBRARY_PE)
    g = sim.pe(0, 0).g
    assert g["stamp"].data.dtype == np.uint16 and g["stamp"].data.shape == (3,)
    draws = g["draws"].data
    assert np.all((draws >= -2.0) & (draws < 2.0)) and len(set(draws.tolist())) == 4
    assert [line for _, line in sim.simlog] == ["PE (0, 0): tab\there, 7 0x000000ff"]
    entries = sim.traces[(0, 0, "log")]
    assert entries[:2] == ["value", 42] and isinstance(entries[2], int)


def test_a_timestamp_before_enable_tsc_and_an_unknown_escape_are_errors() -> None:
    with pytest.raises(FabricError) as err:
        one_pe(LIBRARY_PE.replace("tsc.enable_tsc();", ""))
    assert "get_timestamp before enable_tsc(): the counter does not run" in str(err.value)
    with pytest.raises(KernelcError) as err:
        one_pe(LIBRARY_PE.replace("\\there", "\\qhere"))
    assert "invalid escape '\\q' in a string literal" in str(err.value)


# ---------------------------------------------------------------------------- FIFOs

FIFO_PE = """param memcpy_params: comptime_struct;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const in_iq: input_queue = @get_input_queue(2);
const out_oq: output_queue = @get_output_queue(3);
const start_id: local_task_id = @get_local_task_id(8);
var store = @zeros([DEPTH]f32);
const fifo = @allocate_fifo(store);
const in = @get_dsd(fabin_dsd, .{ .extent = 0x7fff, .fabric_color = sys_mod.MEMCPYH2D_1,
                                  .input_queue = in_iq });
const out = @get_dsd(fabout_dsd, .{ .extent = 0x7fff, .fabric_color = sys_mod.MEMCPYD2H_1,
                                    .output_queue = out_oq });
const two = [1]f32 { 2.0 };
const twos = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{0x7fff} -> two[0] });
task start() void {
  @fmuls(fifo, in, twos, .{ .async = ASYNC });
  DRAIN
}
comptime {
  @bind_local_task(start, start_id);
  @activate(start_id);
}
"""


def fifo_sim(depth: int = 4, drain: bool = True, is_async: str = "true") -> Simulator:
    pe = (
        FIFO_PE.replace("DEPTH", str(depth))
        .replace("ASYNC", is_async)
        .replace("DRAIN", "@fmovs(out, fifo, .{ .async = true });" if drain else "")
    )
    return stream_sim(stream_program(pe))


def test_a_fifo_between_two_operations_passes_more_than_it_holds() -> None:
    sim = fifo_sim(depth=4)
    data = np.arange(40, dtype=np.float32).reshape(1, 1, 40)
    sim.h2d_stream(0, data, 0, 0, 1, 1, 32)
    out = sim.d2h_stream(1, 0, 0, 1, 1, 40, 32).view(np.float32)
    np.testing.assert_array_equal(out.reshape(-1), 2 * np.arange(40, dtype=np.float32))


def test_a_fifo_nobody_drains_holds_its_writer_and_the_report_says_so() -> None:
    sim = fifo_sim(depth=4, drain=False)
    sim.h2d_stream(0, np.ones((1, 1, 6), np.float32), 0, 0, 1, 1, 32)
    with pytest.raises(FabricError) as err:
        sim.d2h_stream(1, 0, 0, 1, 1, 1, 32)
    assert (
        "PE (0, 0): @fmuls (4 of 32767 elements done) waits for 2 of 32763 wavelets on color 0, "
        "room in its destination FIFO over 'store' (full)" in str(err.value)
    )


def test_an_operation_on_a_fifo_must_be_asynchronous() -> None:
    with pytest.raises(FabricError) as err:
        fifo_sim(is_async="false")
    assert "@fmuls with a FIFO operand must be .async = true" in str(err.value)


# ------------------------------------------------------------------------ color swap

SWAP_LAYOUT = """const memcpy = @import_module("<memcpy/get_params>", .{ .width = 3, .height = 1 });
const red: color = @get_color(4);
const blue: color = @get_color(5);
layout {
  @set_rectangle(3, 1);
  for (@range(u16, 3)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .red = red,
                                      .blue = blue, .first = x == 0 });
    const rx = if (x == 0) .{ RAMP } else .{ WEST };
    const tx = if (x == 2) .{ RAMP } else .{ RAMP, EAST };
    @set_color_config(x, 0, red, .{ .routes = .{ .rx = rx, .tx = tx, .color_swap_x = SWAP } });
    @set_color_config(x, 0, blue, .{ .routes = .{ .rx = rx, .tx = tx, .color_swap_x = SWAP } });
  }
  @export_name("got", [*]u32, true);
  @export_name("go", fn()void);
}
"""

SWAP_PE = """param memcpy_params: comptime_struct;
param red: color;
param blue: color;
param first: bool;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const out_oq: output_queue = @get_output_queue(2);
const red_id: data_task_id = @get_data_task_id(red);
const blue_id: data_task_id = @get_data_task_id(blue);
var got = @zeros([2]u32);
var got_ptr: [*]u32 = &got;
const out = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = red, .output_queue = out_oq });
task on_red(v: u32) void {
  got[0] += v;
}
task on_blue(v: u32) void {
  got[1] += v;
}
fn go() void {
  if (first) {
    @mov32(out, @as(u32, 5));
  }
  sys_mod.unblock_cmd_stream();
}
comptime {
  @bind_data_task(on_red, red_id);
  @bind_data_task(on_blue, blue_id);
  @export_symbol(got_ptr, "got");
  @export_symbol(go);
}
"""


def swap_run(swap: str, arch: str = "wse2") -> np.ndarray:
    layout = SWAP_LAYOUT.replace("SWAP", swap)
    register_source("layout.csl", layout)
    register_source("pe.csl", SWAP_PE)
    program = m.Program(parse_file(layout, "layout.csl"), (parse_file(SWAP_PE, "pe.csl"),))
    check_program(program, Path("."), arch, {})
    sim = Simulator(program, {}, arch)
    sim.launch("go")
    return sim.d2h("got", 0, 0, 3, 1, 2).reshape(3, 2)


def test_color_swap_turns_red_into_blue_at_every_router_along_x() -> None:
    assert swap_run("false").tolist() == [[5, 0], [5, 0], [5, 0]]
    assert swap_run("true").tolist() == [[5, 0], [0, 5], [5, 0]]


def test_color_swap_on_wse3_is_an_error() -> None:
    with pytest.raises(FabricError) as err:
        swap_run("true", "wse3")
    assert "PE (0, 0) color 4: .color_swap_x: color swap is a WSE-2 feature" in str(err.value)


# ------------------------------------------------------------------ imported program files

MODULE_PE = """const counter = @import_module("lib/counter.csl", .{ .step = 3, .tag = TAG });
var seen = @zeros([1]u32);
comptime {
  counter.add();
  counter.add();
  seen[0] = counter.total();
}
"""

COUNTER = """param step: u32;
param tag = {};
var total_now: u32 = 0;
var big = @zeros([BIG]u32);
const unused_dsd = @get_dsd(fabin_dsd, .{ .extent = 1, .fabric_color = tag });
fn add() void {
  if (@is_same_type(@type_of(tag), void)) {
    total_now += step;
  } else {
    total_now += 100 * step;
  }
  EXTRA
}
fn total() u32 {
  return total_now;
}
"""


def module_program(tag: str = "{}", big: int = 4, use_big: bool = False) -> Simulator:
    pe = MODULE_PE.replace("TAG", tag)
    counter = COUNTER.replace("BIG", str(big)).replace("EXTRA", "big[0] = step;" if use_big else "")
    register_source("layout.csl", LAYOUT_1PE)
    register_source("pe.csl", pe)
    register_source("lib/counter.csl", counter)
    program = m.Program(
        parse_file(LAYOUT_1PE, "layout.csl"),
        (parse_file(counter, "lib/counter.csl"), parse_file(pe, "pe.csl")),
    )
    return Simulator(program, {}, "wse2")


def test_an_imported_file_has_its_own_params_globals_and_functions() -> None:
    assert module_program().pe(0, 0).g["seen"].data.tolist() == [6]
    assert module_program(tag="@get_color(3)").pe(0, 0).g["seen"].data.tolist() == [600]


def test_an_imported_file_allocates_only_what_the_program_reaches() -> None:
    # the fabric DSD over a void color and the 64 KB array are never read: no error, no memory
    pe = module_program(big=16384).pe(0, 0)
    assert not any(name.endswith(":big") for name in pe.data)
    with pytest.raises(FabricError) as err:
        module_program(big=16384, use_big=True)
    assert "once 'big' of lib/counter.csl is allocated, more than the 49,152 bytes" in str(
        err.value
    )


def test_parse_program_reads_the_files_tile_programs_import(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "layout.csl").write_text(LAYOUT_1PE)
    (tmp_path / "pe.csl").write_text(MODULE_PE.replace("TAG", "{}"))
    (tmp_path / "lib" / "counter.csl").write_text(COUNTER.replace("BIG", "4").replace("EXTRA", ""))
    program = parse_program(tmp_path, "layout.csl")
    assert [f.name for f in program.pe_files] == ["lib/counter.csl", "pe.csl"]


# ------------------------------------------------------------- switch, scatter and gather

C2D_LAYOUT = """const c2d = @import_module("<collectives_2d/params>");
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 3, .height = 1 });
layout {
  @set_rectangle(3, 1);
  for (@range(u16, 3)) |x| {
    const params = c2d.get_params(x, 0, .{
      .x_colors = .{ @get_color(0), @get_color(1) },
      .x_entrypoints = .{ @get_local_task_id(10), @get_local_task_id(11) },
      .y_colors = .{ @get_color(4), @get_color(5) },
      .y_entrypoints = .{ @get_local_task_id(12), @get_local_task_id(13) },
    });
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x),
                                      .c2d_params = params });
  }
  @export_name("all", [*]u32, true);
  @export_name("mine", [*]u32, true);
  @export_name("back", [*]u32, true);
  @export_name("total", [*]u32, true);
  @export_name("go", fn()void);
}
"""

C2D_PE = """param memcpy_params: comptime_struct;
param c2d_params: comptime_struct;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const mpi_x = @import_module("<collectives_2d/pe>", .{ .dim_params = c2d_params.x });
const step_id: local_task_id = @get_local_task_id(15);
var all = @zeros([6]u32);
var mine = @zeros([2]u32);
var back = @zeros([6]u32);
var all_ptr: [*]u32 = &all;
var mine_ptr: [*]u32 = &mine;
var back_ptr: [*]u32 = &back;
var halves = [1]u32 { 0x3f000000 };
var total = @zeros([1]u32);
var total_ptr: [*]u32 = &total;
var state: u16 = 0;
task step() void {
  switch (state) {
    0 => {
      mpi_x.init();
      mpi_x.scatter(0, all_ptr, mine_ptr, 2, step_id);
    },
    1 => {
      mine[0] += 100;
      mpi_x.gather(0, mine_ptr, back_ptr, 2, step_id);
    },
    2 => {
      mpi_x.reduce_fadds(0, @ptrcast([*]f32, &halves), @ptrcast([*]f32, &total), 1, step_id);
    },
    else => {
      sys_mod.unblock_cmd_stream();
    }
  }
  state += 1;
}
fn go() void {
  @activate(step_id);
}
comptime {
  @bind_local_task(step, step_id);
  @export_symbol(all_ptr, "all");
  @export_symbol(mine_ptr, "mine");
  @export_symbol(back_ptr, "back");
  @export_symbol(total_ptr, "total");
  @export_symbol(go);
}
"""


def test_switch_steps_a_task_through_scatter_gather_and_reduce() -> None:
    register_source("layout.csl", C2D_LAYOUT)
    register_source("pe.csl", C2D_PE)
    program = m.Program(parse_file(C2D_LAYOUT, "layout.csl"), (parse_file(C2D_PE, "pe.csl"),))
    check_program(program, Path("."), "wse2", {})
    sim = Simulator(program, {}, "wse2")
    sim.h2d("all", np.arange(1, 7, dtype=np.uint32).reshape(1, 1, 6), 0, 0, 1, 1)
    sim.launch("go")
    assert sim.d2h("mine", 0, 0, 3, 1, 2).reshape(3, 2).tolist() == [
        [101, 2],
        [103, 4],
        [105, 6],
    ]
    assert sim.d2h("back", 0, 0, 1, 1, 6).reshape(-1).tolist() == [101, 2, 103, 4, 105, 6]
    # reduce_fadds through [*]f32 casts of u32 arrays adds the f32 bits: 3 x 0.5
    assert sim.d2h("total", 0, 0, 1, 1, 1).view(np.float32).reshape(-1).tolist() == [1.5]


def test_a_switch_with_no_matching_case_and_no_else_is_an_error() -> None:
    with pytest.raises(FabricError) as err:
        one_pe(
            "var x: u16 = 2;\nvar y: u16 = 0;\ncomptime {\n  switch (x) {\n"
            "    0, 1 => { y = 1; },\n  }\n}\n"
        )
    assert "switch on 2: no case matches and there is no else" in str(err.value)


# ---------------------------------------------------------------------------- filters


FILTER_LAYOUT = """const memcpy = @import_module("<memcpy/get_params>", .{ .width = 3,
                                                     .height = 1 });
const red: color = @get_color(4);
layout {
  @set_rectangle(3, 1);
  for (@range(u16, 3)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .red = red,
                                      .blue = @get_color(5), .first = x == 0 });
  }
  @set_color_config(0, 0, red, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, red, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP, EAST } },
                                  .filter = FIRST });
  @set_color_config(2, 0, red, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } },
                                  .filter = SECOND });
  @export_name("got", [*]u32, true);
  @export_name("go", fn()void);
}
"""


def filter_run(spec: str) -> np.ndarray:
    """PE 0 sends six words with indices 0..5 east; PEs 1 and 2 keep what their filter allows."""
    layout = FILTER_LAYOUT.replace("FIRST", spec.replace("LO", "1").replace("HI", "2")).replace(
        "SECOND", spec.replace("LO", "4").replace("HI", "9")
    )
    send = "for (@range(u32, 6)) |i| {\n      @mov32(out, (i << 16) | (i + 10));\n    }"
    pe = SWAP_PE.replace("@mov32(out, @as(u32, 5));", send)
    register_source("layout.csl", layout)
    register_source("pe.csl", pe)
    program = m.Program(parse_file(layout, "layout.csl"), (parse_file(pe, "pe.csl"),))
    sim = Simulator(program, {}, "wse2")
    sim.launch("go")
    return sim.d2h("got", 0, 0, 3, 1, 2).reshape(3, 2)[:, 0]


def test_a_range_filter_lets_the_ce_take_only_its_indices_and_forwards_the_rest() -> None:
    got = filter_run(".{ .kind = .{ .range = true }, .min_idx = LO, .max_idx = HI }")
    assert got.tolist() == [0, (1 << 16) + 11 + (2 << 16) + 12, (4 << 16) + 14 + (5 << 16) + 15]


def test_a_filter_kind_other_than_range_is_not_modelled() -> None:
    with pytest.raises(FabricError) as err:
        filter_run(".{ .kind = .{ .counter = true }, .count_data = true, .max_counter = 2 }")
    assert "only range filters (.kind = .{ .range = true }) are modelled" in str(err.value)


# ------------------------------------------------------- a synchronous write that stalls

SYNC_LAYOUT = """const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2,
                                                     .height = 1 });
const link: color = @get_color(4);
layout {
  @set_rectangle(2, 1);
  for (@range(u16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .link = link,
                                      .sender = x == 0 });
  }
  @set_color_config(0, 0, link, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, link, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @export_name("sum", [*]u32, true);
  @export_name("go", fn()void);
}
"""

SYNC_PE = """param memcpy_params: comptime_struct;
param link: color;
param sender: bool;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const out_oq: output_queue = @get_output_queue(2);
const recv_id: data_task_id = @get_data_task_id(link);
const out = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = link, .output_queue = out_oq });
var sum = @zeros([1]u32);
var sum_ptr: [*]u32 = &sum;
var count: u32 = 0;
task recv(v: u32) void {
  sum[0] += v;
  count += 1;
  if (count == COUNT) {
    sys_mod.unblock_cmd_stream();
  }
}
fn go() void {
  if (sender) {
    for (@range(u32, COUNT)) |i| {
      @mov32(out, i);
    }
    sys_mod.unblock_cmd_stream();
  }
}
comptime {
  BIND
  @export_symbol(sum_ptr, "sum");
  @export_symbol(go);
}
"""


def sync_sim(n: int, bind: bool = True) -> Simulator:
    pe = SYNC_PE.replace("COUNT", str(n)).replace(
        "BIND", "@bind_data_task(recv, recv_id);" if bind else ""
    )
    register_source("layout.csl", SYNC_LAYOUT)
    register_source("pe.csl", pe)
    program = m.Program(parse_file(SYNC_LAYOUT, "layout.csl"), (parse_file(pe, "pe.csl"),))
    check_program(program, Path("."), "wse2", {})
    return Simulator(program, {}, "wse2")


def test_a_stalled_synchronous_write_holds_its_pe_until_the_receiver_makes_room() -> None:
    quick, slow = sync_sim(8), sync_sim(40)
    quick.launch("go")
    slow.launch("go")
    assert slow.d2h("sum", 1, 0, 1, 1, 1).tolist() == [[[sum(range(40))]]]
    sender, receiver = slow.pe(0, 0), slow.pe(1, 0)
    # the sender's command stream is released only when its last wavelet is in a queue, which
    # the receiver's data task, one wavelet per run, makes room for
    assert sender.unblock_time > quick.pe(0, 0).unblock_time + 40
    assert receiver.unblock_time - sender.unblock_time < 40


def test_a_synchronous_write_nobody_reads_is_a_deadlock_naming_the_waiting_pe() -> None:
    sim = sync_sim(20, bind=False)
    with pytest.raises(FabricError) as err:
        sim.launch("go")
    text = str(err.value)
    assert "PE (0, 0): its CE waits for the synchronous write below; @mov32" in text
    assert (
        "is stalled: 1 wavelet(s) on color 4 wait for room in PE (1, 0)'s input queue "
        "(14 queued, 14 fit, nothing reads them) (6 times)" in text
    )


def test_an_array_of_colors_is_a_comptime_value_that_takes_no_memory() -> None:
    sim = one_pe(
        "const cs = [2]color { @get_color(3), @get_color(4) };\n"
        "comptime {\n"
        "  @set_local_color_config(cs[1], .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });\n"
        "}\n"
    )
    pe = sim.pe(0, 0)
    assert list(pe.routes) == [4] and "cs" not in pe.data


# -------------------------------------------------- switches, control wavelets and tasks

SWITCH_LAYOUT = """const memcpy = @import_module("<memcpy/get_params>", .{ .width = 3,
                                                     .height = 1 });
const c: color = @get_color(4);
layout {
  @set_rectangle(3, 1);
  for (@range(u16, 3)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .c = c,
                                      .sender = x == 1 });
  }
  @set_color_config(0, 0, c, .{ .routes = .{ .rx = .{ EAST }, .tx = .{ RAMP } } });
  @set_color_config(2, 0, c, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @set_color_config(1, 0, c, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ WEST } },
                                .switches = .{ .pos1 = .{ .tx = EAST }, .ring_mode = true } });
  @export_name("got", [*]u32, true);
  @export_name("go", fn()void);
}
"""

SWITCH_PE = """param memcpy_params: comptime_struct;
param c: color;
param sender: bool;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const oq: output_queue = @get_output_queue(2);
const data_id: data_task_id = @get_data_task_id(c);
const note_id: control_task_id = @get_control_task_id(40);
const out = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c, .output_queue = oq });
const cout = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c, .output_queue = oq,
                                     .control = true });
var got = @zeros([2]u32);
var got_ptr: [*]u32 = &got;
task on_data(v: u32) void {
  got[0] = v;
}
task note(v: u16) void {
  got[1] = @as(u32, v);
}
fn go() void {
  if (sender) {
    @mov32(cout, ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, FIRST_IGNORED, {}, 0));
    @mov32(out, @as(u32, 7));
    @mov32(cout, ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, false, note_id, 9));
    @mov32(out, @as(u32, 5));
  }
  sys_mod.unblock_cmd_stream();
}
comptime {
  @bind_data_task(on_data, data_id);
  @bind_control_task(note, note_id);
  @export_symbol(got_ptr, "got");
  @export_symbol(go);
}
"""


def switch_run(first_ignored: str = "true") -> np.ndarray:
    pe = SWITCH_PE.replace("FIRST_IGNORED", first_ignored)
    register_source("layout.csl", SWITCH_LAYOUT)
    register_source("pe.csl", pe)
    program = m.Program(parse_file(SWITCH_LAYOUT, "layout.csl"), (parse_file(pe, "pe.csl"),))
    check_program(program, Path("."), "wse2", {})
    sim = Simulator(program, {}, "wse2")
    sim.launch("go")
    return sim.d2h("got", 0, 0, 3, 1, 2).reshape(3, 2)


def test_control_wavelets_advance_a_switch_after_passing_and_run_control_tasks() -> None:
    # the first control wavelet goes west (position 0) and moves the switch east: 7 goes east;
    # the second goes east, runs the control task there with its data 9 and, in ring mode,
    # moves the switch back to position 0: 5 goes west
    assert switch_run().tolist() == [[5, 0], [0, 0], [7, 9]]


def test_a_control_wavelet_for_the_ce_with_no_control_task_is_an_error() -> None:
    with pytest.raises(FabricError) as err:
        switch_run(first_ignored="false")
    assert (
        "PE (0, 0): a control wavelet on color 4 for no control task reaches the CE, and no "
        "such control task is bound" in str(err.value)
    )


def test_a_switch_setting_the_simulator_does_not_model_is_an_error() -> None:
    layout = SWITCH_LAYOUT.replace(".ring_mode = true", ".pop_mode = .{ .always_pop = true }")
    register_source("layout.csl", layout)
    register_source("pe.csl", SWITCH_PE)
    pe = SWITCH_PE.replace("FIRST_IGNORED", "true")
    program = m.Program(parse_file(layout, "layout.csl"), (parse_file(pe, "pe.csl"),))
    with pytest.raises(FabricError) as err:
        Simulator(program, {}, "wse2")
    assert "switch setting .pop_mode is not modelled" in str(err.value)


def test_a_data_task_param_reads_a_wavelets_bits() -> None:
    fn = one_pe("task t(x: u32) void {}\n").pe(0, 0).g["t"]
    assert wavelet_args(fn, np.float32(1.0)) == (np.uint32(0x3F800000),)


LAYOUT_WITH_MODULE = """const grid = @import_module("lib/grid.csl", .{ .first = 3 });
layout {
  @set_rectangle(2, 1);
  for (@range(u16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .v = grid.value_of(x) });
  }
  grid.route(0);
}
"""

GRID_MODULE = """param first: u16;
const c: color = @get_color(first);
fn value_of(x: u16) u16 {
  return first + 10 * x;
}
fn route(x: u16) void {
  @set_color_config(x, 0, c, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
}
"""


def test_a_layout_imports_a_program_file_with_its_params_and_functions() -> None:
    pe = "param v: u16;\nvar got: u16 = v;\n"
    register_source("layout.csl", LAYOUT_WITH_MODULE)
    register_source("lib/grid.csl", GRID_MODULE)
    register_source("pe.csl", pe)
    program = m.Program(
        parse_file(LAYOUT_WITH_MODULE, "layout.csl"),
        (parse_file(GRID_MODULE, "lib/grid.csl"), parse_file(pe, "pe.csl")),
    )
    sim = Simulator(program, {}, "wse2")
    assert [int(sim.pe(x, 0).g["got"]) for x in range(2)] == [3, 13]
    assert list(sim.pe(0, 0).routes) == [3] and not sim.pe(1, 0).routes


LOOPS = """var odd_sum: u32 = 0;
var steps: u32 = 0;
fn run() void {
  for (@range(u32, 100)) |i| {
    if (i % 2 == 0) {
      continue;
    }
    if (i > 9) {
      break;
    }
    odd_sum += i;
  }
  var k: u32 = 0;
  while (k < 50) : (k += 1) {
    if (k < 5) {
      continue;
    }
    steps += 1;
    if (k == 7) {
      break;
    }
  }
}
comptime {
  run();
}
"""


def test_break_and_continue_leave_or_skip_a_loop_turn() -> None:
    g = one_pe(LOOPS).pe(0, 0).g
    assert int(g["odd_sum"]) == 1 + 3 + 5 + 7 + 9
    assert int(g["steps"]) == 3  # k = 5, 6, 7


def test_enum_members_compare_by_member_and_number_from_zero_or_as_given() -> None:
    g = (
        one_pe(
            "const Op = enum(u16) { ADD, MAX = 4, MIN };\n"
            "var op: Op = Op.ADD;\n"
            "var picked: u16 = 0;\n"
            "comptime {\n"
            "  op = Op.MIN;\n"
            "  if (op == Op.MIN) { picked = 1; }\n"
            "  if (op == Op.ADD) { picked = 2; }\n"
            "}\n"
        )
        .pe(0, 0)
        .g
    )
    assert int(g["picked"]) == 1 and g["op"].value == 5 and g["Op"].members[1] == ("MAX", 4)
