"""Lockstep execution in the fabric simulator (runtime/fabric/lockstep.py) against running every
PE on its own: the same outputs, the same memory on every PE and the same simulated cycles on
every PE, for hand-written programs whose lanes diverge (while, if, early return, trip counts
loaded from memory, DSD operations at lane-varying offsets) and for emitted programs (the csl
conformance cases and the four examples)."""

from __future__ import annotations

import numpy as np
import pytest
from conformance.cases import CASES, Case
from conformance.unsupported import BUGS, SLOW, UNSUPPORTED

import kernelc as kc
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.runtime.fabric import lockstep, runner, sdk
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_file
from kernelc.runtime.fabric.values import Array, FabricError

LAYOUT = """
param width: u16;
param height: u16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = width, .height = height });
layout {
  @set_rectangle(width, height);
  for (@range(u16, width)) |x| {
    for (@range(u16, height)) |y| {
      @set_tile_code(x, y, "pe.csl", .{ .memcpy_params = memcpy.get_params(x),
                                         .seed = @as(i32, x) * 7 - @as(i32, y) * 5 });
    }
  }
  @export_name("a", [*]f32, true);
  @export_name("k", [*]i32, true);
  @export_name("compute", fn(i32)void);
}
"""

PE = """
param memcpy_params: comptime_struct;
param seed: i32;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const layout_mod = @import_module("<layout>");
var a = @zeros([12]f32);
var a_ptr: [*]f32 = &a;
var k = @zeros([6]i32);
var k_ptr: [*]i32 = &k;
var out = @zeros([8]f32);
var hits: i32 = 0;
var small: i16 = 32000;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |c|{4} -> a[c] });
const out_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |c|{4} -> out[c] });

fn first_above(limit: i32) i32 {
  for (@range(i32, 6)) |i| {
    if (k[i] > limit) {
      return i;
    }
  }
  return -1;
}

fn halve(v: i32) i32 {
  var x: i32 = v;
  var steps: i32 = 0;
  while (x != 0 and steps < 40) {
    x = x / 2;
    steps += 1;
    if (x == 3) {
      return steps * 100;
    }
  }
  return steps;
}

fn compute(base: i32) void {
  const s: i32 = seed + base;
  var total: i32 = 0;
  for (@range(i32, 0, k[0] % 5 + 2, 1)) |j| {
    total += halve(k[j % 6] * s) - j;
    if (total > 50) {
      hits += 1;
    } else {
      total = total - s % 7;
    }
  }
  const where: i32 = first_above(s);
  small += @as(i16, total);
  k[5] = where * 1000 + total / 3 + @as(i32, small);
  const q: f32 = @as(f32, s) / 3.0;
  const at = @increment_dsd_offset(a_dsd, (s % 3 + 3) % 3 * 4, f32);
  @fmacs(out_dsd, out_dsd, at, if (where < 0) q else -q);
  @fmovs(at, out_dsd);
  out[7] = @as(f32, hits) + a[0];
  k[4] = @as(i32, layout_mod.get_x_coord()) * 100 + @as(i32, layout_mod.get_y_coord());
  sys_mod.unblock_cmd_stream();
}

comptime {
  @export_symbol(a_ptr, "a");
  @export_symbol(k_ptr, "k");
  @export_symbol(compute);
}
"""


def program() -> m.Program:
    return m.Program(parse_file(LAYOUT, "layout.csl"), (parse_file(PE, "pe.csl"),))


def state(sim: Simulator) -> list[tuple]:
    """Every PE's arrays and typed scalars (by name) and its cycles."""
    result = []
    for pe in sim.pes:
        arrays = {
            n: v.data.copy()
            for n, v in pe.g.items()
            if isinstance(v, Array) and v.data.dtype != object
        }
        scalars = {n: (type(v), v.tobytes()) for n, v in pe.g.items() if isinstance(v, np.generic)}
        result.append((arrays, scalars, pe.busy, pe.last, pe.now, pe.dsd_free, pe.unblock_time))
    return result


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for k, (one, other) in enumerate(zip(a, b, strict=True)):
        arrays, scalars, *cycles = one
        arrays2, scalars2, *cycles2 = other
        assert arrays.keys() == arrays2.keys(), k
        for n in arrays:
            assert arrays[n].tobytes() == arrays2[n].tobytes(), (k, n)
        assert scalars == scalars2, k
        assert cycles == cycles2, k


def run_hand_written(monkeypatch: pytest.MonkeyPatch, on: bool, width: int, height: int):
    monkeypatch.setenv(lockstep.ENV, "all" if on else "0")
    sim = Simulator(program(), {"width": width, "height": height})
    rng = np.random.default_rng(5)
    sim.h2d("a", rng.standard_normal((height, width, 12)).astype(np.float32), 0, 0, width, height)
    sim.h2d("k", rng.integers(-300, 300, (height, width, 6)).astype(np.int32), 0, 0, width, height)
    launches = [sim.launch("compute", (np.int32(b),)) for b in (3, -11)]
    return sim, launches


