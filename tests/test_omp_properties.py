"""Property tests over drawn sizes: for each kernel, the C version (examples/omp) and the DSL
version agree on every target, and the C version agrees with OpenMP itself (the C compiler with
-fopenmp), when one is installed."""

from pathlib import Path

import numpy as np
import pytest
from conformance.unsupported import UNSUPPORTED
from hypothesis import given, settings
from hypothesis import strategies as st
from omp_gcc import compiler, run_c, run_on_targets

import kernelc as kc
from kernelc import targets, xsbench
from kernelc.inputs import random_inputs

ROOT = Path(__file__).resolve().parent.parent
C_EXAMPLES = ROOT / "examples" / "omp"

PIPELINE_DSL = """
size CH = 16;

kernel chunk_sum(v: f32[C]) -> s: f32[1] {
  s[0] = sum(i in 0 .. C) v[i];
}

kernel chunk_peak(v: f32[C]) -> m: f32[1] {
  var best: f32 = v[0];
  for i in 1 .. C {
    best max= v[i];
  }
  m[0] = best;
}

graph pipeline(v1: f32[4 * CH]) -> (sums: f32[4], peaks: f32[4]) {
  sums[0:1] = chunk_sum(v1[0:CH]);
  peaks[0:1] = chunk_peak(v1[0:CH]);
  sums[1:2] = chunk_sum(v1[CH:2 * CH]);
  peaks[1:2] = chunk_peak(v1[CH:2 * CH]);
  sums[2:3] = chunk_sum(v1[2 * CH:3 * CH]);
  peaks[2:3] = chunk_peak(v1[2 * CH:3 * CH]);
  sums[3:4] = chunk_sum(v1[3 * CH:4 * CH]);
  peaks[3:4] = chunk_peak(v1[3 * CH:4 * CH]);
}
"""


def _dsl(name: str, sizes: dict) -> kc.Program:
    if name == "pipeline":
        return kc.loads(PIPELINE_DSL, "pipeline.k", params=sizes)
    return kc.load(ROOT / "examples" / f"{name}.k", params=sizes)


def _agree(name: str, sizes: dict, inputs: dict, tmp_path: Path) -> None:
    c_program = kc.load(C_EXAMPLES / f"{name}.c", params=sizes)
    c_results = run_on_targets(c_program, inputs)
    dsl_results = run_on_targets(_dsl(name, sizes), inputs)
    # every registered target runs every example, except where the conformance table lists
    # the target's refusal of the C example (the DSL version is refused alike)
    refusing = {t for t in targets.names() if (t, f"{name}.c") in UNSUPPORTED}
    expected = set(targets.names()) - refusing
    assert set(c_results) == set(dsl_results) == expected, (name, sorted(c_results))
    for target in sorted(set(c_results) & set(dsl_results)):
        for out, want in dsl_results[target].items():
            got = c_results[target][out]
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {out} on {target}")
    if compiler() is not None:
        graph = c_program.graph(inputs=inputs)
        reference = run_c(C_EXAMPLES / f"{name}.c", graph, inputs, sizes, tmp_path)
        for out, want in reference.items():
            np.testing.assert_allclose(c_results["interp"][out], want, rtol=1e-5, atol=1e-6)


dims = st.integers(min_value=1, max_value=9)
# Each example compiles the C program with the C compiler and JIT-compiles both versions for
# every target, so these tests draw a third of the profile's examples (8 at least).
EXAMPLES = max(8, settings.default.max_examples // 3)


@settings(deadline=None, max_examples=EXAMPLES)
@given(h=dims, w=dims, seed=st.integers(0, 2**16))
def test_sobel(h, w, seed, tmp_path_factory):
    sizes = {"H": h, "W": w}
    inputs = random_inputs(_dsl("sobel", sizes).graph(), seed)
    _agree("sobel", sizes, inputs, tmp_path_factory.mktemp("sobel"))


@settings(deadline=None, max_examples=EXAMPLES)
@given(m=dims, n=dims, k=dims, seed=st.integers(0, 2**16))
def test_gemm(m, n, k, seed, tmp_path_factory):
    sizes = {"M": m, "N": n, "K": k}
    inputs = random_inputs(_dsl("gemm", sizes).graph(), seed)
    _agree("gemm", sizes, inputs, tmp_path_factory.mktemp("gemm"))


@settings(deadline=None, max_examples=EXAMPLES)
@given(b=dims, p=st.integers(1, 40), k=dims, seed=st.integers(0, 2**16))
def test_pca(b, p, k, seed, tmp_path_factory):
    sizes = {"B": b, "P": p, "K": k}
    inputs = random_inputs(_dsl("pca", sizes).graph(), seed)
    _agree("pca", sizes, inputs, tmp_path_factory.mktemp("pca"))


@settings(deadline=None, max_examples=EXAMPLES)
@given(ch=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_pipeline(ch, seed, tmp_path_factory):
    sizes = {"CH": ch}
    inputs = random_inputs(_dsl("pipeline", sizes).graph(), seed)
    _agree("pipeline", sizes, inputs, tmp_path_factory.mktemp("pipeline"))


@settings(deadline=None, max_examples=EXAMPLES)
@given(
    lookups=st.integers(1, 40),
    nuclides=st.integers(1, 8),
    gridpoints=st.integers(2, 30),
    size=st.sampled_from(["small", "large"]),
)
def test_xs_lookup(lookups, nuclides, gridpoints, size, tmp_path_factory):
    inputs = xsbench.generate(size, lookups, nuclides, gridpoints).kernel_inputs()
    sizes = {
        "NI": inputs["egrid"].shape[0],
        "NG": inputs["egrid"].shape[1],
        "NM": inputs["mat_nucs"].shape[0],
        "MAXN": inputs["mat_nucs"].shape[1],
        "L": inputs["energy"].shape[0],
    }
    _agree("xs_lookup", sizes, inputs, tmp_path_factory.mktemp("xs"))


@pytest.mark.parametrize("name", ["sobel", "gemm", "pca", "pipeline", "xs_lookup"])
def test_default_sizes_bind(name):
    graph = kc.load(C_EXAMPLES / f"{name}.c").graph()
    dsl = _dsl(name, {}).graph()
    assert {t.name: t.shape for t in graph.outputs} == {t.name: t.shape for t in dsl.outputs}
