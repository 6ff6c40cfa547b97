"""Each pass on its own: type checking, access analysis, parameter binding, graph verification."""

from __future__ import annotations

import numpy as np
import pytest

import kernelc as kc
from kernelc import ir
from kernelc.graph import Region, verify
from kernelc.passes.access import check_bounds, mark_parallel, summarise
from kernelc.passes.bind import bind
from kernelc.types import DType


def checked(text: str) -> ir.Module:
    """The module after the frontend and the type checker (kc.loads runs exactly those two)."""
    return kc.loads(text, filename="t.k").module


def kernel(text: str) -> ir.Kernel:
    return checked(text).kernels[0]


def nodes(k: ir.Kernel, kind: type) -> list:
    return [n for n in ir.walk_body(k.body) if isinstance(n, kind)]


def error(fn, *args, **kwargs) -> kc.KernelcError:
    with pytest.raises(kc.KernelcError) as info:
        fn(*args, **kwargs)
    return info.value


# --------------------------------------------------------------------------------- typecheck


def test_every_expression_gets_a_type() -> None:
    k = kernel(
        """
        kernel k(a: f32[N], n: u16[N], f: bool[N]) -> b: f32[N] {
          for i in 0 .. N {
            let x = a[i] * 2;
            let m = n[i] + 1;
            let c = select(f[i], x, 0.5);
            b[i] = c + f32(m);
          }
        }
        """
    )
    assert all(
        n.dtype is not None for n in ir.walk_body(k.body) if not isinstance(n, ir.Stmt | ir.Slice)
    )
    lets = {s.name: s for s in nodes(k, ir.Let)}
    assert lets["x"].declared == DType.F32
    assert lets["m"].declared == DType.U16
    assert lets["c"].declared == DType.F32


def test_literals_adapt_to_the_other_operand() -> None:
    k = kernel(
        """
        kernel k(a: f32[N], h: f16[N], u: u16[N]) -> (b: f32[N], g: f16[N], v: u16[N]) {
          for i in 0 .. N { b[i] = a[i] + 1; g[i] = 2 * h[i]; v[i] = u[i] + 65535; }
        }
        """
    )
    consts = {(c.value, c.dtype) for c in nodes(k, ir.Const) if c.dtype != DType.I32}
    assert consts == {(1.0, DType.F32), (2.0, DType.F16), (65535, DType.U16)}
    assert isinstance(next(c.value for c in nodes(k, ir.Const) if c.dtype == DType.F32), float)


def test_untyped_lets_default_to_i32_and_f32_and_literals_fold() -> None:
    k = kernel(
        """
        kernel k(a: f32[N]) -> b: f32[N] {
          for i in 0 .. N {
            let w = 2 * 3 + 1;
            let s = 0.5;
            let h: f16 = 1.5;
            b[i] = a[i] * s + f32(w) + f32(h);
          }
        }
        """
    )
    lets = {s.name: s for s in nodes(k, ir.Let)}
    assert lets["w"].value == ir.Const(value=7, span=lets["w"].value.span, dtype=DType.I32)
    assert lets["s"].declared == DType.F32
    assert lets["h"].declared == DType.F16 and lets["h"].value.value == 1.5


def test_unsigned_indices_are_cast_to_i32() -> None:
    k = kernel(
        """
        kernel k(a: f32[N], idx: u32[N]) -> b: f32[N] {
          for i in 0 .. N { b[i] = a[idx[i]]; }
        }
        """
    )
    gather = next(n for n in nodes(k, ir.Load) if n.tensor == "a")
    (index,) = gather.indices
    assert isinstance(index, ir.Cast) and index.to == DType.I32
    assert index.operand.dtype == DType.U32


