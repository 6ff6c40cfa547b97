"""Scalar CSL keeps the language's semantics bit for bit: float and integer operators (the
float remainder included), casts, min/max/abs/floor, rand, NaN, infinities and signed zeros,
against the reference interpreter, on the fabric simulator (the kernels below run as scalar
code: each has a sequential accumulation)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import kernelc as kc

N = 12

SPECIAL = [0.0, -0.0, 1.0, -1.5, 3e38, 65504.0, 65520.0, 1e-8, 2.5, -2.5, 4294967296.0, -3e9]
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from(SPECIAL)

FLOAT_OPS = """
kernel k(a: f32[N], b: f32[N], c: f32[N]) -> (o: f32[N, 12], n: i32[N, 3], m: u32[N]) {
  var acc: f32 = 0.0;
  for i in 0 .. N {
    let x = a[i];
    let y = b[i];
    let z = c[i];
    o[i, 0] = x + y * z;
    o[i, 1] = (x - y) / z;
    o[i, 2] = sqrt(abs(x));
    o[i, 3] = min(x, y);
    o[i, 4] = max(x, z);
    o[i, 5] = select(x <= y, -x, z);
    o[i, 6] = f32(i32(x));
    o[i, 7] = f32(u16(y));
    o[i, 8] = f32(x == y || x != z && !(x > z));
    o[i, 9] = floor(y) + abs(z);
    acc += x;
    o[i, 10] = acc;
    o[i, 11] = x % y;
    n[i, 0] = i32(x);
    n[i, 1] = i32(y * z);
    n[i, 2] = i32(bool(x));
    m[i] = u32(y);
  }
}
"""

INT_OPS = """
kernel k(a: i32[N], b: i32[N]) -> o: i32[N, 10] {
  var acc: i32 = 0;
  for i in 0 .. N {
    let x = a[i];
    let y = b[i];
    o[i, 0] = x + y;
    o[i, 1] = x * y - y;
    o[i, 2] = x / y;
    o[i, 3] = x % y;
    o[i, 4] = x >> y;
    o[i, 5] = x << (y & 7);
    o[i, 6] = min(x, y) ^ max(x, y);
    o[i, 7] = abs(x) | (y & 255);
    o[i, 8] = select(x < y, -x, ~y);
    acc += x / 3;
    o[i, 9] = acc;
  }
}
"""


def _identical(got: dict, want: dict, zero_sign_free: dict | None = None) -> None:
    """Bit for bit; any NaN matches any NaN; min/max columns may differ in the sign of a zero
    (IEEE leaves that choice open)."""
    for name, w in want.items():
        g = got[name]
        assert g.dtype == w.dtype and g.shape == w.shape, name
        if w.dtype.kind != "f":
            np.testing.assert_array_equal(g, w, err_msg=name)
            continue
        same = (g.view(np.uint32) == w.view(np.uint32)) | (np.isnan(g) & np.isnan(w))
        for column in (zero_sign_free or {}).get(name, ()):
            same[:, column] |= (g[:, column] == 0) & (w[:, column] == 0)
        bad = np.argwhere(~same)
        assert same.all(), f"{name}: differences at {bad[:5].tolist()}"


def _both(text: str, inputs: dict) -> tuple[dict, dict]:
    program = kc.loads(text, "t.k", params={"N": N})
    return kc.run(program, "csl", inputs), kc.interpret(program, inputs)


def test_special_float_values() -> None:
    values = np.array([*SPECIAL[:9], np.nan, np.inf, -np.inf], np.float32)
    rng = np.random.default_rng(1)
    inputs = {"a": values, "b": rng.permutation(values), "c": rng.permutation(values)}
    with np.errstate(all="ignore"):
        got, want = _both(FLOAT_OPS, inputs)
    _identical(got, want, {"o": (3, 4)})
    assert got["o"][1, 2] == 0 and not np.signbit(got["o"][1, 2])  # sqrt(abs(-0.0)) is +0.0


@settings(deadline=None, max_examples=10)
@given(data=st.data())
def test_float_operators_and_casts_match_bit_for_bit(data) -> None:
    a, b, c = (data.draw(arrays(np.float32, N, elements=FLOATS)) for _ in range(3))
    with np.errstate(all="ignore"):
        got, want = _both(FLOAT_OPS, {"a": a, "b": b, "c": c})
    _identical(got, want, {"o": (3, 4)})


@settings(deadline=None, max_examples=10)
@given(
    a=arrays(np.int32, N, elements=st.integers(-(2**31), 2**31 - 1)),
    b=arrays(np.int32, N, elements=st.integers(-40, 40) | st.sampled_from([0, -1, -(2**31)])),
)
def test_integer_operators_match_bit_for_bit(a, b) -> None:
    got, want = _both(INT_OPS, {"a": a, "b": b})
    _identical(got, want)


def test_floor_is_exact_at_the_edges() -> None:
    text = """
    kernel k(a: f32[N]) -> o: f32[N] {
      var s: f32 = 0.0;
      for i in 0 .. N { s += 1.0; o[i] = floor(a[i]); }
    }
    """
    edges = [-0.0, 0.0, -0.5, 0.5, -1.0, 8388607.5, -8388607.5, 8388608.0, -1e30]
    values = np.array([*edges, np.inf, -np.inf, np.nan], np.float32)
    got, want = _both(text, {"a": values})
    _identical(got, want)
    assert np.signbit(got["o"][0])  # floor(-0.0) is -0.0


RAND = """
kernel k(keys: u32[N], counters: u32[N]) -> (bits: u32[N], unit: f32[N]) {
  var n: u32 = u32(0);
  for i in 0 .. N {
    n += u32(1);
    bits[i] = randbits(keys[i], counters[i] + n);
    unit[i] = rand(keys[i] ^ u32(1540483477), counters[i] + u32(i));
  }
}
"""


@settings(deadline=None, max_examples=10)
@given(
    keys=arrays(np.uint32, N, elements=st.integers(0, 2**32 - 1)),
    counters=arrays(np.uint32, N, elements=st.integers(0, 2**32 - 1)),
)
def test_rand_and_randbits_match_bit_for_bit(keys, counters) -> None:
    """The u32 multiplies of the hash wrap exactly, without relying on CSL's overflow rules."""
    got, want = _both(RAND, {"keys": keys, "counters": counters})
    _identical(got, want)
