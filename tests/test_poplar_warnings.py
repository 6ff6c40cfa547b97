"""The emitted codelets build without a warning: popc compiles codelets.cpp, and a project that
builds it with -Werror must not meet an unused variable or any other warning. Every conformance
case's codelets.cpp, in each poplar configuration the conformance suite runs, is compiled with
``g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only`` against the IPU model's Poplar headers
(runtime/ipu/include), the headers runtime/ipu/runner.py compiles it with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conformance.cases import CASES
from conformance.variants import VARIANTS

import kernelc as kc
from kernelc import xsbench
from kernelc.backends.poplar import lookup as poplar_lookup
from kernelc.runtime.ipu.runner import INCLUDE

ROOT = Path(__file__).resolve().parent.parent
CXX = os.environ.get("CXX", "g++")
WARNINGS = ("-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only")
CONFIGURATIONS = {"poplar": {}, **VARIANTS["poplar"]}
needs_gxx = pytest.mark.skipif(
    shutil.which(CXX) is None,
    reason="the codelets are compiled with g++ (or $CXX), which is not installed",
)


def warnings(codelets: str, tmp_path: Path) -> str:
    """What the compiler says of a codelets.cpp with every warning an error ("" if nothing)."""
    source = tmp_path / "codelets.cpp"
    source.write_text(codelets)
    done = subprocess.run(
        [CXX, *WARNINGS, "-I", str(INCLUDE), str(source)], capture_output=True, text=True
    )
    return "" if done.returncode == 0 else done.stderr


@needs_gxx
@pytest.mark.parametrize("label", sorted(CONFIGURATIONS))
@pytest.mark.parametrize("case", CASES, ids=str)
def test_conformance_codelets_build_without_warnings(label: str, case, tmp_path: Path) -> None:
    try:
        artifact = kc.build(
            case.program(), "poplar", params=dict(case.params), **CONFIGURATIONS[label]
        )
    except kc.Unsupported:
        pytest.skip(f"{label} refuses {case.name} (tests/conformance/unsupported.py)")
    assert warnings(artifact.files["codelets.cpp"], tmp_path) == ""


XS = (ROOT / "examples" / "xs_lookup.k").read_text()
# The lookup with two scalar parameters passed as literals: 'scale' used, 'unused' not.
XS_CONSTANTS = XS.replace(
    "material: i32[L]) -> macro", "material: i32[L], scale: f32, unused: i32) -> macro"
).replace("macro[l, c] += conc *", "macro[l, c] += scale * conc *") + (
    "graph xs(egrid: f32[NI, NG], xs: f32[NI, NG, 5], mat_nucs: i32[NM, MAXN],\n"
    "         mat_conc: f32[NM, MAXN], mat_count: i32[NM], energy: f32[L],\n"
    "         material: i32[L]) -> macro: f32[L, 5] {\n"
    "  macro = xs_lookup(egrid, xs, mat_nucs, mat_conc, mat_count, energy, material, 2.0, 7);\n"
    "}\n"
)
SMALL = {"NI": 6, "NG": 40, "L": 48}


@pytest.fixture(params=["split", "replicated"])
def plan(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Either lookup lowering: the tables split by key (split.py, the planner's choice here) or
    replicated to every tile (lookup.py, the split turned off)."""
    if request.param == "replicated":
        monkeypatch.setattr(poplar_lookup, "plan_split", lambda *args: "turned off by the test")
    return request.param


# Single-worker vertices (scalar.py) whose kernels take a literal they do not read.
SCALARS = """
size N = 12, M = 10;
kernel rowsum(x: f32[N, M], s: f32, unused: i32) -> y: f32[N] {
  for r in 0 .. N { y[r] = s * sum(k in 0 .. M) x[r, k]; }
}
kernel seq(x: f32[N], s: f32, unused: i32) -> y: f32[N] {
  var acc = 0.0;
  for i in 0 .. N { acc = acc * s + x[i]; y[i] = acc; }
}
graph g(u: f32[N, M], x: f32[N]) -> (y: f32[N], z: f32[N]) {
  y = rowsum(u, 2.0, 3);
  z = seq(x, 0.5, 3);
}
"""


def test_a_lookup_declares_no_constant_its_body_does_not_name(plan: str) -> None:
    """The literal 'scale' is substituted into the lookup's form (kernelc/passes/constants.py),
    so neither lookup declares it, nor 'unused'."""
    program = kc.loads(XS_CONSTANTS, "xs_constants.k")
    codelets = kc.build(program, "poplar", params=SMALL).files["codelets.cpp"]
    assert ("kBegin" in codelets) == (plan == "split")
    assert "2.0f * conc" in codelets
    assert "scale" not in codelets and "unused" not in codelets


