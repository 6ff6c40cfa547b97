"""The groq target and the tsp emulator: kernelc check on the examples, the precisions' error
bounds (docs/GROQ.md), PCA's memory limit, modelled against emulated cycles, determinism, golden
files, the emulator's strictness rules and its isolation (no ``groq`` module outside its runs).

Golden files live in tests/golden/groq/<case>/; regenerate them after an intended change of the
emitted code with ``KERNELC_UPDATE_GOLDEN=1 pytest tests/test_groq.py -k golden`` and review the
diff.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc.cli import main
from kernelc.runtime.tsp.errors import TspError
from kernelc.runtime.tsp.loader import run_file

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "groq"
U = 2.0**-24


def load(example: str) -> kc.Program:
    return kc.load(ROOT / "examples" / example)


@pytest.mark.parametrize(
    ("example", "sizes"),
    [
        ("sobel.k", ["H=24", "W=20"]),
        ("sobel.k", ["H=12", "W=400"]),  # two inner splits of 320 lanes
        ("gemm.k", ["M=12", "N=10", "K=8"]),
        ("gemm.k", ["M=20", "N=330", "K=700"]),  # three K passes, two weight-block columns
        ("pca.k", ["B=6", "P=40", "K=5"]),
        ("omp/sobel.c", ["H=24", "W=20"]),
        ("omp/gemm.c", ["M=12", "N=10", "K=8"]),
        ("omp/pca.c", ["B=6", "P=40", "K=5"]),
        ("xs_lookup.k", ["NI=6", "NG=40", "NM=12", "MAXN=34", "L=48"]),
        ("omp/xs_lookup.c", ["NI=6", "NG=40", "NM=12", "MAXN=34", "L=48"]),
    ],
)
def test_kernelc_check_passes(example: str, sizes: list[str], capsys) -> None:
    args = ["check", str(ROOT / "examples" / example), "--target", "groq"]
    for s in sizes:
        args += ["-D", s]
    assert main(args) == 0
    assert "matches the reference interpreter" in capsys.readouterr().out


def test_build_prints_cycles_per_unit_and_time(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gemm"
    args = ["build", str(ROOT / "examples/gemm.k"), "--target", "groq", "-o", str(out)]
    assert main([*args, "-D", "M=64", "-D", "N=64", "-D", "K=64"]) == 0
    text = capsys.readouterr().out
    assert "modelled busy cycles per unit: mem" in text and "mxm" in text and "vxm" in text
    assert "us at 900 MHz" in text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "commands.sh", "kernelc.json", "program.py", "run.py"]


# --------------------------------------------------------------------------- precisions


def _gemm(precision: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    m, k = a.shape
    n = b.shape[1]
    params = {"M": m, "N": n, "K": k}
    return kc.run(load("gemm.k"), "groq", {"a": a, "b": b}, params=params, precision=precision)["c"]


def _operands(rng, m: int, k: int, n: int, scale: float = 1.0):
    a = (rng.uniform(-1, 1, (m, k)) * scale).astype(np.float32)
    b = (rng.uniform(-1, 1, (k, n)) * scale).astype(np.float32)
    return a, b


@pytest.mark.parametrize("scale", [1.0, 1e-3, 300.0])
def test_f32_default_holds_the_f32_bound(scale: float) -> None:
    """(gamma_{K+2} + 2^-20) |A||B| + 2^-24 (row sums |A| + column sums |B|) (docs/GROQ.md)."""
    a, b = _operands(np.random.default_rng(1), 9, 700, 21, scale)
    got = _gemm("f32", a, b).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    k = a.shape[1]
    gamma = (k + 2) * U / (1 - (k + 2) * U)
    absolute = np.abs(a64) @ np.abs(b64)
    sums = np.abs(a64).sum(1)[:, None] + np.abs(b64).sum(0)[None, :]
    bound = (gamma + 2.0**-20) * absolute + U * sums
    assert np.all(np.abs(got - a64 @ b64) <= bound)
    # and it is f32 accuracy, not fp16's: far inside the one-product bound
    assert np.max(np.abs(got - a64 @ b64) / absolute) < 2.0**-16


def test_fp16_holds_its_bound_and_is_coarser() -> None:
    """(gamma_K + 2^-9) |A||B| + 2^-24 (row sums |A| + column sums |B|)."""
    a, b = _operands(np.random.default_rng(2), 7, 400, 13)
    got = _gemm("fp16", a, b).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    k = a.shape[1]
    absolute = np.abs(a64) @ np.abs(b64)
    sums = np.abs(a64).sum(1)[:, None] + np.abs(b64).sum(0)[None, :]
    err = np.abs(got - a64 @ b64)
    assert np.all(err <= (k * U / (1 - k * U) + 2.0**-9) * absolute + U * sums)
    assert np.max(err / absolute) > 2.0**-16  # one fp16 product really is coarser


def test_int8_holds_its_quantisation_bound() -> None:
    """s_a/2 sum|B| + s_b/2 sum|A| + K s_a s_b / 4 + 2^-20 |A||B|, per-row and per-column
    scales max|x| / 127."""
    a, b = _operands(np.random.default_rng(3), 6, 300, 11)
    got = _gemm("int8", a, b).astype(np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    sa = np.abs(a64).max(1)[:, None] / 127
    sb = np.abs(b64).max(0)[None, :] / 127
    k = a.shape[1]
    bound = (
        sa / 2 * np.abs(b64).sum(0)[None, :]
        + sb / 2 * np.abs(a64).sum(1)[:, None]
        + k * sa * sb / 4
        + 2.0**-20 * (np.abs(a64) @ np.abs(b64))
    )
    assert np.all(np.abs(got - a64 @ b64) <= bound)
    program = kc.build(load("gemm.k"), "groq", params={"M": 6, "N": 11, "K": 300}, precision="int8")
    assert 'g.int8, name="a_q"' in program.files["program.py"]
    assert "int8_scaled" in program.files["run.py"]


def test_int8_refuses_an_operand_computed_on_the_chip() -> None:
    with pytest.raises(kc.Unsupported, match="'centred' is computed on the chip"):
        kc.build(load("pca.k"), "groq", params={"B": 2, "P": 20, "K": 3}, precision="int8")


def test_bad_precision_is_a_user_error(capsys) -> None:
    args = ["build", str(ROOT / "examples/gemm.k"), "--target", "groq", "--precision", "bf16"]
    assert main(args) == 2
    assert "--precision takes f32, fp16, int8" in capsys.readouterr().err


# -------------------------------------------------------------------------------- PCA


@pytest.mark.parametrize("k", [1, 64, 256, 1200])
def test_pca_on_128x128_frames_builds(k: int) -> None:
    art = kc.build(load("pca.k"), "groq", params={"B": 16, "P": 16384, "K": k})
    assert art.manifest["modelled_cycles"] > 0
    layouts = {d["name"]: d["layout"] for d in art.manifest["program_inputs"]}
    assert layouts["basis_hi_t"].startswith("H1(W)") and "S16" in layouts["basis_hi_t"]
    assert layouts["basis_lo_t"].startswith("H1(E)")


def test_pca_basis_too_large_is_refused_naming_tensor_and_bytes() -> None:
    with pytest.raises(kc.Unsupported) as err:
        kc.build(load("pca.k"), "groq", params={"B": 16, "P": 16384, "K": 3000})
    text = str(err.value)
    assert "tensor 'basis_hi_t'" in text and "98,304,000 bytes" in text
    assert "does not fit the GroqChip's memory" in text


# -------------------------------------------------------------- cycles, determinism, golden


@pytest.mark.parametrize(
    ("example", "params"),
    [
        ("sobel.k", {"H": 20, "W": 400}),
        ("sobel.k", {"H": 200, "W": 1000}),  # four inner splits shifted piecewise
        ("sobel.k", {"H": 64, "W": 48}),
        ("gemm.k", {"M": 40, "N": 330, "K": 700}),
        ("pca.k", {"B": 8, "P": 1000, "K": 20}),
        ("omp/sobel.c", {"H": 16, "W": 16}),
        ("../tests/conformance/softmax.k", {"R": 5, "C": 9}),
        ("../tests/conformance/softmax.k", {"R": 64, "C": 320}),
        ("../tests/conformance/softmax.k", {"R": 1000, "C": 100}),
        ("../tests/conformance/softmax.k", {"R": 7, "C": 1000}),  # four inner splits
        ("xs_lookup.k", {"NI": 6, "NG": 40, "NM": 12, "MAXN": 34, "L": 48}),
        ("xs_lookup.k", {"NI": 20, "NG": 300, "NM": 12, "MAXN": 34, "L": 200}),
        ("xs_lookup.k", {"NI": 6, "NG": 40, "NM": 12, "MAXN": 34, "L": 900}),
        ("../tests/conformance/heat.k", {"N": 5, "M": 17}),  # guarded pieces
        ("../tests/conformance/heat.k", {"N": 100, "M": 1000}),
        ("../tests/conformance/heat_f16.k", {"N": 200, "M": 300}),
        ("../tests/conformance/heat_one_sided.k", {"N": 12, "M": 10}),
        ("../tests/conformance/dense.k", {"R": 6, "I": 10, "O": 7}),  # an epilogue
        ("../tests/conformance/dense.k", {"R": 300, "I": 700, "O": 400}),
        ("../tests/conformance/dense_f16_cast.k", {"R": 200, "I": 400, "O": 330}),  # prologues
        ("../tests/conformance/column_stats.k", {"R": 6, "C": 10}),  # folds down columns
        ("../tests/conformance/column_stats.k", {"R": 1000, "C": 300}),
        ("../tests/conformance/column_stats.k", {"R": 33, "C": 1000}),
        ("omp/pipeline.c", {"CH": 5}),  # folds without a kept index, on slices
        ("omp/pipeline.c", {"CH": 16}),
    ],
)
def test_modelled_and_emulated_cycles_within_15_percent(example: str, params: dict) -> None:
    prog = load(example)
    from kernelc.inputs import random_inputs

    inputs = random_inputs(prog.graph(None, params), 1)
    stats = kc.api.run_with_stats(prog, "groq", inputs, params=params).stats
    assert (
        abs(stats["modelled_cycles"] - stats["emulated_cycles"]) <= 0.15 * stats["emulated_cycles"]
    )


def _files(example: str, params: dict) -> dict:
    return dict(kc.build(load(example), "groq", params=params).files)


def test_emitted_files_are_byte_identical_across_builds() -> None:
    for example, params in (
        ("sobel.k", {"H": 30, "W": 17}),
        ("pca.k", {"B": 4, "P": 33, "K": 3}),
        ("xs_lookup.k", XS),
        ("../tests/conformance/softmax.k", {"R": 5, "C": 9}),
        ("../tests/conformance/heat.k", {"N": 12, "M": 10}),
        ("../tests/conformance/dense_f16_cast.k", {"R": 6, "I": 10, "O": 7}),
    ):
        assert _files(example, params) == _files(example, params)


GOLDEN_CASES = {
    "gemm": ("gemm.k", {"M": 64, "N": 64, "K": 64}),
    "sobel": ("sobel.k", {"H": 20, "W": 18}),
    "pca": ("pca.k", {"B": 4, "P": 40, "K": 5}),
    "heat": ("../tests/conformance/heat.k", {"N": 12, "M": 10}),
    "dense": ("../tests/conformance/dense.k", {"R": 6, "I": 10, "O": 7}),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_files(case: str) -> None:
    example, params = GOLDEN_CASES[case]
    files = _files(example, params)
    folder = GOLDEN / case
    if os.environ.get("KERNELC_UPDATE_GOLDEN") == "1":
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text)
    expected = {p.name: p.read_text() for p in folder.iterdir()}
    assert sorted(expected) == sorted(files)
    for name, text in files.items():
        assert text == expected[name], f"{case}/{name} differs from its golden file"


def test_user_names_that_are_python_keywords_reach_python_safely() -> None:
    source = textwrap.dedent(
        """
        kernel lambda(class: f32[N, M]) -> def: f32[N, M] {
          for i in 0 .. N, j in 0 .. M {
            def[i, j] = class[i, j] * 3.0 - 1.0;
          }
        }
        """
    )
    try:
        prog = kc.loads(source, "keywords.k", params={"N": 3, "M": 5})
    except kc.KernelcError:
        pytest.skip("the DSL itself rejects these names")
    x = np.arange(15, dtype=np.float32).reshape(3, 5)
    got = kc.run(prog, "groq", {"class": x})["def"]
    np.testing.assert_array_equal(got, x * np.float32(3) - np.float32(1))


# ----------------------------------------------------------------------------- reductions

ROW_STATS = """
size R = 6, C = 11;

