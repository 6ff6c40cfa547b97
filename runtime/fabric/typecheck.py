"""Static types of a CSL program, checked the way cslc checks them before anything runs.

The simulator executes untyped values, so without this pass ``i16`` and ``u16`` mix silently and
``&b[i]`` equals ``&b_buf``. Rules (CSL documentation, Zig semantics): integers and floats keep
their width and signedness, comptime-known values coerce when they fit, runtime values of another
type need ``@as``/``@bitcast``; ``*[N]T`` coerces to ``[*]T`` but ``*T`` does not; colors, task
IDs, queues and DSD kinds are distinct types; if-expression branches and binary operands must have
one type; call arguments coerce to parameter types; DSD extents are comptime-known. What the pass
does not know (a library symbol outside ``LIBRARIES``, a comptime value it cannot fold) is
``ANY`` and checks nothing, so a rejection always names a real mismatch.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.diagnostics import UNKNOWN_SPAN, KernelcError, Span
from kernelc.runtime.fabric.parser import parse_file

# ------------------------------------------------------------------------------------ types


@dataclass(frozen=True)
class T:
    """A CSL type by its spelling; compound types carry their parts."""

    name: str
    elem: T | None = None
    dims: tuple[int | None, ...] = ()
    params: tuple[T, ...] = ()
    fields: tuple[tuple[str, T], ...] | None = None

    def __str__(self) -> str:
        return self.name


def _t(name: str) -> T:
    return T(name)


ANY = _t("anytype")
VOID = _t("void")
BOOL = _t("bool")
CINT = _t("comptime_int")
CFLOAT = _t("comptime_float")
CSTRING = _t("comptime_string")
CSTRUCT = _t("comptime_struct")
TYPE = _t("type")
MODULE = _t("imported_module")
INTS = {f"{s}{b}": (s == "i", b) for s in "iu" for b in (8, 16, 32, 64)}
FLOATS = {"f16", "f32", "bf16"}
OPAQUE = {
    "color",
    "local_task_id",
    "data_task_id",
    "control_task_id",
    "input_queue",
    "output_queue",
    "ut_id",
    "direction",
    "mem1d_dsd",
    "mem4d_dsd",
    "fabin_dsd",
    "fabout_dsd",
    "circbuf_dsd",
    "dsr_dest",
    "dsr_src0",
    "dsr_src1",
}
TASK_IDS = ("local_task_id", "data_task_id", "control_task_id")
DSDS = ("mem1d_dsd", "mem4d_dsd", "fabin_dsd", "fabout_dsd", "circbuf_dsd")


def ptr(elem: T, many: bool = False) -> T:
    return T(f"[*]{elem}" if many else f"*{elem}", elem, params=(_t("many" if many else "one"),))


def array(dims: tuple[int | None, ...], elem: T) -> T:
    text = ", ".join("?" if d is None else str(d) for d in dims)
    return T(f"[{text}]{elem}", elem, dims)


def fn(params: tuple[T, ...], ret: T) -> T:
    return T(f"fn({', '.join(map(str, params))}) {ret}", ret, params=params)


def is_int(t: T) -> bool:
    return t.name in INTS or t == CINT


def is_float(t: T) -> bool:
    return t.name in FLOATS or t == CFLOAT


def is_ptr(t: T) -> bool:
    return t.name.startswith(("*", "[*]"))


def is_array(t: T) -> bool:
    return t.name.startswith("[") and not t.name.startswith("[*]")


def is_fn(t: T) -> bool:
    return t.name.startswith("fn(")


# What the library modules the examples import export, as far as types are checked. Members not
# listed are ANY. u16 is the type of PE indices and counts throughout the SDK libraries.
U16, I16, U32, F32 = _t("u16"), _t("i16"), _t("u32"), _t("f32")
LOCAL = _t("local_task_id")
LIBRARIES: dict[str, dict[str, T]] = {
    "<memcpy/memcpy>": {
        "unblock_cmd_stream": fn((), VOID),
        "MEMCPYH2D_1": _t("color"),
        "MEMCPYH2D_2": _t("color"),
        "MEMCPYD2H_1": _t("color"),
    },
    "<memcpy/get_params>": {"get_params": fn((U16,), CSTRUCT)},
    "<layout>": {"get_x_coord": fn((), U16), "get_y_coord": fn((), U16)},
    "<collectives_2d/params>": {"get_params": fn((U16, U16, CSTRUCT), CSTRUCT)},
    "<collectives_2d/pe>": {
        "init": fn((), VOID),
        "pe_id": U16,
        "broadcast": fn((U16, ptr(U32, True), U16, LOCAL), VOID),
        "scatter": fn((U16, ptr(U32, True), ptr(U32, True), U16, LOCAL), VOID),
        "gather": fn((U16, ptr(U32, True), ptr(U32, True), U16, LOCAL), VOID),
        "reduce_fadds": fn((U16, ptr(F32, True), ptr(F32, True), U16, LOCAL), VOID),
    },
    "<math>": {name: fn((F32,), F32) for name in ("sqrt_f32", "exp_f32", "log_f32")},
    "<time>": {"enable_tsc": fn((), VOID), "disable_tsc": fn((), VOID)},
}

# ------------------------------------------------------------------------------------ values


@dataclass(frozen=True)
class TV:
    """A checked expression: its type, whether it is comptime-known, and its value if folded."""

    type: T
    comptime: bool = False
    value: object = None


UNKNOWN = TV(ANY, True)


class CslTypeError(KernelcError):
    """A program cslc would reject for its types."""


def _fail(message: str, at: Span | None) -> CslTypeError:
    return CslTypeError(message, at or UNKNOWN_SPAN)


# ----------------------------------------------------------------------------- coercions


def _fits(value: object, t: T) -> bool:
    if not isinstance(value, int) or t.name not in INTS:
        return True
    signed, bits = INTS[t.name]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return lo <= value <= hi


def coerces(v: TV, to: T) -> bool:
    """Whether a value of ``v`` may stand where ``to`` is expected without a cast."""
    src = v.type
    if ANY in (src, to) or src == to:
        return True
    if to.name in INTS:
        if src == CINT or (v.comptime and src.name in INTS):
            return _fits(v.value, to)
        return False
    if to.name in FLOATS:
        return src in (CINT, CFLOAT)
    if to in (CINT, CFLOAT):
        return v.comptime and (is_int(src) or (to == CFLOAT and is_float(src)))
    if to == CSTRUCT:
        return src.fields is not None or src == CSTRUCT
    if is_ptr(to) and is_ptr(src):
        return _ptr_coerces(src, to)
    if is_array(to) and is_array(src):
        return _dims_match(src.dims, to.dims) and src.elem is not None and src.elem == to.elem
    if to.name == "task () void":
        return src.name.startswith("task") or src.name in TASK_IDS
    if is_fn(to) and is_fn(src):
        return src.params == to.params and src.elem == to.elem
    return False


def _dims_match(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> bool:
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b, strict=True)
    )


def _ptr_coerces(src: T, to: T) -> bool:
    """``*[N]T`` -> ``[*]T`` and ``*[N]T``; ``[*]T`` -> ``[*]T``; ``*T`` only to ``*T``."""
    s_many, t_many = src.params[0].name == "many", to.params[0].name == "many"
    se, te = src.elem, to.elem
    if se is None or te is None or ANY in (se, te):
        return True
    if t_many:
        if s_many:
            return se == te
        return is_array(se) and se.elem == te
    if s_many:
        return False
    if is_array(se) and is_array(te):
        return _dims_match(se.dims, te.dims) and se.elem == te.elem
    return se == te


def peer(a: TV, b: TV, at: Span | None) -> T:
    """The one type two operands or two if-branches share, or a located error naming both.

    A comptime literal takes the other side's type; a comptime-known value of a concrete type
    coerces when it fits; two runtime values of different types do not mix."""
    if a.type == b.type or ANY in (a.type, b.type):
        return a.type if b.type == ANY else b.type
    for x, y in ((a, b), (b, a)):
        if x.type in (CINT, CFLOAT) and coerces(x, y.type):
            return y.type
    for x, y in ((a, b), (b, a)):
        if coerces(x, y.type) and (x.comptime or is_ptr(x.type)):
            return y.type
    raise _fail(f"incompatible types: '{a.type}' and '{b.type}'", at)


# -------------------------------------------------------------------------------- scopes


@dataclass
class Sym:
    """A name in scope: its type, whether it is comptime-known, its value, and constness."""

    tv: TV
    const: bool = True


@dataclass
class Module:
    """One checked file: its top-level names (resolved lazily, so order does not matter)."""

    file: m.CslFile
    params: dict[str, TV]
    params_at: dict[str, Span | None] = field(default_factory=dict)
    decls: dict[str, m.Decl] = field(default_factory=dict)
    runtime: set[str] = field(default_factory=set)
    resolved: dict[str, Sym] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)


class Checker:
    """Type-checks one program: its layout, every tile file and every module they import."""

    def __init__(self, root: Path, arch: str, read=None) -> None:
        self.root = root
        self.arch = arch
        self.read = read or (lambda name: parse_file((root / name).read_text(), name))
        self.checked: set[tuple[str, tuple]] = set()

    # ------------------------------------------------------------------------- files
    def check_file(
        self, f: m.CslFile, params: dict[str, TV], params_at: dict[str, Span | None] | None = None
    ) -> Module:
        """Check a file with the params it is given (``params_at``: where each was given)."""
        key = (f.name, tuple(sorted((k, str(v.type), repr(v.value)) for k, v in params.items())))
        mod = Module(f, params, params_at or {})
        for d in f.decls:
            if isinstance(d, m.Param | m.VarDecl | m.FnDecl | m.TaskDecl):
                mod.decls[d.name] = d
        mod.runtime = _runtime_fns(f)
        if key in self.checked:
            return mod
        self.checked.add(key)
        for d in f.decls:
            self.check_decl(mod, d)
        return mod

    def check_decl(self, mod: Module, d: m.Decl) -> None:
        match d:
            case m.Param() | m.VarDecl():
                self.global_sym(mod, d.name)
            case m.FnDecl(name=name, params=params, ret=ret, body=body):
                # cslc analyses a function run only at compile time when it evaluates a call,
                # with the call's values (and only the branches taken); this pass does not
                # evaluate calls, so it checks such functions at their call sites only.
                if name not in mod.runtime:
                    return
                scope = {
                    n: Sym(TV(self.type_of(mod, t, {}), n in d.comptime_params)) for n, t in params
                }
                self.block(mod, body, [scope], self.type_of(mod, ret, {}), comptime=False)
            case m.TaskDecl(params=params, body=body):
                scope = {n: Sym(TV(self.type_of(mod, t, {}))) for n, t in params}
                self.block(mod, body, [scope], VOID, comptime=False)
            case m.Comptime(body=body) | m.Layout(body=body):
                self.block(mod, body, [{}], VOID, comptime=True)

    def global_sym(self, mod: Module, name: str) -> Sym | None:
        if name in mod.resolved:
            return mod.resolved[name]
        d = mod.decls.get(name)
        if d is None or name in mod.busy:
            return None
        mod.busy.add(name)
        try:
            sym = self._global(mod, d)
        finally:
            mod.busy.discard(name)
        mod.resolved[name] = sym
        return sym

    def _global(self, mod: Module, d: m.Decl) -> Sym:
        match d:
            case m.Param(name=n, type=t, default=default):
                declared = None if t is None else self.type_of(mod, t, {})
                given = mod.params.get(n)
                if given is None and default is not None:
                    given = self.expr(mod, default, [{}], True)
                if given is not None and declared is not None:
                    where = mod.params_at.get(n) or (default.at if default else None) or d.at
                    self.expect(given, declared, where)
                    return Sym(TV(declared, True, given.value))
                return Sym(
                    TV(declared or (given.type if given else ANY), True, given and given.value)
                )
            case m.VarDecl(type=t, value=v, const=const):
                declared = None if t is None else self.type_of(mod, t, {})
                tv = None if v is None else self.expr(mod, v, [{}], True)
                if tv is not None and declared is not None:
                    self.expect(tv, declared, v.at)
                typ = declared or (tv.type if tv else ANY)
                if const:
                    return Sym(TV(typ, tv is None or tv.comptime, tv and tv.value))
                return Sym(TV(typ), const=False)
            case m.FnDecl(params=params, ret=ret):
                types = tuple(self.type_of(mod, t, {}) for _n, t in params)
                return Sym(TV(fn(types, self.type_of(mod, ret, {})), True, d))
            case m.TaskDecl():
                return Sym(TV(_t("task () void"), True, d))
        return Sym(UNKNOWN)

    # ------------------------------------------------------------------------ types
    def type_of(self, mod: Module, t: m.Type, scopes) -> T:
        match t:
            case m.Named(name=n):
                if n in INTS or n in FLOATS or n in OPAQUE:
                    return _t(n)
                known = {
                    "bool": BOOL,
                    "void": VOID,
                    "comptime_int": CINT,
                    "comptime_float": CFLOAT,
                    "comptime_string": CSTRING,
                    "comptime_struct": CSTRUCT,
                    "type": TYPE,
                    "imported_module": MODULE,
                }
                if n in known:
                    return known[n]
                tv = self.lookup(mod, n, scopes or [{}], t.at)
                return tv.value if isinstance(tv.value, T) else ANY
            case m.ArrayT(dims=dims, elem=elem):
                sizes = tuple(self._size(mod, d, scopes) for d in dims)
                return array(sizes, self.type_of(mod, elem, scopes))
            case m.ManyPtrT(elem=elem):
                return ptr(self.type_of(mod, elem, scopes), many=True)
            case m.PtrT(elem=elem):
                return ptr(self.type_of(mod, elem, scopes))
            case m.FnT(params=params, ret=ret):
                return fn(
                    tuple(self.type_of(mod, p, scopes) for p in params),
                    self.type_of(mod, ret, scopes),
                )
            case m.TaskT():
                return _t("task () void")
            case m.EnumT():
                return T(f"enum@{t.at}", fields=tuple((n, CINT) for n, _v in t.members))
        return ANY

    def _size(self, mod: Module, d: m.Expr, scopes) -> int | None:
        tv = self.expr(mod, d, scopes or [{}], True)
        return tv.value if isinstance(tv.value, int) else None

    # ------------------------------------------------------------------- statements
    def block(self, mod: Module, body, scopes, ret: T, comptime: bool) -> None:
        scopes = [*scopes, {}]
        for s in body:
            self.stmt(mod, s, scopes, ret, comptime)

    def stmt(self, mod: Module, s: m.Stmt, scopes, ret: T, comptime: bool) -> None:
        match s:
            case m.VarDecl(name=n, type=t, value=v, const=const):
                declared = None if t is None else self.type_of(mod, t, scopes)
                tv = None if v is None else self.expr(mod, v, scopes, comptime)
                if tv is not None and declared is not None:
                    self.expect(tv, declared, v.at)
                typ = declared or (tv.type if tv else ANY)
                if not const and not comptime and typ in (CINT, CFLOAT):
                    raise _fail(f"variable of type '{typ}' must be const or comptime", s.at)
                known = comptime or (const and tv is not None and tv.comptime)
                scopes[-1][n] = Sym(TV(typ, known, tv.value if tv and known else None), const)
            case m.Assign(target=target, op=op, value=v):
                lhs = self.expr(mod, target, scopes, comptime)
                rhs = self.expr(mod, v, scopes, comptime)
                if isinstance(target, m.Name):
                    sym = self.symbol(mod, target.id, scopes)
                    if sym is not None and sym.const and not comptime:
                        raise _fail(f"cannot assign to constant '{target.id}'", target.at)
                if op == "=":
                    self.expect(rhs, lhs.type, v.at)
                elif op in ("<<=", ">>="):
                    self._int_operand(rhs, v.at)
                else:
                    self.expect(rhs, peer(TV(lhs.type), rhs, s.at), v.at)
            case m.ExprStmt(expr=e):
                self.expr(mod, e, scopes, comptime)
            case m.If(cond=c, then=then, orelse=orelse):
                cond = self.expr(mod, c, scopes, comptime)
                self.expect(cond, BOOL, c.at)
                if cond.comptime and isinstance(cond.value, bool):  # the other branch is dead
                    self.block(mod, then if cond.value else orelse, scopes, ret, comptime)
                    return
                self.block(mod, then, scopes, ret, comptime)
                self.block(mod, orelse, scopes, ret, comptime)
            case m.For(iter=it, var=var, body=body, index=index):
                tv = self.expr(mod, it, scopes, comptime)
                elem = tv.type.elem if tv.type.elem is not None else ANY
                inner = {var: Sym(TV(elem, comptime))}
                if index is not None:
                    inner[index] = Sym(TV(U16, comptime))
                self.block(mod, body, [*scopes, inner], ret, comptime)
            case m.While(cond=c, step=step, body=body):
                self.expect(self.expr(mod, c, scopes, comptime), BOOL, c.at)
                if step is not None:
                    self.stmt(mod, step, scopes, ret, comptime)
                self.block(mod, body, scopes, ret, comptime)
            case m.Return(value=v):
                if v is not None:
                    self.expect(self.expr(mod, v, scopes, comptime), ret, v.at)
            case m.Switch(subject=subject, cases=cases):
                tv = self.expr(mod, subject, scopes, comptime)
                for case in cases:
                    for value in case.values:
                        self.expect(self.expr(mod, value, scopes, comptime), tv.type, value.at)
                    self.block(mod, case.body, scopes, ret, comptime)
            case m.Comptime(body=body):
                self.block(mod, body, scopes, ret, True)

    def expect(self, v: TV, to: T, at: Span | None) -> None:
        if not coerces(v, to):
            raise _fail(f"expected type '{to}', found '{v.type}'", at)

    def _int_operand(self, v: TV, at: Span | None) -> None:
        if not (is_int(v.type) or v.type == ANY):
            raise _fail(f"expected an integer, found '{v.type}'", at)

    # ------------------------------------------------------------------------ names
    def symbol(self, mod: Module, name: str, scopes) -> Sym | None:
        for scope in reversed(scopes):
            if name in scope:
                return scope[name]
        return self.global_sym(mod, name)

    def lookup(self, mod: Module, name: str, scopes, at: Span | None) -> TV:
        sym = self.symbol(mod, name, scopes)
        if sym is not None:
            return sym.tv
        if name in INTS or name in FLOATS or name in OPAQUE or name in ("bool", "void"):
            return TV(TYPE, True, _t(name))
        if name in ("comptime_int", "comptime_float", "comptime_struct", "comptime_string"):
            return TV(TYPE, True, _t(name))
        if name in ("RAMP", "NORTH", "SOUTH", "EAST", "WEST"):
            return TV(_t("direction"), True, name)
        if name in mod.busy:
            return UNKNOWN
        raise _fail(f"use of undeclared identifier '{name}'", at)

    # ------------------------------------------------------------------ expressions
    def expr(self, mod: Module, e: m.Expr, scopes, comptime: bool) -> TV:
        """Check an expression; ``comptime`` says the context is evaluated by the compiler."""
        ex = lambda x: self.expr(mod, x, scopes, comptime)  # noqa: E731
        match e:
            case m.Int(value=v):
                return TV(CINT, True, v)
            case m.Float(value=v):
                return TV(CFLOAT, True, v)
            case m.Bool(value=v):
                return TV(BOOL, True, v)
            case m.Str(value=v):
                return TV(CSTRING, True, v)
            case m.Void():
                return TV(VOID, True)
            case m.Name(id=n):
                return self.lookup(mod, n, scopes, e.at)
            case m.TypeExpr(type=t):
                return TV(TYPE, True, self.type_of(mod, t, scopes))
            case m.Unary(op="&", operand=a):
                tv = ex(a)
                return TV(
                    ANY if tv.type == ANY else ptr(tv.type), tv.comptime and isinstance(a, m.Name)
                )
            case m.Unary(op="!", operand=a):
                tv = ex(a)
                self.expect(tv, BOOL, a.at)
                return TV(BOOL, tv.comptime, None if tv.value is None else not tv.value)
            case m.Unary(op=op, operand=a):
                tv = ex(a)
                value = None
                if isinstance(tv.value, int | float) and not isinstance(tv.value, bool):
                    value = -tv.value if op == "-" else ~tv.value if op == "~" else None
                return TV(tv.type, tv.comptime, value)
            case m.Binary(op=op, lhs=a, rhs=b):
                return self.binary(op, ex(a), ex(b), e.at)
            case m.IfExpr(cond=c, then=a, orelse=b):
                cond = ex(c)
                self.expect(cond, BOOL, c.at)
                if cond.comptime and isinstance(cond.value, bool):
                    chosen = a if cond.value else b
                    return TV(VOID, True) if chosen is None else ex(chosen)
                if b is None:
                    return ex(a)
                left, right = ex(a), ex(b)
                typ = peer(left, right, e.at)
                return TV(typ, left.comptime and right.comptime)
            case m.Index(obj=obj, indices=idx):
                tv = ex(obj)
                for i in idx:
                    self._int_operand(ex(i), i.at)
                t = tv.type
                if is_ptr(t) and t.elem is not None and is_array(t.elem):
                    t = t.elem
                if t == ANY or t.elem is None:
                    return TV(ANY, tv.comptime)
                return TV(t.elem, tv.comptime)
            case m.Deref(ptr=p):
                tv = ex(p)
                if tv.type != ANY and not is_ptr(tv.type):
                    raise _fail(f"cannot dereference non-pointer type '{tv.type}'", e.at)
                return TV(tv.type.elem or ANY)
            case m.Field(obj=obj, name=n):
                return self.field(mod, ex(obj), n, e.at)
            case m.Struct(fields=fields):
                items = tuple((k, ex(v)) for k, v in fields)
                value = dict(items)
                return TV(T("struct", fields=tuple((k, v.type) for k, v in items)), True, value)
            case m.Tuple(items=items):
                for i in items:
                    ex(i)
                return TV(T("tuple", fields=()), True)
            case m.ArrayLit(type=t, items=items):
                typ = self.type_of(mod, t, scopes)
                for i in items:
                    self.expect(ex(i), typ.elem or ANY, i.at)
                return TV(typ, all(ex(i).comptime for i in items))
            case m.TensorAccess(extents=extents):
                for x in extents:
                    self._comptime(ex(x), x.at, "a DSD extent")
                return TV(ANY, True)
            case m.Call(fn=f, args=args):
                return self.call(ex(f), [(ex(a), a.at) for a in args], e.at, comptime)
            case m.Builtin():
                return self.builtin(mod, e, scopes, comptime)
        return UNKNOWN

    def _comptime(self, v: TV, at: Span | None, what: str) -> None:
        if not v.comptime:
            raise _fail(f"{what} must be comptime-known; '{v.type}' is a runtime value", at)

    def binary(self, op: str, a: TV, b: TV, at: Span | None) -> TV:
        both = a.comptime and b.comptime
        if op in ("and", "or"):
            self.expect(a, BOOL, at)
            self.expect(b, BOOL, at)
            return TV(BOOL, both)
        if op in ("<<", ">>"):
            self._int_operand(a, at)
            self._int_operand(b, at)
            return TV(a.type, both, _fold(op, a.value, b.value))
        typ = peer(a, b, at)
        if op in ("==", "!=", "<", ">", "<=", ">="):
            return TV(BOOL, both, _fold(op, a.value, b.value))
        if op in ("&", "|", "^") and typ != BOOL:
            self._int_operand(TV(typ), at)
        return TV(typ, both, _fold(op, a.value, b.value))

    def field(self, mod: Module, tv: TV, name: str, at: Span | None) -> TV:
        v = tv.value
        if isinstance(v, Module):
            sym = self.global_sym(v, name)
            if sym is None:
                raise _fail(f"module '{v.file.name}' has no member '{name}'", at)
            return sym.tv
        if isinstance(v, str) and v in LIBRARIES:
            t = LIBRARIES[v].get(name, ANY)
            return TV(t, is_fn(t) or t.name in OPAQUE or t == ANY)
        if isinstance(v, dict):
            inner = v.get(name)
            return inner if isinstance(inner, TV) else UNKNOWN
        if tv.type == TYPE and isinstance(v, T) and v.fields is not None:
            if name not in dict(v.fields):
                raise _fail(f"enum '{v}' has no member '{name}'", at)
            return TV(v, True)
        if is_ptr(tv.type) and tv.type.elem is not None and tv.type.elem.fields:
            return TV(dict(tv.type.elem.fields).get(name, ANY))
        return TV(ANY, tv.comptime)

    def call(
        self, f: TV, args: list[tuple[TV, Span | None]], at: Span | None, comptime: bool
    ) -> TV:
        t = f.type
        if not is_fn(t):
            return TV(ANY, f.comptime and all(a.comptime for a, _ in args))
        if len(args) != len(t.params):
            raise _fail(f"expected {len(t.params)} argument(s), found {len(args)}", at)
        for (a, where), p in zip(args, t.params, strict=True):
            self.expect(a, p, where)
        # a call in a comptime context, or of comptime arguments only, is evaluated by cslc
        return TV(t.elem or ANY, comptime or all(a.comptime for a, _ in args))

    # --------------------------------------------------------------------- builtins
    def builtin(self, mod: Module, e: m.Builtin, scopes, comptime: bool) -> TV:
        n, args = e.name, e.args
        ex = lambda x: self.expr(mod, x, scopes, comptime)  # noqa: E731
        if n in ("as", "bitcast", "ptrcast") and len(args) == 2:
            target = ex(args[0])
            v = ex(args[1])
            typ = target.value if isinstance(target.value, T) else ANY
            if n == "ptrcast" and typ != ANY and not is_ptr(typ):
                raise _fail(f"@ptrcast to non-pointer type '{typ}'", args[0].at)
            if n == "ptrcast" and v.type != ANY and not is_ptr(v.type):
                raise _fail(f"@ptrcast of non-pointer type '{v.type}'", args[1].at)
            value = v.value if n == "as" and isinstance(v.value, int) and typ.name in INTS else None
            return TV(typ, v.comptime, value)
        if n == "import_module" and args and isinstance(args[0], m.Str):
            return self.import_module(mod, args[0].value, args[1:], scopes, comptime, e.at)
        values = [ex(a) for a in args]
        ids = {
            "get_color": "color",
            "get_local_task_id": "local_task_id",
            "get_data_task_id": "data_task_id",
            "get_control_task_id": "control_task_id",
            "get_input_queue": "input_queue",
            "get_output_queue": "output_queue",
            "get_ut_id": "ut_id",
        }
        if n in ids:
            if n == "get_data_task_id" and values:
                self._one_of(values[0], ("color", "input_queue"), args[0].at)
            elif values:
                self._int_operand(values[0], args[0].at)
                self._queue_range(n, values[0], args[0].at)
            return TV(_t(ids[n]), True, values[0].value if values else None)
        if n in ("activate",) and values:
            self._one_of(values[0], TASK_IDS, args[0].at)
            return TV(VOID)
        if n in ("block", "unblock") and values:
            self._one_of(values[0], (*TASK_IDS, "color", "input_queue"), args[0].at)
            return TV(VOID)
        binds = {"bind_local_task": "local_task_id", "bind_data_task": "data_task_id"}
        if n in binds and len(values) == 2:
            self.expect(values[1], _t(binds[n]), args[1].at)
            return TV(VOID, True)
        if n == "bind_control_task" and len(values) == 2:
            self.expect(values[1], _t("control_task_id"), args[1].at)
            return TV(VOID, True)
        if n in ("zeros", "constants") and values:
            typ = values[0].value if isinstance(values[0].value, T) else ANY
            if n == "constants" and len(values) == 2:
                self.expect(values[1], typ.elem or ANY, args[1].at)
            return TV(typ, True)
        if n == "get_dsd" and len(args) == 2:
            kind = args[0].id if isinstance(args[0], m.Name) else "?"
            if isinstance(args[1], m.Struct):
                for key, v in args[1].fields:
                    if key == "extent":
                        self._comptime(ex(v), v.at, "a DSD extent")
            return TV(_t(kind) if kind in DSDS else ANY, True)
        if n in ("increment_dsd_offset", "set_dsd_base_addr", "set_dsd_length", "set_dsd_stride"):
            if values:
                self._one_of(values[0], DSDS, args[0].at)
            if n == "increment_dsd_offset" and len(values) > 1:
                self._int_operand(values[1], args[1].at)
            if n == "set_dsd_base_addr" and len(values) > 1 and values[1].type != ANY:
                if not (is_ptr(values[1].type) or is_array(values[1].type)):
                    raise _fail(f"expected a pointer, found '{values[1].type}'", args[1].at)
            return TV(values[0].type if values else ANY)
        if n == "range" and values:
            typ = values[0].value if isinstance(values[0].value, T) else ANY
            for v, a in zip(values[1:], args[1:], strict=True):
                self.expect(v, typ, a.at)
            return TV(T(f"range({typ})", typ), all(v.comptime for v in values))
        if n == "is_arch" and values:
            return TV(BOOL, True, values[0].value == self.arch)
        if n in ("type_of",) and values:
            return TV(TYPE, True, values[0].type)
        if n in ("is_same_type", "comptime_assert", "is_comptime"):
            return TV(BOOL, True)
        if n == "get_int" and values:
            return TV(U16, values[0].comptime, values[0].value)
        if n == "get_rectangle":
            return TV(
                T("struct", fields=(("width", U16), ("height", U16))),
                True,
                {"width": TV(U16, True), "height": TV(U16, True)},
            )
        return TV(ANY, all(v.comptime for v in values))

    def _queue_range(self, n: str, v: TV, at: Span | None) -> None:
        """Queue and microthread IDs are 0..7 on both wafers (csl.md 5.4, 12)."""
        if n not in ("get_input_queue", "get_output_queue", "get_ut_id"):
            return
        count = machine.arch(self.arch).queue_ids
        if isinstance(v.value, int) and not 0 <= v.value < count:
            what = {"get_input_queue": "input queue", "get_output_queue": "output queue"}
            raise _fail(
                f"{what.get(n, 'microthread')} ID {v.value} is outside 0..{count - 1} on "
                f"{self.arch}",
                at,
            )

    def _one_of(self, v: TV, names: tuple[str, ...], at: Span | None) -> None:
        if v.type != ANY and v.type.name not in names:
            wanted = " or ".join(f"'{x}'" for x in names)
            raise _fail(f"expected type {wanted}, found '{v.type}'", at)

    def import_module(self, mod: Module, name: str, rest, scopes, comptime, at) -> TV:
        struct = self.expr(mod, rest[0], scopes, True) if rest else TV(VOID, True)
        if name.startswith("<"):
            return TV(MODULE, True, name)
        params = dict(struct.value) if isinstance(struct.value, dict) else {}
        path = posixpath.normpath(posixpath.join(posixpath.dirname(mod.file.name), name))
        try:
            f = self.read(path)
        except FileNotFoundError:
            raise _fail(f"unable to find module '{name}'", at) from None
        given_at = (
            {k: v.at for k, v in rest[0].fields} if rest and isinstance(rest[0], m.Struct) else {}
        )
        return TV(MODULE, True, self.check_file(f, params, given_at))


def _names(node: object) -> set[str]:
    """Every identifier a subtree mentions."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, m.Name):
            found.add(n.id)
        elif isinstance(n, tuple):
            stack.extend(n)
        elif isinstance(n, m.Node):
            stack.extend(getattr(n, k) for k in n.__dataclass_fields__ if k != "at")
    return found


