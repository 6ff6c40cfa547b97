"""Assembles the layout file and the PE program from the pieces each task lowering contributes.

The lowerings ask for colors, task IDs, per-PE parameters (each with the layout expression
that computes it from the PE coordinates), arrays (optionally exported to the host) and code;
the builder keeps the resource map, avoids the IDs memcpy reserves, and prints the comments a
reader needs to follow the program (what each color and task ID is for).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace

from kernelc.backends.csl.lowered import Batches, Misfit, Refusal
from kernelc.csl import charges, machine
from kernelc.csl import model as m
from kernelc.diagnostics import Span
from kernelc.types import DType

CSL_TYPES = {
    DType.F32: "f32",
    DType.F16: "f16",
    DType.I32: "i32",
    DType.U32: "u32",
    DType.U16: "u16",
    DType.BOOL: "bool",
}

# Names that user tensors must not take in generated code: CSL keywords and types, the
# directions, and the fixed names the generated programs use.
RESERVED = set(
    "const var param fn task comptime layout if else for while return and or true false "
    "switch break continue export extern align linksection void bool f16 f32 i8 u8 i16 u16 i32 "
    "u32 i64 u64 color type RAMP NORTH SOUTH EAST WEST sys_mod math c2d layout_mod memcpy width "
    "height x y mpi_x mpi_y read_coords block_size block_start window_count window_offset "
    "band_start".split()
)


def csl_type(dtype: DType) -> str:
    return CSL_TYPES[dtype]


# Per-PE values of these types that the program only uses at run time are read from the PE's
# coordinates (``<layout>``) instead of being given as params, so that PEs which differ only in
# them run one compiled program.
RUNTIME_TYPES = frozenset({"i16", "i32", "u16"})
COORDS_FN = "read_coords"


@dataclass
class PeParam:
    name: str
    type: str
    value: m.Expr  # layout expression (uses x, y, width, height and the layout's params)
    comment: str = ""


def nodes_in(node: object) -> Iterator[m.Node]:
    """Every model node inside ``node`` (a node or a tuple of them), itself included."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple | list):
            stack.extend(item)
        elif isinstance(item, m.Node):
            yield item
            stack.extend(getattr(item, f.name) for f in fields(item) if f.name != "at")


def names_in(node: object) -> set[str]:
    """Every identifier a model node (or a tuple of them) refers to."""
    return {n.id for n in nodes_in(node) if isinstance(n, m.Name)}


