"""The NumPy reference that the emitted run.py carries (kernelc/reference.py): broken over
lines a vendor engineer would accept, and computing exactly what the reference interpreter
computes, line breaks and dropped parentheses included."""

from __future__ import annotations

import numpy as np
import pytest

import kernelc as kc
from kernelc import reference

DEEP = """
kernel deep(a: f32[N], b: f32[N], k: i32[N]) -> (y: f32[N], z: i32[N]) {
  for i in 0 .. N {
    let s = -(a[i] + b[i]) - (a[i] - b[i]) * (b[i] + 1.5) - (a[i] - (b[i] - a[i]));
    let t = select(s > a[i] && b[i] < 0.25, s * s - (a[i] + b[i]), -(s - b[i]) + a[i]);
    y[i] = t - (t - s) * (a[(i + 1) % N] - (b[(i + N - 1) % N] + a[i])) + f32(k[i] / 3);
    z[i] = k[i] - (k[i] % 4 - k[i] / 3) * 2 - (i32(t) - (k[i] + 7)) + abs(k[i] - 5);
  }
}
"""

LOOPS = """
kernel loops(a: f32[N], k: i32[N]) -> y: f32[N] {
  for i in 0 .. N {
    var acc: f32 = a[i];
    for j in 0 .. k[i] % 5 {
      if acc > 0.5 {
        acc -= a[(i + j) % N] * (acc - 0.25) - (a[j % N] - (acc + 1.0));
      } else {
        acc += 0.125;
      }
    }
    y[i] += acc - (a[i] - acc);
  }
}
"""


COMPOUND = """
kernel compound(a: f32[N], k: i32[N]) -> (y: f32[N], z: i32[N]) {
  for i in 0 .. N {
    y[i] += a[i] * 0.5;
    z[i] += k[i] / 3;
  }
  for i in 0 .. N {
    var q: i32 = k[i] + 100;
    q /= k[(i + 1) % N] - 2;
    q = q % 7;
    z[i] max= q;
    y[i] min= sum(j in 0 .. i) a[j];
  }
}
"""


VECTOR = """
kernel vector(a: f32[N], k: i32[N]) -> (y: f32[N], z: i32[N]) {
  for i in 0 .. N {
    y[i] += a[i] * 0.5;
    z[i] += k[i] / 3 - k[(i + 2) % N] % 5;
  }
}
"""

SEARCH = """
kernel brackets(a: f32[N], k: i32[N], t: f32[4, N]) -> y: i32[N] {
  for i in 0 .. N {
    y[i] = search(t[i % 4, 1:], a[i]) + search(t[k[i] % 4, 2:k[i] % 9], a[i]) + search(a[:], 0.5);
  }
}
"""


SEARCH_LOOPS = """
kernel bracket_loops(a: f32[N], k: i32[N], t: f32[4, N]) -> z: i32[N] {
  for i in 0 .. N {
    var s: i32 = 0;
    for j in 0 .. 3 {
      s += search(t[j, k[i] % 5:], a[i] * f32(j));
    }
    z[i] = s;
  }
}
"""


def _reference_of(text: str, n: int):
    graph = kc.loads(text, "t.k", params={"N": n}).graph()
    source = reference.reference_source(graph)
    assert source is not None
    space: dict = {"np": np}
    exec(compile(reference.HELPERS + "\n" + source, "run.py", "exec"), space)
    return source, space["reference"]


def _inputs(text: str, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = {"a": rng.uniform(-2, 2, n).astype(np.float32)}
    if "b: f32" in text:
        inputs["b"] = rng.uniform(-2, 2, n).astype(np.float32)
    inputs["k"] = rng.integers(-50, 50, n).astype(np.int32)
    if "t: f32" in text:
        inputs["t"] = np.sort(rng.uniform(-2, 2, (4, n)).astype(np.float32), axis=1)
    return inputs


@pytest.mark.parametrize(
    "text",
    [DEEP, LOOPS, COMPOUND, VECTOR, SEARCH, SEARCH_LOOPS],
    ids=[
        "deep-expressions",
        "scalar-loops",
        "compound-stores",
        "vectorised-updates",
        "vectorised-searches",
        "scalar-searches",
    ],
)
def test_reference_lines_fit_and_compute_what_the_interpreter_computes(text: str) -> None:
    source, run = _reference_of(text, 23)
    assert max(len(line) for line in source.splitlines()) <= reference.WIDTH
    program = kc.loads(text, "t.k", params={"N": 23})
    for seed in range(5):
        inputs = _inputs(text, 23, seed)
        want = kc.interpret(program, inputs)
        got = run(inputs)
        for name, value in want.items():
            assert got[name].dtype == value.dtype, name
            np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_operations_are_broken_before_operators_and_keep_needed_parentheses() -> None:
    source, _ = _reference_of(DEEP, 7)
    lines = source.splitlines()
    assert any(line.lstrip().startswith("- (") for line in lines)
    assert "load(a, v_i)" not in source  # arrays are the graph's tensors
    assert "load(t_a, g_i)" in source  # call arguments stand without grouping parentheses
