"""Which stores the csl item-wise lookup accepts (backends/csl/lookup.py): additions only where
the key is known, zeroing only before an item's first addition; the C XS kernel (zeroing, then
a hand-written search raised to ``search``) runs banded and agrees bit for bit with the DSL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import xsbench
from kernelc.forms import Lookup

ROOT = Path(__file__).resolve().parent.parent
XS_DSL = (ROOT / "examples" / "xs_lookup.k").read_text()
NUCLIDES = "    for j in 0 .. mat_count[m] {"  # the loop over a lookup's nuclides


def _inputs(nuclides: int = 5, points: int = 60, lookups: int = 9) -> dict[str, np.ndarray]:
    return xsbench.generate("small", lookups, nuclides, points).kernel_inputs()


def _params(inputs: dict[str, np.ndarray]) -> dict[str, int]:
    return {
        "NI": inputs["egrid"].shape[0],
        "NG": inputs["egrid"].shape[1],
        "NM": inputs["mat_nucs"].shape[0],
        "MAXN": inputs["mat_nucs"].shape[1],
        "L": inputs["energy"].shape[0],
    }


def test_c_xs_lookup_runs_banded_and_equals_the_dsl_bit_for_bit() -> None:
    inputs = _inputs()
    params = _params(inputs)
    c = kc.load(ROOT / "examples" / "omp" / "xs_lookup.c", params=params)
    dsl = kc.loads(XS_DSL, "xs_lookup.k", params=params)
    art = kc.build(c, "csl", params=params, grid=(8, 2))
    assert "band_depth" in art.manifest["placements"]["egrid"][1]
    got = kc.run(c, "csl", inputs, grid=(8, 2))["macro"]
    want = kc.run(dsl, "csl", inputs, grid=(8, 2))["macro"]
    assert got.tobytes() == want.tobytes()
    reference = kc.interpret(dsl, inputs)["macro"]
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)


def test_an_addition_before_the_nuclide_is_known_is_added_once() -> None:
    text = XS_DSL.replace(NUCLIDES, "    macro[l, 0] += 1.0;\n" + NUCLIDES)
    assert text != XS_DSL
    inputs = _inputs()
    program = kc.loads(text, "t.k", params=_params(inputs))
    got = kc.run(program, "csl", inputs, grid=(4, 2))["macro"]
    want = kc.interpret(program, inputs)["macro"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    without = kc.interpret(kc.loads(XS_DSL, "xs.k", params=_params(inputs)), inputs)["macro"]
    np.testing.assert_allclose(got[:, 0] - without[:, 0], 1.0, rtol=1e-4)


def test_zeroing_before_the_additions_is_exact_on_every_grid() -> None:
    zeroing = "    for c in 0 .. 5 {\n      macro[l, c] = 0.0;\n    }\n"
    text = XS_DSL.replace(NUCLIDES, zeroing + NUCLIDES)
    assert text != XS_DSL
    inputs = _inputs()
    params = _params(inputs)
    for grid in ((1, 1), (3, 2), (8, 1)):
        got = kc.run(kc.loads(text, "t.k", params=params), "csl", inputs, grid=grid)["macro"]
        plain = kc.run(kc.loads(XS_DSL, "xs.k", params=params), "csl", inputs, grid=grid)["macro"]
        assert got.tobytes() == plain.tobytes(), grid


@pytest.mark.parametrize(
    "change",
    [
        # a zeroing after additions: run on every PE it would drop other PEs' partial sums
        ("      }\n    }\n  }\n}", "      }\n    }\n    macro[l, 1] = 0.0;\n  }\n}"),
        # a store of a value other than 0 would be counted once per PE
        (NUCLIDES, "    macro[l, 1] = 2.0;\n" + NUCLIDES),
    ],
    ids=["zeroing-after-additions", "nonzero-store"],
)
def test_stores_partial_sums_cannot_express_run_as_scalar_code(change) -> None:
    old, new = change
    text = XS_DSL.replace(old, new)
    assert text != XS_DSL
    inputs = _inputs()
    program = kc.loads(text, "t.k", params=_params(inputs))
    (task,) = program.graph().tasks
    assert not isinstance(task.form, Lookup)
    result = kc.run_with_stats(program, "csl", inputs)
    assert result.stats["grid"] == "1x1"  # one task: one PE runs it as scalar code
    np.testing.assert_array_equal(result.outputs["macro"], kc.interpret(program, inputs)["macro"])


def test_zeroing_a_tensor_nothing_adds_to_leaves_the_lookup_form() -> None:
    text = """
    kernel xs(mat: i32[L], tab: f32[NN, C]) -> (macro: f32[L, C], aux: f32[L, C]) {
      for l in 0 .. L {
        aux[l, 0] = 0.0;
        for j in 0 .. 3 {
          let n = mat[l] + j;
          for c in 0 .. C { macro[l, c] += tab[n, c]; }
        }
      }
    }
    """
    program = kc.loads(text, "t.k", params={"L": 8, "NN": 6, "C": 2})
    (task,) = program.graph().tasks
    assert not isinstance(task.form, Lookup)  # two outputs, one never added to: scalar code instead
    rng = np.random.default_rng(0)
    inputs = {
        "mat": rng.integers(0, 4, 8).astype(np.int32),
        "tab": rng.uniform(-1, 1, (6, 2)).astype(np.float32),
    }
    got = kc.run(program, "csl", inputs, grid=(2, 1))
    want = kc.interpret(program, inputs)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
