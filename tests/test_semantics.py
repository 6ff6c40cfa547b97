"""The language's semantics, checked on small inline kernels against values computed by hand or
by plain Python/NumPy written from the definitions (not from the interpreter's code)."""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import kernelc as kc


def run(text: str, inputs: dict, **params: int) -> dict[str, np.ndarray]:
    return kc.interpret(kc.loads(text, filename="t.k"), inputs, params=params or None)


def i32(values) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def f32(values) -> np.ndarray:
    return np.array(values, dtype=np.float32)


# ---------------------------------------------------------------------------------- integers

DIVIDE = """
kernel k(a: i32[N], b: i32[N]) -> (q: i32[N], r: i32[N]) {
  for i in 0 .. N { q[i] = a[i] / b[i]; r[i] = a[i] % b[i]; }
}
"""


def c_divide(a: int, b: int) -> tuple[int, int]:
    """C's truncating division and remainder on i32, with x / 0 = x % 0 = 0 and wrap-around."""
    if b == 0:
        return 0, 0
    q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    wrap = (q + 2**31) % 2**32 - 2**31
    return wrap, a - b * q


@given(
    arrays(np.int32, 12, elements=st.integers(-(2**31), 2**31 - 1)),
    arrays(np.int32, 12, elements=st.integers(-(2**31), 2**31 - 1) | st.sampled_from([0, 1, -1])),
)
def test_integer_division_truncates_and_x_over_zero_is_zero(a, b) -> None:
    out = run(DIVIDE, {"a": a, "b": b})
    expected = [c_divide(int(x), int(y)) for x, y in zip(a, b, strict=True)]
    assert out["q"].tolist() == [q for q, _ in expected]
    assert out["r"].tolist() == [r for _, r in expected]


def test_integer_division_edge_cases() -> None:
    a = i32([7, -7, 7, -7, 5, -(2**31), -(2**31), 0])
    b = i32([2, 2, -2, -2, 0, -1, 0, 3])
    out = run(DIVIDE, {"a": a, "b": b})
    assert out["q"].tolist() == [3, -3, -3, 3, 0, -(2**31), 0, 0]
    assert out["r"].tolist() == [1, -1, 1, -1, 0, 0, 0, 0]


def test_unsigned_division_and_remainder() -> None:
    text = """
    kernel k(a: u32[N], b: u32[N]) -> (q: u32[N], r: u32[N]) {
      for i in 0 .. N { q[i] = a[i] / b[i]; r[i] = a[i] % b[i]; }
    }
    """
    a = np.array([4294967295, 10, 10], np.uint32)
    b = np.array([2, 0, 3], np.uint32)
    out = run(text, {"a": a, "b": b})
    assert out["q"].tolist() == [2147483647, 0, 3]
    assert out["r"].tolist() == [1, 0, 1]


def test_integer_arithmetic_wraps() -> None:
    text = """
    kernel k(a: i32[N], u: u32[N], h: u16[N]) -> (s: i32[N], m: i32[N], n: i32[N], d: u32[N],
                                                 e: u16[N]) {
      for i in 0 .. N {
        s[i] = a[i] + 1;
        m[i] = a[i] * 65536;
        n[i] = -a[i];
        d[i] = u[i] - 1;
        e[i] = h[i] + 1;
      }
    }
    """
    a = i32([2**31 - 1, -(2**31), 40000])
    u = np.array([0, 5, 4294967295], np.uint32)
    h = np.array([65535, 0, 7], np.uint16)
    out = run(text, {"a": a, "u": u, "h": h})
    assert out["s"].tolist() == [-(2**31), -(2**31) + 1, 40001]
    assert out["m"].tolist() == [-65536, 0, (40000 * 65536) % 2**32 - 2**32]
    assert out["n"].tolist() == [-(2**31) + 1, -(2**31), -40000]
    assert out["d"].tolist() == [4294967295, 4, 4294967294]
    assert out["e"].tolist() == [0, 1, 8]


