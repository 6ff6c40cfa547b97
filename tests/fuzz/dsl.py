"""Hypothesis strategies for random well-typed DSL programs (docs/LANGUAGE.md).

A program is a kernel, or a graph of one to four kernels joined by intermediates and slices.
Kernel bodies draw from the whole language: nested loops with affine (offset, triangular) and
data-dependent bounds, guards on loop indices and on data, ``let`` and ``var``, stores with
every compound operator, gathers and scatters through indirect indices, ``search``, ``rand`` /
``randbits``, ``sum``, every dtype and every conversion. Programs are well-typed and in bounds by
construction (affine indices stay inside their dimension; anything else is an indirect index,
whose out-of-range behaviour the language defines), so every one must compile.

Names are drawn partly from keywords of CSL, C++ and Python (``const``, ``fn``, ``task``,
``class``, ``lambda``, ...) so that they reach every emitted file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

FLOATS = ("f32", "f16")
INTS = ("i32", "u16", "u32")
NUMERIC = FLOATS + INTS
DTYPES = (*NUMERIC, "bool")
NUMPY = {
    "f32": np.float32,
    "f16": np.float16,
    "i32": np.int32,
    "u16": np.uint16,
    "u32": np.uint32,
    "bool": np.bool_,
}
KEYWORDS = (
    "const", "fn", "task", "class", "lambda", "def", "int", "float", "return", "comptime",
    "export", "struct", "self", "None", "main", "param", "void", "switch", "while", "np", "sys",
    "out", "color", "extern", "namespace", "template", "auto", "signed", "import",
)  # fmt: skip
"""Names the DSL allows that are keywords or common identifiers of the emitted languages."""

SIZE_NAMES = ("N", "M")
COMPOUND = ("=", "+=", "-=", "*=", "/=", "max=", "min=")


@dataclass(frozen=True)
class Param:
    """A kernel or graph parameter: a tensor (``dims`` are size expressions) or a scalar."""

    name: str
    dtype: str
    dims: tuple[str, ...] = ()
    small: bool = False  # an i32 tensor of trip counts: drawn in [-1, 6)
    default: str | None = None

    def text(self) -> str:
        shape = f"[{', '.join(self.dims)}]" if self.dims else ""
        default = f" = {self.default}" if self.default is not None else ""
        return f"{self.name}: {self.dtype}{shape}{default}"


@dataclass(frozen=True)
class Generated:
    """A generated program: its source, its sizes, the entry's inputs and how to compare."""

    source: str
    sizes: tuple[tuple[str, int], ...]
    inputs: tuple[Param, ...]
    seed: int
    reordered: bool  # float sums or accumulations: float outputs compare within tolerance
    features: frozenset[str] = field(default=frozenset())
    avoid: frozenset[str] = field(default=frozenset())  # "nonfinite-scalar": finite scalars

    def shape(self, param: Param) -> tuple[int, ...]:
        sizes = dict(self.sizes)
        return tuple(int(eval(d, {}, dict(sizes))) for d in param.dims)  # noqa: S307

    def draw_inputs(self) -> dict[str, np.ndarray | np.generic]:
        rng = np.random.default_rng(self.seed)
        result: dict[str, np.ndarray | np.generic] = {}
        for p in self.inputs:
            if p.default is not None and rng.random() < 0.5:
                continue
            value = _array(rng, p.dtype, self.shape(p), p.small)
            if not p.dims and "nonfinite-scalar" in self.avoid:
                value = np.nan_to_num(value, posinf=1.0, neginf=-1.0)
            result[p.name] = value if p.dims else value[()]
        return result

    def reproducer(self) -> str:
        """The program as `.k` source and its inputs."""
        lines = ["--- program (.k) ---", self.source.rstrip(), "--- inputs ---"]
        with np.printoptions(threshold=64):
            for name, value in self.draw_inputs().items():
                array = np.asarray(value)
                lines.append(f"{name} = np.{array.dtype}({array.tolist()!r})")
        return "\n".join(lines)