kernel stats(x: f32[R, C]) -> (total: f32[R], top: f32[R], low: f32[R], mean: f32[R]) {
  for r in 0 .. R {
    let s = sum(k in 0 .. C) x[r, k];
    var hi = x[r, 0];
    for c in 1 .. C {
      hi max= x[r, c];
    }
    var lo = x[r, 2];
    for c in 3 .. C - 1 {
      lo min= x[r, c];
    }
    total[r] = s;
    top[r] = hi;
    low[r] = lo;
    mean[r] = s / 11.0;
  }
}
"""


def test_row_sums_maxima_minima_and_means_fold_across_lanes() -> None:
    x = np.random.default_rng(3).uniform(-4, 4, (6, 11)).astype(np.float32)
    x[1, 5] = np.nan  # max= and min= ignore NaN
    x[2, 10] = 9.0  # outside the min fold's lanes 2 .. 9
    x[3, 0] = -np.inf
    got = kc.run(kc.loads(ROW_STATS, "stats.k"), "groq", {"x": x})
    wide = x.astype(np.float64)
    np.testing.assert_allclose(got["total"], wide.sum(axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got["top"], np.fmax.reduce(x, axis=1))
    np.testing.assert_array_equal(got["low"], np.fmin.reduce(x[:, 2:10], axis=1))
    np.testing.assert_allclose(got["mean"], wide.sum(axis=1) / 11, rtol=1e-6, atol=1e-6)
    assert got["total"][1] != got["total"][1] and got["total"][3] == -np.inf


SUB_RANGE = """
size R = 4, C = 13;