def test_shift_amounts_are_masked_to_the_width() -> None:
    text = """
    kernel k(a: i32[N], s: i32[N], h: u16[N], t: u16[N]) -> (l: i32[N], r: i32[N], u: u32[N],
                                                             hl: u16[N]) {
      for i in 0 .. N {
        l[i] = a[i] << s[i];
        r[i] = a[i] >> s[i];
        u[i] = u32(a[i]) >> u32(s[i]);
        hl[i] = h[i] << t[i];
      }
    }
    """
    a = i32([1, -8, 3, -1])
    s = i32([33, 1, 32, 36])
    h = np.array([1, 3, 0x8001, 5], np.uint16)
    t = np.array([17, 16, 1, 15], np.uint16)
    out = run(text, {"a": a, "s": s, "h": h, "t": t})
    assert out["l"].tolist() == [2, -16, 3, -16]  # amount & 31
    assert out["r"].tolist() == [0, -4, 3, -1]  # signed >> is arithmetic
    assert out["u"].tolist() == [0, (2**32 - 8) >> 1, 3, (2**32 - 1) >> 4]  # unsigned: logical
    assert out["hl"].tolist() == [2, 3, 2, 0x8000]  # amount & 15, result wraps to 16 bits


# ------------------------------------------------------------------------------------ casts

CASTS = """
kernel k(a: f32[N]) -> (b: i32[N], c: u32[N], d: u16[N], e: bool[N]) {
  for i in 0 .. N { b[i] = i32(a[i]); c[i] = u32(a[i]); d[i] = u16(a[i]); e[i] = bool(a[i]); }
}
"""


def test_float_to_int_truncates_saturates_and_maps_nan_to_zero() -> None:
    a = f32([3.7, -3.7, 1e10, -1e10, np.nan, np.inf, -np.inf, 70000, 0.0, -0.5])
    out = run(CASTS, {"a": a})
    top = 2**31 - 1
    assert out["b"].tolist() == [3, -3, top, -(2**31), 0, top, -(2**31), 70000, 0, 0]
    top = 2**32 - 1
    assert out["c"].tolist() == [3, 0, top, 0, 0, top, 0, 70000, 0, 0]
    assert out["d"].tolist() == [3, 0, 65535, 0, 0, 65535, 0, 65535, 0, 0]
    assert out["e"].tolist() == [True, True, True, True, True, True, True, True, False, True]


def test_int_to_float_rounds_to_nearest_even_and_int_casts_wrap() -> None:
    text = """
    kernel k(a: i32[N]) -> (f: f32[N], h: f16[N], u: u32[N], w: u16[N]) {
      for i in 0 .. N { f[i] = f32(a[i]); h[i] = f16(a[i]); u[i] = u32(a[i]); w[i] = u16(a[i]); }
    }
    """
    a = i32([16777217, 16777219, 2049, -1, 70000])
    out = run(text, {"a": a})
    assert out["f"].tolist() == [16777216.0, 16777220.0, 2049.0, -1.0, 70000.0]
    assert out["h"].tolist() == [math.inf, math.inf, 2048.0, -1.0, math.inf]  # 2049: tie to even
    assert out["u"].tolist() == [16777217, 16777219, 2049, 2**32 - 1, 70000]
    assert out["w"].tolist() == [16777217 % 2**16, 16777219 % 2**16, 2049, 65535, 70000 % 2**16]


# ------------------------------------------------------------------------- gathers, scatters


def test_out_of_range_gathers_clamp_and_stores_are_dropped() -> None:
    text = """
    kernel k(a: f32[N], idx: i32[N]) -> (g: f32[N], s: f32[N]) {
      for i in 0 .. N {
        g[i] = a[idx[i]];
        s[idx[i]] = a[i];
      }
    }
    """
    a = f32([10, 20, 30, 40, 50])
    idx = i32([-1, 4, 5, 2**31 - 1, 1])
    out = run(text, {"a": a, "idx": idx})
    assert out["g"].tolist() == [10, 50, 50, 50, 20]
    assert out["s"].tolist() == [0, 50, 0, 0, 20]  # outputs start at zero


