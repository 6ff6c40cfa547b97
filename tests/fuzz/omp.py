"""Hypothesis strategies for random OpenMP C programs in the subset of docs/OPENMP.md, and the
gcc harness that runs them: the reference for the C frontend is OpenMP itself.

A program is one entry function with one target region, of one of four shapes:

- ``loops``: data-parallel loops (``parallel for``, ``collapse(2)``) that define temporaries and
  outputs and update them, reductions (``+ * max min``) into scalars of the region, stored by
  plain statements or read by later loops;
- ``teams``: one ``target teams distribute parallel for`` nest, with or without ``num_teams``;
- ``threads``: ``parallel num_threads(NB)`` whose threads each create a chain of tasks on their
  own block (``depend`` on ``tid``'s section), then a barrier and a worksharing loop over all;
- ``single``: ``parallel`` + ``single`` creating a task graph in loops over blocks: ``in``,
  ``out`` and ``inout`` sections, neighbour blocks, per-block reductions into single elements,
  whole-array sections, ``taskwait``.

Bodies have nested loops with affine bounds (offset, reversed, strided, triangular), guards on
loop indices and on data, locals, every compound assignment, clamped gathers, C's conversions
between ``float``, ``int``, ``unsigned``, ``uint16_t`` and ``bool``, and the math functions.

Every program is well-defined C and race-free OpenMP by construction, so gcc's answer is the
answer: integer values are bounded where C would overflow (interval bounds carried with each
expression), divisors are odd, float-to-integer conversions are clamped with ``fminf``/``fmaxf``,
indices stay in range, each parallel iteration writes only its own elements, and float sums
that OpenMP may reorder add dyadic values small enough to be exact in any order (products and
``expf``/``logf`` are compared within kernelc/tolerance.py's rule instead).

``double`` is not generated: the frontend rejects it (docs/OPENMP.md, "What is rejected").
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

CTYPES = ("float", "int", "unsigned", "uint16_t", "bool")
NUMPY = {
    "float": np.float32,
    "int": np.int32,
    "unsigned": np.uint32,
    "uint16_t": np.uint16,
    "bool": np.bool_,
}
PRINTF = {"float": "%a", "int": "%d", "unsigned": "%u", "uint16_t": "%u", "bool": "%u"}
INPUT_BOUND = 20  # int inputs lie in [-20, 20]
EXACT_LIMIT = 2**17  # an exact float expression: |value| * 2^grain stays below this
REDUCE = ("+", "*", "max", "min")
WEIGHTED = ("float", "float", "int", "int", "unsigned", "uint16_t", "bool")
NARROW = ("uint16_t", "bool")
HEADER = "#include <math.h>\n#include <omp.h>\n#include <stdbool.h>\n#include <stdint.h>\n"


@dataclass(frozen=True)
class Array:
    """An array parameter (role ``in``, ``out`` or ``inout``) or a temporary (``temp``)."""

    name: str
    ctype: str
    dims: tuple[str, ...]
    role: str
    dyadic: bool = True  # float inputs: multiples of 1/8 in [-4, 4] (with NaN, inf, -0)

    def decl(self) -> str:
        const = "const " if self.role == "in" else ""
        return f"{const}{self.ctype} {self.name}{''.join(f'[{d}]' for d in self.dims)}"


@dataclass(frozen=True)
class Scalar:
    name: str
    ctype: str  # "int" (in [-20, 20]) or "float"


@dataclass(frozen=True)
class Generated:
    """A generated C program: the kernel source kernelc reads, and how to feed and compare."""

    source: str
    entry: str
    order: tuple[str, ...]  # the entry's parameters
    sizes: tuple[tuple[str, int], ...]
    arrays: tuple[Array, ...]
    scalars: tuple[Scalar, ...]
    seed: int
    reordered: bool  # reductions that may reorder products, or expf/logf: floats within tolerance
    features: frozenset[str] = field(default=frozenset())

    @property
    def params(self) -> list[Array | Scalar]:
        by_name = {p.name: p for p in (*self.arrays, *self.scalars)}
        return [by_name[name] for name in self.order]

    def shape(self, array: Array) -> tuple[int, ...]:
        return tuple(int(eval(d, {}, dict(self.sizes))) for d in array.dims)  # noqa: S307

    def draw_inputs(self) -> dict[str, np.ndarray | np.generic]:
        """The entry's inputs, drawn from the seed: the same values reach gcc and kernelc."""
        rng = np.random.default_rng(self.seed)
        result: dict[str, np.ndarray | np.generic] = {}
        for p in self.params:
            if isinstance(p, Scalar):
                if p.ctype == "int":
                    result[p.name] = np.int32(rng.integers(-INPUT_BOUND, INPUT_BOUND + 1))
                else:
                    result[p.name] = np.float32(rng.integers(-16, 17) / 4)
            elif p.role in ("in", "inout"):
                result[p.name] = _array(rng, p, self.shape(p))
        return result

    def outputs(self) -> dict[str, Array]:
        """kernelc's output names: an array both read and written comes back as NAME_out."""
        names = {"out": "{}", "inout": "{}_out"}
        return {names[a.role].format(a.name): a for a in self.arrays if a.role in names}

    def harness(self) -> str:
        """The kernel with a main() that fills the inputs with the drawn values, calls the
        entry and prints every output (floats in hexadecimal, exactly)."""
        inputs = self.draw_inputs()
        lines = [HEADER + "#include <stdio.h>\n", self.source, "int main(void) {"]
        args = []
        for p in self.params:
            if isinstance(p, Scalar):
                lines.append(f"  {p.ctype} {p.name} = {_literal(p.ctype, inputs[p.name])};")
                args.append(p.name)
                continue
            shape = "".join(f"[{n}]" for n in self.shape(p))
            value = inputs.get(p.name)
            init = "" if value is None else f" = {_initialiser(p.ctype, np.asarray(value))}"
            lines.append(f"  static {p.ctype} {p.name}{shape}{init};")
            args.append(p.name)
        lines.append(f"  {self.entry}({', '.join(args)});")
        for out, array in self.outputs().items():
            count = math.prod(self.shape(array))
            cast = "(double)" if array.ctype == "float" else "(unsigned)" * (array.ctype != "int")
            lines += [
                f'  printf("{out}");',
                f"  for (int q = 0; q < {count}; q++)",
                f'    printf(" {PRINTF[array.ctype]}", '
                f"{cast}((const {array.ctype} *){array.name})[q]);",
                '  printf("\\n");',
            ]
        lines += ["  return 0;", "}", ""]
        return "\n".join(lines)

    def reproducer(self) -> str:
        return "--- program (C, gcc -fopenmp -ffp-contract=off; kernelc reads the kernel) ---\n" + (
            self.harness().rstrip()
        )

    def run_gcc(self) -> dict[str, np.ndarray]:
        """Compile the harness with the system C compiler and OpenMP, run it, parse its output."""
        with tempfile.TemporaryDirectory(prefix="kernelc-ompfuzz-") as tmp:
            c_file, binary = Path(tmp) / "fuzz.c", Path(tmp) / "fuzz"
            c_file.write_text(self.harness())
            flags = ["-std=c11", "-O1", "-fopenmp", "-ffp-contract=off", "-w"]
            subprocess.run(
                [os.environ.get("CC", "gcc"), *flags, str(c_file), "-o", str(binary), "-lm"],
                check=True,
                capture_output=True,
            )
            env = {**os.environ, "OMP_DYNAMIC": "false"}
            printed = subprocess.run(
                [str(binary)], check=True, capture_output=True, env=env, timeout=60, text=True
            ).stdout
        result = {}
        outputs = self.outputs()
        for line in printed.splitlines():
            name, *values = line.split()
            array = outputs[name]
            dtype = NUMPY[array.ctype]
            parse = float.fromhex if array.ctype == "float" else int
            data = np.array([parse(v) for v in values]).astype(dtype)
            result[name] = data.reshape(self.shape(array))
        return result