kernel part(x: f32[R, C]) -> (s: f32[R], y: f32[R, C]) {
  for r in 0 .. R {
    let t = sum(k in 2 .. C - 3) x[r, k];
    s[r] = t;
    for j in 1 .. C - 1 {
      y[r, j] = x[r, j] / t + x[r, 3];
    }
  }
}
"""


def test_a_sum_over_part_of_the_lanes_ignores_inf_and_nan_outside_it() -> None:
    x = np.random.default_rng(4).uniform(0.5, 1.0, (4, 13)).astype(np.float32)
    x[:, 0], x[:, 12], x[1, 11] = np.inf, np.nan, -np.inf
    x[2, 7] = -x[2, 7]  # a negative divisor's sign survives rsqrt(|t|)^2
    got = kc.run(kc.loads(SUB_RANGE, "part.k"), "groq", {"x": x})
    t = x[:, 2:10].astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(got["s"], t, rtol=1e-6)
    want = np.zeros((4, 13))
    want[:, 1:12] = x[:, 1:12] / t[:, None] + x[:, 3:4]
    np.testing.assert_allclose(got["y"], want, rtol=1e-6)
    assert (got["y"][:, [0, 12]] == 0).all()


WIDE = """
size R = 4, C = 700;

kernel wide(x: f32[R, C]) -> (s: f32[R], hi: f32[R], lo: f32[R], y: f32[R, C]) {
  for r in 0 .. R {
    let t = sum(k in 3 .. C - 5) x[r, k];
    var top = x[r, 400];
    for c in 0 .. C {
      top max= x[r, c];
    }
    var low = x[r, 1];
    for c in 10 .. 650 {
      low min= x[r, c];
    }
    s[r] = t;
    hi[r] = top;
    lo[r] = low;
    for j in 0 .. C {
      y[r, j] = x[r, j] - top;
    }
  }
}
"""


def test_reductions_over_rows_of_several_inner_splits() -> None:
    x = np.random.default_rng(7).uniform(-1, 1, (4, 700)).astype(np.float32)
    x[0, 690], x[1, 5], x[2, 699], x[3, 660] = 50, -50, np.inf, -30  # 660: outside the min
    got = kc.run(kc.loads(WIDE, "wide.k"), "groq", {"x": x})
    part = x[:, 3:695].astype(np.float64)
    bound = 12 * U * np.abs(part).sum(axis=1)  # gamma of the tree's depth: 3 splits, 9 rounds
    assert (np.abs(got["s"] - part.sum(axis=1)) <= bound).all()
    np.testing.assert_array_equal(got["hi"], x.max(axis=1))
    np.testing.assert_array_equal(got["lo"], np.minimum(x[:, 1], x[:, 10:650].min(axis=1)))
    with np.errstate(invalid="ignore"):  # inf - inf in the row holding inf
        np.testing.assert_array_equal(got["y"], x - x.max(axis=1, keepdims=True))


COLUMN_SOFTMAX = """
size R = 7, C = 12;
kernel cols(x: f32[R, C]) -> (top: f32[C], y: f32[R, C]) {
  for c in 1 .. C - 1 {
    var hi = x[0, c];
    for r in 1 .. R {
      hi max= x[r, c];
    }
    let s = sum(r in 0 .. R) exp(x[r, c] - hi);
    top[c] = hi;
    for r in 0 .. R {
      y[r, c] = exp(x[r, c] - hi) / s;
    }
  }
}
"""


@pytest.mark.parametrize("rows", [6, 1, 33])
def test_column_folds_halve_down_the_rows(rows: int) -> None:
    x = np.random.default_rng(8).uniform(-4, 4, (rows, 10)).astype(np.float32)
    x[rows // 2, 3] = np.nan  # min= ignores NaN
    x[0, 4] = -np.inf
    x[:, 7] = -0.0  # the sum starts at +0, as the language's does
    prog = kc.load(ROOT / "tests" / "conformance" / "column_stats.k", params={"R": rows})
    got = kc.run(prog, "groq", {"x": x}, params={"R": rows})
    wide = x.astype(np.float64)
    depth = max(1, (rows - 1).bit_length())  # the tree's levels
    bound = (depth + 1) * U * np.abs(wide).sum(axis=0)
    with np.errstate(invalid="ignore"):
        assert (np.abs(got["total"] - wide.sum(axis=0)) <= bound)[[0, 1, 2, 5, 6, 8, 9]].all()
        mean = wide.sum(axis=0) / 6
        assert (np.abs(got["mean"] - mean) <= bound / 6 + 4 * U * np.abs(mean))[5:].all()
    assert np.isnan(got["total"][3]) and got["total"][4] == -np.inf
    np.testing.assert_array_equal(got["low"], np.fmin.reduce(x, axis=0))
    assert got["total"][7] == 0 and not np.signbit(got["total"][7])


def test_a_column_softmax_spreads_its_per_column_values_over_the_rows() -> None:
    x = np.random.default_rng(9).uniform(-8, 8, (7, 12)).astype(np.float32)
    x[:, 0] = np.inf  # outside the kept range: y keeps zeros there
    got = kc.run(kc.loads(COLUMN_SOFTMAX, "cols.k"), "groq", {"x": x})
    inner = x[:, 1:11].astype(np.float64)
    e = np.exp(inner - inner.max(axis=0))
    np.testing.assert_array_equal(got["top"][1:11], x[:, 1:11].max(axis=0))
    np.testing.assert_allclose(got["y"][:, 1:11], e / e.sum(axis=0), rtol=2e-6, atol=1e-7)
    assert (got["y"][:, [0, 11]] == 0).all() and got["top"][0] == 0


def test_a_map_store_keeps_lanes_outside_its_range_even_beside_inf() -> None:
    source = """
    size N = 3, M = 6;
    kernel inner(x: f32[N, M]) -> y: f32[N, M] {
      for i in 0 .. N, j in 1 .. M - 1 {
        y[i, j] = x[i, j] + 1.0;
      }
    }
    """
    x = np.ones((3, 6), np.float32)
    x[:, 0] = np.inf
    x[:, 5] = np.nan
    got = kc.run(kc.loads(textwrap.dedent(source), "inner.k"), "groq", {"x": x})["y"]
    want = np.zeros((3, 6), np.float32)
    want[:, 1:5] = 2.0
    np.testing.assert_array_equal(got, want)


def test_shifts_across_inner_splits_move_the_edge_lanes_exactly() -> None:
    source = """
    size N = 3, M = 700;
    kernel diff(x: f32[N, M]) -> y: f32[N, M] {
      for i in 0 .. N, j in 1 .. M - 1 {
        y[i, j] = x[i, j + 1] * 2.0 - x[i, j - 1];
      }
    }
    """
    x = np.random.default_rng(5).uniform(-1, 1, (3, 700)).astype(np.float32)
    x[:, 319], x[:, 320], x[:, 640] = -0.0, np.inf, -0.0  # at the edges of the inner splits
    got = kc.run(kc.loads(textwrap.dedent(source), "diff.k"), "groq", {"x": x})["y"]
    want = np.zeros_like(x)
    want[:, 1:699] = x[:, 2:700] * np.float32(2) - x[:, 0:698]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0 kept where it is


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            """
            size R = 4, C = 5;
            kernel tr(x: f32[R, C]) -> t: f32[C, R] {
              for c in 0 .. C {
                let s = sum(r in 0 .. R) x[r, c];
                for j in 0 .. R {
                  t[c, j] = x[j, c] / s;
                }
              }
            }
            """,
            "keeps dimension 1 of the rank-2 tensor 'x'",
        ),
    ],
)
def test_reductions_groq_cannot_fold_are_refused_naming_them(source: str, message: str) -> None:
    prog = kc.loads(textwrap.dedent(source), "red.k")
    with pytest.raises(kc.Unsupported, match=message):
        kc.build(prog, "groq")


# ------------------------------------------- folds without a kept index (OpenMP task slices)


@pytest.mark.parametrize("ch", [5, 16, 100])  # 100: a 400-lane row, two inner splits
def test_pipeline_task_slices_fold_on_their_lanes(ch: int) -> None:
    v1 = np.random.default_rng(ch).uniform(-2, 2, 4 * ch).astype(np.float32)
    v1[ch + 2], v1[3 * ch] = np.nan, np.inf  # fmaxf ignores NaN; a slice's inf stays in it
    prog = kc.load(ROOT / "examples" / "omp" / "pipeline.c", params={"CH": ch})
    forms = {type(t.form).__name__ for t in prog.graph().tasks}
    assert forms == {"Reduction"}
    got = kc.run(prog, "groq", {"v1": v1})
    rows = v1.reshape(4, ch)
    np.testing.assert_array_equal(got["peaks"], np.fmax.reduce(rows, axis=1))
    want = rows.astype(np.float64).sum(axis=1)
    assert np.isnan(got["sums"][1]) and got["sums"][3] == np.inf
    finite = [0, 2]
    np.testing.assert_allclose(got["sums"][finite], want[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            """
            size N = 2;
            kernel k(a: f32[N]) -> out: f32[N] {
              out[0] = sum(i in 0 .. N) a[i];
              out[1] = out[0] * 2.0;
            }
            """,
            "the load of 'out' in 'k' after a store to it",
        ),
        (
            """
            size N = 3;
            kernel k(a: f32[N]) -> out: f32[8] {
              out[5] = sum(i in 0 .. N) a[i];
            }
            """,
            "the store of 'out' in 'k' \\(3 lanes into 8\\)",
        ),
    ],
)
def test_whole_folds_groq_cannot_lower_are_refused_naming_them(source: str, message: str) -> None:
    prog = kc.loads(textwrap.dedent(source), "fold.k")
    assert type(prog.graph().tasks[0].form).__name__ == "Reduction"
    with pytest.raises(kc.Unsupported, match=message):
        kc.build(prog, "groq")


def test_a_slice_past_the_first_inner_split_is_refused_naming_the_load() -> None:
    prog = kc.load(ROOT / "examples" / "omp" / "pipeline.c", params={"CH": 700})
    with pytest.raises(
        kc.Unsupported, match=r"the load v1\[\.\.\.\] in 'pipeline_task1' from lane 700"
    ):
        kc.build(prog, "groq")


# ------------------------------------------- guarded maps, f16 maps, work around products

CONF = ROOT / "tests" / "conformance"

LANE_GUARDS = """
size N = 5, M = 12;

