"""The cycles the fabric simulator charges for scalar CSL code, counted from the code itself.

The simulator (runtime/fabric/evaluate.py) charges one cycle per operator, load and call of an
expression, one per statement, two per loop iteration, a DSD operation's setup plus one cycle
per element, and a ``<math>`` routine's own cycles wherever it runs (applied by ``@map``, or
called by a function, an element function of ``@map`` included). The cost model counts the very
code the backend emits with the same charges, so the two cannot drift apart; only what the code
cannot say statically (the trips of a loop whose bound is loaded from memory, how often a branch
is taken) comes from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kernelc.csl import machine
from kernelc.csl import model as m

STATEMENT_CYCLES = 1  # issuing a statement (a declaration, an assignment, a call, a test)
ITERATION_CYCLES = 2  # a for loop's step and test, per iteration
WHILE_TEST_CYCLES = 2  # a while loop's test, per evaluation
MATH_MODULE = "math"  # the name kernelc's programs import ``<math>`` under
DSD_OPS = frozenset(  # the DSD operations the simulator runs: setup, then one element a cycle
    {
        *(
            f"{op}{t}"
            for op in ("fadd", "fsub", "fmul", "fmax", "fmac", "fmov", "fneg", "fabs")
            for t in "sh"
        ),
        "fs2h",
        "fh2s",
        "mov32",
        "mov16",
        "add16",
        "sub16",
    }
)


def routine_cycles(name: str) -> int:
    """Cycles of one ``<math>`` routine run on one element (software on the PE, modelled in
    machine.MATH_CYCLES), the same wherever it runs; a call of it also costs the call's cycle."""
    return machine.MATH_CYCLES[name]


def expr_cycles(e: m.Expr) -> int:
    """Cycles to evaluate an expression: one per operator, load or call."""
    match e:
        case m.Binary(lhs=a, rhs=b):
            return 1 + expr_cycles(a) + expr_cycles(b)
        case m.Unary(operand=a):
            return 1 + expr_cycles(a)
        case m.Index(obj=o, indices=idx):
            return 1 + expr_cycles(o) + sum(expr_cycles(i) for i in idx)
        case m.Call(args=args) | m.Builtin(args=args):
            return 1 + sum(expr_cycles(a) for a in args)
        case m.IfExpr(cond=c, then=a, orelse=b):
            return 1 + expr_cycles(c) + max(expr_cycles(a), expr_cycles(b))
        case m.Field(obj=o) | m.Deref(ptr=o):
            return expr_cycles(o)
    return 0


@dataclass
class Counter:
    """Counts a block's cycles. ``trips`` gives the iterations of a loop the code cannot bound
    (None: count it from the code); ``taken`` the share of runs in which a branch is taken."""

    functions: Mapping[str, m.FnDecl]
    dsd_lengths: Mapping[str, int]
    trips: Callable[[m.For | m.While], float | None]
    taken: Callable[[m.If], float]
    _known: dict[str, int] = field(default_factory=dict)
    _dsds: dict[str, int] = field(default_factory=dict)

    def block(self, stmts: tuple[m.Stmt, ...]) -> float:
        return sum(self.stmt(s) for s in stmts)

    def stmt(self, s: m.Stmt) -> float:
        match s:
            case m.VarDecl(name=n, value=v):
                if isinstance(v, m.Int):
                    self._known[n] = v.value
                length = self._dsd_length(v)
                if length is not None:
                    self._dsds[n] = length
                return STATEMENT_CYCLES + (self.expr(v) if v is not None else 0)
            case m.Assign(target=t, value=v):
                if isinstance(t, m.Name):
                    self._known.pop(t.id, None)  # no longer the constant it was declared with
                return STATEMENT_CYCLES + self.expr(v) + expr_cycles(t)
            case m.ExprStmt(expr=e) | m.Return(value=e) if e is not None:
                return STATEMENT_CYCLES + self.expr(e)
            case m.If(cond=c, then=then, orelse=orelse):
                share = self.taken(s)
                branches = share * self.block(then) + (1 - share) * self.block(orelse)
                return STATEMENT_CYCLES + self.expr(c) + branches
            case m.For(body=body):
                n = self.trips(s)
                if n is None:
                    n = _range_trips(s.iter)
                return n * (ITERATION_CYCLES + self.block(body))
            case m.While(cond=c, body=body):
                n = self.trips(s)
                if n is None:
                    n = self._halvings(c)
                test = WHILE_TEST_CYCLES + self.expr(c)
                return (n + 1) * test + n * self.block(body)
        return 0

    def expr(self, e: m.Expr) -> float:
        """The expression's own charge, plus the bodies of the functions and ``<math>``
        routines it calls and the element cycles of the DSD operations it starts."""
        extra = 0.0
        for node in walk(e):
            match node:
                case m.Call(fn=m.Name(id=name)) if name in self.functions:
                    extra += self.block(self.functions[name].body)
                case m.Call(fn=m.Field(obj=m.Name(id=module), name=name)) if module == MATH_MODULE:
                    extra += routine_cycles(name)
                case m.Builtin(name=name, args=(m.Name(id=dst), *_)) if name in DSD_OPS:
                    length = self._dsds.get(dst, self.dsd_lengths.get(dst, 0))
                    extra += machine.DSD_SETUP_CYCLES + length
        return expr_cycles(e) + extra

    def _dsd_length(self, v: m.Expr | None) -> int | None:
        match v:
            case m.Builtin(name="increment_dsd_offset", args=(m.Name(id=base), *_)):
                return self._dsds.get(base, self.dsd_lengths.get(base))
        return None

    def _halvings(self, cond: m.Expr) -> float:
        """A bisection ``while (lo < hi)`` over constants halves hi - lo until it is empty."""
        match cond:
            case m.Binary(op="<", lhs=m.Name(id=lo), rhs=m.Name(id=hi)) if (
                lo in self._known and hi in self._known
            ):
                return max(self._known[hi] - self._known[lo], 0).bit_length()
        raise ValueError(f"no trip count for the while loop on {cond}")


def _range_trips(it: m.Expr) -> float:
    match it:
        case m.Builtin(name="range", args=(_, m.Int(value=a), m.Int(value=b), m.Int(value=c))):
            return max(0, -(-(b - a) // c))
        case m.Builtin(name="range", args=(_, m.Int(value=b))):
            return max(0, b)
    raise ValueError(f"no trip count for the loop over {it}")


def walk(e: m.Expr):
    """The expression and every expression inside it."""
    yield e
    match e:
        case m.Binary(lhs=a, rhs=b):
            yield from walk(a)
            yield from walk(b)
        case m.Unary(operand=a) | m.Field(obj=a) | m.Deref(ptr=a):
            yield from walk(a)
        case m.Index(obj=o, indices=idx):
            yield from walk(o)
            for i in idx:
                yield from walk(i)
        case m.Call(args=args) | m.Builtin(args=args):
            for a in args:
                yield from walk(a)
        case m.IfExpr(cond=c, then=a, orelse=b):
            yield from walk(c)
            yield from walk(a)
            yield from walk(b)