def _array(rng: np.random.Generator, array: Array, shape: tuple[int, ...]) -> np.ndarray:
    """Ordinary values with some special ones: NaN, infinities and -0 for floats, extremes for
    the unsigned types (their arithmetic wraps; int inputs stay small so that C's stays defined)."""
    ctype = array.ctype
    if ctype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if ctype == "int":
        return rng.integers(-INPUT_BOUND, INPUT_BOUND + 1, size=shape).astype(np.int32)
    if ctype in ("unsigned", "uint16_t"):
        top = 2**32 - 1 if ctype == "unsigned" else 2**16 - 1
        base = rng.integers(0, 40, size=shape)
        special = rng.choice(np.array([top, top - 1, 2**15, 31, 32, 33]), size=shape)
        return np.where(rng.random(shape) < 0.15, special, base).astype(NUMPY[ctype])
    if array.dyadic:
        base = rng.integers(-32, 33, size=shape) / 8
    else:
        base = rng.uniform(-3.0, 3.0, size=shape)
    special = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.0, 0.0]), size=shape)
    return np.where(rng.random(shape) < 0.08, special, base).astype(np.float32)


def _literal(ctype: str, value: object) -> str:
    if ctype == "float":
        v = float(value)  # type: ignore[arg-type]
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        return f"{v.hex()}f"
    if ctype == "bool":
        return "true" if value else "false"
    return f"{int(value)}u" if ctype in ("unsigned", "uint16_t") else str(int(value))  # type: ignore[call-overload]


def _initialiser(ctype: str, value: np.ndarray) -> str:
    if value.ndim == 0:
        return _literal(ctype, value.item())
    return "{" + ", ".join(_initialiser(ctype, v) for v in value) + "}"


# ------------------------------------------------------------------------------ the bodies
@dataclass
class _Var:
    """A loop index known to lie in [lo, extent - hi) of its extent (a size expression)."""

    name: str
    extent: str
    lo: int = 0
    hi: int = 0


@dataclass(frozen=True)
class _Dim:
    """How one dimension of an array may be indexed: ``fixed`` (the owning parallel index) or
    free over ``extent`` after ``base`` (a task's block start)."""

    extent: str
    base: str = ""
    fixed: str | None = None


@dataclass
class _Local:
    name: str
    ctype: str
    bound: int = 0  # int: |value| <= bound
    exact: tuple[float, int] | None = None  # float: (magnitude, grain) when exact
    span: tuple[int, int] = (0, 0)  # the body lines that declare and compute it


