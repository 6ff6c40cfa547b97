"""The ``Reduction`` form without a kept index: folds written as an accumulator loop (``var s =
0.0; for i { s += a[i]; } out[0] = s;``, ``m = max(m, a[i])`` as C's fmaxf) are recognised
once, in the forms layer, as the same ``Fold`` steps a ``sum``/``max=`` fold gives; every other
use of the accumulator leaves the task ``Scalar``. Each recognised kernel runs on every target
against NumPy (a backend that cannot spread it falls back to its scalar path)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import kernelc as kc
from kernelc import ir, targets
from kernelc.forms import Reduction, Scalar
from kernelc.forms.reduction import Fold, RowStores

SUM = """
size N = 37;
kernel total(a: f32[N]) -> out: f32[1] {
  var s = 0.0;
  for i in 0 .. N { s += a[i]; }
  out[0] = s;
}
"""

PEAKS = """
size N = 37;
kernel peaks(a: f32[N]) -> out: f32[3] {
  var hi = a[0];
  for i in 1 .. N { hi = max(hi, a[i]); }
  var lo = a[2];
  for i in 3 .. N - 1 { lo = min(lo, a[i]); }
  var top = -1000.0;
  for i in 0 .. N { top max= a[i] * 2.0; }
  out[0] = hi;
  out[2] = lo - top;
  out[1] = hi + lo;
}
"""


def form_of(source: str):
    (task,) = kc.loads(textwrap.dedent(source), "fold.k").graph().tasks
    return task.form


def test_an_accumulator_sum_is_a_reduction_without_a_kept_index() -> None:
    form = form_of(SUM)
    assert isinstance(form, Reduction) and form.loop is None and form.kept_dims == ()
    fold, stores = form.steps
    assert isinstance(fold, Fold) and (fold.op, fold.var, fold.init) == ("sum", "i", None)
    assert isinstance(fold.body, ir.Load) and fold.body.tensor == "a"
    assert isinstance(stores, RowStores) and stores.loop is None
    (store,) = stores.body
    assert store.tensor == "out" and store.value == ir.Name(
        name=fold.name, span=store.value.span, dtype=store.value.dtype
    )


def test_max_min_written_with_the_intrinsic_or_max_assign_are_folds_with_their_init() -> None:
    form = form_of(PEAKS)
    assert isinstance(form, Reduction) and form.loop is None
    folds = form.folds
    assert [(f.name, f.op) for f in folds] == [("hi", "max"), ("lo", "min"), ("top", "max")]
    assert all(f.init is not None for f in folds)


def test_the_fold_of_a_store_takes_a_name_the_kernel_does_not_use() -> None:
    source = """
    size N = 8;
    kernel named(a: f32[N]) -> out: f32[2] {
      let total = 2.0;
      out[0] = sum(i in 0 .. N) a[i];
      out[1] = total;
    }
    """
    form = form_of(source)
    assert isinstance(form, Reduction)
    assert [f.name for f in form.folds] == ["total2"]


@pytest.mark.parametrize(
    "body",
    [
        "var s = 0.5; for i in 0 .. N { s = s * 0.5 + a[i]; } out[0] = s;",  # no fold op
        "var m = a[0]; for i in 1 .. N { m = max(a[i], m); } out[0] = m;",  # accumulator second
        "var s = 0.0; for i in 0 .. N { s += a[i]; out[i] = s; }",  # read inside the loop
        "var s = 1.0; for i in 0 .. N { s += a[i]; } for i in 0 .. N { s += a[i]; } out[0] = s;",
        "var m = a[0]; for i in 1 .. N { m max= a[i]; } for j in 0 .. N { out[j] = m; }",
        "var s = 1.0; for i in 0 .. N { s += a[i]; s += 1.0; } out[0] = s;",
        "var s = 1.0; for i in 0 .. N { s -= a[i]; } out[0] = s;",
    ],
)
def test_other_uses_of_an_accumulator_stay_scalar(body: str) -> None:
    source = f"size N = 6;\nkernel k(a: f32[N]) -> out: f32[N] {{\n  {body}\n}}\n"
    assert isinstance(form_of(source), Scalar)


def test_a_fold_whose_trip_count_is_data_stays_scalar() -> None:
    source = """
    size N = 6;
    kernel k(a: f32[N], n: i32[1]) -> out: f32[1] {
      var s = 1.0;
      for i in 0 .. n[0] { s += a[i]; }
      out[0] = s;
    }
    """
    assert isinstance(form_of(source), Scalar)


@pytest.mark.parametrize("target", targets.names())
def test_whole_folds_match_numpy_on_every_target(target: str) -> None:
    a = np.random.default_rng(7).uniform(-3, 3, 37).astype(np.float32)
    a[5], a[20] = np.nan, -np.inf  # max and min ignore NaN, as max= does
    a[36] = 50.0  # outside the min fold's range 3 .. N - 1
    got = kc.run(kc.loads(PEAKS, "peaks.k"), target, {"a": a})["out"]
    hi = np.fmax.reduce(a)
    lo = np.fmin.reduce(a[2:36])
    top = max(np.float32(-1000.0), np.fmax.reduce(a * np.float32(2)))
    np.testing.assert_array_equal(got, np.array([hi, hi + lo, lo - top], np.float32))

    b = np.random.default_rng(8).uniform(-1, 1, 37).astype(np.float32)
    total = kc.run(kc.loads(SUM, "total.k"), target, {"a": b})["out"]
    np.testing.assert_allclose(total, [b.astype(np.float64).sum()], rtol=1e-5, atol=1e-6)
