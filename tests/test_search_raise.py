"""Raising a hand-written C bracket search to ``search``: which spellings are raised, which are
left as loops, and that the result is the C loop's on any data (unsorted, NaN, out of range)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import kernelc as kc
from kernelc import ir

BRACKET = """
#ifndef N
#define N 16
#endif
#ifndef G
#define G 9
#endif

void bracket(const float grid[G], const float v[N], int out[N]) {
#pragma omp target teams distribute parallel for map(to: grid[0:G], v[0:N]) map(from: out[0:N])
  for (int i = 0; i < N; i++) {
    float x = v[i];
    int lo = 0;
    int hi = G;
    for (int step = 0; step < 32; step++) {
      if (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (grid[mid] <= x) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
    }
    int k = lo - 1;
    k = k < G - 2 ? k : G - 2;
    k = k > 0 ? k : 0;
    out[i] = k;
  }
}
"""


def _c_loop(grid: np.ndarray, x: np.float32, steps: int = 32) -> int:
    """The C source above, statement for statement (C's comparisons: false on NaN)."""
    lo, hi = 0, len(grid)
    for _ in range(steps):
        if lo < hi:
            mid = lo + (hi - lo) // 2
            if grid[mid] <= x:
                lo = mid + 1
            else:
                hi = mid
    k = lo - 1
    k = k if k < len(grid) - 2 else len(grid) - 2
    return k if k > 0 else 0


def _loop_body(text: str, **sizes: int) -> tuple[ir.Stmt, ...]:
    (task,) = kc.loads(text, "t.c", params=sizes).graph().tasks
    (loop,) = task.kernel.body
    return loop.body


def _searches(text: str, **sizes: int) -> list[ir.Search]:
    body = _loop_body(text, **sizes)
    return [n for n in ir.walk_body(body) if isinstance(n, ir.Search)]


def test_the_canonical_search_becomes_a_let_of_search() -> None:
    body = _loop_body(BRACKET)
    lets = [s for s in body if isinstance(s, ir.Let)]
    assert [s.name for s in lets] == ["x", "k"]
    search = lets[1].value
    assert isinstance(search, ir.Search) and search.tensor == "grid"
    (piece,) = search.indices
    assert isinstance(piece, ir.Slice) and piece.lo is None and piece.hi is None
    assert isinstance(search.value, ir.Name) and search.value.name == "x"
    assert not any(isinstance(s, ir.For | ir.VarDecl) for s in body)


SPELLINGS = {
    "if-statement clamps": (
        "k = k < G - 2 ? k : G - 2;\n    k = k > 0 ? k : 0;",
        "if (k > G - 2) k = G - 2;\n    if (k < 0) k = 0;",
    ),
    "clamps as flipped ternaries": (
        "k = k < G - 2 ? k : G - 2;\n    k = k > 0 ? k : 0;",
        "k = G - 2 < k ? G - 2 : k;\n    k = 0 >= k ? 0 : k;",
    ),
    "the lower clamp first": (
        "k = k < G - 2 ? k : G - 2;\n    k = k > 0 ? k : 0;",
        "k = k > 0 ? k : 0;\n    k = k < G - 2 ? k : G - 2;",
    ),
    "the probe written as x >= row[mid]": ("grid[mid] <= x", "x >= grid[mid]"),
    "the guard written as hi > lo": ("if (lo < hi)", "if (hi > lo)"),
    "a halving shift": ("(hi - lo) / 2", "((hi - lo) >> 1)"),
    "hi declared first": ("int lo = 0;\n    int hi = G;", "int hi = G;\n    int lo = 0;"),
    "just enough steps (bit_length(9) = 4)": ("step < 32", "step < 4"),
}


def test_equivalent_spellings_are_raised() -> None:
    for name, (old, new) in SPELLINGS.items():
        assert old in BRACKET, name
        assert len(_searches(BRACKET.replace(old, new))) == 1, name


LEFT_AS_LOOPS = {
    "too few steps to finish": ("step < 32", "step < 3"),
    "a strict probe (differs on ties)": ("grid[mid] <= x", "grid[mid] < x"),
    "a negated probe (differs on NaN)": (
        "if (grid[mid] <= x) {\n          lo = mid + 1;\n        } else {\n          hi = mid;\n",
        "if (grid[mid] > x) {\n          hi = mid;\n        } else {\n          lo = mid + 1;\n",
    ),
    "an upper clamp of G - 1": ("k < G - 2 ? k : G - 2", "k < G - 1 ? k : G - 1"),
    "no lower clamp": ("k = k > 0 ? k : 0;", ""),
    "hi short of the row": ("int hi = G;", "int hi = G - 1;"),
    "lo read after the search": ("out[i] = k;", "out[i] = k + lo;"),
    "the lower clamp first with G < 2": (
        "k = k < G - 2 ? k : G - 2;\n    k = k > 0 ? k : 0;",
        "k = k > 0 ? k : 0;\n    k = k < G - 2 ? k : G - 2;",
    ),
}


def test_other_forms_stay_loops() -> None:
    for name, (old, new) in LEFT_AS_LOOPS.items():
        assert old in BRACKET, name
        sizes = {"G": 1} if "G < 2" in name else {}
        assert _searches(BRACKET.replace(old, new), **sizes) == [], name


def test_the_raised_search_names_a_var_when_the_result_is_reassigned() -> None:
    text = BRACKET.replace("out[i] = k;", "k = k * 2;\n    out[i] = k;")
    (decl,) = [s for s in _loop_body(text) if isinstance(s, ir.VarDecl)]
    assert decl.name == "k" and isinstance(decl.value, ir.Search)


values = st.floats(-4, 4, width=32) | st.just(float("nan"))


@given(
    g=st.integers(0, 20),
    grid=st.lists(values, min_size=20, max_size=20),
    v=st.lists(values | st.floats(width=32, allow_nan=False), min_size=16, max_size=16),
    sort=st.booleans(),
)
def test_raised_search_gives_the_c_loops_bracket_on_any_data(g, grid, v, sort) -> None:
    row = np.array(grid[:g], np.float32)
    if sort:
        row = np.sort(row)
    x = np.array(v, np.float32)
    program = kc.loads(BRACKET, "t.c", params={"G": g})
    assert len(_searches(BRACKET, G=g)) == 1
    want = np.array([_c_loop(row, xi) for xi in x], np.int32)
    for target in ("interp", "cpu"):
        got = kc.run(program, target, {"grid": row, "v": x})["out"]
        np.testing.assert_array_equal(got, want, err_msg=target)


@given(steps=st.integers(0, 6), g=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_too_few_steps_keep_the_loops_answer(steps, g, seed) -> None:
    rng = np.random.default_rng(seed)
    row = np.sort(rng.standard_normal(g).astype(np.float32))
    x = rng.standard_normal(16).astype(np.float32) * 2
    text = BRACKET.replace("step < 32", f"step < {steps}")
    raised = len(_searches(text, G=g)) == 1
    assert raised == (steps >= g.bit_length())
    got = kc.run(kc.loads(text, "t.c", params={"G": g}), "interp", {"grid": row, "v": x})["out"]
    np.testing.assert_array_equal(got, [_c_loop(row, xi, steps) for xi in x])
