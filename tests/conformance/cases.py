"""The conformance cases: a program, its sizes, seeded inputs and an independent NumPy reference.

Every reference here is written from docs/LANGUAGE.md (or from the kernel's mathematical
definition) in NumPy, never from the IR or the interpreter. A reference returns, per output, the
expected array and how to compare it: ``EXACT`` (bit for bit: integers, element-wise maps,
sequential scalar code, everything the language defines exactly) or a relative tolerance for
the cases whose sums a target may reorder (matrix products, reductions, lookups).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from references import gemm_reference, pca_reference, sobel_reference
from xs_reference import macro_xs_reference

import kernelc as kc
from kernelc import xsbench

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXAMPLES = ROOT / "examples"

EXACT = None
"""Compare bit for bit (NaN matches NaN)."""
SUMS = 1e-5
"""Relative tolerance (of |want| + max|want|) for float32 results whose sums may be reordered."""

Expected = dict[str, tuple[np.ndarray, float | None]]


@dataclass(frozen=True)
class Case:
    name: str
    form: str  # "semantics", "example", or the kernel form the case exercises
    source: str | Path  # .k / .c file, or .k text
    params: Mapping[str, int]
    inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    reference: Callable[[dict[str, np.ndarray]], Expected]
    seed: int = 0
    tags: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.name

    def program(self) -> kc.Program:
        if isinstance(self.source, Path):
            return kc.load(self.source, params=dict(self.params))
        return kc.loads(self.source, f"{self.name}.k", params=dict(self.params))

    def draw(self) -> dict[str, np.ndarray]:
        return self.inputs(np.random.default_rng(self.seed))


def uniform(rng: np.random.Generator, shape, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return rng.uniform(low, high, shape).astype(np.float32)


# ------------------------------------------------------------------ language definitions in NumPy


def c_div(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """i32 `/` and `%`: truncating C division, x / 0 = 0 and x % 0 = 0, INT_MIN / -1 wraps."""
    q, r = np.zeros_like(a), np.zeros_like(a)
    for k, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        if y == 0:
            continue
        quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
        q[k] = np.int64(quotient).astype(np.int32)  # -2^31 / -1 wraps to -2^31
        r[k] = x - quotient * y
    return q, r


def saturate(x: np.ndarray, dtype) -> np.ndarray:
    """float -> integer: truncate toward zero, saturate at the type's range, NaN gives 0."""
    info = np.iinfo(dtype)
    t = np.trunc(np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=np.inf, neginf=-np.inf))
    return np.clip(t, info.min, info.max).astype(dtype)