class _Body:
    """Draws the statements of one loop body or task body."""

    def __init__(self, gen: _Program, depth: int) -> None:
        self.gen = gen
        self.draw = gen.draw
        self.indent = depth
        self.lines: list[str] = []
        self.vars: list[_Var] = []
        self.locals: list[_Local] = []
        self.readable: dict[str, tuple[_Dim, ...]] = {}
        self.writable: dict[str, tuple[_Dim, ...]] = {}
        self.read: set[str] = set()  # arrays read: the task's depend(in:) clauses

    def pick(self, options):
        return self.draw(st.sampled_from(list(options)))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) < int(p * 100)

    def emit(self, line: str) -> None:
        self.lines.append("  " * self.indent + line)

    def drop_unused(self, scope: list[_Local]) -> None:
        """Where "unused-local" is avoided, take out the lines of the scope's unread locals."""
        if "unused-local" not in self.gen.avoid:
            return
        for local in reversed(scope):  # a later unread local may be the only reader
            start, end = local.span
            word = re.compile(rf"\b{local.name}\b")
            if not any(word.search(line) for line in self.lines[end:]):
                self.lines[start:end] = [""] * (end - start)

    def idle(self, var: str, start: int) -> bool:
        """Where "unused-local" is avoided, whether the loop from line ``start`` never reads
        its index ``var`` (then the caller drops it)."""
        word = re.compile(rf"\b{var}\b")
        lines = self.lines[start + 1 :]
        return "unused-local" in self.gen.avoid and not any(word.search(ln) for ln in lines)

    def finish(self) -> list[str]:
        """The body's lines, once its outermost scope is closed."""
        self.drop_unused(self.locals)
        return [line for line in self.lines if line]

    def fresh(self, prefix: str) -> str:
        return self.gen.fresh(prefix)

    # ---------------------------------------------------------------------------- indices
    def index(self, dim: _Dim, store: bool) -> str:
        if dim.fixed is not None:
            return dim.fixed
        value = self.gen.value(dim.extent)
        options = ["0", f"{dim.extent} - 1"]
        for v in self.vars:
            if v.extent != dim.extent:
                continue
            options += [v.name, f"{dim.extent} - 1 - {v.name}"]
            if v.lo:
                options.append(f"{v.name} - 1")
            if v.hi:
                options.append(f"{v.name} + 1")
        if not store and not dim.base and self.chance(0.1):  # a task's block: affine only
            self.gen.features.add("gather")
            options = [f"abs({self.iexpr(1000, 1)}) % ({dim.extent})"]
        text = self.pick(options)
        if value == 1 and text != "0":
            text = self.pick(["0", text])
        return f"{dim.base}{text}" if dim.base else text

    def access(self, name: str, dims: tuple[_Dim, ...], store: bool = False) -> str:
        if not store:
            self.read.add(name)
        return f"{name}{''.join(f'[{self.index(d, store)}]' for d in dims)}"

    def arrays_of(self, ctype: str) -> list[str]:
        return [n for n in self.readable if self.gen.arrays[n].ctype == ctype]

    # ------------------------------------------------------------------------ expressions
    def iexpr(self, bound: int, depth: int) -> str:
        """An int expression whose value lies in [-bound, bound] for every input."""
        if bound < 1:
            return "0"
        if depth <= 0 or self.chance(0.3):
            return self.ileaf(bound)
        form = self.pick(["add", "mul", "div", "bits", "shift", "unary", "select", "conv", "abs"])
        d = depth - 1
        if form == "add":
            return f"({self.iexpr(bound // 2, d)} {self.pick('+-')} {self.iexpr(bound // 2, d)})"
        if form == "mul":
            root = max(math.isqrt(bound), 1)
            return f"({self.iexpr(root, d)} * {self.iexpr(root, d)})"
        if form == "div":
            self.gen.features.add("div")
            return f"({self.iexpr(bound, d)} {self.pick('/%')} ({self.iexpr(bound, d)} | 1))"
        if form == "bits":
            half = bound // 2
            return f"({self.iexpr(half, d)} {self.pick('&|^')} {self.iexpr(half, d)})"
        if form == "shift":
            count = self.draw(st.integers(0, 4))
            if self.chance(0.5) or bound >> count < 1:
                return f"({self.iexpr(bound, d)} >> {self.draw(st.integers(0, 31))})"
            mask = (1 << (bound >> count).bit_length() - 1) - 1
            return f"(({self.iexpr(bound, d)} & {mask}) << {count})"
        if form == "unary":
            return f"{self.pick(['-', '~'])}({self.iexpr(bound - 1, d)})"
        if form == "select":
            return f"({self.bexpr(d)} ? {self.iexpr(bound, d)} : {self.iexpr(bound, d)})"
        if form == "abs":
            return f"abs({self.iexpr(bound, d)})"
        return self.iconv(bound, d)

    def iconv(self, bound: int, d: int) -> str:
        """An int from another type: a clamped float, a reduced unsigned, a promoted u16."""
        self.gen.features.add("conversion")
        source = self.pick(["float", "unsigned", "uint16_t", "bool"])
        if source == "float":
            f = self.fexpr(d, libm=False)
            return f"(int)fminf(fmaxf({f}, {-bound}.0f), {bound}.0f)"
        if source == "unsigned":
            return f"(int)({self.uexpr(d)} % {bound + 1}u)"
        if source == "uint16_t":
            return f"((uint16_t)({self.iexpr(1000, d)}) % {bound + 1})"
        return f"(int){self.bexpr(d)}"

    def ileaf(self, bound: int) -> str:
        options: list[tuple[str, int]] = [(str(self.draw(st.integers(0, min(bound, 9)))), 0)]
        options += [(v.name, self.gen.value(v.extent)) for v in self.vars]
        options += [(loc.name, loc.bound) for loc in self.locals if loc.ctype == "int"]
        options += [(s.name, s.bound) for s in self.gen.int_scalars]
        options += [(f"@{n}", self.gen.bounds[n]) for n in self.arrays_of("int")]
        options += [(f"@{n}", 65535) for n in self.arrays_of("uint16_t")]
        options += [(f"@{n}", 1) for n in self.arrays_of("bool")]
        text, value_bound = self.pick(options)
        if text.startswith("@"):
            text = self.access(text[1:], self.readable[text[1:]])
        return text if value_bound <= bound else f"({text} % {bound + 1})"

    def uexpr(self, depth: int) -> str:
        """An unsigned expression: any value (unsigned arithmetic wraps in C)."""
        if depth <= 0 or self.chance(0.3):
            options = [f"{self.draw(st.sampled_from([0, 1, 3, 7, 255, 4294967295]))}u"]
            options += [f"@{n}" for n in self.arrays_of("unsigned")]
            options += [f"(unsigned){v.name}" for v in self.vars]
            options.append("#")
            text = self.pick(options)
            if text == "#":
                return f"(unsigned)({self.iexpr(100, depth - 1)})"
            if text.startswith("@"):
                return self.access(text[1:], self.readable[text[1:]])
            return text
        form = self.pick(["arith", "div", "shift", "conv"])
        d = depth - 1
        if form == "arith":
            return f"({self.uexpr(d)} {self.pick(['+', '-', '*', '&', '|', '^'])} {self.uexpr(d)})"
        if form == "div":
            return f"({self.uexpr(d)} {self.pick('/%')} ({self.uexpr(d)} | 1u))"
        if form == "shift":
            return f"({self.uexpr(d)} {self.pick(['<<', '>>'])} {self.draw(st.integers(0, 31))})"
        self.gen.features.add("conversion")
        return f"(unsigned)fminf(fmaxf({self.fexpr(d, libm=False)}, 0.0f), 65535.0f)"

    def bexpr(self, depth: int) -> str:
        """A truth value (an int 0 or 1 in C)."""
        form = self.pick(["cmp", "cmp", "logic", "not", "leaf"])
        d = max(depth - 1, 0)
        if form == "cmp":
            op = self.pick(["==", "!=", "<", "<=", ">", ">="])
            kind = self.pick(["int", "float", "unsigned", "mixed"])
            if kind == "int":
                return f"({self.iexpr(1000, d)} {op} {self.iexpr(1000, d)})"
            if kind == "float":
                return f"({self.fexpr(d, libm=False)} {op} {self.fexpr(d, libm=False)})"
            if kind == "unsigned":
                return f"({self.uexpr(d)} {op} {self.uexpr(d)})"
            self.gen.features.add("int-unsigned comparison")
            return f"({self.iexpr(1000, d)} {op} {self.uexpr(d)})"
        if form == "logic" and depth > 0:
            return f"({self.bexpr(d)} {self.pick(['&&', '||'])} {self.bexpr(d)})"
        if form == "not" and depth > 0:
            return f"!{self.bexpr(d)}"
        bools = self.arrays_of("bool")
        if bools and self.chance(0.5):
            name = self.pick(bools)
            return self.access(name, self.readable[name])
        return f"({self.iexpr(3, d)} > {self.draw(st.integers(-1, 1))})"

    def fexpr(self, depth: int, libm: bool = True) -> str:
        """A float expression of any kind (``libm``: expf and logf allowed)."""
        if depth <= 0 or self.chance(0.25):
            return self.fleaf()
        forms = ["arith", "arith", "call", "select", "conv", "neg", "exact"]
        form = self.pick(forms)
        d = depth - 1
        if form == "arith":
            return f"({self.fexpr(d, libm)} {self.pick('+-*/')} {self.fexpr(d, libm)})"
        if form == "call":
            names = ["sqrtf", "fabsf", "floorf", "fminf", "fmaxf", "fmaf"]
            if libm:
                names += ["expf", "logf"]
            name = self.pick(names)
            self.gen.features.add(name)
            if name in ("expf", "logf"):
                self.gen.reordered = True
            arity = {"fminf": 2, "fmaxf": 2, "fmaf": 3}.get(name, 1)
            return f"{name}({', '.join(self.fexpr(d, libm) for _ in range(arity))})"
        if form == "select":
            return f"({self.bexpr(d)} ? {self.fexpr(d, libm)} : {self.fexpr(d, libm)})"
        if form == "conv":
            self.gen.features.add("conversion")
            source = self.pick(["int", "unsigned", "uint16_t"])
            if source == "int":
                return f"(float){self.iexpr(2**30, d)}"
            if source == "unsigned":
                return f"(float){self.uexpr(d)}"
            return f"(float)(uint16_t)({self.iexpr(100000, d)})"
        if form == "neg":
            return f"-({self.fexpr(d, libm)})"
        return self.fexact(d)[0]

    def fleaf(self) -> str:
        options = ["#", *(f"@{n}" for n in self.arrays_of("float"))]
        options += [s.name for s in self.gen.float_scalars]
        options += [loc.name for loc in self.locals if loc.ctype == "float"]
        text = self.pick(options)
        if text == "#":
            return self.pick(["0.5f", "2.0f", "0.0f", "1.0f", "3.25f", "1.0e-3f", "100.0f", "0.1f"])
        if text.startswith("@"):
            return self.access(text[1:], self.readable[text[1:]])
        return text

    def fexact(self, depth: int) -> tuple[str, float, int]:
        """A float expression exact in float arithmetic: (text, magnitude, grain), every value a
        multiple of 2^-grain of magnitude at most ``magnitude`` (NaN and inf aside), so that sums
        of up to 64 such values are exact in any order."""
        if depth <= 0 or self.chance(0.3):
            return self.fexact_leaf()
        d = depth - 1
        form = self.pick(["add", "mul", "call", "select", "neg"])
        a = self.fexact(d)
        if form == "neg":
            return f"-({a[0]})", a[1], a[2]
        b = self.fexact(d)
        if form == "add":
            text, mag, grain = f"({a[0]} {self.pick('+-')} {b[0]})", a[1] + b[1], max(a[2], b[2])
        elif form == "mul":
            text, mag, grain = f"({a[0]} * {b[0]})", a[1] * b[1], a[2] + b[2]
        elif form == "call":
            name = self.pick(["fminf", "fmaxf", "fabsf", "floorf"])
            args = f"{a[0]}, {b[0]}" if name in ("fminf", "fmaxf") else a[0]
            mag = max(a[1], b[1]) if name in ("fminf", "fmaxf") else a[1] + 1
            text, grain = f"{name}({args})", max(a[2], b[2])
        else:
            text = f"({self.bexpr(d)} ? {a[0]} : {b[0]})"
            mag, grain = max(a[1], b[1]), max(a[2], b[2])
        if mag * 2**grain >= EXACT_LIMIT:
            return a
        return text, mag, grain

    def fexact_leaf(self) -> tuple[str, float, int]:
        options: list[tuple[str, float, int]] = [
            ("0.5f", 0.5, 1),
            ("0.25f", 0.25, 2),
            ("1.0f", 1.0, 0),
            ("3.0f", 3.0, 0),
            ("1.5f", 1.5, 1),
        ]
        options += [
            (f"@{n}", 4.0, 3) for n in self.arrays_of("float") if self.gen.exact_arrays.get(n)
        ]
        options += [
            (loc.name, *loc.exact)
            for loc in (*self.gen.float_scalars, *self.locals)
            if loc.exact and loc.exact[0] * 2 ** loc.exact[1] < EXACT_LIMIT
        ]
        options += [("#", 16.0, 0)]
        text, mag, grain = self.pick(options)
        if text == "#":
            return f"(float){self.iexpr(16, 1)}", mag, grain
        if text.startswith("@"):
            text = self.access(text[1:], self.readable[text[1:]])
        return text, mag, grain

    def value(self, ctype: str, depth: int = 3) -> str:
        """A value to store into an element of ``ctype`` (conversion on assignment included)."""
        if ctype == "float":
            return self.fexpr(depth)
        if ctype == "int":
            return self.iexpr(self.gen.store_bound, depth)
        if ctype == "unsigned":
            return self.uexpr(depth) if self.chance(0.7) else self.iexpr(1000, depth)
        if ctype == "uint16_t":
            return self.pick([self.iexpr(100000, depth), self.uexpr(depth)])
        return self.pick([self.bexpr(depth), self.fexpr(depth), self.iexpr(100, depth)])

    # -------------------------------------------------------------------------- statements
    def statement(self, budget: int) -> None:
        kinds = ["local", "store", "store"]
        if budget > 0:
            kinds += ["if", "for", "accumulate"]
        getattr(self, f"_{self.pick(kinds)}")(budget)

    def block(self, budget: int) -> None:
        for _ in range(self.draw(st.integers(1, 3))):
            self.statement(budget)

    def _local(self, budget: int) -> None:
        ctype = self.pick(["float", "int", "int", "unsigned"])
        name = self.fresh("t")
        start = len(self.lines)
        if ctype == "int":
            bound = self.pick([10, 1000, 2**20])
            self.emit(f"int {name} = {self.iexpr(bound, 3)};")
            self.locals.append(_Local(name, "int", bound))
        elif ctype == "float" and self.chance(0.5):
            text, mag, grain = self.fexact(3)
            self.emit(f"float {name} = {text};")
            self.locals.append(_Local(name, "float", exact=(mag, grain)))
        else:
            self.emit(f"{ctype} {name} = {self.value(ctype)};")
            self.locals.append(_Local(name, ctype))
        self.locals[-1].span = (start, len(self.lines))

    def _store(self, budget: int, name: str | None = None) -> None:
        names = [n for n in self.writable if n in self.readable]  # updates of defined arrays
        if not names:
            self._local(budget)
            return
        name = name or self.pick(names)
        ctype = self.gen.arrays[name].ctype
        target = self.access(name, self.writable[name], store=True)
        op = "="
        if ctype != "bool" and self.chance(0.6):
            op = self.pick(["+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="])
            if ctype == "float" and op not in ("+=", "-=", "*=", "/="):
                op = "+="
        self.gen.features.add(f"{ctype} {op}")
        self.emit(f"{target} {op} {self.update(name, ctype, op)};")

    def update(self, name: str, ctype: str, op: str) -> str:
        """The right side of ``name[...] op= value``, bounded so that int results stay defined."""
        if ctype == "float":
            return self.fexpr(3)
        if op in ("<<=", ">>="):
            if ctype == "int":  # a shift of a negative int is undefined
                return "0" if op == "<<=" else str(self.draw(st.integers(0, 31)))
            return str(self.draw(st.integers(0, 15 if ctype == "uint16_t" else 31)))
        if op in ("/=", "%="):
            divisor = self.iexpr(100, 2) if ctype != "unsigned" else self.uexpr(2)
            return f"({divisor} | 1)"
        if ctype == "int":
            if op == "=":
                return self.iexpr(self.gen.store_bound, 3)
            if op == "*=":  # a factor in [-1, 1]: repeated in loops, it cannot grow the value
                return self.iexpr(1, 2)
            return self.iexpr(1000, 3)
        if ctype == "uint16_t" and op == "*=":
            return self.iexpr(1000, 2)
        return self.value(ctype, 2) if ctype != "uint16_t" else self.iexpr(100000, 2)

    def _if(self, budget: int) -> None:
        guarded = [v for v in self.vars if not (v.lo and v.hi) and self.gen.value(v.extent) > 1]
        narrowed: list[_Var] = []
        if guarded and self.chance(0.6):
            v = self.pick(guarded)
            lo, hi = self.pick([(1, v.hi), (v.lo, 1), (1, 1)])
            tests = ([f"{v.name} > 0"] if lo else []) + (
                [f"{v.name} < {v.extent} - 1"] if hi else []
            )
            narrowed = [_Var(v.name, v.extent, lo, hi)]
            cond = " && ".join(tests)
            self.gen.features.add("guard")
        else:
            cond = self.bexpr(2)
        self.emit(f"if ({cond}) {{")
        self.nested(budget, narrowed)
        if self.chance(0.5):
            self.lines[-1] += " else {"
            self.nested(budget, [])

    def nested(self, budget: int, narrowed: list[_Var], body=None) -> None:
        saved_vars, saved_locals = list(self.vars), len(self.locals)
        self.vars = [v for v in self.vars if v.name not in {n.name for n in narrowed}] + narrowed
        self.indent += 1
        if body is None:
            self.block(budget - 1)
        else:
            body()
        self.indent -= 1
        self.vars = saved_vars
        self.drop_unused(self.locals[saved_locals:])
        del self.locals[saved_locals:]
        self.emit("}")

    def loop_header(self, extent: str) -> tuple[str, _Var]:
        """A sequential loop over ``extent``: plain, offset, reversed, strided or triangular."""
        name = self.fresh("k")
        kinds = ["plain", "offset", "reversed", "strided"]
        outer = [v for v in self.vars if v.extent == extent]
        if outer:
            kinds += ["triangle"]
        kind = self.pick(kinds)
        self.gen.features.add(f"{kind} loop")
        if kind == "plain":
            op = self.pick(["<", "<=", "!="])
            bound = extent if op != "<=" else f"{extent} - 1"
            return f"for (int {name} = 0; {name} {op} {bound}; {name}++)", _Var(name, extent)
        if kind == "offset":
            lo, hi = self.pick([(1, 0), (0, 1), (1, 1)])
            end = f"{extent} - {hi}" if hi else extent
            return f"for (int {name} = {lo}; {name} < {end}; {name}++)", _Var(name, extent, lo, hi)
        if kind == "reversed":
            return (
                f"for (int {name} = {extent} - 1; {name} >= 0; {name}--)",
                _Var(name, extent),
            )
        if kind == "strided":
            step = self.pick(["+= 2", "+= 3", "= " + name + " + 2"])
            loop = _Var(name, extent)
            return f"for (int {name} = 0; {name} < {extent}; {name} {step})", loop
        v = self.pick(outer)
        if self.chance(0.5):
            return (
                f"for (int {name} = 0; {name} <= {v.name}; {name}++)",
                _Var(name, extent, 0, v.hi),
            )
        return f"for (int {name} = {v.name}; {name} < {extent}; {name}++)", _Var(name, extent, v.lo)

    def _for(self, budget: int) -> None:
        extents = sorted({d.extent for dims in self.readable.values() for d in dims if not d.fixed})
        if not extents:
            self._local(budget)
            return
        header, var = self.loop_header(self.pick(extents))
        start = len(self.lines)
        self.emit(header + " {")
        self.nested(budget, [var])
        if self.idle(var.name, start):
            self.lines[start:] = [""] * (len(self.lines) - start)

    def _accumulate(self, budget: int) -> None:
        """``acc = init; for (...) acc op= e;`` then a store or a local: the C spelling of a sum
        (kernelc raises it to ``sum``) and other folds."""
        extents = sorted({d.extent for dims in self.readable.values() for d in dims if not d.fixed})
        if not extents:
            self._local(budget)
            return
        extent = self.pick(extents)
        header, var = self.loop_header(extent)
        acc = self.fresh("acc")
        trips = self.gen.value(extent)
        start = len(self.lines)
        if self.chance(0.6):
            op = self.pick(["+=", "+=", "-=", "max", "min"])
            self.emit(f"float {acc} = {self.pick(['0.0f', '1.0f', '-2.5f'])};")
            self.emit(header + " {")
            self.vars.append(var)
            self.indent += 1
            text, mag, grain = self.fexact(2)
            self.vars.pop()
            if op in ("max", "min"):
                self.emit(f"{acc} = f{op}f({acc}, {text});")
            else:
                self.emit(f"{acc} {op} {text};")
            self.indent -= 1
            self.emit("}")
            self.locals.append(_Local(acc, "float", exact=(mag * trips + 2.5, max(grain, 1))))
        else:
            self.emit(f"int {acc} = {self.draw(st.integers(-3, 3))};")
            self.emit(header + " {")
            self.vars.append(var)
            self.indent += 1
            self.emit(f"{acc} {self.pick(['+=', '-='])} {self.iexpr(1000, 2)};")
            self.vars.pop()
            self.indent -= 1
            self.emit("}")
            self.locals.append(_Local(acc, "int", 1000 * trips + 3))
        if self.idle(var.name, start + 1):
            self.lines[start:] = [""] * (len(self.lines) - start)
            self.locals.pop()
            return
        self.locals[-1].span = (start, len(self.lines))
        self.gen.features.add("accumulation")
        if self.chance(0.5):
            self._store(budget)

    def define(self, name: str, dims: tuple[_Dim, ...]) -> None:
        """Write every element of ``name`` this body owns: loops over its free dimensions."""
        free = [d for d in dims if d.fixed is None]
        loops = [_Var(self.fresh("k"), d.extent) for d in free]
        for v in loops:
            self.emit(f"for (int {v.name} = 0; {v.name} < {v.extent}; {v.name}++)")
            self.indent += 1
        self.vars += loops
        ctype = self.gen.arrays[name].ctype
        indices, free_vars = [], iter(loops)
        for d in dims:
            indices.append(d.fixed if d.fixed is not None else f"{d.base}{next(free_vars).name}")
        value = self.value(ctype)
        self.emit(f"{name}{''.join(f'[{i}]' for i in indices)} = {value};")
        del self.vars[len(self.vars) - len(loops) :]
        self.indent -= len(loops)