def test_gathers_from_an_empty_tensor_read_zero() -> None:
    text = """
    kernel k(a: f32[M], idx: i32[N]) -> g: f32[N] {
      for i in 0 .. N { g[i] = a[idx[i]] + 1.0; }
    }
    """
    out = run(text, {"a": np.zeros(0, np.float32), "idx": i32([0, 3, -1])})
    assert out["g"].tolist() == [1, 1, 1]


def test_compound_scatters_accumulate_every_lane() -> None:
    text = """
    kernel k(a: f32[N], idx: i32[N]) -> (mx: f32[M], mn: f32[M], h: i32[M], last: f32[M]) {
      for i in 0 .. N {
        mx[idx[i]] max= a[i];
        mn[idx[i]] min= a[i];
        h[idx[i]] += 1;
        last[idx[i]] = a[i];
      }
    }
    """
    a = f32([3, -2, 5, 1, 7, -4])
    idx = i32([0, 0, -1, 2, 9, 2])
    out = run(text, {"a": a, "idx": idx}, M=3)
    assert out["mx"].tolist() == [3, 0, 1]
    assert out["mn"].tolist() == [-2, 0, -4]
    assert out["h"].tolist() == [2, 0, 2]
    assert out["last"].tolist() == [-2, 0, -4]  # iterations in order: the last write wins


def test_histogram_matches_bincount() -> None:
    text = """
    kernel hist(x: i32[N]) -> h: i32[B] {
      for i in 0 .. N { h[x[i]] += 1; }
    }
    """
    x = np.random.default_rng(3).integers(0, 7, 500).astype(np.int32)
    out = run(text, {"x": x}, B=7)["h"]
    np.testing.assert_array_equal(out, np.bincount(x, minlength=7))


# ------------------------------------------------------------------------------------- search

SEARCH = """
kernel k(a: f32[N], v: f32[M]) -> r: i32[M] {
  for j in 0 .. M { r[j] = search(a[:], v[j]); }
}
"""