def search_ref(s: np.ndarray, v: float) -> int:
    """`search`: the exact binary search of docs/LANGUAGE.md (defined even on unsorted rows)."""
    lo, hi = 0, len(s)
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if s[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return min(max(lo - 1, 0), max(len(s) - 2, 0))


def _mix(x: np.ndarray) -> np.ndarray:
    """lowbias32 on uint32, computed in uint64 and masked so the multiplies wrap explicitly."""
    mask = np.uint64(0xFFFFFFFF)
    x = x.astype(np.uint64)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & mask
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & mask
    x ^= x >> np.uint64(16)
    return x


def randbits_ref(key, counter) -> np.ndarray:
    key = np.asarray(key, np.uint64)
    counter = np.asarray(counter, np.uint64)
    return (_mix(counter ^ _mix(key ^ np.uint64(0x9E3779B9)))).astype(np.uint32)


def rand_ref(key, counter) -> np.ndarray:
    """24 random bits as an exact f32 in [0, 1)."""
    bits = randbits_ref(key, counter) >> np.uint32(8)
    return (bits.astype(np.float64) * 2.0**-24).astype(np.float32)


# ------------------------------------------------------------------------------ language semantics

N = 16
INT_SPECIAL = np.array(
    [7, -7, 7, -7, -(2**31), -(2**31), 2**31 - 1, 0, 5, -5, 13, 1, -1, 100, -100, 3], np.int32
)
INT_DIVISOR = np.array([2, 2, -2, -2, -1, 0, 0, 3, 0, 3, -4, -1, 7, 9, -9, 3], np.int32)

DIV_REM = """
kernel div_rem(a: i32[N], b: i32[N]) -> (q: i32[N], r: i32[N]) {
  for i in 0 .. N {
    q[i] = a[i] / b[i];
    r[i] = a[i] % b[i];
  }
}
"""


def _div_rem(x):
    q, r = c_div(x["a"], x["b"])
    return {"q": (q, EXACT), "r": (r, EXACT)}


CASTS = """
kernel casts(a: f32[N]) -> (s: i32[N], h: i32[N], w: u32[N]) {
  for i in 0 .. N {
    s[i] = i32(a[i]);
    h[i] = i32(u16(a[i]));
    w[i] = u32(a[i]);
  }
}
"""
CAST_VALUES = np.array(
    [0.0, -0.5, 1.99, -1.99, 3e9, -3e9, 65535.9, 70000.0, -1.0, np.nan, np.inf, -np.inf]
    + [4294967296.0, 2.5e9, 123.75, -123.75],
    np.float32,
)


def _casts(x):
    a = x["a"]
    return {
        "s": (saturate(a, np.int32), EXACT),
        "h": (saturate(a, np.uint16).astype(np.int32), EXACT),
        "w": (saturate(a, np.uint32), EXACT),
    }


GATHER = """
kernel gather(a: f32[N], idx: i32[N]) -> o: f32[N] {
  for i in 0 .. N {
    o[i] = a[idx[i]];
  }
}
"""

SCATTER = """
kernel scatter(a: f32[N], idx: i32[N]) -> o: f32[N] {
  for i in 0 .. N {
    o[idx[i]] = a[i];
  }
}
"""


def _indices(rng):
    return {"a": uniform(rng, N), "idx": rng.integers(-6, N + 6, N).astype(np.int32)}


def _gather(x):
    return {"o": (x["a"][np.clip(x["idx"], 0, N - 1)], EXACT)}


def _scatter(x):
    o = np.zeros(N, np.float32)
    for value, i in zip(x["a"], x["idx"], strict=True):
        if 0 <= i < N:  # out-of-range stores are dropped; later stores win
            o[i] = value
    return {"o": (o, EXACT)}


SEARCH = """
kernel lookup(t: f32[R, S], v: f32[R, Q]) -> (whole: i32[R, Q], tail: i32[R, Q]) {
  for i in 0 .. R, q in 0 .. Q {
    whole[i, q] = search(t[i, :], v[i, q]);
    tail[i, q] = search(t[i, 3:], v[i, q]);
  }
}
"""


def _search_inputs(rng):
    t = np.sort(uniform(rng, (4, 9)), axis=1)
    t[3] = uniform(rng, 9)  # an unsorted row: the probe sequence still defines the answer
    v = uniform(rng, (4, 6), -1.3, 1.3)
    v[0, :3] = [np.nan, t[0, 0], t[0, -1]]  # NaN, and values equal to the ends
    return {"t": t, "v": v}


def _search(x):
    t, v = x["t"], x["v"]
    whole = np.array([[search_ref(t[i], e) for e in v[i]] for i in range(4)], np.int32)
    tail = np.array([[search_ref(t[i, 3:], e) for e in v[i]] for i in range(4)], np.int32)
    return {"whole": (whole, EXACT), "tail": (tail, EXACT)}


RAND = """
kernel draws(keys: u32[N]) -> (bits: u32[N], unit: f32[N]) {
  for i in 0 .. N {
    bits[i] = randbits(keys[i], u32(i) * 16 + 3);
    unit[i] = rand(12345, u32(i));
  }
}
"""


def _rand(x):
    i = np.arange(N, dtype=np.uint64)
    return {
        "bits": (randbits_ref(x["keys"], i * 16 + 3), EXACT),
        "unit": (rand_ref(12345, i), EXACT),
    }


F16 = """
kernel half(a: f32[N], b: f32[N]) -> (p: f32[N], d: f32[N], s: f32[N]) {
  for i in 0 .. N {
    let x = f16(a[i]);
    let y = f16(b[i]);
    p[i] = f32(x * y + x);
    d[i] = f32(x / y);
    s[i] = f32(sum(k in 0 .. N) f16(a[k]) * y);
  }
}
"""


def _f16(x):
    # NumPy's float16 operations compute in float32 and round once to float16, which equals
    # the exactly rounded result for + - * / (docs/LANGUAGE.md, "f16 arithmetic").
    a, b = x["a"].astype(np.float16), x["b"].astype(np.float16)
    with np.errstate(divide="ignore", invalid="ignore"):
        p, d = a * b + a, a / b
    s = np.zeros(N, np.float16)
    for i in range(N):
        acc = np.float16(0)
        for k in range(N):
            acc = np.float16(acc + np.float16(a[k] * b[i]))  # rounds after every addition
        s[i] = acc
    return {name: (v.astype(np.float32), EXACT) for name, v in (("p", p), ("d", d), ("s", s))}


MINMAX = """
kernel extremes(a: f32[N], b: f32[N]) -> (lo: f32[N], hi: f32[N]) {
  for i in 0 .. N {
    lo[i] = min(a[i], b[i]);
    hi[i] = max(a[i], b[i]);
  }
}
"""


def _nan_pairs(rng):
    a, b = uniform(rng, N, 0.5, 2.0), -uniform(rng, N, 0.5, 2.0)
    a[[1, 4, 9]] = np.nan
    b[[2, 4, 11]] = np.nan
    a[[6, 7]] = np.inf
    b[7] = -np.inf
    return {"a": a, "b": b}


def _minmax(x):
    return {"lo": (np.fmin(x["a"], x["b"]), EXACT), "hi": (np.fmax(x["a"], x["b"]), EXACT)}


SELECT = """
kernel choose(a: f32[N], b: f32[N], n: i32[N]) -> (f: f32[N], k: i32[N]) {
  for i in 0 .. N {
    f[i] = select(a[i] > b[i], a[i] - b[i], b[i] * 2.0);
    k[i] = select(n[i] % 2 == 0 && a[i] < 0.0, n[i], -n[i]);
  }
}
"""


def _select_inputs(rng):
    n = rng.integers(-9, 9, N).astype(np.int32)
    return {"a": uniform(rng, N), "b": uniform(rng, N), "n": n}


def _select(x):
    a, b, n = x["a"], x["b"], x["n"]
    f = np.where(a > b, a - b, b * np.float32(2.0))
    rem = n - np.trunc(n / 2).astype(np.int32) * 2  # C remainder
    k = np.where((rem == 0) & (a < 0), n, -n)
    return {"f": (f, EXACT), "k": (k, EXACT)}


COMPOUND = """
kernel compound(a: i32[N], f: f32[N], idx: i32[N]) -> (s: i32[B], p: i32[B], hi: f32[B],
                                                        lo: f32[B], q: f32[B]) {
  for i in 0 .. N {
    s[idx[i]] += a[i];
    s[idx[i]] -= 1;
    p[idx[i]] += 1;
    p[idx[i]] *= 3;
    hi[idx[i]] max= f[i];
    lo[idx[i]] min= f[i];
    q[idx[i]] += f[i];
    q[idx[i]] /= 2.0;
  }
}
"""


def _compound_inputs(rng):
    return {
        "a": rng.integers(-50, 50, N).astype(np.int32),
        "f": uniform(rng, N),
        "idx": rng.integers(-2, 7, N).astype(np.int32),
    }


def _compound(x):
    b = 5
    s, p = np.zeros(b, np.int32), np.zeros(b, np.int32)
    hi, lo, q = (np.zeros(b, np.float32) for _ in range(3))
    for a, f, i in zip(x["a"], x["f"], x["idx"], strict=True):
        if not 0 <= i < b:
            continue  # every store of an out-of-range index is dropped
        s[i] += a - 1
        p[i] = (p[i] + 1) * 3
        hi[i], lo[i] = max(hi[i], f), min(lo[i], f)
        q[i] = np.float32(q[i] + f) / np.float32(2.0)
    return {
        name: (v, EXACT) for name, v in zip("s p hi lo q".split(), (s, p, hi, lo, q), strict=True)
    }


PREFIX = """
kernel prefix(a: f32[N]) -> y: f32[N] {
  var acc: f32 = 0.0;
  for i in 0 .. N {
    acc += a[i];
    y[i] = acc;
  }
}
"""


def _prefix(x):
    y, acc = np.zeros(N, np.float32), np.float32(0)
    for i, v in enumerate(x["a"]):
        acc = np.float32(acc + v)  # sequential: left to right, rounded each step
        y[i] = acc
    return {"y": (y, EXACT)}


SHIFTED = """
kernel shifted(u: f32[N, M]) -> v: f32[N, M] {
  for i in 0 .. N, j in 0 .. M {
    if i > 0 && i < N - 1 && j > 0 && j < M - 1 {
      v[i - 1, j] = u[i, j] + u[i + 1, j];
    } else {
      v[i, j] = u[i, j];
    }
  }
}
"""


def _shifted(x):
    u = x["u"]
    n, m = u.shape
    v = np.zeros_like(u)
    for i in range(n):  # sequential semantics: a later iteration's store wins
        for j in range(m):
            if 0 < i < n - 1 and 0 < j < m - 1:
                v[i - 1, j] = u[i, j] + u[i + 1, j]
            else:
                v[i, j] = u[i, j]
    return {"v": (v, EXACT)}


def _idle(x):
    # fminf(acc, 1) three times: the minimum with 1, NaN giving 1 (C's fminf, kernelc's min)
    return {"o": (np.fmin(x["a"], np.float32(1)), EXACT)}


# ------------------------------------------------------------------------------------ examples


def _sobel(x):
    return {"mag": (sobel_reference(x["img"]), SUMS)}


def _gemm(x):
    return {"c": (gemm_reference(x["a"], x["b"]), SUMS)}


def _pca(x):
    return {"codes": (pca_reference(x["frames"], x["mean"], x["basis"]), SUMS)}


@cache
def _xs_problem(lookups: int) -> dict[str, np.ndarray]:
    return xsbench.generate("small", lookups, 6, 40).kernel_inputs()


XS_SIZES = {"NI": 6, "NG": 40, "NM": 12, "MAXN": 34}


def _xs(x):
    keys = ("egrid", "xs", "mat_nucs", "mat_conc", "mat_count", "energy", "material")
    return {"macro": (macro_xs_reference(*(x[k] for k in keys)), 1e-4)}


def _pipeline(x):
    v = x["v1"].reshape(4, -1)
    return {"sums": (v.astype(np.float64).sum(axis=1), SUMS), "peaks": (v.max(axis=1), EXACT)}


# -------------------------------------------------------------------------------- kernel forms


def _heat_sweep(u: np.ndarray) -> np.ndarray:
    """One sweep, in the kernel's own precision and order of operations (an element-wise map,
    so bit for bit): interior u + 0.1 * (up + down + left + right - 4 u), border copied."""
    t = u.dtype.type
    v = u.copy()
    c = u[1:-1, 1:-1]
    around = ((u[:-2, 1:-1] + u[2:, 1:-1]) + u[1:-1, :-2]) + u[1:-1, 2:]
    v[1:-1, 1:-1] = c + t(0.1) * (around - t(4.0) * c)
    return v


def _heat(x):
    return {"w": (_heat_sweep(_heat_sweep(x["u"])), EXACT)}


def _smooth_sweep(u: np.ndarray) -> np.ndarray:
    v = u.copy()
    v[1:] = np.float32(0.5) * (u[:-1] + u[1:])
    return v


def _smooth(x):
    return {"w": (_smooth_sweep(_smooth_sweep(x["u"])), EXACT)}


def _dense(x):
    y = x["x"].astype(np.float64) @ x["w"].astype(np.float64) + x["b"].astype(np.float64)
    return {"y": (np.maximum(y, 0.0), SUMS)}


def _dense_f16_cast(x):
    halves = {k: x[k].astype(np.float16) for k in ("x", "w")}
    return _dense({**x, **halves})


def _softmax(x):
    v = x["x"].astype(np.float64)
    e = np.exp(v - v.max(axis=1, keepdims=True))
    return {"y": (e / e.sum(axis=1, keepdims=True), SUMS)}


def _mc_xs_inputs(rng):
    problem = dict(_xs_problem(8))
    del problem["energy"], problem["material"]
    weights = rng.uniform(0.2, 1.0, XS_SIZES["NM"])
    cdf = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]).astype(np.float32)
    cdf[-1] = 1.0
    return {**problem, "cdf": cdf}