def test_casts_comparisons_and_intrinsics_have_the_expected_types() -> None:
    k = kernel(
        """
        kernel k(a: f32[N], n: i32[N]) -> (b: bool[N], c: i32[N], r: f32[N], q: u32[N]) {
          for i in 0 .. N {
            b[i] = a[i] < 0.5 && n[i] != 0;
            c[i] = max(n[i], 3) + search(a[:], a[i]);
            r[i] = fma(a[i], 2.0, sqrt(abs(a[i]))) + rand(7, u32(i));
            q[i] = randbits(u32(n[i]), 1);
          }
        }
        """
    )
    kinds = {type(n).__name__: n.dtype for n in nodes(k, ir.Search | ir.Rand | ir.Intrinsic)}
    assert kinds["Search"] == DType.I32
    compare = next(n for n in nodes(k, ir.Binary) if n.op == "<")
    assert compare.dtype == DType.BOOL and compare.rhs.dtype == DType.F32
    rands = {n.bits: n.dtype for n in nodes(k, ir.Rand)}
    assert rands == {False: DType.F32, True: DType.U32}
    fma = next(n for n in nodes(k, ir.Intrinsic) if n.fn == "fma")
    assert [a.dtype for a in fma.args] == [DType.F32] * 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("b[i] = a[i] + n[i];", "type mismatch: f32 and i32; convert one side, e.g. f32(...)"),
        ("b[i] = n[i];", "type mismatch: expected f32, got i32; convert with f32(...)"),
        ("b[i] = a[i] << 1;", "operator '<<' needs integers, got f32"),
        ("b[i] = a[a[i]];", "an index must be an integer, got f32"),
        ("b[i] = f32(-n[i] % 2.5);", "a float literal cannot be used as i32"),
        ("b[i] = f32(!n[i]);", "operator '!' cannot be applied to i32"),
        (
            "b[i] = select(n[i], a[i], 0.0);",
            "type mismatch: expected bool, got i32; convert with bool(...)",
        ),
        ("b[i] = exp(n[i]);", "exp needs a float argument, got i32; convert with f32(...)"),
        ("b[i] = a;", "'a' is a tensor; index it, like a[i]"),
        ("let n = 1; b[i] = 0.0;", "'n' is already the name of a tensor parameter"),
        ("b[i] = f32(u32(n[i]) + -1);", "literal -1 does not fit in u32 [0, 4294967295]"),
        ("b[i] = f32(true < false);", "operator '<' cannot compare bool values"),
    ],
)
def test_type_errors(body: str, message: str) -> None:
    text = f"kernel k(a: f32[N], n: i32[N]) -> b: f32[N] {{\n  for i in 0 .. N {{ {body} }}\n}}\n"
    assert error(checked, text).message == message


# ------------------------------------------------------------------------ access: parallel


def loops(text: str) -> dict[str, bool | None]:
    marked = mark_parallel(kernel(text))
    return {n.var: n.parallel for n in ir.walk_body(marked.body) if isinstance(n, ir.For)}


def test_elementwise_and_gemm_loops_are_parallel() -> None:
    assert loops("kernel k(a: f32[N]) -> b: f32[N] { for i in 0 .. N { b[i] = 2.0 * a[i]; } }") == {
        "i": True
    }
    gemm = kc.load("examples/gemm.k").module.kernels[0]
    marked = mark_parallel(gemm)
    assert [n.parallel for n in ir.walk_body(marked.body) if isinstance(n, ir.For)] == [True, True]


def test_loop_carried_dependences_are_sequential() -> None:
    assert loops(
        """
        kernel k(a: f32[N]) -> b: f32[N] {
          for i in 1 .. N { b[i] = b[i - 1] + a[i]; }
        }
        """
    ) == {"i": False}
    assert loops(
        """
        kernel k(a: f32[N]) -> s: f32[1] {
          for i in 0 .. N { s[0] += a[i]; }
        }
        """
    ) == {"i": False}
    assert loops(
        """
        kernel k(a: f32[N]) -> b: f32[N] {
          var acc: f32 = 0.0;
          for i in 0 .. N { acc += a[i]; b[i] = acc; }
        }
        """
    ) == {"i": False}


def test_scatters_and_searches_of_written_tensors_are_sequential() -> None:
    assert loops(
        """
        kernel k(x: i32[N]) -> h: i32[B] {
          for i in 0 .. N { h[x[i]] += 1; }
        }
        """
    ) == {"i": False}
    assert loops(
        """
        kernel k(a: f32[N]) -> (b: f32[N], r: i32[N]) {
          for i in 0 .. N { b[i] = a[i]; r[i] = search(b[:], a[i]); }
        }
        """
    ) == {"i": False}


def test_nested_loops_mix_parallel_and_sequential() -> None:
    assert loops(
        """
        kernel k(a: f32[R, C]) -> (s: f32[R], t: f32[R, C]) {
          for r in 0 .. R {
            var acc: f32 = 0.0;
            for c in 0 .. C {
              acc += a[r, c];
              t[r, c] = acc;
              s[r] += a[r, c];
            }
          }
        }
        """
    ) == {"r": True, "c": False}