_SPECIAL = {
    "f32": [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 3.0e38, -1.0e-30, 16777217.0],
    "f16": [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 65504.0, 6.0e-8, 2049.0],
    "i32": [-(2**31), 2**31 - 1, -1, 0, 31, 32, 33],
    "u16": [0, 65535, 32768, 15, 16, 17],
    "u32": [0, 2**32 - 1, 2**31, 31, 32, 33],
}


def _array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...], small: bool) -> np.ndarray:
    """Mostly ordinary values, with the special ones (NaN, infinities, signed zeros, integer
    extremes, shift counts) where the semantics have corner cases."""
    if small:
        return rng.integers(-1, 6, size=shape).astype(np.int32)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype in FLOATS:
        base = rng.uniform(-2.0, 2.0, size=shape)
    elif dtype == "i32":
        base = rng.integers(-4, 16, size=shape)
    else:
        base = rng.integers(0, 16, size=shape)
    special = rng.choice(np.array(_SPECIAL[dtype], dtype=np.float64), size=shape)
    with np.errstate(invalid="ignore", over="ignore"):
        values = np.where(rng.random(shape) < 0.1, special, base)
        if dtype in INTS:
            return values.astype(np.int64).astype(NUMPY[dtype])
        return values.astype(NUMPY[dtype])


@dataclass
class _Loop:
    """A loop index known to lie in [lo, size - hi) (lo, hi in {0, 1})."""

    name: str
    size: str
    lo: int
    hi: int