def _mc_xs(seed: int, lookups: int):
    def reference(x):
        counters = np.arange(lookups, dtype=np.uint64) * 2
        energy = rand_ref(seed, counters)
        material = np.array(
            [search_ref(x["cdf"], u) for u in rand_ref(seed, counters + 1)], np.int32
        )
        keys = ("egrid", "xs", "mat_nucs", "mat_conc", "mat_count")
        macro = macro_xs_reference(*(x[k] for k in keys), energy, material)
        return {"macro": (macro, 1e-4)}

    return reference


def _f(shape_of: Mapping[str, tuple], dtype=np.float32):
    """Inputs uniform in [-1, 1) of the given shapes."""
    return lambda rng: {k: uniform(rng, s).astype(dtype) for k, s in shape_of.items()}


def _dense_f16_inputs(rng):
    return {
        "x": uniform(rng, (6, 10)).astype(np.float16),
        "w": uniform(rng, (10, 7)).astype(np.float16),
        "b": uniform(rng, 7),
    }


def _heat_inputs(n: int, m: int, dtype=np.float32):
    return lambda rng: {"u": uniform(rng, (n, m)).astype(dtype)}


def _xs_inputs(rng):
    return dict(_xs_problem(48))


XS_PARAMS = {**XS_SIZES, "L": 48}
CONF = HERE
OMP = EXAMPLES / "omp"

