"""kernelc/csl/charges.py: the static count of the simulator's charges for scalar CSL code.

The fabric simulator charges its cycles with the same functions (runtime/fabric/evaluate.py),
so a count here is what the simulator would charge on the same path; the lookup's cost model
is built on it (tests/test_forms_acceptance.py holds it to the simulator end to end). One
``<math>`` routine costs the same wherever it runs: applied by ``@map``, called by an element
function of ``@map``, or called by scalar code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernelc.csl import charges, machine
from kernelc.csl import model as m
from kernelc.forms.lookup import slowest_trips
from kernelc.runtime.fabric.dsd import OPS
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_file

SOURCE = """
var a: i32 = 0;
var buf = @zeros([5]f32);
const buf_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> buf[i] });

fn twice(x: i32) i32 {
  return x + x;
}

fn body() void {
  var x: i32 = a + 2 * a;
  for (@range(i32, 0, 4, 1)) |k| {
    x += k;
  }
  var lo: i32 = 0;
  var hi: i32 = 13;
  while (lo < hi) {
    lo = lo + 1;
  }
  x = twice(x);
  @fmovs(buf_dsd, 0.0);
  if (x > 3) {
    x = 1;
  } else {
    x = 2 + x;
  }
}
"""


def _counter(taken: float = 0.5) -> tuple[charges.Counter, m.FnDecl]:
    parsed = parse_file(SOURCE, "charges.csl")
    fns = {d.name: d for d in parsed.decls if isinstance(d, m.FnDecl)}
    counter = charges.Counter(fns, {"buf_dsd": 5}, lambda loop: None, lambda s: taken)
    return counter, fns["body"]


def test_each_statement_is_charged_as_the_simulator_charges_it() -> None:
    counter, body = _counter()
    decl = 1 + 2  # a + 2 * a: two operators (a name costs nothing; an element load would)
    loop = 4 * (charges.ITERATION_CYCLES + 1 + 0)  # x += k: the statement, k is free
    bisect = 4 * (1 + 1) + 5 * (charges.WHILE_TEST_CYCLES + 1)  # 13 halves 4 times
    bounds = 2 * 1
    call = 1 + 1 + (1 + 1)  # the assignment, the call, the callee's return of x + x
    fill = 1 + 1 + machine.DSD_SETUP_CYCLES + 5
    branch = 1 + 1 + 0.5 * 1 + 0.5 * (1 + 1)
    assert counter.block(body.body) == decl + loop + bounds + bisect + call + fill + branch


def test_a_branch_is_weighted_by_its_share() -> None:
    always, body = _counter(1.0)
    never, _ = _counter(0.0)
    assert always.block(body.body) - never.block(body.body) == 1 - 2


def test_a_loop_without_a_count_is_refused() -> None:
    counter, _ = _counter()
    loop = m.For(m.builtin("range", m.Name("i32"), m.Name("n")), "k", ())
    with pytest.raises(ValueError, match="no trip count"):
        counter.block((loop,))


def test_the_dsd_operations_are_the_simulators() -> None:
    assert charges.DSD_OPS == set(OPS)


def test_the_slowest_row_makes_more_trips_than_the_mean_row() -> None:
    assert slowest_trips(4, 34, 1) == 68  # one row: the mean
    assert slowest_trips(1, 34, 256) == 34  # many one-item rows: some row walks all 34
    many = slowest_trips(400, 34, 16)
    assert 400 * 17 < many < 400 * 17 * 1.1  # long rows average out
    assert slowest_trips(0, 34, 8) == 0


N = 8

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = 1 });
layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0) });
  @export_name("a", [*]f32, true);
  @export_name("r", [*]f32, true);
  @export_name("empty", fn()void);
  @export_name("direct", fn()void);
  @export_name("wrapped", fn()void);
  @export_name("scalar", fn()void);
}
"""

PE = f"""
param memcpy_params: comptime_struct;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
const math = @import_module("<math>");
var a = @zeros([{N}]f32);
var r = @zeros([{N}]f32);
var a_ptr: [*]f32 = &a;
var r_ptr: [*]f32 = &r;
const ad = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{{N}}} -> a[i] }});
const rd = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{{N}}} -> r[i] }});
fn elem(x: f32) f32 {{
  return math.exp_f32(x);
}}
fn empty() void {{
  sys_mod.unblock_cmd_stream();
}}
fn direct() void {{
  @map(math.exp_f32, ad, rd);
  sys_mod.unblock_cmd_stream();
}}
fn wrapped() void {{
  @map(elem, ad, rd);
  sys_mod.unblock_cmd_stream();
}}
fn scalar() void {{
  for (@range(u16, {N})) |i| {{
    r[i] = math.exp_f32(a[i]);
  }}
  sys_mod.unblock_cmd_stream();
}}
comptime {{
  @export_symbol(a_ptr, "a");
  @export_symbol(r_ptr, "r");
  @export_symbol(empty);
  @export_symbol(direct);
  @export_symbol(wrapped);
  @export_symbol(scalar);
}}
"""


def _launch_math(name: str, a: np.ndarray) -> tuple[int, np.ndarray]:
    sim = Simulator(m.Program(parse_file(LAYOUT, "layout.csl"), (parse_file(PE, "pe.csl"),)), {})
    sim.h2d("a", a.reshape(1, 1, N), 0, 0, 1, 1)
    cycles = sim.launch(name)
    return cycles, sim.d2h("r", 0, 0, 1, 1, N).view(np.float32).reshape(N)


def _body(name: str) -> tuple[m.Stmt, ...]:
    decls = parse_file(PE, "pe.csl").decls
    fn = next(d for d in decls if isinstance(d, m.FnDecl) and d.name == name)
    return fn.body[:-1]  # without the unblock_cmd_stream() that every launch ends with


def test_a_math_routine_costs_the_same_wherever_it_runs() -> None:
    a = np.linspace(-2, 2, N, dtype=np.float32)
    want = np.float32([math.exp(v) for v in a.tolist()])  # correctly rounded, as <math>'s
    empty, _ = _launch_math("empty", a)
    cycles = {}
    for name in ("direct", "wrapped", "scalar"):
        cycles[name], got = _launch_math(name, a)
        np.testing.assert_array_equal(got, want)
    exp = charges.routine_cycles("exp_f32")
    assert exp > 1
    # an element function adds its return and its call of the routine, nothing else
    assert cycles["wrapped"] - cycles["direct"] == N * (charges.STATEMENT_CYCLES + 1)
    # scalar code pays the routine per element too, and the model counts what is simulated
    assert cycles["scalar"] - empty >= N * exp
    counter = charges.Counter({}, {}, lambda _: None, lambda _: 0.0)
    assert cycles["scalar"] - empty == counter.block(_body("scalar"))