@pytest.mark.parametrize(("width", "height"), [(5, 4), (9, 1)])
def test_divergent_lanes_match_every_pe_on_its_own(
    monkeypatch: pytest.MonkeyPatch, width: int, height: int
) -> None:
    heads = []
    real = lockstep.run_heads
    monkeypatch.setattr(
        lockstep, "run_heads", lambda *a: heads.append(real(*a)) or heads[-1], raising=True
    )
    lanes, lane_cycles = run_hand_written(monkeypatch, True, width, height)
    alone, alone_cycles = run_hand_written(monkeypatch, False, width, height)
    assert len(heads) == 2 and all(r is not None for r in heads[0])  # every PE ran in lanes
    assert all(r.tail is not None for r in heads[0])  # unblock_cmd_stream() ran per PE
    assert lane_cycles == alone_cycles
    assert_same(state(lanes), state(alone))
    ks = np.array([pe.g["k"].data[5] for pe in alone.pes])
    assert len(set(ks.tolist())) > 3  # the lanes took different paths
    assert [pe.g["k"].data[4] for pe in lanes.pes] == [pe.x * 100 + pe.y for pe in lanes.pes]
    busy = {pe.busy for pe in alone.pes}
    assert len(busy) > 3  # and different times


def test_a_task_run_before_a_lockstep_launch_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv(lockstep.ENV, "1")
    sim = Simulator(program(), {"width": 3, "height": 2})
    fns = [pe.exports["compute"] for pe in sim.pes]
    times = [machine.LAUNCH_CYCLES + pe.x + pe.y for pe in sim.pes]
    resumes = lockstep.run_heads(sim.files, sim.stores, sim.pes, fns, (np.int32(1),), times)
    pe = sim.pes[4]
    pe.runs += 1  # as a data task woken before the PE's own launch would
    with pytest.raises(FabricError, match=r"PE \(1, 1\) ran a task before its launch"):
        pe.start(times[4], fns[4], (np.int32(1),), resumes[4])


def _csl_cases() -> list:
    params = []
    for case in CASES:
        if ("csl", case.name) in UNSUPPORTED or ("csl", case.name) in BUGS:
            continue
        marks = [pytest.mark.slow] if ("csl", case.name) in SLOW else []
        params.append(pytest.param(case, marks=marks, id=case.name))
    return params


class Recorded(Simulator):
    made: list[Simulator] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        Recorded.made.append(self)


def run_case(case: Case, monkeypatch: pytest.MonkeyPatch, on: bool):
    monkeypatch.setenv(lockstep.ENV, "all" if on else "0")
    Recorded.made = []
    with np.errstate(all="ignore"):
        result = kc.run_with_stats(case.program(), "csl", case.draw(), params=dict(case.params))
    sim = Recorded.made[-1]
    return result, sim


@pytest.mark.parametrize("case", _csl_cases())
def test_emitted_programs_match_every_pe_on_its_own(case: Case, monkeypatch) -> None:
    monkeypatch.setattr(sdk, "Simulator", Recorded)
    monkeypatch.setattr(runner, "Simulator", Recorded)
    counted = []
    real = lockstep.run_heads

    def counting(*args):
        got = real(*args)
        counted.append(sum(r is not None for r in got))
        return got

    monkeypatch.setattr(lockstep, "run_heads", counting)
    lanes, lanes_sim = run_case(case, monkeypatch, True)
    alone, alone_sim = run_case(case, monkeypatch, False)
    for name, value in lanes.outputs.items():
        assert value.tobytes() == alone.outputs[name].tobytes(), name
    assert lanes.stats["simulated_kernel_cycles"] == alone.stats["simulated_kernel_cycles"]
    assert lanes_sim.launches == alone_sim.launches
    assert_same(state(lanes_sim), state(alone_sim))
    assert counted, "the program launched nothing"


def test_the_xs_lookup_scans_its_items_in_lanes_by_default(monkeypatch) -> None:
    """With the default switch, every PE of the emitted XS lookup runs its item loop in lanes:
    the coordinate code each launch begins with (``read_coords``: ``@get_rectangle()``, a
    ``const`` from ``@as``) must not end the head, or the L=20000 check leaves the CI budget."""
    monkeypatch.delenv(lockstep.ENV, raising=False)
    xs = next(case for case in CASES if case.name == "xs_lookup.k")
    got = []
    real = lockstep.run_heads
    monkeypatch.setattr(lockstep, "run_heads", lambda *a: got.append(real(*a)) or got[-1])
    with np.errstate(all="ignore"):
        kc.run(xs.program(), "csl", xs.draw(), params=dict(xs.params), grid=(4, 5))
    assert got and all(r is not None and r.tail is not None for r in got[0]), got
