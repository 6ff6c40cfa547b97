"""Round trip of the CSL printer and the fabric simulator's parser: parse(print(p)) == p."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernelc.backends.csl.emit import file_text
from kernelc.csl import model as m
from kernelc.diagnostics import KernelcError
from kernelc.runtime.fabric.parser import parse_file

KEYWORDS = {
    "const",
    "var",
    "param",
    "fn",
    "task",
    "comptime",
    "layout",
    "if",
    "else",
    "for",
    "while",
    "return",
    "and",
    "or",
    "true",
    "false",
    "switch",
    "export",
    "enum",
    "align",
    "break",
}

_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
names = st.builds(
    str.__add__, st.sampled_from(_FIRST), st.text(_FIRST + "0123456789", max_size=5)
).filter(lambda s: s not in KEYWORDS)
type_names = st.sampled_from(["f32", "f16", "i16", "u16", "i32", "u32", "bool", "color", "void"])
texts = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(str.rstrip)

BINOPS = [
    "or",
    "and",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    "&",
    "^",
    "|",
    "<<",
    ">>",
    "+",
    "-",
    "*",
    "/",
    "%",
]
ASSIGN_OPS = ["=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="]


def leaves() -> st.SearchStrategy[m.Expr]:
    return st.one_of(
        st.integers(0, 2**31).map(m.Int),
        st.floats(0, 1e30, allow_nan=False, allow_infinity=False)
        .filter(lambda v: repr(v)[0] != "-")
        .map(m.Float),
        st.booleans().map(m.Bool),
        st.text(_FIRST + "0123456789<>/. ", max_size=12).map(m.Str),
        names.map(m.Name),
    )


def types(expr: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.Type]:
    return st.recursive(
        type_names.map(m.Named),
        lambda inner: st.one_of(
            st.builds(m.ArrayT, st.lists(expr, min_size=1, max_size=2).map(tuple), inner),
            st.builds(m.ManyPtrT, inner),
            st.builds(m.PtrT, inner),
            st.builds(m.FnT, st.lists(inner, max_size=2).map(tuple), inner),
        ),
        max_leaves=3,
    )


def _compound(t: m.Type) -> bool:
    return not isinstance(t, m.Named)


def extend(inner: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.Expr]:
    small = st.lists(inner, max_size=3).map(tuple)
    return st.one_of(
        st.builds(m.Field, inner, names),
        st.builds(m.Index, inner, st.lists(inner, min_size=1, max_size=2).map(tuple)),
        st.builds(m.Deref, inner),
        st.builds(m.Unary, st.sampled_from(["-", "!", "~", "&"]), inner),
        st.builds(m.Binary, st.sampled_from(BINOPS), inner, inner),
        st.builds(m.Call, inner, small),
        st.builds(m.Builtin, names, small),
        st.builds(m.Struct, st.lists(st.tuples(names, inner), max_size=3).map(tuple)),
        st.builds(m.Tuple, st.lists(inner, min_size=1, max_size=3).map(tuple)),
        st.builds(m.IfExpr, inner, inner, inner),
        st.builds(
            m.TensorAccess,
            st.lists(names, min_size=1, max_size=3).map(tuple),
            st.lists(inner, min_size=1, max_size=3).map(tuple),
            inner,
        ),
        types(leaves()).filter(_compound).map(m.TypeExpr),
        st.builds(
            m.ArrayLit,
            st.builds(
                m.ArrayT,
                st.lists(inner, min_size=1, max_size=2).map(tuple),
                type_names.map(m.Named),
            ),
            st.lists(inner, min_size=1, max_size=3).map(tuple),
        ),
    )


exprs = st.recursive(leaves(), extend, max_leaves=8)
postfix = st.one_of(
    names.map(m.Name),
    st.builds(m.Index, names.map(m.Name), st.lists(exprs, min_size=1, max_size=2).map(tuple)),
    st.builds(m.Field, names.map(m.Name), names),
    st.builds(m.Deref, names.map(m.Name)),
)
calls = st.one_of(
    st.builds(m.Call, postfix, st.lists(exprs, max_size=3).map(tuple)),
    st.builds(m.Builtin, names, st.lists(exprs, max_size=3).map(tuple)),
)
assigns = st.builds(m.Assign, postfix, st.sampled_from(ASSIGN_OPS), exprs)


def statements(depth: int) -> st.SearchStrategy[m.Stmt]:
    simple = st.one_of(
        texts.map(m.Comment),
        st.builds(m.VarDecl, names, st.none() | types(exprs), st.none() | exprs, st.booleans()),
        assigns,
        calls.map(m.ExprStmt),
        st.builds(m.Return, st.none() | exprs),
    )
    if depth == 0:
        return simple
    body = st.lists(statements(depth - 1), max_size=3).map(tuple)
    return st.one_of(
        simple,
        st.builds(m.If, exprs, body, body),
        st.builds(m.For, calls, names, body),
        st.builds(m.While, exprs, st.none() | assigns, body),
    )


bodies = st.lists(statements(2), max_size=3).map(tuple)
params = st.lists(st.tuples(names, types(exprs)), max_size=3).map(tuple)
decls = st.one_of(
    texts.map(m.Comment),
    st.builds(m.Param, names, types(exprs), st.none() | exprs),
    st.builds(m.VarDecl, names, st.none() | types(exprs), st.none() | exprs, st.booleans()),
    st.builds(m.FnDecl, names, params, types(exprs), bodies),
    st.builds(m.TaskDecl, names, params, bodies),
    st.builds(m.Comptime, bodies),
    st.builds(m.Layout, bodies),
)
files = st.builds(m.CslFile, st.just("gen.csl"), st.lists(decls, max_size=5).map(tuple))


@given(files)
def test_parse_of_print_is_identity(f: m.CslFile) -> None:
    text = file_text(f)
    assert parse_file(text, "gen.csl") == f


@given(files)
def test_printing_is_deterministic_and_stable(f: m.CslFile) -> None:
    text = file_text(f)
    assert file_text(parse_file(text, "gen.csl")) == text


def test_syntax_error_is_located() -> None:
    with pytest.raises(KernelcError) as err:
        parse_file("param x: u16;\nvar y = ;\n", "bad.csl")
    assert "bad.csl:2:9" in str(err.value)


def test_negative_literals_print_as_negation() -> None:
    f = m.CslFile("n.csl", (m.VarDecl("x", None, m.lit(-2.5), const=True),))
    assert file_text(f) == "const x = -2.5;\n"
    assert parse_file(file_text(f), "n.csl") == f


# Constructs the SDK's public examples use beyond what the emitter prints (one of each).
EXAMPLE_FORMS = """\
param callback: task () void;
param queues = {};
param table: *const [4]f32;
export var gv: i16;
var buf: [8]f32 align(16) = @zeros([8]f32);
const mode = enum(u16) { send = 0, receive };
const mask: u32 = 0x7F800000;
const id = if (@is_arch("wse2")) @get_data_task_id(c) else if (wse3) @get_data_task_id(q);
const ctrl = [1]u32{ encode(op.ADV, true, {}, 0), };

