"""How many distinct PE programs (roles) a layout makes: cslc compiles one program per
distinct pair of file and ``@set_tile_code`` params, so this is what its compile time scales
with. The builder's per-PE params are evaluated for every PE, each only over the coordinates
it depends on (a value of x alone once per column), with the library params as the fabric
simulator models them (``<memcpy/get_params>`` per kind of column, ``<collectives_2d/params>``
per kind of place along each axis); tests check the count against the simulator's evaluation
of the emitted layout.
"""

from __future__ import annotations

from itertools import product

from kernelc.affine import truncating_div
from kernelc.backends.csl.builder import Builder, PeParam, names_in
from kernelc.csl import model as m
from kernelc.csl.machine import place_in_line

COORDS = ("x", "y")
# ``<collectives_2d/params>`` per axis: a struct of the row's and the column's place is as many
# structs as pairs of the two, so the count takes the axes apart (no such member is emitted)
C2D_AXIS = "c2d axis"


class _Eval:
    """Integer and boolean layout expressions over one PE's coordinates."""

    def __init__(self, b: Builder, params: dict[str, PeParam]) -> None:
        self.fns = {f.name: f for f in b.layout_fns if isinstance(f, m.FnDecl)}
        self.params = params
        self.consts = {n: v for n, _t, v, _c in b.layout_params}

    def value(self, e: m.Expr, env: dict[str, object]) -> object:
        match e:
            case m.Int(value=v) | m.Bool(value=v):
                return v
            case m.Name(id=n) if n in env:
                return env[n]
            case m.Name(id=n) if n in self.params:
                env[n] = self.value(self.params[n].value, env)
                return env[n]
            case m.Name(id=n) if n in self.consts:
                return self.consts[n]
            case m.Name(id=n):
                return n  # a layout constant (a color): its name tells it apart
            case m.Unary(op="-", operand=a):
                return -self.value(a, env)
            case m.Unary(op="!", operand=a):
                return not self.value(a, env)
            case m.Binary(op=op, lhs=a, rhs=b):
                return _binary(op, self.value(a, env), self.value(b, env))
            case m.IfExpr(cond=c, then=a, orelse=b):
                return self.value(a if self.value(c, env) else b, env)
            case m.Call(fn=m.Name(id=n), args=args) if n in self.fns:
                return self.call(self.fns[n], [self.value(a, env) for a in args])
            case m.Call(fn=m.Field(obj=m.Name(id="memcpy"), name="get_params"), args=(a,)):
                return ("memcpy", place_in_line(self.value(a, env), env["width"]))
            case m.Call(fn=m.Field(obj=m.Name(id="c2d"), name="get_params"), args=(a, b, _)):
                x, y = self.value(a, env), self.value(b, env)
                return ("c2d", place_in_line(x, env["width"]), place_in_line(y, env["height"]))
            case m.Call(fn=m.Field(obj=m.Name(id=module), name=axis), args=(a,)) if (
                module == C2D_AXIS
            ):
                size = env["width" if axis == "x" else "height"]
                return ("c2d", axis, place_in_line(self.value(a, env), size))
        raise ValueError(f"cannot count the roles of a layout value {e}")

    def call(self, fn: m.FnDecl, args: list[object]) -> object:
        env: dict[str, object] = dict(zip((n for n, _t in fn.params), args, strict=True))
        result = self.run(fn.body, env)
        if result is None:
            raise ValueError(f"layout helper {fn.name} returned nothing")
        return result

    def run(self, body: tuple[m.Stmt, ...], env: dict[str, object]) -> object:
        for s in body:
            match s:
                case m.VarDecl(name=n, value=v) if v is not None:
                    env[n] = self.value(v, env)
                case m.Assign(target=m.Name(id=n), op="=", value=v):
                    env[n] = self.value(v, env)
                case m.Return(value=v) if v is not None:
                    return self.value(v, env)
                case m.If(cond=c, then=then, orelse=orelse):
                    out = self.run(then if self.value(c, env) else orelse, env)
                    if out is not None:
                        return out
                case m.For(iter=m.Builtin(name="range", args=(_, n)), var=v, body=inner):
                    for k in range(self.value(n, env)):
                        env[v] = k
                        out = self.run(inner, env)
                        if out is not None:
                            return out
                case m.Comment():
                    pass
                case _:
                    raise ValueError(f"cannot count the roles through {s}")
        return None


def _binary(op: str, a, b):
    if op in ("/", "%"):  # CSL integer division truncates towards zero
        q = truncating_div(a, b)
        return q if op == "/" else a - q * b
    return {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "<": lambda: a < b,
        ">": lambda: a > b,
        "<=": lambda: a <= b,
        ">=": lambda: a >= b,
        "==": lambda: a == b,
        "!=": lambda: a != b,
        "and": lambda: a and b,
        "or": lambda: a or b,
        "&": lambda: a & b,
        "|": lambda: a | b,
        ">>": lambda: a >> b,
        "<<": lambda: a << b,
    }[op]()


def _coords_of(p: PeParam, params: dict[str, PeParam]) -> set[str]:
    """The coordinates a per-PE value depends on, through the values it is computed from."""
    seen, todo, found = set(), [p.value], set()
    while todo:
        for n in names_in(todo.pop()):
            if n in COORDS:
                found.add(n)
            elif n in params and n not in seen:
                seen.add(n)
                todo.append(params[n].value)
    return found


def count(b: Builder) -> int:
    """The distinct (file, params) pairs of the layout ``b`` builds: its PE programs."""
    params = {p.name: p for p in b.pe_params}
    given = b.given_params()
    memcpy = m.call(m.member("memcpy", "get_params"), m.Name("x"))
    ev = _Eval(b, params)
    sizes = {"width": b.width, "height": b.height}
    groups: dict[tuple[str, ...], list[m.Expr]] = {}
    for p in given:
        match p.value:
            case m.Call(
                fn=m.Field(obj=m.Name(id="c2d"), name="get_params"),
                args=(m.Name(id="x") as x, m.Name(id="y") as y, _),
            ):
                groups.setdefault(("x",), []).append(m.call(m.member(C2D_AXIS, "x"), x))
                groups.setdefault(("y",), []).append(m.call(m.member(C2D_AXIS, "y"), y))
            case _:
                axes = tuple(sorted(_coords_of(p, params)))
                groups.setdefault(axes, []).append(m.Name(p.name))
    groups.setdefault(("x",), []).append(memcpy)
    if ("x", "y") in groups:
        return _count_all(b, ev, sizes, given, memcpy)
    total = 1  # values of x alone and of y alone: every pair of them occurs on the rectangle
    for axes, exprs in groups.items():
        ranges = [range(sizes["width" if a == "x" else "height"]) for a in axes]
        total *= len(
            {
                tuple(ev.value(e, {**sizes, **dict(zip(axes, at, strict=True))}) for e in exprs)
                for at in product(*ranges)
            }
        )
    return total


def _count_all(
    b: Builder, ev: _Eval, sizes: dict[str, int], given: list[PeParam], memcpy: m.Expr
) -> int:
    """Every PE's params, for layouts where a value of both coordinates meets values of one."""
    exprs = [memcpy, *(m.Name(p.name) for p in given)]
    return len(
        {
            tuple(ev.value(e, {**sizes, "x": x, "y": y}) for e in exprs)
            for x in range(b.width)
            for y in range(b.height)
        }
    )
