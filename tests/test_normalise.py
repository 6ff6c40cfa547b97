"""The accumulator-to-sum normalisation: which forms it rewrites, and that results do not change."""

import numpy as np

import kernelc as kc
from kernelc import ir

ACCUMULATE = """
kernel mm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
  for i in 0 .. M, j in 0 .. N {
    var acc: f32 = 0.0;
    for k in 0 .. K {
      acc += a[i, k] * b[k, j];
    }
    c[i, j] = acc;
  }
}
"""

SUM = """
kernel mm(a: f32[M, K], b: f32[K, N]) -> c: f32[M, N] {
  for i in 0 .. M, j in 0 .. N {
    c[i, j] = sum(k in 0 .. K) a[i, k] * b[k, j];
  }
}
"""


def _body(text: str, **params: int) -> tuple[ir.Stmt, ...]:
    return kc.loads(text, "t.k").graph(params=params).tasks[0].kernel.body


def _inputs(m: int, k: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "a": rng.standard_normal((m, k)).astype(np.float32),
        "b": rng.standard_normal((k, n)).astype(np.float32),
    }


def test_accumulator_loop_becomes_the_store_of_a_sum() -> None:
    (outer,) = _body(ACCUMULATE, M=3, K=4, N=2)
    (inner,) = outer.body
    (store,) = inner.body
    assert isinstance(store, ir.Store)
    assert isinstance(store.value, ir.Reduce) and store.value.var == "k"
    assert outer.parallel and inner.parallel


def test_rewritten_accumulation_is_bit_identical_to_the_loop_and_to_sum() -> None:
    inputs = _inputs(5, 37, 3)
    with_loop = kc.interpret(kc.loads(ACCUMULATE, "t.k"), inputs)["c"]
    with_sum = kc.interpret(kc.loads(SUM, "t.k"), inputs)["c"]
    folded = np.zeros((5, 3), np.float32)
    for k in range(37):  # the language's left-to-right fold, written out
        folded = folded + inputs["a"][:, k : k + 1] * inputs["b"][k : k + 1, :]
    assert with_loop.tobytes() == with_sum.tobytes() == folded.tobytes()


def test_an_accumulator_read_later_becomes_a_let() -> None:
    text = ACCUMULATE.replace("c[i, j] = acc;", "c[i, j] = acc * acc + acc;")
    (outer,) = _body(text, M=2, K=3, N=2)
    let, store = outer.body[0].body
    assert isinstance(let, ir.Let) and isinstance(let.value, ir.Reduce)
    inputs = _inputs(2, 3, 2)
    got = kc.interpret(kc.loads(text, "t.k"), inputs)["c"]
    acc = kc.interpret(kc.loads(SUM, "t.k"), inputs)["c"]
    np.testing.assert_array_equal(got, acc * acc + acc)


def test_other_shapes_are_left_alone() -> None:
    cases = {
        "a nonzero start": ACCUMULATE.replace("var acc: f32 = 0.0;", "var acc: f32 = 1.0;"),
        "another update": ACCUMULATE.replace(
            "acc += a[i, k] * b[k, j];", "acc += a[i, k] * b[k, j];\n      acc *= 0.5;"
        ),
        "a product": ACCUMULATE.replace("acc += ", "acc *= "),
        "a self-reference": ACCUMULATE.replace("acc += a[i, k]", "acc += acc * a[i, k]"),
    }
    for name, text in cases.items():
        (outer,) = _body(text, M=2, K=3, N=2)
        kinds = [type(s).__name__ for s in outer.body[0].body]
        assert kinds[:2] == ["VarDecl", "For"], name