# ---------------------------------------------------------------------------- the program
class _Program:
    def __init__(self, draw) -> None:
        self.draw = draw
        self.count = 0
        self.features: set[str] = set()
        self.reordered = False
        self.sizes: dict[str, int] = {}
        self.arrays: dict[str, Array] = {}
        self.bounds: dict[str, int] = {}  # int arrays: |element| <= bound
        self.exact_arrays: dict[str, bool] = {}
        self.int_scalars: list[_Local] = []
        self.float_scalars: list[_Local] = []
        self.store_bound = 2**24
        self.defined: set[str] = set()
        self.avoid: frozenset[str] = frozenset()
        self.untouched: set[str] = set()  # tofrom arrays not updated yet

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def value(self, extent: str) -> int:
        return int(eval(extent, {}, dict(self.sizes)))  # noqa: S307

    def add_array(self, array: Array) -> None:
        self.arrays[array.name] = array
        # an int array written by the program holds a stored value plus updates (each at most
        # 1000 per execution, a few hundred executions): its elements stay below 2^25
        self.bounds[array.name] = INPUT_BOUND if array.role == "in" else 2**25
        if array.role == "inout":
            self.untouched.add(array.name)
        if array.role in ("in", "inout"):
            self.defined.add(array.name)
            self.exact_arrays[array.name] = array.role == "in" and array.dyadic

    def readable(self, name: str, dims: tuple[_Dim, ...]) -> bool:
        return name in self.defined and all(d.fixed is None for d in dims)