def test_reading_back_own_element_keeps_a_loop_parallel() -> None:
    assert loops(
        """
        kernel k(a: f32[N]) -> b: f32[N] {
          for i in 0 .. N { b[i] = a[i]; b[i] += b[i] * 2.0; }
        }
        """
    ) == {"i": True}
    assert loops(
        """
        kernel k(a: f32[N]) -> b: f32[N] {
          for i in 0 .. N { let j = i + 1; b[i] = a[i]; b[i] += a[j - 1]; }
        }
        """
    ) == {"i": True}


def test_xs_lookup_loops() -> None:
    """Lookups are parallel; the nuclide loop accumulates into macro[l, c] for every j, so it is
    sequential; the channel loop writes distinct macro[l, c] and is parallel."""
    xs = mark_parallel(kc.load("examples/xs_lookup.k").module.kernels[0])
    marks = {n.var: n.parallel for n in ir.walk_body(xs.body) if isinstance(n, ir.For)}
    assert marks == {"l": True, "j": False, "c": True}


# -------------------------------------------------------------------------- access: summary


def test_sobel_halo_is_one_in_each_direction() -> None:
    sobel = kc.load("examples/sobel.k").module.kernels[0]
    facts = {a.tensor: a for a in summarise(sobel)}
    assert facts["img"].halo == ((1, 1), (1, 1))
    assert facts["img"].reads == 12 and facts["img"].writes == 0
    assert facts["mag"].halo == ((0, 0), (0, 0)) and facts["mag"].writes == 1
    assert not facts["img"].indirect and not facts["mag"].reduction


def test_one_sided_halo_through_lets_and_indirect_and_reductions() -> None:
    k = kernel(
        """
        kernel k(a: f32[N], idx: i32[N]) -> (b: f32[N], h: f32[N]) {
          for i in 1 .. N - 2 {
            let r = i + 2;
            b[i] = a[r] - a[i - 1];
            h[idx[i]] += a[i];
          }
        }
        """
    )
    facts = {a.tensor: a for a in summarise(k)}
    assert facts["a"].halo == ((1, 2),)
    assert facts["h"].indirect and facts["h"].reduction
    assert not facts["b"].indirect and not facts["b"].reduction
    assert facts["idx"].halo == ((0, 0),)


def test_xs_lookup_summary_is_indirect() -> None:
    xs = kc.load("examples/xs_lookup.k").module.kernels[0]
    facts = {a.tensor: a for a in summarise(xs)}
    assert facts["egrid"].indirect and facts["xs"].indirect and facts["mat_nucs"].indirect
    assert not facts["energy"].indirect
    assert facts["macro"].reduction and not facts["macro"].indirect


# --------------------------------------------------------------------------- access: bounds


def bounds_error(text: str, **sizes: int) -> str | None:
    k = kernel(text)
    shapes = {p.name: tuple(sizes[d.name] for d in p.shape) for p in k.all_params if p.shape}
    try:
        check_bounds(k, sizes, shapes)
    except kc.KernelcError as err:
        return err.message
    return None


def test_if_guards_narrow_the_loop_range() -> None:
    guarded = """
    kernel k(a: f32[N]) -> b: f32[N] {
      for i in 0 .. N {
        if i > 0 && i < N - 1 { b[i] = a[i - 1] + a[i + 1]; }
      }
    }
    """
    assert bounds_error(guarded, N=6) is None
    assert bounds_error(guarded.replace("i < N - 1", "i < N"), N=6) == (
        "index i + 1 of 'a' (dimension 0) reaches 6 when i = 5, outside 0 .. 5; tighten the loop "
        "bounds or guard the access"
    )
    assert bounds_error(guarded.replace("i > 0 && ", ""), N=6) == (
        "index i - 1 of 'a' (dimension 0) reaches -1 when i = 0, outside 0 .. 5; tighten the loop "
        "bounds or guard the access"
    )
    flipped = guarded.replace("i > 0 && i < N - 1", "1 <= i && N - 2 >= i")
    assert bounds_error(flipped, N=6) is None


def test_select_guards_and_the_else_branch_takes_the_negation() -> None:
    text = """
    kernel k(a: f32[N]) -> b: f32[N] {
      for i in 0 .. N { b[i] = select(i >= 1, a[i - 1], 0.0); }
    }
    """
    assert bounds_error(text, N=4) is None
    swapped = text.replace("a[i - 1], 0.0", "0.0, a[i - 1]")
    assert "reaches -1 when i = 0" in bounds_error(swapped, N=4)


