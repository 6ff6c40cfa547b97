"""csl regressions from issue 14: constants that are not finite in their type, divisions of
constants by zero, and an operand negated while the operation that reads it is still pending.
Each runs data-parallel (DSD code) and as scalar code, on the fabric simulator, against the
reference interpreter, bit for bit (any NaN matches any NaN)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernelc as kc

ROOT = Path(__file__).resolve().parent.parent


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    bits = got.view(np.uint32) == want.view(np.uint32)
    return bool(np.all(bits | (np.isnan(got) & np.isnan(want))))


def _check(program, grid=None) -> dict:
    rng = np.random.default_rng(3)
    given = {
        p.name: rng.uniform(-2.0, 2.0, p.shape).astype(np.float32) for p in program.graph().inputs
    }
    options = {"grid": grid} if grid else {}
    with np.errstate(all="ignore"):
        got = kc.run(program, "csl", given, **options)
        want = kc.interpret(program, given)
    for name, w in want.items():
        assert _same(got[name], w), name
    return got


MAP = """
size N = 6, M = 5;
kernel k(b: f32[N, M]) -> (a: f32[M, N], c: f32[M, N]) {
  for i in 0 .. M, j in 0 .. N {
    a[i, j] = 0.5 / 0 * b[j, i];
    c[i, j] = b[j, i] * (1.0 / 0.0) + 1e39 - 1e39 + (0.0 / 0.0) * -(3e38 * 10.0);
  }
}
"""

SCALAR = """
size N = 6;
kernel k(b: f32[N]) -> a: f32[N, 3] {
  var s: f32 = 0.0;
  for i in 0 .. N {
    s = s + b[i] * 1e39;
    a[i, 0] = s - (0.0 / 0.0);
    a[i, 1] = b[i] / 0.0 - 0.5 / -0;
    a[i, 2] = -1e39 * b[i];
  }
}
"""


@pytest.mark.parametrize("grid", [None, (2, 2)])
def test_infinite_and_nan_constants_in_vector_code(grid) -> None:
    got = _check(kc.loads(MAP, "map.k"), grid)
    assert np.isinf(got["a"]).any()
    assert np.isnan(got["c"]).all()


def test_infinite_and_nan_constants_in_scalar_code() -> None:
    got = _check(kc.loads(SCALAR, "scalar.k"))
    assert np.isnan(got["a"][:, 0]).all()


def test_non_finite_constants_are_bitcast_bit_patterns() -> None:
    art = kc.build(kc.loads(MAP, "map.k"), "csl")
    pe = next(text for name, text in art.files.items() if name.startswith("pe_"))
    assert "@bitcast(f32, @as(u32, 2139095040))" in pe  # +inf: CSL has no literal for it
    assert " / 0.0" not in pe  # constant divisions are folded, never left to cslc


def test_f16_constants_overflow_to_infinity() -> None:
    source = """
    size N = 8;
    kernel k(b: f16[N]) -> a: f16[N] {
      for i in 0 .. N { a[i] = b[i] * 70000.0; }
    }
    """
    program = kc.loads(source, "h.k")
    b = np.linspace(-1, 1, 8).astype(np.float16)
    with np.errstate(all="ignore"):
        got = kc.run(program, "csl", {"b": b})["a"]
        want = kc.interpret(program, {"b": b})["a"]
    np.testing.assert_array_equal(got, want)
    pe = next(t for n, t in kc.build(program, "csl").files.items() if n.startswith("pe_"))
    assert "@bitcast(f16, @as(u16, 31744))" in pe


def test_sobel_with_a_negated_operand_is_nan_like_the_interpreter() -> None:
    text = (ROOT / "examples" / "sobel.k").read_text()
    text = text.replace("sqrt(gx * gx + gy * gy)", "sqrt(gx * -gx + gy * gy)")
    assert "gx * -gx" in text
    program = kc.loads(text, "sobel_neg.k", params={"H": 12, "W": 10})
    got = _check(program, (2, 2))
    assert np.isnan(got["mag"][1:-1, 1:-1]).any()


@pytest.mark.parametrize("to", ["i32", "u16", "u32"])
def test_f16_to_integer_casts_saturate_like_the_interpreter(to: str) -> None:
    """The fuzzer's find: an f16 to integer cast had no helper (AssertionError)."""
    program = kc.loads(
        "kernel k(a: f32[6]) -> o: i32[6] { for i in 0 .. 6 { "
        f"o[i] = i32({to}(f16(a[i]))); }} }}",
        "k.k",
    )
    a = np.array([1.5, -3e9, np.nan, 65504, -2.5, 70000], np.float32)
    got = kc.run(program, "csl", {"a": a})["o"]
    np.testing.assert_array_equal(got, kc.interpret(program, {"a": a})["o"])


def test_an_infinite_scalar_input_is_compiled_in_as_a_bitcast() -> None:
    """The fuzzer's find: scalars are build-time constants, and inf has no CSL literal."""
    program = kc.loads(
        "kernel k(a: f32[2], s: f32) -> o: f32[2] { for i in 0 .. 2 { o[i] = a[i] * s; } }", "k.k"
    )
    a = np.array([1.0, -2.0], np.float32)
    got = kc.run(program, "csl", {"a": a, "s": np.float32(np.inf)})["o"]
    np.testing.assert_array_equal(got, np.array([np.inf, -np.inf], np.float32))