@dataclass
class Builder:
    arch: machine.Arch
    width: int
    height: int
    pe_file: str
    header: list[str] = field(default_factory=list)
    layout_params: list[tuple[str, str, int, str]] = field(default_factory=list)
    layout_consts: list[m.Decl] = field(default_factory=list)
    layout_fns: list[m.Decl] = field(default_factory=list)
    layout_loop: list[m.Stmt] = field(default_factory=list)
    layout_routes: dict[tuple[str, str], str] = field(default_factory=dict)
    layout_tail: list[m.Stmt] = field(default_factory=list)
    pe_params: list[PeParam] = field(default_factory=list)
    pe_decls: list[m.Decl] = field(default_factory=list)
    pe_code: list[m.Decl] = field(default_factory=list)
    comptime: list[m.Stmt] = field(default_factory=list)
    exports: list[tuple[str, m.Expr, bool]] = field(default_factory=list)
    color_map: list[tuple[int, str]] = field(default_factory=list)
    task_map: list[tuple[int, str]] = field(default_factory=list)
    arrays: dict[str, int] = field(default_factory=dict)
    scalars: dict[str, int] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    helpers: set[str] = field(default_factory=set)
    uses_math: bool = False
    tensor_arrays: dict[str, str] = field(default_factory=dict)
    exchange_advance: str = ""
    batches: Batches | None = None  # set by a lowering whose items go through in batches
    c2d: bool = False
    # the first thing code generation found it cannot express here; the program being built
    # is then discarded (the lowering returns this instead of its code)
    refused: Refusal | Misfit | None = None
    _colors: int = 0
    _tasks: int = 0
    _queues: int = 2

    # ------------------------------------------------------------------- names
    def fresh(self, base: str) -> str:
        """A unique identifier derived from ``base`` (user names may collide with ours)."""
        name = base if base not in RESERVED else base + "_"
        k = 1
        while name in self.names:
            name = f"{base}_{k}"
            k += 1
        self.names.add(name)
        return name

    def refuse(self, reason: str, span: Span) -> Refusal | Misfit:
        """Record that the task's lowering cannot express a construct (the first one counts)."""
        if self.refused is None:
            self.refused = Refusal(reason, span)
        return self.refused

    def misfit(self, reason: str, span: Span) -> Refusal | Misfit:
        """Record that the plan does not fit this grid (the first verdict counts)."""
        if self.refused is None:
            self.refused = Misfit(reason, span)
        return self.refused

    # --------------------------------------------------------------- resources
    def color(self, base: str, purpose: str) -> str:
        while self._colors in self.arch.reserved_ids:
            self._colors += 1
        if self._colors >= self.arch.routable_colors:
            self.refuse(
                f"the csl plan needs more than {self.arch.routable_colors} routable colors",
                Span("<csl backend>", 1, 1),
            )
        cid = self._colors
        self._colors += 1
        name = self.fresh(base)
        self.layout_consts.append(
            m.VarDecl(name, m.Named("color"), m.builtin("get_color", m.Int(cid)), const=True)
        )
        self.color_map.append((cid, f"{name}: {purpose}"))
        return name

    def task_id(self, base: str, purpose: str) -> str:
        lo, hi = self.arch.local_task_ids
        while lo + self._tasks in self.arch.reserved_ids:
            self._tasks += 1
        tid = lo + self._tasks
        if tid > hi:
            self.refuse(
                "the csl plan needs more local task IDs than the PE has (each data-parallel "
                "task takes its own)",
                Span("<csl backend>", 1, 1),
            )
        self._tasks += 1
        name = self.fresh(base + "_id")
        self.pe_decls.append(
            m.VarDecl(
                name, m.Named("local_task_id"), m.builtin("get_local_task_id", m.Int(tid)), True
            )
        )
        self.task_map.append((tid, f"{name}: {purpose}"))
        return name

    def layout_task_id(self, base: str, purpose: str) -> str:
        """A local task ID that the layout hands to a library (e.g. collectives entry points)."""
        name = self.task_id(base, purpose)
        decl = self.pe_decls.pop()
        self.layout_consts.append(decl)
        return name

    def route(self, rx: str, tx: str) -> str:
        """A named route (``.{ .rx = .{ WEST }, .tx = .{ RAMP } }``) declared in the layout."""
        key = (rx, tx)
        if key not in self.layout_routes:
            self.layout_routes[key] = self.fresh(f"{rx.lower()}_to_{tx.lower()}")
        return self.layout_routes[key]

    def queue(self) -> int:
        q = self._queues
        self._queues += 1
        if q > 7:
            self.misfit(
                "the csl plan needs more than 6 fabric queues per PE", Span("<csl backend>", 1, 1)
            )
        return q

    # ----------------------------------------------------------------- pieces
    def layout_param(self, name: str, type_: str, value: int, comment: str = "") -> None:
        self.layout_params.append((name, type_, value, comment))

    def pe_param(self, base: str, type_: str, value: m.Expr, comment: str = "") -> str:
        name = self.fresh(base)
        self.pe_params.append(PeParam(name, type_, value, comment))
        return name

    def array(
        self, base: str, dtype: DType, size: int, comment: str = "", export: bool = False
    ) -> str:
        name = self.fresh(base)
        if comment:
            self.pe_decls.append(m.Comment(comment))
        t = m.ArrayT((m.Int(size),), m.Named(csl_type(dtype)))
        self.pe_decls.append(m.VarDecl(name, None, m.builtin("zeros", m.TypeExpr(t))))
        self.arrays[name] = size * dtype.numpy.itemsize
        if export:
            ptr = self.fresh(name + "_ptr")
            self.pe_decls.append(
                m.VarDecl(ptr, m.ManyPtrT(m.Named(csl_type(dtype))), m.Unary("&", m.Name(name)))
            )
            self.comptime.append(m.ExprStmt(m.builtin("export_symbol", m.Name(ptr), m.Str(name))))
            self.exports.append((name, m.TypeExpr(m.ManyPtrT(m.Named(csl_type(dtype)))), True))
        return name

    def scalar(self, base: str, type_: str, init: m.Expr, comment: str = "") -> str:
        name = self.fresh(base)
        if comment:
            self.pe_decls.append(m.Comment(comment))
        self.pe_decls.append(m.VarDecl(name, m.Named(type_), init))
        self.scalars[name] = 4 if type_ in ("f32", "i32", "u32") else 2
        return name

    def whole_dsd(self, array: str, size: int) -> str:
        """A 1-D DSD over the first ``size`` elements of an array (for clearing it)."""
        name = self.fresh(f"{array}_all")
        q = self.fresh("q")
        access = m.TensorAccess((q,), (m.lit(size),), m.Index(m.Name(array), (m.Name(q),)))
        self.const(name, m.builtin("get_dsd", m.Name("mem1d_dsd"), m.struct(tensor_access=access)))
        return name

    def const(self, name: str, value: m.Expr, type_: m.Type | None = None) -> None:
        self.pe_decls.append(m.VarDecl(name, type_, value, const=True))

    def code(self, decl: m.Decl) -> None:
        self.pe_code.append(decl)

    def bind(self, task: str, task_id: str) -> None:
        self.comptime.append(
            m.ExprStmt(m.builtin("bind_local_task", m.Name(task), m.Name(task_id)))
        )

    def launch(self, fn: str, args: tuple[m.Type, ...] = ()) -> None:
        """Export ``fn`` for the host to launch, with scalar arguments of types ``args``."""
        self.comptime.append(m.ExprStmt(m.builtin("export_symbol", m.Name(fn))))
        self.exports.append((fn, m.TypeExpr(m.FnT(args, m.Named("void"))), False))

    # ------------------------------------------------------------------- files
    @property
    def data_bytes(self) -> int:
        runtime = sum(4 if p.type == "i32" else 2 for p in self.runtime_params())
        return sum(self.arrays.values()) + sum(self.scalars.values()) + runtime

    def runtime_params(self) -> list[PeParam]:
        """The per-PE values the PE program computes from its coordinates at run time: integers
        that no declaration needs at compile time (not DSD extents or offsets, array sizes,
        library params), and the values of that kind they are computed from."""
        fixed = set()
        for d in (*self.pe_decls, *self.pe_code, m.Comptime(tuple(self.comptime))):
            fixed |= comptime_names(d)
        used = set()
        for d in self.pe_code:
            used |= names_in(d)
        movable = {p.name for p in self.pe_params if p.type in RUNTIME_TYPES} - fixed
        wanted = _closure(movable & used, self.pe_params, movable)
        return [p for p in self.pe_params if p.name in wanted]

    def given_params(self) -> list[PeParam]:
        """The per-PE params ``@set_tile_code`` gives: what each PE needs at compile time, and
        what its run-time values are computed from that it cannot compute itself."""
        runtime = self.runtime_params()
        names = {p.name for p in runtime}
        used = names_in(tuple(p.value for p in runtime))
        for d in (*self.pe_decls, *self.pe_code, m.Comptime(tuple(self.comptime))):
            used |= names_in(d)
        return [p for p in self.pe_params if p.name in used and p.name not in names]

    def coords_code(self) -> list[m.Decl]:
        """``<layout>``, the helpers and the function that give this PE its run-time values."""
        runtime = self.runtime_params()
        if not runtime:
            return []
        decls: list[m.Decl] = [
            m.VarDecl("layout_mod", None, m.builtin("import_module", m.Str("<layout>")), const=True)
        ]
        needed = names_in(tuple(p.value for p in runtime))
        helpers = [f for f in self.layout_fns if isinstance(f, m.FnDecl)]
        reached = _fn_closure(needed, helpers)
        decls.extend(f for f in helpers if f.name in reached)
        decls.append(
            m.Comment("per-PE values only run-time code uses, from the coordinates (read_coords)")
        )
        for p in runtime:
            decls.append(m.VarDecl(p.name, m.Named(p.type), m.Int(0)))
        body: list[m.Stmt] = [
            m.Comment("the same arithmetic the layout uses; PEs that differ only here share code")
        ]
        coords = {"x": "get_x_coord", "y": "get_y_coord"}
        for axis, getter in coords.items():
            if axis in needed:
                value = m.builtin("as", m.Name("i32"), m.call(m.member("layout_mod", getter)))
                body.append(m.VarDecl(axis, None, value, const=True))
        for size in ("width", "height"):
            if size in needed:
                value = m.Field(m.builtin("get_rectangle"), size)
                body.append(m.VarDecl(size, m.Named("i32"), value, const=True))
        narrow = {p.name for p in self.pe_params if p.type in RUNTIME_TYPES and p.type != "i32"}
        for p in runtime:
            value = _widened(p.value, narrow)  # the layout's arithmetic is in i32
            value = value if p.type == "i32" else m.builtin("as", m.Name(p.type), value)
            body.append(m.Assign(m.Name(p.name), "=", value))
        decls.append(m.FnDecl(COORDS_FN, (), m.Named("void"), tuple(body)))
        return decls

    def pe_program(self, intro: list[str]) -> m.CslFile:
        decls: list[m.Decl] = [m.Comment(line) for line in intro]
        decls.append(m.Param("memcpy_params", m.Named("comptime_struct")))
        for p in self.given_params():
            if p.comment:
                decls.append(m.Comment(p.comment))
            decls.append(m.Param(p.name, m.Named(p.type)))
        decls.append(m.Comment("memcpy: host copies, launches and the command stream"))
        decls.append(
            m.VarDecl(
                "sys_mod",
                None,
                m.builtin("import_module", m.Str("<memcpy/memcpy>"), m.Name("memcpy_params")),
                const=True,
            )
        )
        if self.uses_math:
            decls.append(
                m.VarDecl(
                    charges.MATH_MODULE,
                    None,
                    m.builtin("import_module", m.Str("<math>")),
                    const=True,
                )
            )
        decls.extend(self.pe_decls)
        coords = self.coords_code()
        decls.extend(coords)
        launched = {name for name, _t, mutable in self.exports if not mutable}
        for d in self.pe_code:
            if coords and isinstance(d, m.FnDecl) and d.name in launched:
                lead = (i for i, st in enumerate(d.body) if not isinstance(st, m.Comment))
                k = next(lead, len(d.body))
                d = replace(d, body=(*d.body[:k], m.ExprStmt(m.call(COORDS_FN)), *d.body[k:]))
            decls.append(d)
        decls.append(m.Comptime(tuple(self.comptime)))
        return m.CslFile(self.pe_file, tuple(decls))

    def layout(self, intro: list[str]) -> m.CslFile:
        decls: list[m.Decl] = [m.Comment(line) for line in intro]
        decls.append(m.Comment(""))
        decls.append(m.Comment("Colors (IDs 21..23 and task IDs 27..31 are left to memcpy):"))
        for cid, text in sorted(self.color_map):
            decls.append(m.Comment(f"  {cid:2d}  {text}"))
        decls.append(m.Comment("Local task IDs:"))
        for tid, text in sorted(self.task_map):
            decls.append(m.Comment(f"  {tid:2d}  {text}"))
        for name, type_, _value, comment in self.layout_params:
            if comment:
                decls.append(m.Comment(comment))
            decls.append(m.Param(name, m.Named(type_)))
        decls.append(
            m.VarDecl(
                "memcpy",
                None,
                m.builtin(
                    "import_module",
                    m.Str("<memcpy/get_params>"),
                    m.struct(width=m.Name("width"), height=m.Name("height")),
                ),
                const=True,
            )
        )
        decls.extend(self.layout_consts)
        given = self.given_params()
        fields = [("memcpy_params", m.call(m.member("memcpy", "get_params"), m.Name("x")))]
        fields += [(p.name, m.Name(p.name)) for p in given]
        looped = names_in(tuple(self.layout_loop))
        wanted = _closure({p.name for p in given} | looped, self.pe_params)
        values = [
            m.VarDecl(p.name, m.Named(p.type), p.value, const=True)
            for p in self.pe_params
            if p.name in wanted
        ]
        # the helpers the layout's own values call (the rest run in the PE program, if at all)
        helpers = [f for f in self.layout_fns if isinstance(f, m.FnDecl)]
        called = _fn_closure(names_in(tuple(values)) | looped, helpers)
        decls.extend(d for d in self.layout_fns if not isinstance(d, m.FnDecl) or d.name in called)
        tile = m.ExprStmt(
            m.builtin(
                "set_tile_code",
                m.Name("x"),
                m.Name("y"),
                m.Str(self.pe_file),
                m.Struct(tuple(fields)),
            )
        )
        inner = m.For(
            m.builtin("range", m.Name("i32"), m.Name("height")),
            "y",
            (*values, *self.layout_loop, tile),
        )
        grid = m.For(m.builtin("range", m.Name("i32"), m.Name("width")), "x", (inner,))
        routes: list[m.Stmt] = []
        if self.layout_routes:
            routes.append(m.Comment("Routes: where a color's wavelets come from and go to"))
        for (rx, tx), name in sorted(self.layout_routes.items(), key=lambda kv: kv[1]):
            value = m.struct(rx=m.Tuple((m.Name(rx),)), tx=m.Tuple((m.Name(tx),)))
            routes.append(m.VarDecl(name, None, value, const=True))
        body: list[m.Stmt] = [
            m.ExprStmt(m.builtin("set_rectangle", m.Name("width"), m.Name("height"))),
            *routes,
            grid,
            *self.layout_tail,
            m.Comment("Symbols the host reaches through memcpy and launch"),
        ]
        for name, type_expr, mutable in self.exports:
            args = [m.Str(name), type_expr] + ([m.Bool(True)] if mutable else [])
            body.append(m.ExprStmt(m.builtin("export_name", *args)))
        decls.append(m.Layout(tuple(body)))
        return m.CslFile("layout.csl", tuple(decls))

    def params(self) -> dict[str, int]:
        return {name: value for name, _t, value, _c in self.layout_params}


