"""The machine rules of the fabric simulator, each on a small hand-written CSL program that breaks
exactly that rule (and its exact, located error) and on one that keeps it: queue IDs, microthreads
of asynchronous operations, one configuration per PE and color, finite input queues."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.diagnostics import register_source
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_file, parse_program
from kernelc.runtime.fabric.typecheck import CslTypeError, check_program
from kernelc.runtime.fabric.values import FabricError

# Two PEs that swap N values: each sends its `a` on its own color and receives the other's into
# `b`, both asynchronously; the exit task joins the two completions.
LAYOUT = """param width: u16;
param n: u16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const east: color = @get_color(0);
const west: color = @get_color(1);
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0), .n = n,
                                     .tx = east, .rx = west });
  @set_tile_code(1, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(1), .n = n,
                                     .tx = west, .rx = east });
  @set_color_config(0, 0, east, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, east, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @set_color_config(0, 0, west, .{ .routes = .{ .rx = .{ EAST }, .tx = .{ RAMP } } });
  @set_color_config(1, 0, west, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ WEST } } });
  EXTRA
  @export_name("a", [*]f32, true);
  @export_name("b", [*]f32, true);
  @export_name("swap", fn()void);
}
"""

PE = """param memcpy_params: comptime_struct;
param n: u16;
param tx: color;
param rx: color;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const tx_oq: output_queue = @get_output_queue(OQ);
const rx_iq: input_queue = @get_input_queue(IQ);
var a = @zeros([n]f32);
var b = @zeros([n]f32);
var a_ptr: [*]f32 = &a;
var b_ptr: [*]f32 = &b;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });
const b_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> b[i] });
const out = @get_dsd(fabout_dsd, .{ .fabric_color = tx, .extent = n, .output_queue = tx_oq });
const in = @get_dsd(fabin_dsd, .{ .fabric_color = rx, .extent = n, .input_queue = rx_iq });
const sent_id: local_task_id = @get_local_task_id(8);
const got_id: local_task_id = @get_local_task_id(9);
const exit_id: local_task_id = @get_local_task_id(10);
fn swap() void {
  @fmovs(out, a_dsd, .{ .async = true, .activate = sent_id SEND_UT });
  RECEIVE
}
task sent() void {
  SENT
  @unblock(exit_id);
}
task got() void {
  @activate(exit_id);
}
task exit() void {
  @block(exit_id);
  sys_mod.unblock_cmd_stream();
}
comptime {
  @bind_local_task(sent, sent_id);
  @bind_local_task(got, got_id);
  @bind_local_task(exit, exit_id);
  @block(exit_id);
  if (@is_arch("wse3")) {
    @initialize_queue(tx_oq, .{ .color = tx });
    @initialize_queue(rx_iq, .{ .color = rx });
  }
  LOCAL
  @export_symbol(a_ptr, "a");
  @export_symbol(b_ptr, "b");
  @export_symbol(swap);
}
"""

RECEIVE = "@fmovs(b_dsd, in, .{ .async = true, .activate = got_id RECV_UT });"


def swap_program(
    *,
    oq: int = 2,
    iq: int = 3,
    send_ut: str = "",
    recv_ut: str = "",
    receive_after_send: bool = False,
    extra: str = "",
    local: str = "",
) -> m.Program:
    receive = RECEIVE.replace("RECV_UT", recv_ut)
    pe = (
        PE.replace("OQ", str(oq))
        .replace("IQ", str(iq))
        .replace("SEND_UT", send_ut)
        .replace("RECEIVE", "" if receive_after_send else receive)
        .replace("SENT", receive if receive_after_send else "")
        .replace("LOCAL", local)
    )
    layout = LAYOUT.replace("EXTRA", extra)
    register_source("layout.csl", layout)
    register_source("pe.csl", pe)
    return m.Program(parse_file(layout, "layout.csl"), (parse_file(pe, "pe.csl"),))


def run_swap(program: m.Program, arch: str = "wse2", n: int = 8) -> np.ndarray:
    check_program(program, Path("."), arch, {"width": 2, "n": n})
    sim = Simulator(program, {"width": 2, "n": n}, arch)
    data = np.arange(2 * n, dtype=np.float32).reshape(1, 2, n)
    sim.h2d("a", data, 0, 0, 2, 1)
    sim.launch("swap")
    return sim.d2h("b", 0, 0, 2, 1, n).view(np.float32)


def swapped(n: int = 8) -> np.ndarray:
    data = np.arange(2 * n, dtype=np.float32).reshape(1, 2, n)
    return data[:, ::-1]


# ---------------------------------------------------------------------------- queue IDs


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_distinct_user_queues_run(arch: str) -> None:
    np.testing.assert_array_equal(run_swap(swap_program(oq=2, iq=3), arch), swapped())


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_queue_id_beyond_seven_is_a_compile_error(arch: str) -> None:
    with pytest.raises(CslTypeError) as err:
        run_swap(swap_program(oq=8), arch)
    assert str(err.value).splitlines()[0] == (
        f"pe.csl:6:47: error: output queue ID 8 is outside 0..7 on {arch}"
    )
    with pytest.raises(CslTypeError) as err:
        run_swap(swap_program(iq=9), arch)
    assert str(err.value).splitlines()[0] == (
        f"pe.csl:7:45: error: input queue ID 9 is outside 0..7 on {arch}"
    )


def test_queue_one_is_free_on_wse2_but_held_by_memcpy_on_wse3() -> None:
    np.testing.assert_array_equal(run_swap(swap_program(oq=1, iq=3), "wse2"), swapped())
    with pytest.raises(FabricError) as err:
        run_swap(swap_program(oq=1, iq=3), "wse3")
    assert str(err.value).splitlines()[0] == (
        "pe.csl:40:5: error: PE (0, 0): @initialize_queue uses output queue 1, which memcpy "
        "holds on wse3 (queues 0, 1; user queues start at 2)"
    )


def test_queue_zero_is_held_by_memcpy_on_wse2() -> None:
    with pytest.raises(FabricError) as err:
        run_swap(swap_program(oq=2, iq=0), "wse2")
    assert str(err.value).splitlines()[0] == (
        "pe.csl:21:3: error: PE (0, 0): @fmovs uses input queue 0, which memcpy holds on wse2 "
        "(queues 0; user queues start at 1)"
    )


# --------------------------------------------------------------------------- microthreads


def test_send_and_receive_on_one_queue_number_share_a_microthread() -> None:
    """The sobel defect: output queue 2 and input queue 2 are one microthread on WSE-2."""
    with pytest.raises(FabricError) as err:
        run_swap(swap_program(oq=2, iq=2), "wse2")
    lines = str(err.value).splitlines()
    assert lines[0] == (
        "pe.csl:21:3: error: PE (0, 0): @fmovs starts on microthread 2 (its input queue 2) "
        "while @fmovs (its output queue 2) still runs on it: concurrent asynchronous "
        "operations must not share a microthread (the machine would lose a completion)"
    )
    assert lines[3] == "pe.csl:20:3: note: @fmovs started here on microthread 2"


def test_wse3_defaults_the_microthread_to_the_queue_and_ut_id_separates_them() -> None:
    with pytest.raises(FabricError, match="starts on microthread 2 \\(its input queue 2\\)"):
        run_swap(swap_program(oq=2, iq=2), "wse3")
    explicit = swap_program(
        oq=2,
        iq=2,
        send_ut=", .ut_id = @get_ut_id(4)",
        recv_ut=", .ut_id = @get_ut_id(5)",
    )
    np.testing.assert_array_equal(run_swap(explicit, "wse3"), swapped())
    same = swap_program(
        oq=2, iq=3, send_ut=", .ut_id = @get_ut_id(6)", recv_ut=", .ut_id = @get_ut_id(6)"
    )
    with pytest.raises(FabricError, match="starts on microthread 6 \\(.ut_id = 6\\) while"):
        run_swap(same, "wse3")


def test_ut_id_is_a_wse3_setting() -> None:
    with pytest.raises(FabricError) as err:
        run_swap(swap_program(send_ut=", .ut_id = @get_ut_id(4)"), "wse2")
    assert str(err.value).splitlines()[0] == (
        "pe.csl:20:3: error: PE (0, 0): @fmovs: .ut_id is a WSE-3 setting; on WSE-2 an "
        "asynchronous operation runs on the microthread of its queue"
    )


def test_a_microthread_is_free_again_once_its_operation_completed() -> None:
    """The receive starts from the send's completion task, on the send's microthread."""
    program = swap_program(oq=2, iq=2, receive_after_send=True)
    np.testing.assert_array_equal(run_swap(program, "wse2"), swapped())


# ------------------------------------------------------------------ color configurations

TWICE = "@set_color_config(1, 0, east, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });"


def test_a_second_color_config_of_one_pe_and_color_is_an_error() -> None:
    with pytest.raises(FabricError) as err:
        run_swap(swap_program(extra=TWICE))
    lines = str(err.value).splitlines()
    assert lines[0] == (
        "layout.csl:16:3: error: PE (1, 0): color 0 is configured a second time (cslc accepts "
        "one @set_color_config / @set_local_color_config per PE and color)"
    )
    assert lines[3] == "layout.csl:13:3: note: the first configuration of that color"


def test_a_local_config_of_a_color_the_layout_configured_is_an_error() -> None:
    local = "@set_local_color_config(rx, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });"
    with pytest.raises(FabricError) as err:
        run_swap(swap_program(local=local))
    lines = str(err.value).splitlines()
    assert lines[0].startswith("layout.csl:13:3: error: PE (1, 0): color 0 is configured a ")
    assert lines[3] == "pe.csl:43:3: note: the first configuration of that color"


def test_configs_of_other_colors_and_pes_are_kept() -> None:
    other = (
        "@set_color_config(1, 0, @get_color(5), .{ .routes = .{ .rx = .{ WEST }, "
        ".tx = .{ RAMP } } });"
    )
    np.testing.assert_array_equal(run_swap(swap_program(extra=other)), swapped())


# ------------------------------------------------------------------ finite input queues


def test_a_queue_holds_what_fits_before_anything_reads_it() -> None:
    """Each PE receives only after its own send completed: fine while a message fits."""
    program = swap_program(oq=2, iq=3, receive_after_send=True)
    n = machine.INPUT_QUEUE_WAVELETS
    np.testing.assert_array_equal(run_swap(program, "wse2", n), swapped(n))


def test_both_senders_stalled_on_full_queues_is_a_deadlock_naming_pes_and_colors() -> None:
    program = swap_program(oq=2, iq=3, receive_after_send=True)
    n = machine.INPUT_QUEUE_WAVELETS + 6
    with pytest.raises(FabricError) as err:
        run_swap(program, "wse2", n)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("<fabric simulator>:1:1: error: deadlock in launch of 'swap'")
    assert lines[0].endswith("no progress while work remains (2 PE(s) still waiting)")
    assert lines[1] == (
        "  PE (0, 0): @fmovs (pe.csl:20:3) is stalled: 6 wavelet(s) on color 0 wait for room "
        "in PE (1, 0)'s input queue (14 queued, 14 fit, nothing reads them)"
    )
    assert lines[2] == (
        "  PE (1, 0): @fmovs (pe.csl:20:3) is stalled: 6 wavelet(s) on color 1 wait for room "
        "in PE (0, 0)'s input queue (14 queued, 14 fit, nothing reads them)"
    )


LATE_LAYOUT = """param n: u16;
param delay: u16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const c: color = @get_color(0);
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "tx.csl", .{ .memcpy_params = memcpy.get_params(0), .n = n, .c = c });
  @set_tile_code(1, 0, "rx.csl", .{ .memcpy_params = memcpy.get_params(1), .n = n, .c = c,
                                     .delay = delay });
  @set_color_config(0, 0, c, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, c, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @export_name("a", [*]f32, true);
  @export_name("go", fn()void);
}
"""

TX = """param memcpy_params: comptime_struct;
param n: u16;
param c: color;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
var a = @zeros([n]f32);
var a_ptr: [*]f32 = &a;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });
const out = @get_dsd(fabout_dsd, .{ .fabric_color = c, .extent = n,
                                    .output_queue = @get_output_queue(2) });
