"""Kernel IR -> the body of a C++ codelet, with the language's exact semantics.

Plain C++ a Poplar engineer would write, with small helper functions (emitted once, only when
used) where C++ differs from docs/LANGUAGE.md: integer arithmetic wraps (done on unsigned, since
signed overflow is undefined in C++), C division with x / 0 = 0, saturating float-to-int casts
with NaN -> 0, NaN-ignoring min/max, single-rounding f16 fma (in float only: the IPU has no
double), clamped gathers and dropped out-of-range scatters. f16 arithmetic is written as float
arithmetic rounded to ``half`` after every operation, which is the language's f16 rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from kernelc import ir
from kernelc.affine import Affine, affine, bounds, exact_in_i32
from kernelc.backends.poplar.names import Names
from kernelc.diagnostics import Unsupported
from kernelc.types import DType

CPP_TYPE = {
    DType.F16: "half",
    DType.F32: "float",
    DType.I32: "int",
    DType.U16: "unsigned short",
    DType.U32: "unsigned",
    DType.BOOL: "bool",
}

HELPERS: dict[str, str] = {
    "kc_clamp": """\
// A gather's index clamped into [0, last] (docs/LANGUAGE.md: indirect loads clamp).
static inline int kc_clamp(int i, int last) { return i < 0 ? 0 : i > last ? last : i; }
""",
    "kc_div_i32": """\
// C division truncating toward zero; x / 0 = 0 and INT_MIN / -1 wraps.
static inline int kc_div_i32(int a, int b) {
  if (b == 0) return 0;
  if (b == -1) return int(0u - unsigned(a));
  return a / b;
}
""",
    "kc_rem_i32": """\
static inline int kc_rem_i32(int a, int b) { return (b == 0 || b == -1) ? 0 : a % b; }
""",
    "kc_div_u": """\
static inline unsigned kc_div_u(unsigned a, unsigned b) { return b == 0 ? 0u : a / b; }
""",
    "kc_rem_u": """\
static inline unsigned kc_rem_u(unsigned a, unsigned b) { return b == 0 ? 0u : a % b; }
""",
    "kc_abs_i32": """\
static inline int kc_abs_i32(int a) { return a < 0 ? int(0u - unsigned(a)) : a; }
""",
    "kc_f2i32": """\
// float -> int truncates toward zero and saturates; NaN gives 0.
static inline int kc_f2i32(float x) {
  if (x != x) return 0;
  if (x >= 2147483648.0f) return 2147483647;
  if (x <= -2147483648.0f) return -2147483647 - 1;
  return int(x);
}
""",
    "kc_f2u32": """\
static inline unsigned kc_f2u32(float x) {
  if (x != x || x <= 0.0f) return 0u;
  if (x >= 4294967296.0f) return 4294967295u;
  return unsigned(x);
}
""",
    "kc_f2u16": """\
static inline unsigned short kc_f2u16(float x) {
  if (x != x || x <= 0.0f) return 0;
  if (x >= 65535.0f) return 65535;
  return (unsigned short)(x);
}
""",
    "kc_fmin": """\
// min/max ignore a NaN operand (IEEE minNum/maxNum).
static inline float kc_fmin(float a, float b) { return (a < b || b != b) ? a : b; }
""",
    "kc_fmax": """\
static inline float kc_fmax(float a, float b) { return (a > b || b != b) ? a : b; }
""",
    "kc_umin": """\
// min/max of unsigned values as functions: written inline, a comparison with a constant 0 is
// always false or true, and g++ -Wextra (-Wtype-limits) rejects it under -Werror.
static inline unsigned kc_umin(unsigned a, unsigned b) { return a < b ? a : b; }
""",
    "kc_umax": """\
static inline unsigned kc_umax(unsigned a, unsigned b) { return a > b ? a : b; }
""",
    "kc_nonzero": """\
// an integer as a truth value, through a function: written inline, g++ -Wall rejects a
// conversion of a choice between constants (int-in-bool-context) and a comparison with 0 of
// a bitwise expression with a constant (always true or false) under -Werror.
static inline bool kc_nonzero(unsigned x) { return x != 0u; }
""",
    "kc_fma_half": """\