def _runtime_fns(f: m.CslFile) -> set[str]:
    """Functions that run on the PE: reached from a task, a comptime block (exports, bindings,
    ``@map``) or an exported function; the rest run only at compile time."""
    fns = {d.name: d for d in f.decls if isinstance(d, m.FnDecl)}
    roots: set[str] = {d.name for d in fns.values() if d.export}
    for d in f.decls:
        if isinstance(d, m.TaskDecl | m.Comptime):
            roots |= _names(d.body)
    runtime: set[str] = set()
    todo = [n for n in roots if n in fns]
    while todo:
        n = todo.pop()
        if n in runtime:
            continue
        runtime.add(n)
        todo.extend(x for x in _names(fns[n].body) if x in fns and x not in runtime)
    return runtime


def _fold(op: str, a: object, b: object) -> object:
    """Fold integer arithmetic on comptime-known values (Zig truncating division)."""
    if (
        not (isinstance(a, int) and isinstance(b, int))
        or isinstance(a, bool)
        or isinstance(b, bool)
    ):
        return None
    try:
        return {
            "+": lambda: a + b,
            "-": lambda: a - b,
            "*": lambda: a * b,
            "/": lambda: int(a / b),
            "%": lambda: a - b * int(a / b),
            "<<": lambda: a << b,
            ">>": lambda: a >> b,
            "&": lambda: a & b,
            "|": lambda: a | b,
            "^": lambda: a ^ b,
            "==": lambda: a == b,
            "!=": lambda: a != b,
            "<": lambda: a < b,
            ">": lambda: a > b,
            "<=": lambda: a <= b,
            ">=": lambda: a >= b,
        }[op]()
    except (ZeroDivisionError, KeyError):
        return None


def check_program(program: m.Program, root: Path, arch: str, params: dict[str, int]) -> set[str]:
    """Type-check a program with the layout's ``--params``; the names of the files it read.

    Raises CslTypeError at the first mismatch."""
    checker = Checker(
        Path(root),
        arch,
        lambda name: (
            program.file(name)
            if _has(program, name)
            else parse_file((Path(root) / name).read_text(), name)
        ),
    )
    given = {k: TV(ANY, True, v) for k, v in params.items()}
    checker.check_file(program.layout, given)
    for f in program.pe_files:
        checker.check_file(f, {})
    return {name for name, _params in checker.checked}


def _has(program: m.Program, name: str) -> bool:
    try:
        program.file(name)
    except KeyError:
        return False
    return True