const exit_id: local_task_id = @get_local_task_id(8);
fn go() void {
  @fmovs(out, a_dsd, .{ .async = true, .activate = exit_id });
}
task exit() void {
  sys_mod.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) {
    @initialize_queue(@get_output_queue(2), .{ .color = c });
  }
  @bind_local_task(exit, exit_id);
  @export_symbol(a_ptr, "a");
  @export_symbol(go);
}
"""

# the receiver reads late (after `delay` loop turns), with an async op or one data task per
# wavelet
RX = """param memcpy_params: comptime_struct;
param n: u16;
param c: color;
param delay: u16;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
var a = @zeros([n]f32);
var a_ptr: [*]f32 = &a;
var count: u16 = 0;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });
const in = @get_dsd(fabin_dsd, .{ .fabric_color = c, .extent = n,
                                  .input_queue = @get_input_queue(2) });
const exit_id: local_task_id = @get_local_task_id(8);
const data_id: data_task_id =
  if (@is_arch("wse2")) @get_data_task_id(c)
  else if (@is_arch("wse3")) @get_data_task_id(@get_input_queue(2));
fn go() void {
  var i: u16 = 0;
  while (i < delay) : (i += 1) {
    count += 0;
  }
  READ
}
task got(v: f32) void {
  a[count] = v;
  count += 1;
  if (count == n) {
    sys_mod.unblock_cmd_stream();
  }
}
task exit() void {
  sys_mod.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) {
    @initialize_queue(@get_input_queue(2), .{ .color = c });
  }
  @bind_local_task(exit, exit_id);
  BIND
  @export_symbol(a_ptr, "a");
  @export_symbol(go);
}
"""


def late(n: int, delay: int, data_task: bool, arch: str = "wse2") -> tuple[int, int]:
    """When the sender and the receiver released the command stream, from the launch on."""
    rx = RX.replace(
        "READ",
        "@unblock(data_id);"
        if data_task
        else "@fmovs(a_dsd, in, .{ .async = true, .activate = exit_id });",
    ).replace("BIND", "@bind_data_task(got, data_id);\n  @block(data_id);" if data_task else "")
    program = m.Program(
        parse_file(LATE_LAYOUT, "layout.csl"),
        (parse_file(rx, "rx.csl"), parse_file(TX, "tx.csl")),
    )
    params = {"n": n, "delay": delay}
    check_program(program, Path("."), arch, params)
    sim = Simulator(program, params, arch)
    data = np.arange(2 * n, dtype=np.float32).reshape(1, 2, n)
    sim.h2d("a", data, 0, 0, 2, 1)
    start = sim.time
    sim.launch("go")
    np.testing.assert_array_equal(sim.d2h("a", 1, 0, 1, 1, n).view(np.float32)[0, 0], data[0, 0])
    return sim.pe(0, 0).unblock_time - start, sim.pe(1, 0).unblock_time - start


@pytest.mark.parametrize("data_task", [False, True])
@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_sender_stalls_until_a_late_reader_makes_room(data_task: bool, arch: str) -> None:
    fits, _ = late(machine.INPUT_QUEUE_WAVELETS, 200, data_task, arch)
    sender, reader = late(machine.INPUT_QUEUE_WAVELETS + 26, 200, data_task, arch)
    # a message that fits the queue leaves at once; a longer one completes only after the
    # reader (busy for 200 loop turns, at least 2 cycles each) took all but the last 14
    assert fits < 60
    assert 400 < sender <= reader
    if data_task:  # one task per wavelet: the sender waits for the 26th task to run
        assert sender > 400 + 26 * machine.TASK_SWITCH_CYCLES


def test_a_late_reader_that_never_reads_enough_is_reported() -> None:
    """Without a reader, 14 wavelets queue and the sender stalls for good."""
    rx = RX.replace("READ", "sys_mod.unblock_cmd_stream();").replace("BIND", "")
    program = m.Program(
        parse_file(LATE_LAYOUT, "layout.csl"),
        (parse_file(rx, "rx.csl"), parse_file(TX, "tx.csl")),
    )
    sim = Simulator(program, {"n": 20, "delay": 1})
    with pytest.raises(FabricError) as err:
        sim.launch("go")
    lines = str(err.value).splitlines()
    assert "(1 PE(s) still waiting)" in lines[0]
    assert lines[1] == (
        "  PE (0, 0): @fmovs (tx.csl:12:3) is stalled: 6 wavelet(s) on color 0 wait for room "
        "in PE (1, 0)'s input queue (14 queued, 14 fit, nothing reads them)"
    )


# ------------------------------------------------------ the emitted sobel, and its old defect

GOLDEN = Path(__file__).parent / "golden" / "csl" / "sobel"


def run_sobel(directory: Path, arch: str) -> None:
    program = parse_program(directory, "layout.csl")
    for f in (program.layout, *program.pe_files):
        register_source(f.name, (directory / f.name).read_text())
    params = {"width": 3, "height": 2}
    check_program(program, directory, arch, params)
    sim = Simulator(program, params, arch)
    sim.launch("f_sobel")


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_emitted_sobel_keeps_every_machine_rule(arch: str) -> None:
    run_sobel(GOLDEN, arch)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_sobel_with_one_number_per_direction_is_rejected(arch: str, tmp_path: Path) -> None:
    """The defect of the earlier emitter, put back by hand: each halo direction used one number
    for its output queue and the matching input queue, so a PE with both neighbours started
    four async @fmovs on two microthreads."""
    shutil.copytree(GOLDEN, tmp_path / "sobel")
    pe = tmp_path / "sobel" / "pe_sobel.csl"
    text = pe.read_text()
    for flow, now, before in (("west", 4, 2), ("east", 5, 3), ("north", 2, 4), ("south", 3, 5)):
        old = f"const rx_{flow}_iq: input_queue = @get_input_queue({now});"
        assert old in text
        text = text.replace(old, f"const rx_{flow}_iq: input_queue = @get_input_queue({before});")
    pe.write_text(text)
    with pytest.raises(FabricError) as err:
        run_sobel(tmp_path / "sobel", arch)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("pe_sobel.csl:")
    assert (
        ": error: PE (1, 0): @fmovs starts on microthread 3 (its input queue 3) while "
        in (lines[0])
    )
    assert lines[1].strip().startswith("@fmovs(img_east_halo, img_rx_east")
    assert "note: @fmovs started here on microthread 3" in lines[3]


# ------------------------------------------------------------ collectives' queues and DSRs

GEMM = Path(__file__).parent / "golden" / "csl" / "gemm"


def set_up_gemm(directory: Path) -> Simulator:
    program = parse_program(directory, "layout.csl")
    for f in (program.layout, *program.pe_files):
        register_source(f.name, (directory / f.name).read_text())
    return Simulator(program, {"width": 2, "height": 2}, "wse2")


def gemm_with(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copytree(GEMM, tmp_path / "gemm")
    pe = tmp_path / "gemm" / "pe_gemm.csl"
    text = pe.read_text()
    assert old in text
    pe.write_text(text.replace(old, new))
    return tmp_path / "gemm"


def test_emitted_gemm_gives_each_collectives_import_its_own_queues_and_dsrs() -> None:
    pe = set_up_gemm(GEMM).pe(1, 1)
    assert pe.library_claims[2] == pe.library_claims[4] == "collectives_2d (x)"
    assert pe.library_claims[3] == pe.library_claims[5] == "collectives_2d (y)"
    assert pe.library_claims[("dest", 2)] == "collectives_2d (y)"


def test_collectives_imports_sharing_a_queue_are_rejected(tmp_path: Path) -> None:
    directory = gemm_with(tmp_path, ".queues = [2]u16{ 3, 5 }", ".queues = [2]u16{ 3, 4 }")
    with pytest.raises(FabricError) as err:
        set_up_gemm(directory)
    assert str(err.value).splitlines()[0] == (
        "pe_gemm.csl:33:15: error: PE (0, 0): collectives_2d (y) uses queue 4, which "
        "collectives_2d (x) uses too: the row and column collectives may run at once and need "
        "their own queues and DSRs"
    )


def test_collectives_imports_sharing_a_dsr_are_rejected(tmp_path: Path) -> None:
    directory = gemm_with(
        tmp_path,
        ".dest_dsr_ids = [1]u16{ 2 },",
        ".dest_dsr_ids = [1]u16{ 1 },",
    )
    with pytest.raises(FabricError, match="collectives_2d \\(y\\) uses dest DSR 1, which"):
        set_up_gemm(directory)


def test_collectives_defaults_differ_by_axis(tmp_path: Path) -> None:
    """gemv-collectives_2d imports both axes with no IDs: the defaults do not collide."""
    shutil.copytree(GEMM, tmp_path / "gemm")
    pe = tmp_path / "gemm" / "pe_gemm.csl"
    text = pe.read_text()
    for axis in ("x", "y"):
        start = text.index(f"const mpi_{axis} = @import_module(")
        end = text.index("});", start) + 3
        text = (
            text[:start]
            + f'const mpi_{axis} = @import_module("<collectives_2d/pe>", '
            + f".{{ .dim_params = c2d_params.{axis} }});"
            + text[end:]
        )
    pe.write_text(text)
    claims = set_up_gemm(tmp_path / "gemm").pe(0, 0).library_claims
    assert sorted(k for k in claims if isinstance(k, int)) == [2, 3, 4, 5]


def test_collectives_queue_held_by_memcpy_is_rejected(tmp_path: Path) -> None:
    directory = gemm_with(tmp_path, ".queues = [2]u16{ 2, 4 }", ".queues = [2]u16{ 0, 4 }")
    with pytest.raises(FabricError, match="collectives_2d \\(x\\): queue 0 is held by memcpy"):
        set_up_gemm(directory)