kernel first(x: f32[N, M]) -> y: f32[N, M] {
  for i in 0 .. N, j in 0 .. M {
    y[i, j] = x[i, j] * 2.0;
  }
}

kernel split(x: f32[N, M], y: f32[N, M]) -> y2: f32[N, M] {
  for i in 1 .. N, j in 1 .. M - 1 {
    if j < 4 || j >= 9 {
      y2[i, j] = x[i, j - 1];
    } else {
      y2[i, j] = select(i == 1, x[i, j], x[i - 1, j] + x[i, j]);
    }
  }
}

graph lanes(x: f32[N, M]) -> y: f32[N, M] {
  y = first(x);
  y = split(x, y);
}
"""

ONE_DIM = """
size N = 9;

kernel shift(x: f32[N]) -> y: f32[N] {
  for i in 0 .. N {
    if i > 0 && i < N - 2 {
      y[i] = x[i - 1] - x[i + 1];
    } else {
      y[i] = x[i];
    }
  }
}
"""


def _hard(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Values with inf, NaN and -0 among them, where a piece's lanes meet another's."""
    x = rng.uniform(-2, 2, shape).astype(dtype)
    flat = x.reshape(-1)
    flat[[0, 3, 7]] = np.inf, np.nan, -0.0
    flat[-1], flat[-4] = -np.inf, -0.0
    return x