def test_equality_guards_narrow_as_c_programs_write_them() -> None:
    text = """
    kernel k(a: f32[N]) -> b: f32[N] {
      for i in 0 .. N { b[i] = GUARD; }
    }
    """
    accepted = [
        "select(i == 0, 0.0, a[i - 1])",
        "select(i != 0, a[i - 1], 0.0)",
        "select(!(i == 0), a[i - 1], 0.0)",
        "select(i == N - 1 || i == 0, 0.0, a[i - 1] + a[i + 1])",
        "select(0 == i, 0.0, a[i - 1])",
    ]
    for guard in accepted:
        assert bounds_error(text.replace("GUARD", guard), N=5) is None, guard
    refused = ["select(i == 1, 0.0, a[i - 1])", "select(i != 0, 0.0, a[i - 1])"]
    for guard in refused:
        assert "reaches -1 when i = 0" in bounds_error(text.replace("GUARD", guard), N=5), guard
    branches = """
    kernel k(a: f32[N]) -> b: f32[N] {
      for i in 0 .. N { if i == 0 { b[i] = 0.0; } else { b[i] = a[i - 1]; } }
    }
    """
    assert bounds_error(branches, N=5) is None


def test_guards_narrow_through_lets_and_arithmetic_on_one_index() -> None:
    """A reversed or strided C loop runs over its trip count, with the C index a let
    (``let k = N - 1 - t``): a guard on the let, or on arithmetic of one index, narrows the
    index's range (found by the C fuzzer, which met the refusal in 7 of 979 programs)."""
    text = """
    kernel k(a: f32[N]) -> b: f32[N] {
      for t in 0 .. N {
        let k = N - 1 - t;
        let s = 3 * t + 1;
        if GUARD { b[t] = a[INDEX]; }
      }
    }
    """
    accepted = [
        ("k > 0", "k - 1"),
        ("0 < k", "k - 1"),
        ("!(k <= 0)", "k - 1"),
        ("k != 0", "k - 1"),
        ("s + 1 < N", "s + 1"),
        ("2 * t + 1 < N", "2 * t + 1"),
        ("-t > 1 - N", "t + 1"),
        ("k >= 1 && s <= N - 1", "k - 1 + s - 3 * t - 1"),
    ]
    for guard, index in accepted:
        program = text.replace("GUARD", guard).replace("INDEX", index)
        assert bounds_error(program, N=7) is None, guard
    refused = [
        ("k >= 0", "k - 1", "reaches -1 when t = 6"),
        ("s < N", "s + 3", "reaches 7 when t = 1"),
        ("2 * t < N", "2 * t + 1", "reaches 7 when t = 3"),
        ("k != 1", "k - 1", "reaches -1 when t = 6"),
    ]
    for guard, index, message in refused:
        program = text.replace("GUARD", guard).replace("INDEX", index)
        assert message in bounds_error(program, N=7), guard


def test_bounds_depend_on_the_bound_sizes() -> None:
    sobel = kc.load("examples/sobel.k").module.kernels[0]
    for h, w in [(1, 1), (2, 5), (3, 3), (64, 48)]:
        check_bounds(sobel, {"H": h, "W": w}, {"img": (h, w), "mag": (h, w)})
    text = "kernel k(a: f32[M]) -> b: f32[N] { for i in 0 .. N { b[i] = a[2 * i]; } }"
    assert bounds_error(text, N=4, M=7) is None
    assert bounds_error(text, N=4, M=6) == (
        "index 2*i of 'a' (dimension 0) reaches 6 when i = 3, outside 0 .. 5; "
        "tighten the loop bounds or guard the access"
    )


def test_data_dependent_indices_are_not_bounds_checked() -> None:
    text = """
    kernel k(a: f32[N], idx: i32[N]) -> b: f32[N] {
      for i in 0 .. N { b[idx[i] + 5] = a[idx[i] - 9]; }
    }
    """
    assert bounds_error(text, N=3) is None


# ------------------------------------------------------------------------------------- bind

SOBEL = "examples/sobel.k"


def test_sizes_from_defaults_params_and_input_shapes() -> None:
    prog = kc.load(SOBEL)
    assert dict(prog.graph().sizes) == {"H": 800, "W": 800}
    assert dict(prog.graph(params={"H": 5}).sizes) == {"H": 5, "W": 800}
    img = np.zeros((4, 9), np.float32)
    assert dict(prog.graph(inputs={"img": img}).sizes) == {"H": 4, "W": 9}
    assert dict(prog.graph(params={"W": 9}, inputs={"img": img}).sizes) == {"H": 4, "W": 9}
    loaded = kc.load(SOBEL, params={"H": 7, "W": 3})
    assert dict(loaded.graph().sizes) == {"H": 7, "W": 3}
    assert dict(loaded.graph(params={"H": 2}).sizes) == {"H": 2, "W": 3}
    graph = prog.graph(params={"H": 6, "W": 2})
    assert [(t.name, t.shape, t.role) for t in graph.tensors] == [
        ("img", (6, 2), "input"),
        ("mag", (6, 2), "output"),
    ]


