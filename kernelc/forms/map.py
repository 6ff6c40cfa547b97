"""The ``Map`` form: a nest of parallel loops of element-wise work (maps and stencils).

``out[i, j] = f(in[i + a, j + b], ...)``: every iteration stores to the element its loop
indices name, in every output, and reads inputs at affine offsets (a stencil's reach, whose
halo widths come from the access analysis). Reductions and searches inside the body belong to
other forms.

Guards that compare loop indices with affine bounds in the sizes (``if i > 0 && i < N - 1``,
``select(j == 0, a, b)``, nested ifs) split the iteration domain into disjoint rectangular
pieces (the interior and the border regions), each with its own straight-line body, so that a
target runs every piece as plain vector work over its sub-window instead of testing every
element. A nest without guards is the one-piece case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import Affine, affine, evaluate, is_static
from kernelc.graph import Task


@dataclass(frozen=True)
class Range:
    """``max(lo) .. min(hi)`` (half-open) of one loop variable: affine forms in the sizes."""

    lo: tuple[Affine, ...]
    hi: tuple[Affine, ...]

    def evaluate(self, env: Mapping[str, int]) -> tuple[int, int]:
        return max(_value(a, env) for a in self.lo), min(_value(a, env) for a in self.hi)

    def meet(self, other: Range) -> Range:
        return Range(_tightest(self.lo + other.lo, max), _tightest(self.hi + other.hi, min))


@dataclass(frozen=True)
class Piece:
    """A box of the iteration domain (one Range per loop, outermost first) and its body."""

    box: tuple[Range, ...]
    body: tuple[ir.Stmt, ...]  # lets and stores only

    @property
    def stores(self) -> tuple[ir.Store, ...]:
        return tuple(s for s in self.body if isinstance(s, ir.Store))

    def bounds(self, env: Mapping[str, int]) -> tuple[tuple[int, int], ...]:
        return tuple(r.evaluate(env) for r in self.box)


@dataclass(frozen=True)
class Map:
    loops: tuple[ir.For, ...]  # outermost first
    pieces: tuple[Piece, ...]  # disjoint; together they cover every iteration

    @property
    def stores(self) -> tuple[ir.Store, ...]:
        return tuple(s for p in self.pieces for s in p.stores)

    @property
    def output_indices(self) -> tuple[str, ...]:
        """The loop variables indexing every output, in dimension order."""
        return tuple(i.name for i in self.stores[0].indices)


def parallel_nest(body: tuple[ir.Stmt, ...]) -> tuple[tuple[ir.For, ...], tuple[ir.Stmt, ...]]:
    """The perfectly nested parallel loops at the top of a body, and the innermost body."""
    loops: list[ir.For] = []
    while len(body) == 1 and isinstance(body[0], ir.For) and body[0].parallel:
        loops.append(body[0])
        body = body[0].body
    return tuple(loops), body


def recognise_map(task: Task) -> Map | None:
    loops, body = parallel_nest(task.kernel.body)
    if not loops:
        return None
    env = task.size_env
    if not all(is_static(b, frozenset(env)) for lp in loops for b in (lp.lo, lp.hi)):
        return None  # a bound on an outer index (a triangle) or on data: no rectangle of blocks
    guards = _Guards({lp.var: k for k, lp in enumerate(loops)}, frozenset(env), len(loops))
    full = tuple(Range((_bound(lp.lo, env),), (_bound(lp.hi, env),)) for lp in loops)
    split = guards.split(body, full, ())
    if split is None:
        return None
    # pieces empty at these sizes are dropped; a nest empty everywhere stays one (empty) piece
    pieces = tuple(p for p in split if all(lo < hi for lo, hi in p.bounds(env))) or split[:1]
    if not pieces:
        return None
    for p in pieces:
        if any(isinstance(n, ir.Reduce | ir.Search) for n in ir.walk_body(p.body)):
            return None
    stores = tuple(s for p in pieces for s in p.stores)
    if not stores:
        return None
    names = {lp.var for lp in loops}
    first = stores[0].indices
    for s in stores:
        if not all(isinstance(i, ir.Name) and i.name in names for i in s.indices):
            return None
        if tuple(i.name for i in s.indices) != tuple(i.name for i in first):
            return None
    if {i.name for i in first} != names:
        return None
    outputs = {s.tensor for s in pieces[0].stores}
    if any({s.tensor for s in p.stores} != outputs for p in pieces):
        return None  # some region would leave an output unwritten
    return Map(loops, pieces)


# ------------------------------------------------------------------------------ guards

Box = tuple[Range, ...]


@dataclass(frozen=True)
class _Guards:
    """Splits bodies at conditions on the loop indices into disjoint boxes."""

    dims: dict[str, int]  # loop variable -> its place in the box
    sizes: frozenset[str]
    rank: int

    def split(
        self, stmts: tuple[ir.Stmt, ...], box: Box, done: tuple[ir.Stmt, ...]
    ) -> list[Piece] | None:
        """The pieces of ``box`` running ``done`` and then ``stmts``; None if not a map body."""
        for k, s in enumerate(stmts):
            rest = stmts[k + 1 :]
            if isinstance(s, ir.If):
                return self._branches(s.cond, box, done, s.then + rest, s.orelse + rest)
            if not isinstance(s, ir.Let | ir.Store):
                return None
            select = next(
                (
                    n
                    for n in ir.walk(s)
                    if isinstance(n, ir.Select) and self.regions(n.cond, True) is not None
                ),
                None,
            )
            if select is not None:
                cond = select.cond
                then = (_choose(s, cond, True), *rest)
                orelse = (_choose(s, cond, False), *rest)
                return self._branches(cond, box, done, then, orelse)
            done = (*done, s)
        return [Piece(box, done)]

    def _branches(self, cond, box, done, then, orelse) -> list[Piece] | None:
        out: list[Piece] = []
        for truth, stmts in ((True, then), (False, orelse)):
            regions = self.regions(cond, truth)
            if regions is None:
                return None
            for region in regions:
                pieces = self.split(stmts, _meet(box, region), done)
                if pieces is None:
                    return None
                out.extend(pieces)
        return out

    def regions(self, cond: ir.Expr, truth: bool) -> list[Box] | None:
        """Disjoint boxes where ``cond`` is ``truth``; None when it is no index guard."""
        match cond:
            case ir.Const(value=bool(v)):
                return [self._everywhere()] if v == truth else []
            case ir.Unary(op="!", operand=inner):
                return self.regions(inner, not truth)
            case ir.Binary(op="&&" | "||", lhs=a, rhs=b):
                both = (cond.op == "&&") == truth  # true of "and"-like splits
                first, second = self.regions(a, truth), self.regions(b, truth)
                other = self.regions(a, not truth)
                if first is None or second is None or other is None:
                    return None
                if both:
                    return [_meet(x, y) for x in first for y in second]
                return first + [_meet(x, y) for x in other for y in second]
            case ir.Binary(op="<" | "<=" | ">" | ">=" | "==" | "!=", lhs=a, rhs=b):
                return self._compare(cond.op, a, b, truth)
        return None

    def _compare(self, op: str, a: ir.Expr, b: ir.Expr, truth: bool) -> list[Box] | None:
        fa, fb = affine(a), affine(b)
        if fa is None or fb is None:
            return None
        diff = fa.add(fb, -1)  # diff op 0
        loop_vars = [n for n in diff.names if n in self.dims]
        if len(loop_vars) != 1 or not (diff.names - {loop_vars[0]}) <= self.sizes:
            return None
        (var,) = loop_vars
        coef = diff.coef(var)
        if coef not in (1, -1):
            return None
        rest = diff.substitute(var, Affine.of({}, 0))
        bound = rest.scale(-coef)  # var op bound, op flipped when coef is -1
        if coef == -1:
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
        if not truth:
            op = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}[op]
        one = Affine.of({}, 1)
        below, above = Range((), (bound,)), Range((bound.add(one),), ())
        ranges = {
            "<": [below],
            "<=": [Range((), (bound.add(one),))],
            ">": [above],
            ">=": [Range((bound,), ())],
            "==": [Range((bound,), (bound.add(one),))],
            "!=": [below, above],
        }[op]
        return [self._only(var, r) for r in ranges]

    def _everywhere(self) -> Box:
        return tuple(Range((), ()) for _ in range(self.rank))

    def _only(self, var: str, r: Range) -> Box:
        box = list(self._everywhere())
        box[self.dims[var]] = r
        return tuple(box)


def _meet(a: Box, b: Box) -> Box:
    return tuple(x.meet(y) for x, y in zip(a, b, strict=True))


def _tightest(forms: tuple[Affine, ...], pick) -> tuple[Affine, ...]:
    """Distinct bounds, keeping of those that differ by a constant only the tightest."""
    best: dict[tuple, Affine] = {}
    for f in forms:
        old = best.get(f.terms)
        best[f.terms] = f if old is None else Affine(f.terms, pick(old.const, f.const))
    return tuple(best.values())


def _choose(stmt: ir.Stmt, cond: ir.Expr, truth: bool) -> ir.Stmt:
    """``stmt`` with every ``select`` on ``cond`` replaced by the branch ``truth`` takes."""

    def pick(node):
        if isinstance(node, ir.Select) and node.cond == cond:
            return node.if_true if truth else node.if_false
        return node

    return ir.transform(stmt, pick)


def _bound(expr: ir.Expr, env: Mapping[str, int]) -> Affine:
    form = affine(expr)
    return form if form is not None else Affine.of({}, evaluate(expr, env))


def _value(form: Affine, env: Mapping[str, int]) -> int:
    return form.const + sum(c * env[n] for n, c in form.terms)