def _ctype(draw, gen: _Program) -> str:
    """An array's element type; "narrow-arrays" leaves out uint16_t and bool."""
    narrow = "narrow-arrays" in gen.avoid
    return draw(st.sampled_from([t for t in WEIGHTED if not (narrow and t in NARROW)]))


def _nest(loops: list[_Var], pragma: str, body: _Body, indent: int) -> list[str]:
    lines = [pragma]
    for depth, v in enumerate(loops):
        pad = "  " * (indent + depth)
        lines.append(f"{pad}for (int {v.name} = 0; {v.name} < {v.extent}; {v.name}++)")
    pad = "  " * (indent + len(loops) - 1)
    return [*lines, pad + "{", *body.finish(), pad + "}"]


def _loops_program(draw, gen: _Program, lines: list[str]) -> list[Array]:
    """Data-parallel loops and reductions in one target region."""
    dims_choice = [("N",), ("M",), ("N", "M"), ("N", "M")]
    made = [
        Array(gen.fresh("o"), _ctype(draw, gen), draw(st.sampled_from(dims_choice)), "out")
        for _ in range(draw(st.integers(1, 2)))
    ]
    made += [
        Array(gen.fresh("w"), _ctype(draw, gen), draw(st.sampled_from(dims_choice)), "temp")
        for _ in range(draw(st.integers(0, 1)))
    ]
    made += [
        Array(gen.fresh("x"), _ctype(draw, gen), draw(st.sampled_from(dims_choice)), "inout")
        for _ in range(draw(st.integers(0, 1)))
    ]
    for a in made:
        gen.add_array(a)
    results: list[tuple[str, str]] = []  # (text, ctype) stored by plain statements at the end
    body: list[str] = []
    pending = [a.name for a in made if a.role != "inout"]
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 2)) == 0 and len(results) < 4:
            body += _reduction_loop(draw, gen, results)
        else:
            body += _parallel_loop(draw, gen, pending, "parallel for", 2)
    while pending:
        body += _parallel_loop(draw, gen, pending, "parallel for", 2)
    for name in sorted(gen.untouched):  # a tofrom array's copy-back must carry something
        body += _parallel_loop(draw, gen, pending, "parallel for", 2, name)
    if results:
        floats = any(ctype == "float" for _, ctype in results)
        ctype = "float" if floats else draw(st.sampled_from(["int", "float"]))
        red = Array(gen.fresh("r"), ctype, (str(len(results)),), "out")
        gen.add_array(red)
        made.append(red)
        body += [f"    {red.name}[{k}] = {text};" for k, (text, _) in enumerate(results)]
    lines.append(f"#pragma omp target {_maps(gen)}")
    lines += ["  {", *body, "  }"]
    return made