def _same(got: dict, want: dict) -> None:
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value)
        np.testing.assert_array_equal(np.signbit(got[name]), np.signbit(value))


@pytest.mark.parametrize(
    ("source", "params", "shape", "dtype"),
    [
        (CONF / "heat.k", {"N": 12, "M": 10}, (12, 10), np.float32),
        (CONF / "heat.k", {"N": 6, "M": 700}, (6, 700), np.float32),  # across inner splits
        (CONF / "heat_f16.k", {"N": 12, "M": 10}, (12, 10), np.float16),
        (CONF / "heat_f16.k", {"N": 5, "M": 650}, (5, 650), np.float16),
        (CONF / "heat_one_sided.k", {"N": 7, "M": 5}, (7, 5), np.float32),
        (LANE_GUARDS, {}, (5, 12), np.float32),  # pieces over part of the lanes, select
        (ONE_DIM, {}, (9,), np.float32),
    ],
)
def test_guarded_pieces_match_the_interpreter_bit_for_bit(source, params, shape, dtype) -> None:
    if isinstance(source, Path):
        prog = kc.load(source, params=params)
    else:
        prog = kc.loads(textwrap.dedent(source), "guards.k", params=params)
    (name,) = [t.name for t in prog.graph(None, params).inputs]
    inputs = {name: _hard(np.random.default_rng(11), shape, dtype)}
    with np.errstate(invalid="ignore", over="ignore"):
        want = kc.run(prog, "interp", inputs, params=params)
    _same(kc.run(prog, "groq", inputs, params=params), want)


def _guard(rng: np.random.Generator, var: str, size: str) -> str:
    op = rng.choice(["<", "<=", ">", ">=", "==", "!="])
    k = int(rng.integers(-1, 4))
    return f"{var} {op} {rng.choice([str(k), f'{size} - {k}'])}"


def _guarded_map(rng: np.random.Generator) -> tuple[str, tuple[int, int]]:
    """A map with nested guards on both indices and a select: pieces of every shape (empty,
    one lane, one row, across inner splits)."""
    n, m = int(rng.integers(1, 7)), int(rng.choice([1, 3, 9, 17, 330]))
    then = "x[i, j] * 2.0 + 1.0"
    other = f"x[i, j] - {rng.choice(['0.5', 'x[i, j] * x[i, j]'])}"
    last = f"select({_guard(rng, 'j', 'M')}, x[i, j], -x[i, j])"
    source = f"""
    size N = {n}, M = {m};
    kernel g(x: f32[N, M]) -> y: f32[N, M] {{
      for i in {rng.integers(0, 2)} .. N, j in {rng.integers(0, 2)} .. M {{
        if {_guard(rng, "i", "N")} {rng.choice(["&&", "||"])} {_guard(rng, "j", "M")} {{
          y[i, j] = {then};
        }} else {{
          if {_guard(rng, "i", "N")} {{
            y[i, j] = {other};
          }} else {{
            y[i, j] = {last};
          }}
        }}
      }}
    }}
    """
    return textwrap.dedent(source), (n, m)


def test_random_guarded_maps_match_the_interpreter_bit_for_bit() -> None:
    rng = np.random.default_rng(16)
    for _ in range(20):
        source, shape = _guarded_map(rng)
        prog = kc.loads(source, "guarded.k")
        x = rng.uniform(-2, 2, shape).astype(np.float32)
        x[0, 0] = np.inf
        with np.errstate(invalid="ignore", over="ignore"):
            want = kc.run(prog, "interp", {"x": x})
        try:
            _same(kc.run(prog, "groq", {"x": x}), want)
        except AssertionError:
            pytest.fail(f"groq differs from the interpreter on\n{source}")


def test_a_guarded_map_is_one_pass_of_bands_without_branches() -> None:
    files = dict(kc.build(kc.load(CONF / "heat.k"), "groq", params={"N": 12, "M": 10}).files)
    program = files["program.py"]
    assert "in 5 guarded pieces (bands of rows, lanes by bit masks)" in " ".join(program.split())
    assert "-(lanes(10, 0, 1) + lanes(10, 9, 10))" in program  # both border columns, one mask
    assert " if " not in program.split("class Heat", 1)[1]


def _dense_inputs(rng: np.random.Generator, r: int, i: int, o: int) -> dict[str, np.ndarray]:
    return {
        "x": rng.uniform(-1, 1, (r, i)).astype(np.float32),
        "w": rng.uniform(-1, 1, (i, o)).astype(np.float32),
        "b": rng.uniform(-1, 1, o).astype(np.float32),
    }


@pytest.mark.parametrize("sizes", [(6, 10, 7), (40, 700, 330)])
def test_dense_runs_its_epilogue_on_the_vxm_within_the_f32_bound(sizes) -> None:
    r, i, o = sizes
    params = {"R": r, "I": i, "O": o}
    inputs = _dense_inputs(np.random.default_rng(12), r, i, o)
    got = kc.run(kc.load(CONF / "dense.k"), "groq", inputs, params=params)["y"]
    a, w = inputs["x"].astype(np.float64), inputs["w"].astype(np.float64)
    exact = a @ w + inputs["b"]
    size = np.abs(a) @ np.abs(w)
    bound = ((i + 2) * U + 2.0**-20) * size + U * (
        np.abs(a).sum(axis=1)[:, None] + np.abs(w).sum(axis=0)[None, :]
    )
    bound += U * np.abs(exact)  # the bias's addition
    assert (np.abs(got - np.maximum(exact, 0)) <= bound).all()
    assert (got[exact < -bound] == 0).all()