def search_definition(a: list[float], v: float) -> int:
    """The probe sequence of the language's search, in plain Python: binary search for the first
    element greater than v, minus one, clamped to [0, max(n - 2, 0)]."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if a[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return min(max(lo - 1, 0), max(len(a) - 2, 0))


finite = st.floats(-100, 100, width=32)


@given(
    arrays(np.float32, st.integers(2, 40), elements=finite).map(np.sort),
    arrays(np.float32, st.integers(1, 20), elements=finite),
)
def test_search_on_sorted_data_is_searchsorted_right(a, v) -> None:
    out = run(SEARCH, {"a": a, "v": v})["r"]
    expected = np.clip(np.searchsorted(a, v, side="right") - 1, 0, a.size - 2)
    np.testing.assert_array_equal(out, expected)


@given(
    arrays(np.float32, st.integers(1, 20), elements=finite),
    arrays(np.float32, st.integers(1, 10), elements=finite | st.just(float("nan"))),
)
def test_search_follows_its_probe_sequence_on_any_data(a, v) -> None:
    """Unsorted data and NaN values: the result is defined by the probe order alone."""
    out = run(SEARCH, {"a": a, "v": v})["r"]
    assert out.tolist() == [search_definition(a.tolist(), float(x)) for x in v]


def test_search_edge_cases() -> None:
    nan = float("nan")
    cases = [
        ([5.0], [-1.0, 5.0, 9.0, nan], [0, 0, 0, 0]),  # n = 1: always 0
        ([1.0, 2.0], [0.0, 1.0, 1.5, 2.0, 3.0, nan], [0, 0, 0, 0, 0, 0]),  # n = 2: always 0
        ([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.5, 3.0, 4.0, 9.0, nan], [0, 0, 1, 2, 2, 2, 0]),
        ([1.0, 2.0, 2.0, 2.0, 3.0], [2.0, 1.9], [3, 0]),  # ties: the last element <= value
    ]
    for a, v, expected in cases:
        assert run(SEARCH, {"a": f32(a), "v": f32(v)})["r"].tolist() == expected, (a, v)


def test_search_in_a_row_and_in_a_sub_slice() -> None:
    """The index is relative to the slice; fixed indices pick the row."""
    text = """
    kernel k(g: f32[R, C], v: f32[R]) -> (full: i32[R], part: i32[R]) {
      for r in 0 .. R {
        full[r] = search(g[r, :], v[r]);
        part[r] = search(g[r, 2:5], v[r]);
      }
    }
    """
    g = f32([[0, 1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60, 70]])
    v = f32([3.5, 65])
    out = run(text, {"g": g, "v": v})
    assert out["full"].tolist() == [3, 5]
    assert out["part"].tolist() == [1, 1]  # g[r, 2:5] has 3 elements: clamped to [0, 1]


def test_search_clamps_data_dependent_slice_bounds() -> None:
    text = """
    kernel k(g: f32[C], lo: i32[R], hi: i32[R], v: f32[R]) -> r: i32[R] {
      for j in 0 .. R { r[j] = search(g[lo[j]:hi[j]], v[j]); }
    }
    """
    g = f32([0, 1, 2, 3, 4, 5, 6])
    lo = i32([-5, 3, 2, 5, 6])
    hi = i32([100, 100, 1, 7, 9])
    v = f32([5.5, 5.5, 3.0, 9.0, 9.0])
    out = run(text, {"g": g, "lo": lo, "hi": hi, "v": v})["r"]
    # slices: [0:7] -> 5; [3:7] -> 2 (relative); [2:2] empty -> 0; [5:7] -> 0; [6:7] -> 0
    assert out.tolist() == [5, 2, 0, 0, 0]


# --------------------------------------------------------------------------------------- rand

MASK = 0xFFFFFFFF


def lowbias32(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK
    return x ^ (x >> 16)


def randbits_definition(key: int, counter: int) -> int:
    return lowbias32(counter ^ lowbias32(key ^ 0x9E3779B9))


RAND = """
kernel k(ctr: u32[N], key: u32) -> (bits: u32[N], unit: f32[N]) {
  for i in 0 .. N { bits[i] = randbits(key, ctr[i]); unit[i] = rand(key, ctr[i]); }
}
"""


@given(
    st.integers(0, MASK),
    arrays(np.uint32, st.integers(1, 16), elements=st.integers(0, MASK)),
)
def test_rand_matches_its_definition(key: int, ctr) -> None:
    out = run(RAND, {"ctr": ctr, "key": key})
    bits = [randbits_definition(key, int(c)) for c in ctr]
    assert out["bits"].tolist() == bits
    assert out["unit"].tolist() == [(b >> 8) * 2.0**-24 for b in bits]


def test_rand_stream_is_uniform_in_unit_interval() -> None:
    ctr = np.arange(20000, dtype=np.uint32)
    unit = run(RAND, {"ctr": ctr, "key": 7})["unit"]
    assert unit.min() >= 0 and unit.max() < 1
    assert abs(float(unit.mean()) - 0.5) < 0.01
    assert len(np.unique(unit)) > 19900


def test_rand_with_loop_counter_and_literal_key() -> None:
    text = """
    kernel k(x: f32[N]) -> y: f32[N] {
      for i in 0 .. N { y[i] = x[i] * rand(42, u32(i)); }
    }
    """
    out = run(text, {"x": np.full(5, 2.0, np.float32)})["y"]
    assert out.tolist() == [2 * (randbits_definition(42, i) >> 8) * 2.0**-24 for i in range(5)]


# ---------------------------------------------------------------------------- floating point


def f32_bits(x: float) -> float:
    """x rounded to the nearest float32, as a Python float."""
    return struct.unpack("f", struct.pack("f", x))[0]


def test_fma_rounds_once() -> None:
    text = """
    kernel k(a: f32[N], b: f32[N], c: f32[N]) -> (f: f32[N], g: f32[N]) {
      for i in 0 .. N { f[i] = fma(a[i], b[i], c[i]); g[i] = a[i] * b[i] + c[i]; }
    }
    """
    x = 1 + 2.0**-12  # x * x = 1 + 2^-11 + 2^-24: exactly halfway between two float32 values
    a = f32([x, x, x, 3.0])
    c = f32([-1.0, 2.0**-80, -(2.0**-80), 0.5])
    out = run(text, {"a": a, "b": a, "c": c})
    assert out["f"].tolist() == [
        2.0**-11 + 2.0**-24,  # exact: the product is not rounded before the sum
        1 + 2.0**-11 + 2.0**-23,  # just above the halfway point: rounds up (float64 would tie)
        1 + 2.0**-11,  # just below: rounds down
        9.5,
    ]
    assert out["g"].tolist()[0] == 2.0**-11  # two roundings lose the 2^-24
    x16 = 1 + 2.0**-6
    text16 = text.replace("f32", "f16")
    out = run(
        text16,
        {
            "a": np.full(1, x16, np.float16),
            "b": np.full(1, x16, np.float16),
            "c": np.full(1, -1, np.float16),
        },
    )
    assert out["f"].tolist() == [2.0**-5 + 2.0**-12]
    assert out["g"].tolist() == [2.0**-5]


def round_to_f32(q: Fraction) -> float:
    """The float32 nearest to an exact rational (ties to even), by comparing exact distances."""
    if q == 0:
        return 0.0
    near = np.float32(float(q))
    candidates = [
        np.nextafter(near, np.float32(-np.inf)),
        near,
        np.nextafter(near, np.float32(np.inf)),
    ]

    def key(c: np.float32) -> tuple[Fraction, int]:
        return abs(Fraction(float(c)) - q), int(c.view(np.uint32)) & 1

    return float(min(candidates, key=key))


near_ties = st.builds(
    lambda k, e, sign: sign * (2 * k + 1) * 2.0**e,
    st.integers(2**11, 2**12 - 1),
    st.integers(-20, 0),
    st.sampled_from([1, -1]),
)
"""Odd 13-bit mantissas: their products have 25 or 26 bits, and those of 25 bits lie exactly
halfway between two float32 values."""
any_f32 = st.floats(-1e3, 1e3, width=32)


@given(
    arrays(np.float32, 8, elements=near_ties | any_f32),
    arrays(np.float32, 8, elements=near_ties | any_f32),
    arrays(np.float32, 8, elements=st.sampled_from([0.0, 2.0**-100, -(2.0**-100)]) | any_f32),
)
def test_fma_is_the_correctly_rounded_exact_result(a, b, c) -> None:
    """Where the product is a float32 halfway point, a tiny addend (lost in a float64 sum)
    decides the rounding; elsewhere the result is the exact value rounded once."""
    text = """
    kernel k(a: f32[N], b: f32[N], c: f32[N]) -> f: f32[N] {
      for i in 0 .. N { f[i] = fma(a[i], b[i], c[i]); }
    }
    """
    out = run(text, {"a": a, "b": b, "c": c})["f"]
    exact = [
        Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
        for x, y, z in zip(a, b, c, strict=True)
    ]
    assert out.tolist() == [round_to_f32(q) for q in exact]


def test_f16_arithmetic_rounds_after_every_operation() -> None:
    text = """
    kernel k(a: f16[N]) -> (b: f16[N], s: f16[1], p: f16[N]) {
      for i in 0 .. N { b[i] = a[i] + 1.0 + 1.0; p[i] = a[i] * a[i]; }
      s[0] = sum(k in 0 .. 3000) f16(1.0);
    }
    """
    a = np.array([2048, 1, 300, 0.1], np.float16)
    out = run(text, {"a": a})
    assert out["b"].tolist() == [2048, 3, 302, float(np.float16(np.float16(0.1) + 1) + 1)]
    assert out["s"].tolist() == [2048]  # 2048 + 1 rounds back to 2048 (ties to even)
    assert out["p"].tolist()[2] == math.inf  # 90000 overflows f16
    assert out["p"].tolist()[3] == float(np.float16(float(np.float16(0.1)) ** 2))


def test_f32_literals_round_to_f32_and_division_by_zero_is_ieee() -> None:
    text = """
    kernel k(a: f32[N]) -> (b: f32[N], c: f32[N], m: f32[N]) {
      for i in 0 .. N { b[i] = a[i] + 0.1; c[i] = 1.0 / a[i]; m[i] = max(a[i], -a[i]); }
    }
    """
    a = f32([0.0, -0.0, np.nan, 2.0])
    out = run(text, {"a": a})
    assert out["b"].tolist()[3] == f32_bits(2 + f32_bits(0.1))
    assert out["c"].tolist()[:2] == [math.inf, -math.inf]
    assert out["c"].tolist()[3] == 0.5
    assert math.isnan(out["m"].tolist()[2]) and out["m"].tolist()[3] == 2.0


def test_min_max_return_the_number_when_one_operand_is_nan() -> None:
    text = """
    kernel k(a: f32[N], b: f32[N], n: i32[N]) -> (lo: f32[N], hi: f32[N], m: f32[N],
                                                 ab: i32[N]) {
      for i in 0 .. N {
        lo[i] = min(a[i], b[i]);
        hi[i] = max(a[i], b[i]);
        m[i] max= a[i];
        ab[i] = abs(n[i]);
      }
    }
    """
    nan = float("nan")
    a = f32([nan, 2.0, nan, -1.0])
    b = f32([1.0, nan, nan, -3.0])
    out = run(text, {"a": a, "b": b, "n": i32([-(2**31), -5, 0, 7])})
    assert out["lo"].tolist()[:2] == [1.0, 2.0] and math.isnan(out["lo"][2])
    assert out["hi"].tolist()[:2] == [1.0, 2.0] and math.isnan(out["hi"][2])
    assert out["lo"][3] == -3 and out["hi"][3] == -1
    assert out["m"].tolist() == [0.0, 2.0, 0.0, 0.0]  # max= from the zero-filled output
    assert out["ab"].tolist() == [-(2**31), 5, 0, 7]  # abs wraps like negation


def test_bool_conversions() -> None:
    text = """
    kernel k(p: bool[N], n: i32[N]) -> (f: f32[N], i: i32[N], b: bool[N], h: u16[N]) {
      for j in 0 .. N { f[j] = f32(p[j]); i[j] = i32(p[j]); b[j] = bool(n[j]); h[j] = u16(p[j]); }
    }
    """
    out = run(text, {"p": np.array([True, False, True]), "n": i32([0, -3, 1])})
    assert out["f"].tolist() == [1.0, 0.0, 1.0]
    assert out["i"].tolist() == [1, 0, 1] and out["h"].tolist() == [1, 0, 1]
    assert out["b"].tolist() == [False, True, True]


def test_sum_body_extends_to_the_right_and_sizes_are_values() -> None:
    text = """
    kernel k(x: f32[N]) -> (s: f32[1], n: i32[1]) {
      s[0] = 1.0 + sum(k in 0 .. N) x[k] * 2.0;
      n[0] = N * 10 + sum(k in 0 .. N) k;
    }
    """
    out = run(text, {"x": f32([1, 2, 3])})
    assert out["s"].tolist() == [13.0] and out["n"].tolist() == [33]


def test_sum_is_a_left_to_right_fold() -> None:
    text = """
    kernel k(x: f32[N]) -> (s: f32[1], t: i32[1]) {
      s[0] = sum(k in 0 .. N) x[k];
      t[0] = sum(k in 0 .. N) i32(x[k]);
    }
    """
    x = f32([1e8, 1, 1, 1, 1, -1e8, 3])
    out = run(text, {"x": x})
    acc = np.float32(0)
    for v in x:
        acc = np.float32(acc + v)
    assert out["s"].tolist() == [float(acc)] == [3.0]  # each +1 is lost next to 1e8
    assert out["t"].tolist() == [7]


def test_empty_and_reversed_ranges_do_nothing() -> None:
    text = """
    kernel k(x: f32[N]) -> (s: f32[1], y: f32[N]) {
      s[0] = sum(k in 3 .. 1) x[k];
      for i in N .. 0 { y[i] = 1.0; }
    }
    """
    out = run(text, {"x": f32([1, 2, 3, 4])})
    assert out["s"].tolist() == [0] and out["y"].tolist() == [0, 0, 0, 0]


# -------------------------------------------------------------------------------- control flow


def test_data_dependent_trip_counts() -> None:
    text = """
    kernel k(n: i32[R], x: f32[R, C]) -> (s: f32[R], c: i32[R]) {
      for r in 0 .. R {
        for j in 0 .. n[r] {
          s[r] += x[r, j];
          c[r] += 1;
        }
      }
    }
    """
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (9, 6)).astype(np.float32)
    n = i32([0, 1, 6, 3, -2, 2, 5, 4, 6])
    out = run(text, {"n": n, "x": x})
    for r in range(9):
        acc = np.float32(0)
        for j in range(max(int(n[r]), 0)):
            acc = np.float32(acc + x[r, j])
        assert out["s"][r] == acc
    assert out["c"].tolist() == [max(int(v), 0) for v in n]


def test_divergent_if_else_chains() -> None:
    text = """
    kernel k(a: i32[N]) -> b: i32[N] {
      for i in 0 .. N {
        var t = a[i];
        if a[i] < 0 {
          t = -t;
        } else if a[i] % 2 == 0 {
          t /= 2;
        } else {
          t = 3 * t + 1;
        }
        if t > 10 && i > 1 {
          t -= 10;
        }
        b[i] = t;
      }
    }
    """
    a = i32([-5, 4, 7, 0, 30, -42, 13])

    def expected(i: int, v: int) -> int:
        t = -v if v < 0 else (v // 2 if v % 2 == 0 else 3 * v + 1)
        return t - 10 if t > 10 and i > 1 else t

    assert run(text, {"a": a})["b"].tolist() == [expected(i, int(v)) for i, v in enumerate(a)]


def test_select_and_logical_operators() -> None:
    text = """
    kernel k(a: f32[N], p: bool[N]) -> (s: f32[N], q: bool[N]) {
      for i in 0 .. N {
        s[i] = select(a[i] > 0.0 || p[i], a[i], -a[i]);
        q[i] = !p[i] && a[i] != 0.0 || (p[i] ^ (a[i] < 0.0));
      }
    }
    """
    a = f32([1, -2, -3, 0])
    p = np.array([False, True, False, False])
    out = run(text, {"a": a, "p": p})
    assert out["s"].tolist() == [1, -2, 3, -0.0]
    expected = [(not pp and x != 0) or (pp != (x < 0)) for x, pp in zip(a, p, strict=True)]
    assert out["q"].tolist() == expected


def test_var_carried_through_a_sequential_loop() -> None:
    text = """
    kernel scan(x: f32[N]) -> (y: f32[N], m: f32[N]) {
      var acc: f32 = 0.0;
      var best = -1.0e30;
      for i in 0 .. N {
        acc += x[i];
        best max= x[i];
        y[i] = acc;
        m[i] = best;
      }
    }
    """
    x = np.random.default_rng(1).uniform(-1, 1, 40).astype(np.float32)
    out = run(text, {"x": x})
    acc, best, ys, ms = np.float32(0), np.float32(-1e30), [], []
    for v in x:
        acc = np.float32(acc + v)
        best = max(best, v)
        ys.append(acc)
        ms.append(best)
    assert out["y"].tolist() == ys
    assert out["m"].tolist() == ms


def test_var_per_lane_inside_a_parallel_loop() -> None:
    text = """
    kernel k(x: f32[R, C]) -> y: f32[R] {
      for r in 0 .. R {
        var acc: f32 = 0.0;
        for c in 0 .. C {
          if x[r, c] > 0.0 { acc += x[r, c]; }
        }
        y[r] = acc;
      }
    }
    """
    x = np.random.default_rng(2).uniform(-1, 1, (7, 5)).astype(np.float32)
    out = run(text, {"x": x})["y"]
    for r in range(7):
        acc = np.float32(0)
        for v in x[r]:
            if v > 0:
                acc = np.float32(acc + v)
        assert out[r] == acc


# --------------------------------------------------------------------------------------- graphs


def test_graph_with_sliced_calls_and_scalar_arguments() -> None:
    text = """
    kernel scale(x: f32[N], s: f32) -> y: f32[N] {
      for i in 0 .. N { y[i] = s * x[i]; }
    }
    kernel addrows(a: f32[N], b: f32[N]) -> c: f32[N] {
      for i in 0 .. N { c[i] = a[i] + b[i]; }
    }
    graph g(m: f32[R, C], alpha: f32 = 3.0) -> out: f32[C] {
      let t: f32[2, C];
      t[0, :] = scale(m[0, :], alpha);
      t[1, 0:C/2] = scale(m[1, 0:C/2], 2.0);
      t[1, C/2:C] = scale(m[1, C/2:C], 0.5);
      out = addrows(t[0, :], t[1, :]);
    }
    """
    m = np.arange(2 * 6, dtype=np.float32).reshape(2, 6)
    prog = kc.loads(text, filename="t.k")
    out = kc.interpret(prog, {"m": m})["out"]
    second = np.concatenate([2 * m[1, :3], 0.5 * m[1, 3:]])
    np.testing.assert_array_equal(out, 3 * m[0] + second)
    out = kc.interpret(prog, {"m": m, "alpha": np.float32(0.5)})["out"]
    np.testing.assert_array_equal(out, 0.5 * m[0] + second)
    graph = prog.graph(inputs={"m": m})
    assert [t.name for t in graph.tasks] == ["scale_0", "scale_1", "scale_2", "addrows_3"]
    assert sorted(graph.dependencies.predecessors("addrows_3")) == [
        "scale_0",
        "scale_1",
        "scale_2",
    ]


def test_graph_odd_split_and_in_place_chain() -> None:
    """A later task may overwrite a region an earlier one wrote; order follows the source."""
    text = """
    kernel inc(x: i32[N]) -> y: i32[N] {
      for i in 0 .. N { y[i] = x[i] + 1; }
    }
    kernel twice(x: i32[N]) -> y: i32[N] {
      for i in 0 .. N { y[i] = 2 * x[i]; }
    }
    graph g(a: i32[N]) -> b: i32[N] {
      b[0:N/2] = inc(a[0:N/2]);
      b[N/2:N] = twice(a[N/2:N]);
      let t: i32[N];
      t = inc(b);
      b = twice(t);
    }
    """
    a = i32([1, 2, 3, 4, 5])
    out = kc.interpret(kc.loads(text, filename="t.k"), {"a": a})["b"]
    first = [2, 3, 6, 8, 10]
    assert out.tolist() == [2 * (v + 1) for v in first]


@pytest.mark.parametrize("n", [1, 2, 7])
def test_one_wide_and_small_loops_run_like_wide_ones(n: int) -> None:
    text = """
    kernel k(x: f32[N]) -> (y: f32[N], s: f32[1]) {
      for i in 0 .. N {
        let j = N - 1 - i;
        y[i] = x[j] * 2.0;
      }
      s[0] = sum(k in 0 .. N) x[k];
    }
    """
    x = np.arange(1, n + 1, dtype=np.float32)
    out = run(text, {"x": x})
    assert out["y"].tolist() == (2 * x[::-1]).tolist()
    assert out["s"].tolist() == [n * (n + 1) / 2]