def comptime_names(d: m.Decl) -> set[str]:
    """Names a declaration needs at compile time: all of a module-scope declaration's, and
    in a function or task the signature's and those of DSDs and types built in its body."""
    if not isinstance(d, m.FnDecl | m.TaskDecl):
        return names_in(d)
    found = names_in(d.params)
    stack: list[object] = [d.body]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple | list):
            stack.extend(item)
        elif isinstance(item, m.TensorAccess | m.ArrayT | m.TypeExpr) or (
            isinstance(item, m.Builtin) and item.name == "get_dsd"
        ):
            found |= names_in(item)
        elif isinstance(item, m.Node):
            stack.extend(getattr(item, f.name) for f in fields(item) if f.name != "at")
    return found


def _widened(e: m.Expr, narrow: set[str]) -> m.Expr:
    """``e`` with each name in ``narrow`` (16-bit per-PE values) read as ``@as(i32, name)``."""
    match e:
        case m.Name(id=n) if n in narrow:
            return m.builtin("as", m.Name("i32"), e)
        case m.Binary(op=op, lhs=a, rhs=b):
            return m.Binary(op, _widened(a, narrow), _widened(b, narrow))
        case m.Unary(op=op, operand=a):
            return m.Unary(op, _widened(a, narrow))
        case m.IfExpr(cond=c, then=a, orelse=b):
            return m.IfExpr(_widened(c, narrow), _widened(a, narrow), _widened(b, narrow))
        case m.Call(fn=fn, args=args):
            return m.Call(fn, tuple(_widened(a, narrow) for a in args))
    return e