class _Kernel:
    """Draws one kernel body for a fixed signature."""

    def __init__(
        self, draw, params: list[Param], outputs: list[Param], names: _Names, avoid: frozenset
    ) -> None:
        self.draw = draw
        self.avoid = avoid
        self.locals: list[str] = []  # let and var names in scope, for "unused-local"
        self.used: set[str] = set()
        self.params = params
        self.outputs = outputs
        self.names = names
        self.lines: list[str] = []
        self.scalars: list[tuple[str, str]] = [(p.name, p.dtype) for p in params if not p.dims]
        # the sizes in scope are those its shapes name
        dims = {d for p in [*params, *outputs] for d in p.dims}
        self.sizes = [s for s in SIZE_NAMES if s in dims]
        self.scalars += [(s, "i32") for s in self.sizes]
        self.mutable: list[tuple[str, str]] = []
        self.loops: list[_Loop] = []
        self.depth = 0
        self.reordered = False
        self.features: set[str] = set()

    # ------------------------------------------------------------------ drawing helpers
    def pick(self, options):
        return self.draw(st.sampled_from(list(options)))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) < int(p * 100)

    def emit(self, line: str) -> None:
        self.lines.append("  " * (self.depth + 1) + line)

    @property
    def tensors(self) -> list[Param]:
        return [p for p in self.params if p.dims] + self.outputs

    # -------------------------------------------------------------------- expressions
    def literal(self, ty: str) -> str:
        if ty == "bool":
            return self.pick(["true", "false"])
        if ty in FLOATS:
            text = self.pick(["0.5", "2.0", "0.0", "1.0", "3.25", "1.0e-3", "100.0", "0.1"])
            return text if ty == "f32" else f"f16({text})"
        text = str(self.pick([0, 1, 2, 3, 7, 16, 31, 255]))
        if ty == "i32" and "big-literal" not in self.avoid and self.chance(0.1):
            text = self.pick(["2147483647", "0x7fffffff", "65536"])
        return text if ty == "i32" else f"{ty}({text})"

    def index(self, size: str, store: bool) -> str:
        """An index into a dimension of ``size``: affine and in range, a constant, or (rarely)
        indirect (a gather clamps it, a scatter drops it when out of range)."""
        options = ["0"]
        for loop in self.loops:
            if loop.size != size:
                continue
            options += [loop.name, f"{size} - 1 - {loop.name}"]
            if loop.lo:
                options.append(f"{loop.name} - 1")
            if loop.hi:
                options.append(f"{loop.name} + 1")
        if self.chance(0.15 if store else 0.2):
            self.features.add("scatter" if store else "gather")
            return self.indirect()
        return self.pick(options)

    def indirect(self) -> str:
        """An index the access analysis cannot bound (so it is clamped or dropped at run time):
        a call, a division or a remainder, or a u16 round trip, around any i32 expression."""
        inner = f"({self.leaf('i32', False)} + {self.expr('i32', 1)})"
        return self.pick(
            [
                f"min({inner}, 3)",
                f"max({inner}, -2)",
                f"abs({inner})",
                f"({inner} % 5)",
                f"({inner} / 2)",
                f"(i32(u16({inner} + 65536)) - 65536)",
            ]
        )

    def load(self, tensor: Param) -> str:
        return f"{tensor.name}[{', '.join(self.index(d, False) for d in tensor.dims)}]"

    def leaf(self, ty: str, literal: bool = True) -> str:
        options = [name for name, t in self.scalars if t == ty]
        options += [f"@{t.name}" for t in self.tensors if t.dtype == ty]
        if literal or not options:
            options.append("#")
        choice = self.pick(options)
        if choice == "#":
            return self.literal(ty)
        if choice.startswith("@"):
            return self.load(next(t for t in self.tensors if t.name == choice[1:]))
        self.used.add(choice)
        return choice

    def expr(self, ty: str, depth: int, literal: bool = True) -> str:
        if depth <= 0 or self.chance(0.3):
            return self.leaf(ty, literal)
        forms = ["binary", "convert", "select", "call"]
        if ty != "bool":
            forms += ["sum"]
        if ty in ("f32", "f16", "u32"):
            forms += ["rand"]
        if ty == "i32":
            forms += ["search"]
        if ty in ("f32", "f16", "i32", "bool"):
            forms += ["unary"]
        form = self.pick(forms)
        return getattr(self, f"_{form}")(ty, depth - 1)

    def _binary(self, ty: str, d: int) -> str:
        if ty == "bool":
            kind = self.pick(["cmp", "logic", "bits"])
            if kind == "cmp":
                operand = self.pick(NUMERIC)
                op = self.pick(["==", "!=", "<", "<=", ">", ">="])
                first = self.expr(operand, d, False)
                return f"({first} {op} {self.second(first, operand, d)})"
            op = self.pick(["&&", "||"] if kind == "logic" else ["&", "|", "^"])
            return f"({self.expr('bool', d, False)} {op} {self.expr('bool', d)})"
        ops = ["+", "-", "*", "/", "%"]
        if ty in INTS:
            ops += ["&", "|", "^", "<<", ">>"]
        op = self.pick(ops)
        first = self.expr(ty, d, False)
        return f"({first} {op} {self.second(first, ty, d)})"

    def _unary(self, ty: str, d: int) -> str:
        op = {"f32": "-", "f16": "-", "i32": self.pick(["-", "~"]), "bool": "!"}[ty]
        return f"{op}({self.expr(ty, d)})"

    def _convert(self, ty: str, d: int) -> str:
        source = self.pick([t for t in DTYPES if t != ty and f"{t}->{ty}" not in self.avoid])
        self.features.add(f"{source}->{ty}")
        return f"{ty}({self.expr(source, d)})"

    def _select(self, ty: str, d: int) -> str:
        return f"select({self.expr('bool', d)}, {self.expr(ty, d)}, {self.expr(ty, d)})"

    def _call(self, ty: str, d: int) -> str:
        if ty == "bool":
            return f"bool({self.expr(self.pick(NUMERIC), d)})"
        names = ["abs", "min", "max"]
        if ty in FLOATS:
            names += ["sqrt", "exp", "log", "floor", "fma"]
        name = self.pick(names)
        self.features.add(name)
        arity = {"min": 2, "max": 2, "fma": 3}.get(name, 1)
        args = [self.expr(ty, d, i > 0) for i in range(arity)]
        args[1:2] = [self.second(args[0], ty, d)] if arity == 2 else args[1:2]
        return f"{name}({', '.join(args)})"

    def second(self, first: str, ty: str, d: int) -> str:
        """The second operand of a binary form; where "same-operands" is avoided, a literal
        stands in for a copy of the first."""
        other = self.expr(ty, d)
        if other == first and "same-operands" in self.avoid:
            return self.literal(ty)
        return other

    def _sum(self, ty: str, d: int) -> str:
        size = self.pick(self.sizes)
        k = self.names.fresh("k")
        self.scalars.append((k, "i32"))
        self.loops.append(_Loop(k, size, 0, 0))
        body = self.expr(ty, d)
        self.loops.pop()
        self.scalars.remove((k, "i32"))
        self.features.add("sum")
        if ty in FLOATS:
            self.reordered = True
        return f"(sum({k} in 0 .. {size}) {body})"

    def _rand(self, ty: str, d: int) -> str:
        key, counter = self.expr("u32", d), self.expr("u32", d)
        self.features.add("rand")
        if ty == "u32":
            return f"randbits({key}, {counter})"
        return f"rand({key}, {counter})" if ty == "f32" else f"f16(rand({key}, {counter}))"

    def _search(self, ty: str, d: int) -> str:
        tensors = [t for t in self.tensors if t.dtype in NUMERIC]
        if not tensors:
            return self.leaf(ty)
        tensor = self.pick(tensors)
        axis = self.draw(st.integers(0, len(tensor.dims) - 1))
        size = tensor.dims[axis]
        slices = [":", "1:", f":{size} - 1", f"1:{size}"]
        parts = [
            self.pick(slices) if k == axis else self.index(dim, False)
            for k, dim in enumerate(tensor.dims)
        ]
        self.features.add("search")
        return f"search({tensor.name}[{', '.join(parts)}], {self.expr(tensor.dtype, d)})"

    # --------------------------------------------------------------------- statements
    def statement(self, budget: int) -> None:
        kinds = ["let", "store", "store"]
        if self.mutable:
            kinds += ["assign", "assign"]
        if budget > 0:
            kinds += ["for", "if", "var"]
        getattr(self, f"_{self.pick(kinds)}_stmt")(budget)

    def block(self, budget: int, count: int | None = None) -> None:
        for _ in range(count if count is not None else self.draw(st.integers(1, 3))):
            self.statement(budget)

    def _let_stmt(self, budget: int) -> None:
        ty = self.pick(DTYPES)
        name = self.names.fresh("t")
        value = self.expr(ty, 3)
        self.emit(f"let {name}: {ty} = {value};" if self.chance(0.5) else f"let {name} = {value};")
        self.scalars.append((name, ty))
        self.locals.append(name)

    def _var_stmt(self, budget: int) -> None:
        ty = self.pick(DTYPES)
        name = self.names.fresh("v")
        self.emit(f"var {name}: {ty} = {self.expr(ty, 2)};")
        self.scalars.append((name, ty))
        self.mutable.append((name, ty))
        self.locals.append(name)
        self.features.add("var")

    def _operator(self, ty: str) -> str:
        op = self.pick(COMPOUND) if ty != "bool" else "="
        if ty in FLOATS and op in ("+=", "-="):
            self.reordered = True
        self.features.add(op)
        return op

    def _assign_stmt(self, budget: int) -> None:
        name, ty = self.pick(self.mutable)
        self.emit(f"{name} {self._operator(ty)} {self.expr(ty, 3)};")

    def _store_stmt(self, budget: int) -> None:
        self.store(self.pick(self.outputs))

    def store(self, out: Param) -> None:
        index = ", ".join(self.index(d, True) for d in out.dims)
        self.emit(f"{out.name}[{index}] {self._operator(out.dtype)} {self.expr(out.dtype, 3)};")

    def _for_stmt(self, budget: int) -> None:
        scope = len(self.scalars)
        ranges = [self.loop_range() for _ in range(self.draw(st.integers(1, 2)))]
        self.emit(f"for {', '.join(text for text, _ in ranges)} {{")
        self.nested(budget, [loop for _, loop in ranges if loop is not None])
        del self.scalars[scope:]

    def nested(self, budget: int, loops: list[_Loop], count: int | None = None, then=None) -> None:
        saved = (list(self.loops), len(self.scalars), len(self.mutable), len(self.locals))
        self.loops += loops
        self.depth += 1
        self.block(budget - 1, count)
        if then is not None:
            then()
        self.use_locals(saved[3])
        self.depth -= 1
        self.loops, scalars, mutable, locals_ = saved
        del self.scalars[scalars:], self.mutable[mutable:], self.locals[locals_:]
        self.emit("}")

    def use_locals(self, start: int) -> None:
        """Where "unused-local" is avoided, store each unused local of the closing scope."""
        if "unused-local" not in self.avoid:
            return
        for name in self.locals[start:]:
            if name not in self.used:
                out = self.outputs[0]
                self.used.add(name)
                self.emit(f"{out.name}[{', '.join('0' for _ in out.dims)}] = {out.dtype}({name});")

    def loop_range(self) -> tuple[str, _Loop | None]:
        """A loop header ``NAME in A .. B``, the bounds drawn before NAME comes into scope."""
        text, loop = self.bounds()
        self.scalars.append((text.split()[0], "i32"))
        return text, loop

    def bounds(self) -> tuple[str, _Loop | None]:
        name = self.names.fresh("i")
        counts = [p for p in self.params if p.small]
        kinds = ["plain", "offset", "offset"]
        if self.loops:
            kinds += ["triangle", "triangle"]
        if counts:
            kinds += ["data", "data"]
        kind = self.pick(kinds)
        if kind == "data":
            self.features.add("data-bound")
            count = self.pick(counts)
            bound = f"{count.name}[{', '.join(self.index(d, False) for d in count.dims)}]"
            start = self.pick(["0", "1", *(loop.name for loop in self.loops)])
            return f"{name} in {start} .. {bound}", None
        if kind == "triangle":
            outer = self.pick(self.loops)
            self.features.add("triangular")
            if self.chance(0.5):
                loop = _Loop(name, outer.size, 0, outer.hi)
                return f"{name} in 0 .. {outer.name} + 1", loop
            loop = _Loop(name, outer.size, outer.lo, 0)
            return f"{name} in {outer.name} .. {outer.size}", loop
        size = self.pick(self.sizes)
        lo, hi = (0, 0) if kind == "plain" else (self.pick([0, 1]), self.pick([0, 1]))
        end = f"{size} - {hi}" if hi else size
        return f"{name} in {lo} .. {end}", _Loop(name, size, lo, hi)

    def _if_stmt(self, budget: int) -> None:
        guarded = [loop for loop in self.loops if not (loop.lo and loop.hi)]
        if guarded and self.chance(0.6):
            loop = self.pick(guarded)
            lo, hi = self.pick([(1, loop.hi), (loop.lo, 1), (1, 1)])
            tests = ([f"{loop.name} > 0"] if lo else []) + (
                [f"{loop.name} < {loop.size} - 1"] if hi else []
            )
            narrowed = [_Loop(loop.name, loop.size, lo, hi)]
            self.features.add("guard")
        else:
            tests, narrowed = [self.expr("bool", 2)], []
        self.emit(f"if {' && '.join(tests)} {{")
        self.nested(budget, narrowed)
        if self.chance(0.5):
            self.lines[-1] += " else {"
            self.nested(budget, [])

    def body(self) -> str:
        """Each output written by a loop nest over its dimensions, among random statements."""
        for out in self.outputs:
            if self.chance(0.3):
                self.statement(2)
            loops, scope = [], len(self.scalars)
            for dim in out.dims:
                name = self.names.fresh("i")
                self.scalars.append((name, "i32"))
                loops.append(_Loop(name, dim, 0, 0))
            if not loops:
                self.store(out)
                continue
            self.emit(f"for {', '.join(f'{lp.name} in 0 .. {lp.size}' for lp in loops)} {{")
            count = self.draw(st.integers(0, 2))
            self.nested(2, loops, count, then=lambda out=out: self.store(out))
            del self.scalars[scope:]
        if self.chance(0.3):
            self.statement(2)
        self.use_locals(0)
        return "\n".join(self.lines)