def test_an_f16_operand_is_one_exact_product() -> None:
    rng = np.random.default_rng(13)
    inputs = {
        "x": rng.uniform(-1, 1, (6, 10)).astype(np.float16),
        "w": rng.uniform(-1, 1, (10, 7)).astype(np.float16),
        "b": rng.uniform(-1, 1, 7).astype(np.float32),
    }
    prog = kc.load(CONF / "dense_f16.k")
    program = dict(kc.build(prog, "groq").files)["program.py"]
    assert program.count("nn.MatMul(") == 1 and 'g.float16, name="w_t"' in program
    got = kc.run(prog, "groq", inputs)["y"]
    products = inputs["x"].astype(np.float64) @ inputs["w"].astype(np.float64)
    want = np.maximum(products + inputs["b"], 0)
    size = np.abs(inputs["x"].astype(np.float64)) @ np.abs(inputs["w"].astype(np.float64))
    assert (np.abs(got - want) <= 12 * U * (size + np.abs(inputs["b"]))).all()


CENTRED = """
size R = 5, I = 9, O = 4;
kernel d(x: f32[R, I], w: f32[I, O], m: f32[I], s: f32[I]) -> y: f32[R, O] {
  for r in 0 .. R, c in 0 .. O {
    y[r, c] = f32(f16((sum(k in 0 .. I) (x[r, k] - m[k]) * (w[k, c] * s[k])) * 0.5));
  }
}
"""


@pytest.mark.parametrize("precision", ["f32", "fp16"])
def test_prologues_on_both_operands_and_an_f16_epilogue(precision: str) -> None:
    rng = np.random.default_rng(14)
    inputs = {
        "x": rng.uniform(-1, 1, (5, 9)).astype(np.float32),
        "w": rng.uniform(-1, 1, (9, 4)).astype(np.float32),
        "m": rng.uniform(-1, 1, 9).astype(np.float32),
        "s": rng.uniform(0.5, 2, 9).astype(np.float32),
    }
    prog = kc.loads(textwrap.dedent(CENTRED), "centred.k")
    got = kc.run(prog, "groq", inputs, precision=precision)["y"]
    a = inputs["x"].astype(np.float64) - inputs["m"]
    b = inputs["w"].astype(np.float64) * inputs["s"][:, None]
    want = (a @ b) * 0.5
    rtol = 2.0**-10 if precision == "f32" else 2.0**-7  # the f16 rounding; fp16 operands
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * (np.abs(a) @ np.abs(b)).max())
    with pytest.raises(kc.Unsupported, match="--precision int8 for 'd' with a prologue"):
        kc.build(prog, "groq", precision="int8")


BIAS_FROM_A_TASK = """
size R = 4, I = 6, O = 5;

kernel double(b: f32[O]) -> c: f32[O] {
  for j in 0 .. O {
    c[j] = b[j] * 2.0;
  }
}

kernel shift(m: f32[I]) -> n: f32[I] {
  for k in 0 .. I {
    n[k] = m[k] + 1.0;
  }
}

kernel dense(x: f32[R, I], w: f32[I, O], c: f32[O], n: f32[I]) -> y: f32[R, O] {
  for r in 0 .. R, j in 0 .. O {
    y[r, j] = (sum(k in 0 .. I) (x[r, k] - n[k]) * w[k, j]) + c[j];
  }
}

graph layer(x: f32[R, I], w: f32[I, O], b: f32[O], m: f32[I]) -> y: f32[R, O] {
  c = double(b);
  n = shift(m);
  y = dense(x, w, c, n);
}
"""


def test_a_prologue_and_an_epilogue_read_what_an_earlier_task_wrote() -> None:
    rng = np.random.default_rng(15)
    inputs = {
        "x": rng.uniform(-1, 1, (4, 6)).astype(np.float32),
        "w": rng.uniform(-1, 1, (6, 5)).astype(np.float32),
        "b": rng.uniform(-1, 1, 5).astype(np.float32),
        "m": rng.uniform(-1, 1, 6).astype(np.float32),
    }
    prog = kc.loads(BIAS_FROM_A_TASK, "layer.k")
    # fp16: the f32 parts of four scopes' tensors would not fit the slice-exclusive memory
    got = kc.run(prog, "groq", inputs, precision="fp16")["y"]
    a = inputs["x"].astype(np.float64) - (inputs["m"] + 1.0)
    want = a @ inputs["w"] + 2.0 * inputs["b"]
    bound = 2.0**-9 * (np.abs(a) @ np.abs(inputs["w"])) + 4 * U * np.abs(want)
    assert (np.abs(got - want) <= bound).all()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("(sum(k in 0 .. I) x[r, k] * w[k, c]) * v[r]", r"the load v\[r\] in 'd' \(a vector"),
        ("sum(k in 0 .. I) x[r, k] * (w[k, c] * u[c])", r"the load u\[c\] in 'd' \(a vector"),
        ("sum(k in 0 .. I) x[r, k] * (w[k, c] / t[k])", "division in 'd'"),
    ],
)
def test_work_around_a_product_groq_cannot_stream_is_refused_naming_it(body, message) -> None:
    source = f"""
    size R = 4, I = 5, O = 3;
    kernel d(x: f32[R, I], w: f32[I, O], v: f32[R], u: f32[O], t: f32[I]) -> y: f32[R, O] {{
      for r in 0 .. R, c in 0 .. O {{
        y[r, c] = {body};
      }}
    }}
    """
    with pytest.raises(kc.Unsupported, match=message):
        kc.build(kc.loads(textwrap.dedent(source), "d.k"), "groq")


# -------------------------------------------------------------------------------- lookups

XS = {"NI": 5, "NG": 23, "NM": 4, "MAXN": 6, "L": 70}