def _closure(names: set[str], params: list[PeParam], within: set[str] | None = None) -> set[str]:
    """``names`` and the per-PE values they are computed from (only those in ``within``)."""
    by_name = {p.name: p for p in params}
    allowed = set(by_name) if within is None else within
    todo, seen = list(names), set(names)
    while todo:
        p = by_name.get(todo.pop())
        for n in names_in(p.value) if p is not None else ():
            if n in allowed and n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _fn_closure(names: set[str], fns: list[m.FnDecl]) -> set[str]:
    """The helper functions ``names`` call, directly or through each other."""
    by_name = {f.name: f for f in fns}
    todo, seen = [n for n in names if n in by_name], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(n for n in names_in(by_name[name].body) if n in by_name)
    return seen


# --------------------------------------------------------------------- layout helpers

I32 = m.Named("i32")


def layout_helpers() -> list[m.Decl]:
    """Comptime functions the layout uses to compute each PE's block and iteration window."""
    n, p, i = m.Name("n"), m.Name("p"), m.Name("i")
    q = m.Binary("/", n, p)
    r = m.Binary("%", n, p)
    size = m.FnDecl(
        "block_size",
        (("n", I32), ("p", I32), ("i", I32)),
        I32,
        (
            m.Comment("n elements in p near-equal blocks: the first n % p blocks get one more"),
            m.Return(m.Binary("+", q, m.IfExpr(m.Binary("<", i, r), m.Int(1), m.Int(0)))),
        ),
    )
    start = m.FnDecl(
        "block_start",
        (("n", I32), ("p", I32), ("i", I32)),
        I32,
        (m.Return(m.Binary("+", m.Binary("*", i, q), m.IfExpr(m.Binary("<", i, r), i, r))),),
    )
    lo, hi, s, c = m.Name("lo"), m.Name("hi"), m.Name("start"), m.Name("count")
    first = m.IfExpr(m.Binary(">", lo, s), lo, s)
    end = m.Binary("+", s, c)
    last = m.IfExpr(m.Binary("<", hi, end), hi, end)
    window_count = m.FnDecl(
        "window_count",
        (("lo", I32), ("hi", I32), ("start", I32), ("count", I32)),
        I32,
        (
            m.Comment("iterations of lo .. hi that fall in the block start .. start + count"),
            m.VarDecl("a", None, first, const=True),
            m.VarDecl("b", None, last, const=True),
            m.Return(
                m.IfExpr(
                    m.Binary(">", m.Name("b"), m.Name("a")),
                    m.Binary("-", m.Name("b"), m.Name("a")),
                    m.Int(0),
                )
            ),
        ),
    )
    window_offset = m.FnDecl(
        "window_offset",
        (("lo", I32), ("start", I32)),
        I32,
        (m.Return(m.IfExpr(m.Binary(">", lo, s), m.Binary("-", lo, s), m.Int(0))),),
    )
    return [size, start, window_count, window_offset]