CASES: list[Case] = [
    # language semantics
    Case("int_div_rem", "semantics", DIV_REM, {"N": N},
         lambda rng: {"a": INT_SPECIAL, "b": INT_DIVISOR}, _div_rem),
    Case("float_to_int_casts", "semantics", CASTS, {"N": N},
         lambda rng: {"a": CAST_VALUES}, _casts),
    Case("gather_clamped", "semantics", GATHER, {"N": N}, _indices, _gather),
    Case("scatter_dropped", "semantics", SCATTER, {"N": N}, _indices, _scatter),
    Case("search", "semantics", SEARCH, {"R": 4, "S": 9, "Q": 6}, _search_inputs, _search),
    Case("rand_randbits", "semantics", RAND, {"N": N},
         lambda rng: {"keys": rng.integers(0, 2**32, N, dtype=np.uint32)}, _rand),
    Case("f16_arithmetic", "semantics", F16, {"N": N}, _f({"a": N, "b": N}), _f16),
    Case("min_max_nan", "semantics", MINMAX, {"N": N}, _nan_pairs, _minmax),
    Case("select", "semantics", SELECT, {"N": N}, _select_inputs, _select),
    Case("compound_stores", "semantics", COMPOUND, {"N": N, "B": 5}, _compound_inputs, _compound),
    # the four DSL examples
    Case("sobel.k", "example", EXAMPLES / "sobel.k", {"H": 9, "W": 7},
         _f({"img": (9, 7)}), _sobel),
    Case("gemm.k", "example", EXAMPLES / "gemm.k", {"M": 5, "N": 9, "K": 6},
         _f({"a": (5, 6), "b": (6, 9)}), _gemm),
    Case("pca.k", "example", EXAMPLES / "pca.k", {"B": 3, "P": 20, "K": 4},
         _f({"frames": (3, 20), "mean": 20, "basis": (20, 4)}), _pca),
    Case("xs_lookup.k", "example", EXAMPLES / "xs_lookup.k", XS_PARAMS, _xs_inputs, _xs),
    # the five C examples
    Case("sobel.c", "example", OMP / "sobel.c", {"H": 9, "W": 7}, _f({"img": (9, 7)}), _sobel),
    Case("gemm.c", "example", OMP / "gemm.c", {"M": 5, "N": 9, "K": 6},
         _f({"a": (5, 6), "b": (6, 9)}), _gemm),
    Case("pca.c", "example", OMP / "pca.c", {"B": 3, "P": 20, "K": 4},
         _f({"frames": (3, 20), "mean": 20, "basis": (20, 4)}), _pca),
    Case("pipeline.c", "example", OMP / "pipeline.c", {"CH": 5}, _f({"v1": 20}), _pipeline),
    Case("xs_lookup.c", "example", OMP / "xs_lookup.c", XS_PARAMS, _xs_inputs, _xs),
    # one case per kernel form, and variants (another size, f16, a guard on one side only)
    Case("heat", "map", CONF / "heat.k", {"N": 12, "M": 10}, _heat_inputs(12, 10), _heat),
    Case("heat_5x17", "map", CONF / "heat.k", {"N": 5, "M": 17}, _heat_inputs(5, 17), _heat),
    Case("heat_f16", "map", CONF / "heat_f16.k", {"N": 12, "M": 10},
         _heat_inputs(12, 10, np.float16), _heat),
    Case("heat_one_sided", "map", CONF / "heat_one_sided.k", {"N": 12, "M": 10},
         _heat_inputs(12, 10), _smooth),
    Case("dense", "contraction", CONF / "dense.k", {"R": 6, "I": 10, "O": 7},
         _f({"x": (6, 10), "w": (10, 7), "b": 7}), _dense),
    Case("dense_3x17x5", "contraction", CONF / "dense.k", {"R": 3, "I": 17, "O": 5},
         _f({"x": (3, 17), "w": (17, 5), "b": 5}), _dense),
    Case("dense_f16", "contraction", CONF / "dense_f16.k", {"R": 6, "I": 10, "O": 7},
         _dense_f16_inputs, _dense),
    Case("dense_f16_cast", "contraction", CONF / "dense_f16_cast.k", {"R": 6, "I": 10, "O": 7},
         _f({"x": (6, 10), "w": (10, 7), "b": 7}), _dense_f16_cast),
    Case("softmax", "reduction", CONF / "softmax.k", {"R": 5, "C": 9},
         _f({"x": (5, 9)}), _softmax),
    Case("softmax_3x17", "reduction", CONF / "softmax.k", {"R": 3, "C": 17},
         lambda rng: {"x": uniform(rng, (3, 17), -8.0, 8.0)}, _softmax),
    Case("mc_xs", "lookup", CONF / "mc_xs.k", {**XS_SIZES, "L": 32}, _mc_xs_inputs,
         _mc_xs(7, 32)),
    Case("mc_xs_L48", "lookup", CONF / "mc_xs.k", {**XS_SIZES, "L": 48}, _mc_xs_inputs,
         _mc_xs(7, 48)),
    Case("prefix_sum", "scalar", PREFIX, {"N": N}, _f({"a": N}), _prefix),
    # stores in both branches of a guard, one shifted: iterations i and i + 1 write one element
    Case("guarded_shifted_store", "map", SHIFTED, {"N": 8, "M": 6}, _f({"u": (8, 6)}), _shifted),
    # a reversed inner loop whose body does not read its index
    Case("idle_loop.c", "map", CONF / "idle_loop.c", {"N": 7},
         lambda rng: {"a": uniform(rng, 7, -2.0, 2.0)}, _idle),
]  # fmt: skip

BY_NAME = {case.name: case for case in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