def _reduction_loop(draw, gen: _Program, results: list[tuple[str, str]]) -> list[str]:
    """``parallel for reduction(op: s)`` over one or two dimensions into new scalars of the
    region; each result is stored by a plain statement and may be read by later loops."""
    extents = draw(st.sampled_from([("N",), ("M",), ("N", "M")]))
    trips = math.prod(gen.value(e) for e in extents)
    loops = [_Var(gen.fresh("i"), e) for e in extents]
    body = _Body(gen, 2 + len(loops))
    for name in gen.defined:
        body.readable[name] = tuple(_Dim(d) for d in gen.arrays[name].dims)
    body.vars += loops
    clauses, inits, new = [], [], []
    for _ in range(draw(st.integers(1, 2))):
        ctype = draw(st.sampled_from(["float", "float", "int", "unsigned"]))
        op = draw(st.sampled_from(REDUCE))
        if ctype == "int" and op == "*" and trips > 12:
            op = "+"
        name = gen.fresh("s")
        gen.features.add(f"reduction({op}) {ctype}")
        cmp = ">" if op == "max" else "<"
        if ctype == "float":
            init = draw(st.sampled_from(["0.0f", "1.0f", "-1.5f"]))
            if op == "+":
                text, mag, grain = body.fexact(2)
                form = f"{name} += {text};" if draw(st.booleans()) else f"{name} = {name} + {text};"
                body.emit(form)
                local = _Local(name, "float", exact=(mag * trips + 1.5, max(grain, 1)))
            elif op == "*":  # factors in [0.5, 2]: no overflow, no underflow, any order
                gen.reordered = True
                factor = body.fexpr(2, libm=False)
                body.emit(f"{name} *= fminf(fmaxf({factor}, 0.5f), 2.0f);")
                local = _Local(name, "float")
            else:
                text, mag, grain = body.fexact(2)
                if draw(st.booleans()):
                    body.emit(f"{name} = f{op}f({name}, {text});")
                else:
                    body.emit(f"{name} = {text} {cmp} {name} ? {text} : {name};")
                local = _Local(name, "float", exact=(max(mag, 1.5), max(grain, 1)))
        elif ctype == "int":
            init = str(draw(st.integers(-3, 3)))
            if op == "+":
                body.emit(f"{name} += {body.iexpr(1000, 2)};")
                local = _Local(name, "int", 1000 * trips + 3)
            elif op == "*":
                body.emit(f"{name} *= {body.iexpr(2, 2)};")
                local = _Local(name, "int", 3 * 2**trips)
            else:
                e = body.iexpr(1000, 2)
                body.emit(f"{name} = {e} {cmp} {name} ? {e} : {name};")
                local = _Local(name, "int", 1000)
        else:
            init = f"{draw(st.integers(0, 3))}u"
            if op in ("+", "*"):
                body.emit(f"{name} {op}= {body.uexpr(2)};")
            else:
                e = body.uexpr(2)
                body.emit(f"{name} = {e} {cmp} {name} ? {e} : {name};")
            local = _Local(name, "unsigned")
        inits.append(f"    {ctype} {name} = {init};")
        clauses.append(f"reduction({op}: {name})")
        new.append(local)
    collapse = " collapse(2)" if len(loops) == 2 else ""
    pragma = f"#pragma omp parallel for{collapse} {' '.join(clauses)}"
    lines = [*inits, *_nest(loops, pragma, body, 2)]
    for local in new:
        if local.ctype == "int":
            gen.int_scalars.append(local)
            results.append((local.name, "int"))
        elif local.ctype == "float":
            gen.float_scalars.append(local)
            results.append((local.name, "float"))
        else:
            results.append((f"(int)({local.name} % 1000u)", "int"))
    return lines