// f16 a * b + c rounded once: the product of two halves is exact in float; TwoSum gives the
// float sum's exact error, which makes the sum round-to-odd, so rounding it to half is exact.
static inline half kc_fma_half(half a, half b, half c) {
  const float p = float(a) * float(b);
  const float s = p + float(c);
  const float t = s - p;
  const float err = (p - (s - t)) + (float(c) - t);
  unsigned bits;
  std::memcpy(&bits, &s, 4);
  if (err != 0.0f && (bits & 1u) == 0u) bits += ((err > 0.0f) == (s >= 0.0f)) ? 1u : -1u;
  float odd;
  std::memcpy(&odd, &bits, 4);
  return half(odd);
}
""",
    "kc_randbits": """\
// The language's counter-based generator: lowbias32 (C. Wellons) twice.
static inline unsigned kc_mix(unsigned x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
static inline unsigned kc_randbits(unsigned key, unsigned counter) {
  return kc_mix(counter ^ kc_mix(key ^ 0x9e3779b9u));
}
""",
}


def _sum_text(parts: list[tuple[int, str]]) -> str:
    """``coef * value`` terms (an empty value: the constant ``coef``) as C++ text: ``3 - t``,
    parenthesised when there is more than one."""
    text = ""
    for coef, value in parts:
        size = abs(coef)
        term = str(size) if not value else value if size == 1 else f"{size} * {value}"
        if not text:
            text = term if coef > 0 else f"-{term}"
        else:
            text += f" + {term}" if coef > 0 else f" - {term}"
    return f"({text})" if len(parts) > 1 else text


def literal(value: int | float | bool, dtype: DType) -> str:
    """A C++ literal of the exact value in ``dtype``."""
    if dtype == DType.BOOL:
        return "true" if value else "false"
    if dtype.is_float:
        v = float(np.float32(value)) if dtype == DType.F32 else float(np.float16(value))
        if np.isnan(v):
            text = "std::numeric_limits<float>::quiet_NaN()"
        elif np.isinf(v):
            text = ("-" if v < 0 else "") + "std::numeric_limits<float>::infinity()"
        else:
            text = repr(v)
            if "e" not in text and "." not in text:
                text += ".0"
            text += "f"
        return f"half({text})" if dtype == DType.F16 else text
    v = int(value)
    if dtype == DType.I32:
        return "(-2147483647 - 1)" if v == -(2**31) else str(v)
    if dtype == DType.U32:
        return f"{v}u"
    return f"(unsigned short){v}"


@dataclass
class Field:
    """A vertex field: one kernel parameter connected to a tensor region or a graph scalar."""

    name: str  # C++ field name
    param: str
    direction: str  # "Input" or "InOut"
    dtype: DType
    vector: bool
    shape: tuple[int, ...]  # the connected region's view shape (vectors)


@dataclass
class ScalarCodelet:
    """Translates one task's kernel into the statements of a ``compute()`` body."""

    sizes: dict[str, int]
    shapes: dict[str, tuple[int, ...]]  # tensor param -> view shape
    dtypes: dict[str, DType]  # tensor param -> element type
    names: Names
    values: dict[str, str] = field(default_factory=dict)  # IR name -> C++ expression
    helpers: set[str] = field(default_factory=set)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    aliases: dict[str, Affine] = field(default_factory=dict)
    pre: list[str] = field(default_factory=list)

    def value(self, e: ir.Expr) -> str:
        """An expression's C++ text without enclosing parentheses (an assigned value)."""
        return _bare(self.expr(e))

    def helper(self, name: str) -> str:
        self.helpers.add(name)
        return name

    # ------------------------------------------------------------------ statements
    def block(self, body: tuple[ir.Stmt, ...], indent: str) -> list[str]:
        out: list[str] = []
        for s in body:
            out.extend(self.stmt(s, indent))
        return out

    def _with_pre(self, indent: str, make) -> tuple[list[str], object]:
        saved, self.pre = self.pre, []
        result = make()
        pre, self.pre = self.pre, saved
        return [indent + line for p in pre for line in p.splitlines()], result

    def stmt(self, s: ir.Stmt, indent: str) -> list[str]:
        match s:
            case ir.Let() | ir.VarDecl():
                pre, value = self._with_pre(indent, lambda: self.index_or_expr(s.value))
                name = self.names(s.name)
                self.values[s.name] = name
                const = "const " if isinstance(s, ir.Let) else ""
                form = affine(s.value, self.aliases) if isinstance(s, ir.Let) else None
                if form is not None:
                    self.aliases[s.name] = form
                return [*pre, f"{indent}{const}{CPP_TYPE[s.value.dtype]} {name} = {value};"]
            case ir.Assign():
                name = self.values[s.name]
                dtype = s.value.dtype

                def update() -> str:
                    value = self.expr(s.value)
                    return value if s.op == "=" else self.combine(s.op, name, value, dtype)

                pre, value = self._with_pre(indent, update)
                return [*pre, f"{indent}{name} = {value};"]
            case ir.Store():
                return self.store(s, indent)
            case ir.If():
                pre, cond = self._with_pre(indent, lambda: self.expr(s.cond))
                out = [*pre, f"{indent}if ({_bare(cond)}) {{"]
                out += self.block(s.then, indent + "  ")
                if s.orelse:
                    out.append(f"{indent}}} else {{")
                    out += self.block(s.orelse, indent + "  ")
                out.append(f"{indent}}}")
                return out
            case ir.For():
                return self.loop(s, indent)
        raise Unsupported(f"the poplar backend cannot lower {type(s).__name__}", s.span)

    def loop(self, s: ir.For, indent: str) -> list[str]:
        pre, (lo, hi) = self._with_pre(indent, lambda: (self.index(s.lo), self.index(s.hi)))
        var = self.names(s.var)
        self.values[s.var] = var
        out = list(pre)
        if not _fixed(s.hi, self.sizes) and not hi.lstrip("-").isdigit():
            bound = self.names.fresh("end")
            out.append(f"{indent}const int {bound} = {hi};")
            hi = bound
        lo_range = self._range(s.lo)
        hi_range = self._range(s.hi)
        if lo_range is not None and hi_range is not None:
            self.ranges[s.var] = (lo_range[0], hi_range[1] - 1)
        out.append(f"{indent}for (int {var} = {_bare(lo)}; {var} < {_bare(hi)}; ++{var}) {{")
        out += self.block(s.body, indent + "  ")
        out.append(f"{indent}}}")
        self.ranges.pop(s.var, None)
        return out

    def _range(self, e: ir.Expr) -> tuple[int, int] | None:
        """The closed range of an i32 expression, where it is affine in names of known range
        and no partial sum of its terms leaves i32 (so the wrapping value is the exact one)."""
        form = affine(e, self.aliases)
        if form is None:
            return None
        ranges = {**{n: (v, v) for n, v in self.sizes.items()}, **self.ranges}
        found = bounds(form, ranges)
        if found is None:
            return None
        return found[0] if exact_in_i32(form, ranges) else None

    def _proven(self, index: ir.Expr, extent: int) -> bool:
        found = self._range(index)
        return found is not None and found[0] >= 0 and found[1] < extent

    def element(self, tensor: str, idx: list[str]) -> str:
        """The C++ lvalue of one element of a tensor parameter, at in-range indices."""
        return f"{self.values[tensor]}[{_flat(idx, self.shapes[tensor])}]"

    def store(self, s: ir.Store, indent: str) -> list[str]:
        shape = self.shapes[s.tensor]
        dtype = s.value.dtype

        def parts() -> tuple[list[str], list[str], str]:
            idx, guards = [], []
            for index, extent in zip(s.indices, shape, strict=True):
                text = self.index(index)
                if not self._proven(index, extent):
                    # one unsigned compare checks 0 <= index < extent, and the flat index
                    # of a store that is dropped cannot overflow (g++ folds it in the dead
                    # branch where the index is a constant, and rejects int overflow)
                    name = self.names.fresh("i")
                    self.pre.append(f"const unsigned {name} = unsigned({_bare(text)});")
                    guards.append(f"{name} < {extent}u")
                    text = name
                idx.append(text)
            return idx, guards, self.expr(s.value)

        pre, (idx, guards, value) = self._with_pre(indent, parts)
        at = self.element(s.tensor, idx)
        if s.op != "=":
            value = self.combine(s.op, at, value, dtype)
        line = f"{at} = {_bare(value)};"
        if guards:
            return [
                *pre,
                f"{indent}if ({' && '.join(guards)}) {{",
                f"{indent}  {line}",
                f"{indent}}}",
            ]
        return [*pre, indent + line]

    # ----------------------------------------------------------------- expressions
    def affine_text(self, e: ir.Expr) -> str | None:
        """Plain int arithmetic for an affine expression whose range is known: ``i - 1``
        rather than the wrapping form, a constant where it is one (every partial sum of the
        terms is held inside int, so none overflows). The text names the locals the
        expression names, as they are: ``ir.without_unused_locals`` kept a ``let`` because
        this expression reads it, and g++ rejects a local that nothing reads."""
        found = self._range(e)
        if found is None or max(abs(found[0]), abs(found[1])) >= 2**30:
            return None
        read = {n.name: n for n in ir.walk(e) if isinstance(n, ir.Name)}
        if found[0] == found[1] and set(read) <= {*self.sizes, *self.ranges}:
            return str(found[0])
        form = affine(e)
        if form is None or form.names != set(read):
            return None
        known = {
            n: self._range(node) if node.dtype == DType.I32 else None for n, node in read.items()
        }
        if None in known.values() or not exact_in_i32(form, known):
            return None
        parts = [
            (coef, self.values.get(name) or literal(self.sizes[name], DType.I32))
            for name, coef in form.terms
        ]
        if form.const:
            parts.append((form.const, ""))
        return _sum_text(sorted(parts, key=lambda part: part[0] < 0))

    def index_or_expr(self, e: ir.Expr) -> str:
        """An i32 value in plain arithmetic where its range allows, else the wrapping form."""
        return self.index(e) if e.dtype == DType.I32 else self.expr(e)

    def index(self, e: ir.Expr) -> str:
        plain = self.affine_text(e) if e.dtype == DType.I32 else None
        if plain is not None:
            return plain
        text = self.expr(e)
        return text if e.dtype == DType.I32 else f"int({_bare(text)})"

    def expr(self, e: ir.Expr) -> str:
        match e:
            case ir.Const(value=v):
                return literal(v, e.dtype)
            case ir.Name(name=n):
                if n in self.values:
                    return self.values[n]
                if n in self.sizes:
                    return literal(self.sizes[n], DType.I32)
                raise Unsupported(f"the poplar backend has no value for '{n}'", e.span)
            case ir.Load(tensor=t, indices=idx):
                return self.load(t, idx)
            case ir.Unary(op=op, operand=a):
                return self.unary(op, self.expr(a), a.dtype)
            case ir.Binary(op=op, lhs=a, rhs=b):
                return self.binary(op, self.expr(a), self.expr(b), a.dtype)
            case ir.Select(cond=c, if_true=a, if_false=b):
                return f"({self.expr(c)} ? {self.expr(a)} : {self.expr(b)})"
            case ir.Cast(to=to, operand=a):
                return self.cast(self.expr(a), a.dtype, to)
            case ir.Intrinsic(fn=fn, args=args):
                return self.intrinsic(fn, [self.expr(a) for a in args], e.dtype)
            case ir.Reduce():
                return self.reduce(e)
            case ir.Search():
                return self.search(e)
            case ir.Rand(key=k, counter=c, bits=bits):
                drawn = f"{self.helper('kc_randbits')}({self.expr(k)}, {self.expr(c)})"
                return drawn if bits else f"(float({drawn} >> 8) * 5.9604644775390625e-08f)"
        raise Unsupported(f"the poplar backend cannot lower {type(e).__name__}", e.span)

    def load(self, tensor: str, indices: tuple[ir.Expr, ...]) -> str:
        shape = self.shapes[tensor]
        dtype = self.dtypes[tensor]
        if 0 in shape:
            return literal(0, dtype)
        idx = []
        for index, extent in zip(indices, shape, strict=True):
            text = self.index(index)
            if not self._proven(index, extent):
                text = f"{self.helper('kc_clamp')}({_bare(text)}, {extent - 1})"
            idx.append(text)
        return self.element(tensor, idx)

    def unary(self, op: str, a: str, t: DType) -> str:
        if op == "!" or (op == "~" and t == DType.BOOL):
            return f"(!{a})"
        if op == "~":
            return f"(unsigned short)(~unsigned({_bare(a)}))" if t == DType.U16 else f"(~{a})"
        return {
            DType.F32: f"(-{a})",
            DType.F16: f"half(-float({_bare(a)}))",
            DType.I32: f"int(0u - unsigned({_bare(a)}))",
            DType.U32: f"(0u - {a})",
            DType.U16: f"(unsigned short)(0u - {a})",
        }[t]

    def binary(self, op: str, a: str, b: str, t: DType) -> str:
        if op in ("==", "!=", "<", "<=", ">", ">=") and a == b:
            # an expression compared with itself (pure): g++'s -Werror=tautological-compare
            # rejects the comparison, so its value is written instead (NaN keeps floats' ==)
            if not t.is_float:
                return "true" if op in ("==", "<=", ">=") else "false"
            if op in ("<", ">"):
                return "false"
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if t == DType.F16:
                return f"(float({_bare(a)}) {op} float({_bare(b)}))"
            return f"({a} {op} {b})"
        if op in ("&&", "||"):
            return f"({a} {op} {b})"
        if op in ("&", "|", "^"):
            if t == DType.BOOL:
                return f"bool({a} {op} {b})"
            if t == DType.U16:
                return f"(unsigned short)({a} {op} {b})"
            return f"({a} {op} {b})"
        if op in ("<<", ">>"):
            bits = 15 if t == DType.U16 else 31
            amount = f"(unsigned({_bare(b)}) & {bits}u)"
            if t == DType.I32:
                if op == "<<":
                    return f"int(unsigned({_bare(a)}) << {amount})"
                return f"({a} >> {amount})"
            if t == DType.U16:
                return f"(unsigned short)(unsigned({_bare(a)}) {op} {amount})"
            return f"({a} {op} {amount})"
        if t.is_float:
            x, y = (a, b) if t == DType.F32 else (f"float({_bare(a)})", f"float({_bare(b)})")
            value = f"std::fmod({_bare(x)}, {_bare(y)})" if op == "%" else f"({x} {op} {y})"
            return value if t == DType.F32 else f"half({_bare(value)})"
        if op in ("/", "%"):
            if t == DType.I32:
                fn = self.helper("kc_div_i32" if op == "/" else "kc_rem_i32")
                return f"{fn}({_bare(a)}, {_bare(b)})"
            fn = self.helper("kc_div_u" if op == "/" else "kc_rem_u")
            value = f"{fn}({_bare(a)}, {_bare(b)})"
            return f"(unsigned short){value}" if t == DType.U16 else value
        if t == DType.I32:
            return f"int(unsigned({_bare(a)}) {op} unsigned({_bare(b)}))"
        if t == DType.U16:
            return f"(unsigned short)(unsigned({_bare(a)}) {op} unsigned({_bare(b)}))"
        return f"({a} {op} {b})"

    def combine(self, op: str, old: str, value: str, t: DType) -> str:
        """``old op= value``."""
        if op in ("max=", "min="):
            return self.intrinsic(op[:3], [old, value], t)
        return self.binary(op[:-1], old, value, t)

    def cast(self, a: str, source: DType, to: DType) -> str:
        if source == to:
            return a
        if to == DType.BOOL:
            if source == DType.F16:
                return f"(float({_bare(a)}) != 0.0f)"
            if source == DType.F32:
                return f"({a} != 0.0f)"
            return f"{self.helper('kc_nonzero')}({_bare(a)})"
        if source.is_float and to.is_int:
            fn = {DType.I32: "kc_f2i32", DType.U32: "kc_f2u32", DType.U16: "kc_f2u16"}[to]
            x = a if source == DType.F32 else f"float({_bare(a)})"
            return f"{self.helper(fn)}({_bare(x)})"
        if to == DType.F16:
            x = a if source == DType.F32 else f"float({_bare(a)})"
            return f"half({_bare(x)})"
        return f"{CPP_TYPE[to]}({_bare(a)})" if to != DType.U16 else f"(unsigned short)({a})"

    def intrinsic(self, fn: str, args: list[str], t: DType) -> str:
        half = t == DType.F16
        wide = [f"float({_bare(a)})" for a in args] if half else args

        def rounded(x: str) -> str:
            return f"half({_bare(x)})" if half else x

        if fn in ("min", "max"):
            if t.is_float:
                return rounded(f"{self.helper('kc_f' + fn)}({wide[0]}, {wide[1]})")
            if args[0] == args[1]:  # min(x, x) is x (and g++ rejects the self-comparison)
                return args[0]
            if t in (DType.U32, DType.U16):
                value = f"{self.helper('kc_u' + fn)}({_bare(args[0])}, {_bare(args[1])})"
                return f"(unsigned short){value}" if t == DType.U16 else value
            op = "<" if fn == "min" else ">"
            return f"({args[0]} {op} {args[1]} ? {args[0]} : {args[1]})"
        if fn == "abs":
            if t.is_float:
                return rounded(f"std::fabs({_bare(wide[0])})")
            if t == DType.I32:
                return f"{self.helper('kc_abs_i32')}({_bare(args[0])})"
            return args[0]
        if fn == "fma":
            if half:
                return f"{self.helper('kc_fma_half')}({', '.join(_bare(a) for a in args)})"
            return f"std::fma({', '.join(_bare(a) for a in args)})"
        name = {"sqrt": "std::sqrt", "exp": "std::exp", "log": "std::log", "floor": "std::floor"}
        return rounded(f"{name[fn]}({_bare(wide[0])})")

    def reduce(self, e: ir.Reduce) -> str:
        lo, hi = self.expr(e.lo), self.expr(e.hi)
        acc = self.names.fresh("sum")
        var = self.names(e.var)
        self.values[e.var] = var
        self.pre.append(f"{CPP_TYPE[e.dtype]} {acc} = {literal(0, e.dtype)};")
        lo_range, hi_range = self._range(e.lo), self._range(e.hi)
        if lo_range is not None and hi_range is not None:
            self.ranges[e.var] = (lo_range[0], hi_range[1] - 1)
        body_pre, body = self._with_pre("  ", lambda: self.expr(e.body))
        step = self.binary("+", acc, body, e.dtype)
        loop = [f"for (int {var} = {_bare(lo)}; {var} < {_bare(hi)}; ++{var}) {{", *body_pre]
        loop += [f"  {acc} = {_bare(step)};", "}"]
        self.pre.append("\n".join(loop))
        self.ranges.pop(e.var, None)
        return acc

    def search(self, e: ir.Search) -> str:
        shape = self.shapes[e.tensor]
        axis = next(d for d, i in enumerate(e.indices) if isinstance(i, ir.Slice))
        extent = shape[axis]
        piece = e.indices[axis]
        start = self.names.fresh("start")
        stop = self.names.fresh("stop")
        lo, hi, mid = self.names.fresh("lo"), self.names.fresh("hi"), self.names.fresh("mid")
        result = self.names.fresh("found")
        first = self.index(piece.lo) if piece.lo is not None else "0"
        last = self.index(piece.hi) if piece.hi is not None else str(extent)
        fixed = [None if d == axis else self.index(i) for d, i in enumerate(e.indices)]
        value = self.expr(e.value)
        clamp = self.helper("kc_clamp")
        probe = [
            f"{clamp}({start} + {mid}, {max(extent - 1, 0)})"
            if f is None
            else f"{clamp}({_bare(f)}, {n - 1})"
            for f, n in zip(fixed, shape, strict=True)
        ]
        dtype = self.dtypes[e.tensor]
        element = (
            literal(0, dtype) if 0 in shape else f"{self.values[e.tensor]}[{_flat(probe, shape)}]"
        )
        below = self.binary("<=", element, value, dtype)
        self.pre.append(
            "\n".join(
                [
                    f"const int {start} = {clamp}({_bare(first)}, {extent});",
                    f"const int {stop} = {clamp}({_bare(last)}, {extent}) < {start} ? {start} "
                    f": {clamp}({_bare(last)}, {extent});",
                    f"int {lo} = 0;",
                    f"int {hi} = {stop} - {start};",
                    f"while ({lo} < {hi}) {{",
                    f"  const int {mid} = {lo} + ({hi} - {lo}) / 2;",
                    f"  if {below} {{",
                    f"    {lo} = {mid} + 1;",
                    "  } else {",
                    f"    {hi} = {mid};",
                    "  }",
                    "}",
                    f"const int {result} = {clamp}({lo} - 1, {stop} - {start} - 2 > 0 ? "
                    f"{stop} - {start} - 2 : 0);",
                ]
            )
        )
        return result


def _fixed(e: ir.Expr, sizes: dict[str, int]) -> bool:
    """Whether an expression is a constant or a size (no need to hoist it out of a loop)."""
    return isinstance(e, ir.Const) or (isinstance(e, ir.Name) and e.name in sizes)


def _bare(text: str) -> str:
    """``text`` without one pair of enclosing parentheses, where they enclose all of it."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1]


def _flat(indices: list[str], shape: tuple[int, ...]) -> str:
    """The row-major flat index of a view of ``shape``."""
    terms = []
    pitch = 1
    for index, extent in zip(reversed(indices), reversed(shape), strict=True):
        simple = re.fullmatch(r"[A-Za-z_0-9]+", index) is not None
        scaled = f"{index} * {pitch}" if simple else f"({_bare(index)}) * {pitch}"
        terms.append(_bare(index) if pitch == 1 else scaled)
        pitch *= extent
    text = " + ".join(reversed(terms))
    return text or "0"