def _xs_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Unsorted grids, NaN and out-of-grid energies, indices out of range (the language clamps
    gathers), an empty material: what the exact search and the clamps must reproduce."""
    egrid = np.sort(rng.uniform(0, 1, (5, 23)), axis=1).astype(np.float32)
    egrid[2] = rng.uniform(0, 1, 23)  # unsorted: the search's path still decides
    energy = rng.uniform(-0.1, 1.1, 70).astype(np.float32)
    energy[[3, 40]] = np.nan
    energy[7] = egrid[1, 4]  # exactly on a grid point
    return {
        "egrid": egrid,
        "xs": rng.uniform(0, 2, (5, 23, 5)).astype(np.float32),
        "mat_nucs": rng.integers(-1, 7, (4, 6)).astype(np.int32),
        "mat_conc": rng.uniform(0, 1, (4, 6)).astype(np.float32),
        "mat_count": np.array([6, 0, 3, 5], np.int32),
        "energy": energy,
        "material": rng.integers(-1, 5, 70).astype(np.int32),
    }


@pytest.mark.parametrize("example", ["xs_lookup.k", "omp/xs_lookup.c"])
def test_the_branch_free_lookup_matches_the_interpreter_on_hard_inputs(example: str) -> None:
    prog = kc.load(ROOT / "examples" / example, params=XS)
    inputs = _xs_inputs(np.random.default_rng(6))
    want = kc.run(prog, "interp", inputs)["macro"]
    got = kc.run(prog, "groq", inputs)["macro"]
    assert np.isnan(want[3]).all() and np.isnan(got[3]).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_lookup_model_counts_the_vxm_ops_the_emulator_runs() -> None:
    prog = kc.load(ROOT / "examples/xs_lookup.k", params=XS)
    stats = kc.api.run_with_stats(prog, "groq", _xs_inputs(np.random.default_rng(6))).stats
    built = kc.build(prog, "groq").manifest
    assert built["modelled_units"]["vxm"] == stats["emulated_units"]["vxm"] > 0


def test_a_count_beyond_the_padded_loop_is_refused_by_the_host(tmp_path: Path) -> None:
    prog = kc.load(ROOT / "examples/xs_lookup.k", params=XS)
    inputs = _xs_inputs(np.random.default_rng(6))
    inputs["mat_count"][2] = 7  # MAXN is 6: the program runs 6 iterations
    with pytest.raises(kc.KernelcError, match="input 'mat_count' has a value above 6"):
        kc.run(prog, "groq", inputs)
    art = kc.build(prog, "groq").write(tmp_path / "xs")  # run.py refuses it on its own too
    np.save(tmp_path / "mat_count.npy", inputs["mat_count"])
    for name, value in inputs.items():
        np.save(tmp_path / f"{name}.npy", value)
    run_file(art / "program.py")
    with pytest.raises(RuntimeError, match="mat_count: a value above 6"):
        run_file(art / "run.py", ["--inputs", str(tmp_path)])


def test_lookup_tables_that_do_not_fit_are_refused_naming_tensor_and_bytes() -> None:
    with pytest.raises(kc.Unsupported) as err:
        kc.build(load("xs_lookup.k"), "groq")  # XSBench's small problem: 68 x 11303 grids
    text = str(err.value)
    assert "tensor 'egrid' (float32[768604, 320], 983,813,120 bytes) does not fit" in text


def test_lookup_loops_without_a_bound_the_host_can_check_are_refused() -> None:
    source = """
    size L = 40, N = 4;
    kernel odd(table: f32[N], count: i32[L], key: i32[L]) -> out: f32[L] {
      for l in 0 .. L {
        let k = key[l];
        for j in 0 .. count[l] {
          let n = k + j;
          out[l] += table[n];
        }
      }
    }
    """
    prog = kc.loads(textwrap.dedent(source), "odd.k")
    with pytest.raises(kc.Unsupported, match="indexes no table that bounds it"):
        kc.build(prog, "groq")
    bounded = source.replace("table: f32[N]", "table: f32[N, N]").replace(
        "let n = k + j;\n          out[l] += table[n];", "out[l] += table[k, j];"
    )
    prog = kc.loads(textwrap.dedent(bounded), "odd.k")
    with pytest.raises(kc.Unsupported, match="the trip count of the loop over j"):
        kc.build(prog, "groq")


# -------------------------------------------------------------------- emulator strictness


HEADER = """\
import os

