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
    with pytest.raises(kc.KernelcError) as err:
        kc.build(load("pca.k"), "groq", params={"B": 16, "P": 16384, "K": 3000})
    text = str(err.value)
    assert "tensor 'basis_hi_t'" in text and "98,304,000 bytes" in text
    assert "does not fit the GroqChip's memory" in text


# -------------------------------------------------------------- cycles, determinism, golden


@pytest.mark.parametrize(
    ("example", "params"),
    [
        ("sobel.k", {"H": 20, "W": 400}),
        ("sobel.k", {"H": 64, "W": 48}),
        ("gemm.k", {"M": 40, "N": 330, "K": 700}),
        ("pca.k", {"B": 8, "P": 1000, "K": 20}),
        ("omp/sobel.c", {"H": 16, "W": 16}),
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
    for example, params in (("sobel.k", {"H": 30, "W": 17}), ("pca.k", {"B": 4, "P": 33, "K": 3})):
        assert _files(example, params) == _files(example, params)


GOLDEN_CASES = {
    "gemm": ("gemm.k", {"M": 64, "N": 64, "K": 64}),
    "sobel": ("sobel.k", {"H": 20, "W": 18}),
    "pca": ("pca.k", {"B": 4, "P": 40, "K": 5}),
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