def test_a_single_worker_vertex_declares_only_the_constants_it_reads() -> None:
    codelets = kc.build(kc.loads(SCALARS, "scalars.k"), "poplar", tiles=1).files["codelets.cpp"]
    assert codelets.count(": public Vertex {") == 2  # two single-worker vertices
    assert codelets.count("const float s = 2.0f;") == 1
    assert codelets.count("const float s = 0.5f;") == 1
    assert "unused" not in codelets


@needs_gxx
def test_a_lookup_with_constant_arguments_builds_without_warnings_and_runs(
    plan: str, tmp_path: Path
) -> None:
    program = kc.loads(XS_CONSTANTS, "xs_constants.k")
    assert warnings(kc.build(program, "poplar", params=SMALL).files["codelets.cpp"], tmp_path) == ""
    inputs = xsbench.generate("small", SMALL["L"], SMALL["NI"], SMALL["NG"]).kernel_inputs()
    got = kc.run(program, "poplar", inputs, params=SMALL)["macro"]
    want = kc.interpret(program, inputs, params=SMALL)["macro"]
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@needs_gxx
def test_single_worker_vertices_with_constant_arguments_build_without_warnings_and_run(
    tmp_path: Path,
) -> None:
    program = kc.loads(SCALARS, "scalars.k")
    assert warnings(kc.build(program, "poplar", tiles=1).files["codelets.cpp"], tmp_path) == ""
    rng = np.random.default_rng(0)
    inputs = {
        "u": rng.uniform(-1, 1, (12, 10)).astype(np.float32),
        "x": rng.uniform(-1, 1, 12).astype(np.float32),
    }
    got = kc.run(program, "poplar", inputs, tiles=1)
    for name, want in kc.run(program, "interp", inputs).items():
        np.testing.assert_array_equal(got[name], want)


# Found by compiling random programs' codelets (tests/fuzz/dsl.py) with -Wall -Wextra -Werror.
UNUSED_VAR_IN_LOOKUP = """
size N = 3, M = 2;
kernel k(main: u32[M, N]) -> sys: f32[N] {
  for i1 in 0 .. N {
    var v2: bool = !(select(false, false, false));
    sys[i1] += max(sys[i1], 3.25);
  }
}
"""
UNSIGNED_CONSTANTS = """
size N = 6;
kernel k(a: u16[N], b: u32[N]) -> (lo: u16[N], hi: u32[N], any: bool[N], none: bool[N]) {
  for i in 0 .. N {
    lo[i] = min(a[i], u16(0)) + max(a[i], u16(0));
    lo[i] min= u16(9);
    hi[i] = max(b[i], u32(0)) - min(b[i], u32(0));
    hi[i] max= u32(0);
    any[i] = bool(b[i] | u32(1));
    none[i] = bool(a[i] & u16(0));
  }
}
"""
# A `?:` of integer constants made bool (46 of 1,594 random programs on poplar, 2026-12-05):
# bool(c ? 2 : 2147483647) is -Wall's int-in-bool-context.
CONSTANT_CHOICE_AS_BOOL = """
size N = 6;
kernel k(a: f32[N]) -> o: f32[N] {
  for i in 0 .. N { o[i] = select(bool(select(a[i] > 5.0, 2, 0x7fffffff)), a[i], 1.0); }
}
"""


@needs_gxx
@pytest.mark.parametrize(
    ("source", "absent"),
    [
        (UNUSED_VAR_IN_LOOKUP, "v2"),
        (UNSIGNED_CONSTANTS, "1u) != 0"),
        (CONSTANT_CHOICE_AS_BOOL, "bool("),
    ],
    ids=["unused-var-in-lookup", "unsigned-constants", "constant-choice-as-bool"],
)
def test_programs_with_warnings_build_cleanly_and_run(
    source: str, absent: str, tmp_path: Path
) -> None:
    """A var nothing reads in a lookup's body (g++ -Wall: unused variable, so the IPU model's
    compile failed), min/max of unsigned values with 0 (-Wextra: a comparison always false),
    an int made bool by "!= 0" of a bitwise expression with a constant (-Wall: always
    true or false), and a choice between integer constants made bool (-Wall:
    int-in-bool-context)."""
    program = kc.loads(source, "found.k")
    codelets = kc.build(program, "poplar").files["codelets.cpp"]
    assert absent not in codelets
    assert warnings(codelets, tmp_path) == ""
    rng = np.random.default_rng(1)
    inputs = {
        p.name: rng.integers(0, 12, p.shape).astype(p.dtype.numpy) for p in program.graph().inputs
    }
    got = kc.run(program, "poplar", inputs)
    for name, want in kc.run(program, "interp", inputs).items():
        np.testing.assert_array_equal(got[name], want, err_msg=name)