def _parallel_loop(
    draw, gen: _Program, pending: list[str], pragma: str, indent: int, anchor: str | None = None
) -> list[str]:
    """A worksharing nest over the dimensions of one array (``anchor``, by default drawn): it
    defines the pending arrays it owns (every element, first in each iteration) and updates
    defined ones (compound stores at its own elements, guards, inner loops), reading
    everything defined before it. A defined anchor is updated at least once."""
    choices = [a for a in gen.arrays.values() if a.role != "in"]
    anchor = anchor or draw(st.sampled_from(pending or [a.name for a in choices]))
    dims = gen.arrays[anchor].dims
    collapse = len(dims) == 2 and draw(st.booleans())
    owned = dims if collapse else dims[:1]
    loops = [_Var(gen.fresh("i"), e) for e in owned]
    fixed = {e: v.name for e, v in zip(owned, loops, strict=True)}
    body = _Body(gen, indent + len(loops))
    defines, updates = [], []
    for a in choices:
        if a.dims[: len(owned)] != owned or (collapse and a.dims != owned):
            continue
        spec = tuple(
            _Dim(d, fixed=fixed[d]) if k < len(owned) else _Dim(d) for k, d in enumerate(a.dims)
        )
        if a.name in pending:
            defines.append((a.name, spec))
        elif a.name in gen.defined and (
            a.name == anchor or a.name in gen.untouched or draw(st.booleans())
        ):
            updates.append((a.name, spec))
    updated = {name for name, _ in updates}
    for name in gen.defined - updated:
        body.readable[name] = tuple(_Dim(d) for d in gen.arrays[name].dims)
    for name, spec in updates:
        body.readable[name] = spec
        body.writable[name] = spec
    body.vars += loops
    for name, spec in defines:
        body.define(name, spec)
    for name in sorted(updated):
        if name == anchor or name in gen.untouched:
            body._store(0, name)
            gen.untouched.discard(name)
    body.block(2)
    for name, _ in defines:
        pending.remove(name)
        gen.defined.add(name)
    if collapse:
        pragma += " collapse(2)"
    gen.features.add(pragma)
    return _nest(loops, f"#pragma omp {pragma}", body, indent)


def _maps(gen: _Program) -> str:
    clauses = []
    for role, kind in (("in", "to"), ("out", "from"), ("inout", "tofrom")):
        sections = [
            a.name + "".join(f"[0:{d}]" for d in a.dims)
            for a in gen.arrays.values()
            if a.role == role
        ]
        if sections:
            clauses.append(f"map({kind}: {', '.join(sections)})")
    temps = [a.name for a in gen.arrays.values() if a.role == "temp"]
    if temps:
        clauses.append(f"map(alloc: {', '.join(temps)})")
    return " ".join(clauses)


def _teams_program(draw, gen: _Program, lines: list[str]) -> list[Array]:
    """One ``target teams distribute parallel for`` nest defining every output, combined or as
    ``target teams`` + ``distribute parallel for``."""
    dims = draw(st.sampled_from([("N",), ("N", "M")]))
    made = [
        Array(gen.fresh("o"), _ctype(draw, gen), dims, "out")
        for _ in range(draw(st.integers(1, 2)))
    ]
    if draw(st.booleans()):
        made.append(Array(gen.fresh("x"), _ctype(draw, gen), dims, "inout"))
    for a in made:
        gen.add_array(a)
    pending = [a.name for a in made if a.role == "out"]
    teams = draw(st.sampled_from(["", " num_teams(2)", " num_teams(3)"]))
    gen.features.add(f"teams{teams}")
    loop = _parallel_loop(draw, gen, pending, "distribute parallel for", 1)
    assert not pending  # every output has the anchor's dimensions
    if draw(st.booleans()):
        lines.append(f"#pragma omp target teams{teams} {_maps(gen)}")
        lines += loop
    else:
        construct = loop[0].removeprefix("#pragma omp ")
        lines.append(f"#pragma omp target teams {construct}{teams} {_maps(gen)}")
        lines += loop[1:]
    return made


def _task_arrays(draw, gen: _Program, count: int, role: str, prefix: str) -> list[Array]:
    result = []
    for _ in range(count):
        length = draw(st.sampled_from(["NB * BS", "NB * BS", "NB"]))
        result.append(Array(gen.fresh(prefix), _ctype(draw, gen), (length,), role))
    return result


def _block_dim(length: str, at: str) -> _Dim:
    """Block ``at`` (an expression of the block number) of an array over NB blocks."""
    if length == "NB":
        return _Dim("1", fixed=at)
    return _Dim("BS", base=f"{at} * BS + ")


def _section(array: Array, at: str | None) -> str:
    length = array.dims[0]
    if at is None:
        return f"{array.name}[0:{length}]"
    if length == "NB":
        return f"{array.name}[{at}]"
    return f"{array.name}[{at} * BS:BS]"