def test_size_conflicts_and_missing_sizes() -> None:
    prog = kc.load(SOBEL)
    img = np.zeros((4, 9), np.float32)
    assert error(prog.graph, params={"H": 5}, inputs={"img": img}).message == (
        "input 'img' has H = 4, but -D H=5"
    )
    assert error(prog.graph, inputs={"img": np.zeros(4, np.float32)}).message == (
        "input 'img' has rank 1 (shape (4,)), but the kernel declares rank 2"
    )
    assert error(prog.graph, params={"Q": 1}).message == (
        "'sobel' has no size or scalar parameter 'Q' (it has: H, W)"
    )
    assert error(prog.graph, params={"H": 2.5}).message == "size 'H' must be an integer, got 2.5"
    assert error(prog.graph, params={"H": -1}).message == "size 'H' must not be negative, got -1"
    nodefault = kc.loads(
        "kernel k(a: f32[N]) -> b: f32[N] { for i in 0 .. N { b[i] = a[i]; } }", filename="t.k"
    )
    assert error(nodefault.graph).message == (
        "size 'N' has no value; pass -D N=VALUE or give an input whose shape fixes it"
    )


def test_shape_expressions_bind_from_params_not_from_inputs() -> None:
    prog = kc.loads(
        "kernel k(a: f32[N + 2]) -> b: f32[N] { for i in 0 .. N { b[i] = a[i + 2] - a[i]; } }",
        filename="t.k",
    )
    a = np.zeros(5, np.float32)
    assert dict(prog.graph(params={"N": 3}, inputs={"a": a}).sizes) == {"N": 3}
    assert error(prog.graph, params={"N": 4}, inputs={"a": a}).message == (
        "input 'a' has shape (5,), but f32[N + 2] is (6,) here"
    )
    out = kc.interpret(prog, {"a": np.arange(5, dtype=np.float32)}, params={"N": 3})["b"]
    assert out.tolist() == [2, 2, 2]


def test_scalar_parameters_take_defaults_and_overrides() -> None:
    prog = kc.loads(
        "kernel k(x: f32[N], s: f32 = 2.0) -> y: f32[N] { for i in 0 .. N { y[i] = s * x[i]; } }",
        filename="t.k",
    )
    x = np.ones(3, np.float32)
    assert kc.interpret(prog, {"x": x})["y"].tolist() == [2, 2, 2]
    assert kc.interpret(prog, {"x": x}, params={"s": 3})["y"].tolist() == [3, 3, 3]
    assert kc.interpret(prog, {"x": x, "s": np.float32(-1)})["y"].tolist() == [-1, -1, -1]
    (scalar,) = prog.graph(params={"N": 3, "s": 3}).scalars
    assert scalar.default.value == 3.0 and scalar.default.dtype == DType.F32


def test_graph_binding_unifies_kernel_sizes_per_call() -> None:
    graph = kc.load("examples/pca.k").graph(params={"B": 3, "P": 10, "K": 4})
    centre, project = graph.tasks
    assert dict(centre.sizes) == {"N": 3, "D": 10}
    assert dict(project.sizes) == {"N": 3, "D": 10, "C": 4}
    assert graph.tensor("centred").shape == (3, 10) and graph.tensor("centred").role == "temp"
    assert [str(r) for r in project.reads] == ["centred[0:3, 0:10]", "basis[0:10, 0:4]"]
    assert [str(w) for w in project.writes] == ["codes[0:3, 0:4]"]


def test_choose_entry() -> None:
    module = kc.load("examples/pca.k").module
    assert bind(module, params={"B": 1, "P": 2, "K": 1}).name == "pca"
    assert bind(module, "centre", {"N": 2, "D": 3}).name == "centre"
    assert error(bind, module, "nope").message == (
        "no kernel or graph named 'nope' (this file has: pca, centre, project)"
    )
    two = checked(
        "kernel a(x: f32[N]) -> y: f32[N] { for i in 0 .. N { y[i] = x[i]; } }\n"
        "kernel b(x: f32[N]) -> y: f32[N] { for i in 0 .. N { y[i] = x[i]; } }\n"
    )
    assert error(bind, two, None, {"N": 1}).message == (
        "several possible entries (a, b); choose one with --entry"
    )