class _Names:
    """Fresh names, one in three taken from KEYWORDS (each at most once per program)."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.count = 0
        self.used: set[str] = set()

    def fresh(self, prefix: str) -> str:
        unused = [k for k in KEYWORDS if k not in self.used]
        if unused and self.draw(st.integers(0, 2)) == 0:
            name = self.draw(st.sampled_from(unused))
        else:
            self.count += 1
            name = f"{prefix}{self.count}"
        self.used.add(name)
        return name


def _tensor_dtype(draw, avoid: frozenset[str]) -> str:
    return draw(st.sampled_from([t for t in DTYPES if f"tensor:{t}" not in avoid]))


def _tensor_dims(draw) -> tuple[str, ...]:
    return draw(st.sampled_from([("N",), ("M",), ("N", "M"), ("M", "N")]))


def _kernel_text(draw, name, params: list[Param], outputs: list[Param], names, avoid) -> tuple:
    kernel = _Kernel(draw, params, outputs, names, avoid)
    body = kernel.body()
    outs = outputs[0].text() if len(outputs) == 1 else f"({', '.join(o.text() for o in outputs)})"
    text = f"kernel {name}({', '.join(p.text() for p in params)}) -> {outs} {{\n{body}\n}}\n"
    return text, kernel


def _signature(draw, names: _Names, avoid: frozenset[str]) -> tuple[list[Param], list[Param]]:
    params = [
        Param(names.fresh("a"), _tensor_dtype(draw, avoid), _tensor_dims(draw))
        for _ in range(draw(st.integers(1, 3)))
    ]
    if draw(st.booleans()):
        params.append(Param(names.fresh("c"), "i32", ("N",), small=True))
    for _ in range(draw(st.integers(0, 1))):
        ty = draw(st.sampled_from(DTYPES))
        default = draw(st.sampled_from([None, "literal"]))
        if default is not None:
            default = {"bool": "true", "f32": "-0.5", "f16": "1.5", "i32": "-3"}.get(ty, "7")
        params.append(Param(names.fresh("s"), ty, (), default=default))
    outputs = [
        Param(names.fresh("o"), _tensor_dtype(draw, avoid), _tensor_dims(draw))
        for _ in range(draw(st.integers(1, 2)))
    ]
    return params, outputs


@st.composite
def kernels(draw, max_size: int = 4, avoid: frozenset[str] = frozenset()) -> Generated:
    """A program of one kernel."""
    names = _Names(draw)
    sizes = tuple((s, draw(st.integers(1, max_size))) for s in SIZE_NAMES)
    params, outputs = _signature(draw, names, avoid)
    text, kernel = _kernel_text(draw, names.fresh("k"), params, outputs, names, avoid)
    source = f"size {', '.join(f'{n} = {v}' for n, v in sizes)};\n\n{text}"
    return Generated(
        source,
        sizes,
        tuple(params),
        draw(st.integers(0, 2**32 - 1)),
        kernel.reordered,
        frozenset(kernel.features),
        avoid,
    )


@st.composite
def graphs(draw, max_size: int = 4, avoid: frozenset[str] = frozenset()) -> Generated:
    """A graph of one to four tasks: earlier tasks write intermediates that later ones read,
    inputs are passed whole or as slices, and the output is written whole or as two halves."""
    names = _Names(draw)
    sizes = tuple((s, draw(st.integers(1, max_size))) for s in SIZE_NAMES)
    dtype = _tensor_dtype(draw, avoid)
    halves = draw(st.booleans())
    out = Param(names.fresh("y"), dtype, ("2 * N", "M") if halves else ("N", "M"))
    inputs = [
        Param(names.fresh("x"), _tensor_dtype(draw, avoid), ("2 * N", "M")),
        Param(names.fresh("x"), _tensor_dtype(draw, avoid), ("N", "M")),
    ]
    counts = Param(names.fresh("c"), "i32", ("N",), small=True)
    # regions a task can read: (text, dtype, dims in the kernel's sizes)
    regions: list[tuple[str, str, tuple[str, ...]]] = []
    for x in inputs:
        if x.dims[0] == "2 * N":
            regions += [(f"{x.name}[0:N, :]", x.dtype, ("N", "M"))]
            regions += [(f"{x.name}[N:2 * N, :]", x.dtype, ("N", "M"))]
            regions += [(f"{x.name}[2 * N - 1, :]", x.dtype, ("M",))]
        else:
            regions += [(x.name, x.dtype, ("N", "M")), (f"{x.name}[:, 0]", x.dtype, ("N",))]
    tasks = draw(st.integers(1 if not halves else 2, 4))
    writers = 2 if halves else 1
    kernels_text, lines, features, reordered = [], [], set(), False
    used_counts = False
    for index in range(tasks):
        chosen = draw(st.lists(st.sampled_from(regions), min_size=1, max_size=3, unique=True))
        if index and regions[-1] not in chosen:
            chosen.append(regions[-1])  # read the latest intermediate
        if all(dims != ("N", "M") for _, _, dims in chosen):
            chosen.append(regions[0])  # an [N, M] argument fixes the result's shape
        params = [Param(names.fresh("p"), ty, dims) for _, ty, dims in chosen]
        args = [text for text, _, _ in chosen]
        if draw(st.booleans()):
            params.append(Param(names.fresh("c"), "i32", ("N",), small=True))
            args.append(counts.name)
            used_counts = True
        writer = index >= tasks - writers
        ty = dtype if writer else _tensor_dtype(draw, avoid)
        result = [Param(names.fresh("r"), ty, ("N", "M"))]
        text, kernel = _kernel_text(draw, names.fresh("k"), params, result, names, avoid)
        kernels_text.append(text)
        features |= kernel.features
        reordered |= kernel.reordered
        if writer:
            half = index - (tasks - writers)
            target = f"{out.name}[{half} * N:{half + 1} * N, :]" if halves else out.name
        else:
            target = names.fresh("t")
            regions.append((target, ty, ("N", "M")))
        lines.append(f"  {target} = {kernel_name(text)}({', '.join(args)});")
    graph_inputs = [*inputs, counts] if used_counts else inputs
    signature = ", ".join(p.text() for p in graph_inputs)
    graph = f"graph {names.fresh('g')}({signature}) -> {out.text()} {{\n" + "\n".join(lines)
    source = (
        f"size {', '.join(f'{n} = {v}' for n, v in sizes)};\n\n"
        + "\n".join(kernels_text)
        + f"\n{graph}\n}}\n"
    )
    features.add(f"graph of {tasks}")
    return Generated(
        source,
        sizes,
        tuple(graph_inputs),
        draw(st.integers(0, 2**32 - 1)),
        reordered,
        frozenset(features),
        avoid,
    )


def kernel_name(text: str) -> str:
    return text.split("(", 1)[0].removeprefix("kernel ")


def programs(
    max_size: int = 4, avoid: frozenset[str] = frozenset()
) -> st.SearchStrategy[Generated]:
    """Kernels and graphs, two to one; ``avoid`` names constructs to leave out (the features
    "SRC->DST" of a conversion, "tensor:DTYPE" for tensors, "unused-local": every let and
    var is read, "same-operands": no min(x, x) or x < x, "big-literal": no i32 literal near
    2^31, "nonfinite-scalar": scalar inputs are finite; see
    fuzz/known_bugs.py)."""
    one = kernels(max_size, avoid)
    return st.one_of(one, one, graphs(max_size, avoid))