def _task(
    draw, gen: _Program, at: str, sources: dict[str, str | None], target: str, indent: int
) -> list[str]:
    """One task on block ``at``: reads ``sources`` (name -> block expression, or None for the
    whole array), defines or updates ``target``'s block; its depend clauses name exactly the
    sections it touches."""
    body = _Body(gen, indent + 1)
    for name, where in sources.items():
        length = gen.arrays[name].dims[0]
        body.readable[name] = (_Dim(length),) if where is None else (_block_dim(length, where),)
    spec = (_block_dim(gen.arrays[target].dims[0], at),)
    update = target in gen.defined
    if update:
        body.readable[target] = spec
        body.writable[target] = spec
        body._store(0, target)
    else:
        body.define(target, spec)
    body.block(2)
    gen.defined.add(target)
    depends = []
    for name in sorted(body.read | {target}):
        if name == target:
            kind = "inout" if target in body.read or (update and draw(st.booleans())) else "out"
            depends.append(f"depend({kind}: {_section(gen.arrays[name], at)})")
        else:
            depends.append(f"depend(in: {_section(gen.arrays[name], sources[name])})")
    gen.features.add("task")
    pad = "  " * indent
    return [f"#pragma omp task {' '.join(depends)}", pad + "{", *body.finish(), pad + "}"]


def _tasks_program(draw, gen: _Program, lines: list[str], threads: bool) -> list[Array]:
    """A task graph over NB blocks: per-thread chains (``threads``) or loops of tasks created by
    one thread (``single``)."""
    outputs = _task_arrays(draw, gen, draw(st.integers(1, 2)), "out", "o")
    temps = _task_arrays(draw, gen, draw(st.integers(0, 1)), "temp", "w")
    inouts = _task_arrays(draw, gen, draw(st.integers(0, 1)), "inout", "x")
    for a in (*outputs, *temps, *inouts):
        gen.add_array(a)
    inputs = [a.name for a in gen.arrays.values() if a.role in ("in", "inout")]
    whole = {n: gen.arrays[n].role == "in" and draw(st.booleans()) for n in inputs}
    targets = [a.name for a in (*temps, *outputs, *inouts)]
    if threads:
        gen.features.add("parallel num_threads")
        lines += [
            "#pragma omp parallel num_threads(NB)",
            "  {",
            "    int tid = omp_get_thread_num();",
        ]
        written: list[str] = []
        later = []
        for name in targets:
            if gen.arrays[name].role == "out" and draw(st.integers(0, 3)) == 0:
                later.append(name)  # defined after the barrier by a worksharing loop
                continue
            sources = {n: (None if whole[n] else "tid") for n in inputs}
            sources.update({n: "tid" for n in written})
            lines += _task(draw, gen, "tid", _subset(draw, sources), name, 2)
            written.append(name)
        if later or draw(st.booleans()):
            gen.features.add("barrier")
            lines.append("#pragma omp barrier")
            pending = list(later)
            for _ in range(max(len(later), 1)):
                lines += _parallel_loop(draw, gen, pending, pragma="for", indent=2)
        lines.append("  }")
    else:
        nt = draw(st.sampled_from(["", " num_threads(2)", " num_threads(4)"]))
        gen.features.add("parallel single")
        lines += [f"#pragma omp parallel{nt}", "#pragma omp single", "  {"]
        written = []
        for name in targets:
            reverse = draw(st.booleans())
            lines.append(
                "    for (int b = NB - 1; b >= 0; b--) {"
                if reverse
                else "    for (int b = 0; b < NB; b++) {"
            )
            sources: dict[str, str | None] = {n: (None if whole[n] else "b") for n in inputs}
            sources.update({n: "b" for n in written})
            if written and draw(st.booleans()):
                lines.append("      int lb = b > 0 ? b - 1 : NB - 1;")
                gen.features.add("neighbour block")
                sources[draw(st.sampled_from(written))] = "lb"
            lines += _task(draw, gen, "b", _subset(draw, sources), name, 3)
            lines.append("    }")
            if draw(st.integers(0, 3)) == 0:
                lines.append("#pragma omp taskwait")
                gen.features.add("taskwait")
            written.append(name)
        lines.append("  }")
    return [*outputs, *temps, *inouts]


def _subset(draw, sources: dict[str, str | None]) -> dict[str, str | None]:
    names = sorted(sources)
    if not names:
        return {}
    chosen = draw(st.lists(st.sampled_from(names), min_size=0, max_size=3, unique=True))
    return {n: sources[n] for n in chosen}


@st.composite
def programs(draw, avoid: frozenset[str] = frozenset()) -> Generated:
    """One random OpenMP C program; ``avoid`` names constructs to leave out ("unused-local":
    every local and loop index is read, "narrow-arrays": no uint16_t or bool arrays; see
    fuzz/known_bugs.py)."""
    gen = _Program(draw)
    gen.avoid = avoid
    kind = draw(
        st.sampled_from(["loops", "loops", "loops", "teams", "threads", "single", "single"])
    )
    gen.features.add(kind)
    if kind in ("loops", "teams"):
        gen.sizes = {"N": draw(st.integers(1, 5)), "M": draw(st.integers(1, 5))}
        input_dims = [("N",), ("M",), ("N", "M")]
    else:
        gen.sizes = {"NB": draw(st.integers(2, 4)), "BS": draw(st.integers(1, 4))}
        input_dims = [("NB * BS",), ("NB * BS",), ("NB",)]
    inputs = [
        Array(
            gen.fresh("a"),
            _ctype(draw, gen),
            draw(st.sampled_from(input_dims)),
            "in",
            draw(st.booleans()),
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    for a in inputs:
        gen.add_array(a)
    scalars = []
    for _ in range(draw(st.integers(0, 2))):
        s = Scalar(gen.fresh("n"), draw(st.sampled_from(["int", "float"])))
        scalars.append(s)
        if s.ctype == "int":
            gen.int_scalars.append(_Local(s.name, "int", INPUT_BOUND))
        else:
            gen.float_scalars.append(_Local(s.name, "float", exact=(4.0, 2)))
    body: list[str] = []
    if kind == "loops":
        made = _loops_program(draw, gen, body)
    elif kind == "teams":
        made = _teams_program(draw, gen, body)
    else:
        made = _tasks_program(draw, gen, body, threads=kind == "threads")
        body.insert(0, f"#pragma omp target {_maps(gen)}")
    entry = gen.fresh("kern")
    params = [a for a in (*inputs, *made) if a.role != "temp"]
    temps = [a for a in made if a.role == "temp"]
    signature = ", ".join([*(a.decl() for a in params), *(f"{s.ctype} {s.name}" for s in scalars)])
    defines = "".join(
        f"#define {n} {v}\n" if n == "NB" else f"#ifndef {n}\n#define {n} {v}\n#endif\n"
        for n, v in gen.sizes.items()
    )
    text = [HEADER, defines, f"void {entry}({signature}) {{"]
    text += [f"  {a.decl()};" for a in temps]
    text += body
    text.append("}\n")
    return Generated(
        "\n".join(text),
        entry,
        tuple(p.name for p in (*params, *scalars)),
        tuple(gen.sizes.items()),
        (*params, *temps),
        tuple(scalars),
        draw(st.integers(0, 2**32 - 1)),
        gen.reordered,
        frozenset(gen.features),
    )