export fn f(comptime T: type, x: i16,) void {
  // a comment
  const s = .{
    // inside a struct
    .a = 1,
  };
  if (x > 0) g();
  if (@is_arch("wse3")) @unblock(rx_iq) else @unblock(rx_color);
  for (@zeros([4]u8)) |_, i| {
    h(i);
  }
  while (x < 3) : (x += 1) {
    if (x == 2) break;
    continue;
  }
  switch (x) {
    0, 1 => {
      comptime {
        k();
      }
    },
    mode.send => @activate(t),
    else => {},
  }
  print("line\\n");
}
"""


def test_example_forms_parse_and_print_back() -> None:
    f = parse_file(EXAMPLE_FORMS, "forms.csl")
    assert parse_file(file_text(f), "forms.csl") == f
    fn = f.decls[-1]
    assert isinstance(fn, m.FnDecl) and fn.export and fn.comptime_params == ("T",)
    assert f.decls[5].value.type == m.EnumT(m.Named("u16"), (("send", m.Int(0)), ("receive", None)))
    assert f.decls[6].value == m.Int(0x7F800000)


def test_nodes_know_where_they_start_but_compare_without_it() -> None:
    f = parse_file("var x: i16 = 1;\nfn g() void {\n  x = x + 2;\n}\n", "at.csl")
    assign = f.decls[1].body[0]
    assert (assign.at.line, assign.at.col) == (3, 3)
    assert (assign.value.at.line, assign.value.at.col) == (3, 9)  # the operator
    assert assign == m.Assign(m.Name("x"), "=", m.Binary("+", m.Name("x"), m.Int(2)))