# ------------------------------------------------------------------------------ graph verify

FILL = "kernel fill(x: f32[N]) -> y: f32[N] { for i in 0 .. N { y[i] = x[i] + 1.0; } }\n"


def graph_of(body: str, **params: int):
    text = FILL + "graph g(a: f32[N]) -> c: f32[N] {\n" + body + "}\n"
    return kc.loads(text, filename="t.k").graph(params=params)


def test_disjoint_writes_are_concurrent_and_cover_their_reader() -> None:
    graph = graph_of(
        "  let t: f32[N];\n  t[0:3] = fill(a[0:3]);\n  t[3:N] = fill(a[3:N]);\n  c = fill(t);\n",
        N=7,
    )
    deps = graph.dependencies
    assert not deps.has_edge("fill_0", "fill_1") and not deps.has_edge("fill_1", "fill_0")
    assert deps.edges["fill_0", "fill_2"]["kind"] == "flow"
    assert deps.edges["fill_1", "fill_2"]["region"] == "t[0:7]"
    bip = graph.to_networkx()
    assert bip.edges["fill_0", "t"]["region"] == Region("t", ((0, 3),), (True,))
    assert bip.edges["a", "fill_1"]["access"] == "read"
    out = kc.interpret(
        kc.loads(
            FILL + "graph g(a: f32[N]) -> c: f32[N] {\n  let t: f32[N];\n"
            "  t[0:3] = fill(a[0:3]);\n  t[3:N] = fill(a[3:N]);\n  c = fill(t);\n}\n",
            filename="t.k",
        ),
        {"a": np.zeros(7, np.float32)},
    )["c"]
    assert out.tolist() == [2.0] * 7


def test_uncovered_reads_are_errors() -> None:
    err = error(graph_of, "  let t: f32[N];\n  t[0:3] = fill(a[0:3]);\n  c = fill(t);\n", N=7)
    assert err.message == "'fill' reads t[0:7], but no earlier task writes all of it"
    assert (err.span.line, err.span.col) == (5, 7)
    err = error(graph_of, "  let t: f32[N];\n  c = fill(t);\n  t = fill(a);\n", N=4)
    assert err.message == "'fill' reads t[0:4], but no earlier task writes all of it"


def test_overlapping_concurrent_writes_are_errors_but_ordered_ones_are_not() -> None:
    err = error(graph_of, "  c[0:4] = fill(a[0:4]);\n  c[3:N] = fill(a[3:N]);\n", N=6)
    assert err.message == (
        "write conflict: 'fill' writes c[3:6], which overlaps c[0:4] written by 'fill', and "
        "neither task depends on the other"
    )
    assert (err.span.line, err.span.col) == (4, 12)
    assert err.notes[0][1] == "the other write is here" and err.notes[0][0].line == 3
    ordered = graph_of("  c = fill(a);\n  c = fill(c);\n", N=3)
    assert ordered.dependencies.edges["fill_0", "fill_1"]["kind"] == "flow"


def test_anti_dependences_order_a_read_before_an_overwrite() -> None:
    graph = graph_of("  let t: f32[N];\n  t = fill(a);\n  c = fill(t);\n  t = fill(a);\n", N=3)
    deps = graph.dependencies
    assert deps.edges["fill_1", "fill_2"]["kind"] == "anti"
    verify(graph)


def test_regions_must_lie_inside_their_tensors() -> None:
    err = error(graph_of, "  c = fill(a[0:N+1]);\n", N=4)
    assert err.message == "slice 0:5 of 'a' (dimension 0) is outside 0 .. 4"
    assert (err.span.line, err.span.col) == (3, 14)


def test_region_geometry() -> None:
    r = Region("t", ((0, 4), (2, 3), (1, 5)), (True, False, True))
    assert r.view_shape == (4, 4)
    assert r.index() == (slice(0, 4), 2, slice(1, 5))
    assert str(r) == "t[0:4, 2, 1:5]"
    assert r.overlaps(Region("t", ((3, 9), (0, 3), (4, 5)), (True, True, True)))
    assert not r.overlaps(Region("t", ((4, 9), (0, 3), (0, 5)), (True, True, True)))
    assert not r.overlaps(Region("u", ((0, 4), (2, 3), (1, 5)), (True, False, True)))
    assert Region("t", ((2, 2),), (True,)).is_empty