import groq.api as g
import groq.api.nn as nn
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
"""


def _program(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "program.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def _line_of(path: Path, marker: str) -> int:
    return next(k for k, line in enumerate(path.read_text().splitlines(), 1) if marker in line)


STRICT = {
    "shape": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.input_tensor((4, 9), g.float32, name="b", layout="H1(E), -1, S4")
        c = g.add(a, b)  # HERE
        """,
        "g.add: shapes (4, 8) and (4, 9) differ",
    ),
    "dtype": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.input_tensor((4, 8), g.float16, name="b", layout="H1(E), -1, S2")
        c = g.mul(a, b)  # HERE
        """,
        "g.mul: dtypes float32 and float16 differ",
    ),
    "mxm_dtype": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.input_tensor((5, 8), g.float32, name="b", layout="H1(W), -1, S16")
        mm = nn.MatMul(name="c", planes=[0, 1], buffer_output=True, arith_mode_warmup=True)
        c = mm(a, b)  # HERE
        """,
        "the MXM multiplies float16 or int8, not float32",
    ),
    "layout": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S2")  # HERE
        """,
        "a 4-byte element needs a multiple of 4",
    ),
    "weights_hemisphere": (
        """
        a = g.input_tensor((4, 8), g.float16, name="a", layout="H1(W), -1, S2")
        b = g.input_tensor((5, 8), g.float16, name="b", layout="H1(E), -1, S16")
        mm = nn.MatMul(name="c", planes=[0, 1], buffer_output=True, arith_mode_warmup=True)
        c = mm(a, b)  # HERE
        """,
        "weights 'b' are in E and planes [0, 1] are in hemisphere W",
    ),
    "inner_mismatch": (
        """
        a = g.input_tensor((4, 8), g.float16, name="a", layout="H1(W), -1, S2")
        b = g.input_tensor((8, 5), g.float16, name="b", layout="H1(W), -1, S16")
        mm = nn.MatMul(name="c", planes=[0, 1], buffer_output=True, arith_mode_warmup=True)
        c = mm(a, b)  # HERE
        """,
        "B is given transposed",
    ),
    "too_big": (
        """
        a = g.input_tensor((30000, 320), g.float32, name="huge", layout="H1(W), -1, S4")  # HERE
        """,
        "tensor 'huge' (float32[30000, 320], 38,400,000 bytes) does not fit its layout",
    ),
    "out_of_slices": (
        """
        ts = [
            g.input_tensor((4, 8), g.float32, name=f"t{k}", layout="H1(W), -1, S16")  # HERE
            for k in range(3)
        ]
        c = g.add(ts[0], ts[1]).write(name="c", layout="H1(W), -1, S4", program_output=True)
        g.compile(base_name="p", result_tensor=[c], output_dir=HERE)
        """,
        "tensor 't2' needs 16 MEM slices (H1(W), -1, S16) and no hemisphere has them free",
    ),
    "reserved_slices": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4(14-17)")  # HERE
        c = g.neg(a).write(name="c", layout="H1(E), -1, S4", program_output=True)
        g.compile(base_name="p", result_tensor=[c], output_dir=HERE)
        """,
        "names reserved slices [16] of hemisphere W",
    ),
    "stream_escapes_scope": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        with g.ResourceScope(name="one", is_buffered=True, time=0) as one:
            s = g.neg(a)
        with g.ResourceScope(name="two", is_buffered=True, time=None, predecessors=[one]):
            t = g.neg(s)  # HERE
        """,
        "is used outside the scope that produced it ('one')",
    ),
    "unordered_scopes": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        with g.ResourceScope(name="one", is_buffered=True, time=0):
            b = g.neg(a).write(name="b", layout="H1(E), -1, S4")
        with g.ResourceScope(name="two", is_buffered=True, time=0):
            c = g.neg(b).write(name="c", layout="H1(W), -1, S4", program_output=True)  # HERE
        g.compile(base_name="p", result_tensor=[c], output_dir=HERE)
        """,
        "order the scopes",
    ),
    "other_program": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        g.reset_program_context()
        c = g.neg(a)  # HERE
        """,
        "belongs to another program; share it across programs",
    ),
    "reinterpret_size": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.reinterpret(g.neg(a), g.int16)  # HERE
        """,
        "g.reinterpret from float32 to int16: element sizes differ",
    ),
    "bitwise_float": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.bitwise_and(a, a)  # HERE
        """,
        "g.bitwise_and takes integer tensors, not float32",
    ),
    "exp2_int": (
        """
        a = g.input_tensor((4, 8), g.int32, name="a", layout="H1(W), -1, S4")
        b = g.exp2(a)  # HERE
        """,
        "g.exp2 takes floating-point tensors, not int32",
    ),
    "broadcast_permutor": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.broadcast_lane_0(g.neg(a), permutor_req=2)  # HERE
        """,
        "g.broadcast_lane_0: permutor 2 does not exist",
    ),
    "split_sizes": (
        """
        a = g.input_tensor((4, 8), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.split(g.neg(a), dim=1, splits=[1, 6])  # HERE
        """,
        "g.split: sizes [1, 6] do not split 8",
    ),
    "shift_across_splits": (
        """
        a = g.input_tensor((4, 400), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.shift(a, -1, permutor_id=0)  # HERE
        """,
        "the SXM shifts lanes within one 320-lane vector and a row of 400 lanes is 2 inner splits",
    ),
    "gather_from_stream": (
        """
        a = g.input_tensor((4, 320), g.float32, name="a", layout="H1(W), -1, S4")
        i = g.input_tensor((1, 320), g.int32, name="i", layout="H1(E), -1, S4")
        b = g.mem_gather(g.neg(a), i)  # HERE
        """,
        "g.mem_gather reads a memory tensor",
    ),
    "gather_float_addresses": (
        """
        a = g.input_tensor((4, 320), g.float32, name="a", layout="H1(W), -1, S4")
        b = g.mem_gather(a, g.neg(a))  # HERE
        """,
        "the addresses are an int32, int16 or uint16 tensor",
    ),
    "warmup": (
        """
        a = g.input_tensor((4, 8), g.float16, name="a", layout="H1(W), -1, S2")
        b = g.input_tensor((5, 8), g.float16, name="b", layout="H1(W), -1, S16")
        mm = nn.MatMul(name="c", planes=[0, 1], buffer_output=True)
        c = mm(a, b)  # HERE
        """,
        "needs arith_mode_warmup=True",
    ),
}


@pytest.mark.parametrize("rule", sorted(STRICT))
def test_emulator_refuses_what_the_groq_compiler_refuses(rule: str, tmp_path: Path) -> None:
    body, message = STRICT[rule]
    path = _program(tmp_path, body)
    with pytest.raises(TspError) as err:
        run_file(path)
    assert message in str(err.value)
    assert str(err.value).startswith(f"program.py:{_line_of(path, '# HERE')}: error:")


def test_runner_checks_inputs_by_name_dtype_and_shape(tmp_path: Path) -> None:
    _program(
        tmp_path,
        """
        a = g.input_tensor((2, 3), g.float32, name="a", layout="H1(W), -1, S4")
        c = g.neg(a).write(name="c", layout="H1(E), -1, S4", program_output=True)
        g.compile(base_name="p", result_tensor=[c], output_dir=HERE)
        """,
    )
    run_file(tmp_path / "program.py")
    host = tmp_path / "run.py"
    host.write_text(
        "import numpy as np\nfrom groq.runner import tsp\n"
        f"runner = tsp.create_tsp_runner({str(tmp_path / 'p.iop')!r})\n"
        "out = runner(a=np.ones((2, 3), np.float32))\n"
        "assert (out['c'] == -1).all()\n"
        "runner(a=np.ones((2, 3)))  # float64\n"
    )
    with pytest.raises(TspError, match="run.py:6: error: input 'a' is float64; the program takes"):
        run_file(host)


def test_groq_is_importable_only_inside_an_emulator_run(tmp_path: Path) -> None:
    assert "groq" not in sys.modules
    with pytest.raises(ImportError):
        __import__("groq.api")
    a, b = np.ones((2, 4), np.float32), np.ones((4, 3), np.float32)
    kc.run(load("gemm.k"), "groq", {"a": a, "b": b}, params={"M": 2, "N": 3, "K": 4})
    assert not any(name == "groq" or name.startswith("groq.") for name in sys.modules)


def test_the_emulator_imports_nothing_outside_runtime_tsp() -> None:
    for path in (ROOT / "runtime" / "tsp").glob("*.py"):
        for line in path.read_text().splitlines():
            text = line.strip()
            if text.startswith(("import ", "from ")):
                module = text.split()[1]
                assert module.startswith(".") or module in (
                    "__future__",
                    "numpy",
                    "contextlib",
                    "contextvars",
                    "io",
                    "json",
                    "math",
                    "os",
                    "re",
                    "runpy",
                    "sys",
                    "types",
                    "zipfile",
                    "collections",
                    "collections.abc",
                    "dataclasses",
                    "pathlib",
                    "typing",
                ), f"{path.name}: {text}"
