"""OpenMP's rules checked on the work items, at the sizes the ``#define``s give.

- A task must stay inside its depend sections (else OpenMP's ordering would not cover it).
- Two items OpenMP may run at the same time must not touch the same elements with one writing
  (a race: OpenMP leaves the result undefined, so kernelc refuses to pick one).
- Every element an item reads must have been produced: by a ``map(to:)`` or an earlier item.
- Items that write overlapping regions get an explicit order (``TaskCall.after``) when no data
  dependence orders them already, so the graph keeps OpenMP's order of the writes.

Footprints are boxes: per dimension, the range an affine index can take over the loops (data-
dependent indices cover the whole bound region).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import networkx as nx

from kernelc import ir
from kernelc.affine import Interval, affine, bounds, evaluate, value_of
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp.order import Order
from kernelc.frontends.omp.state import Item, Tensor
from kernelc.graph import Region, covered, overlapping_pairs
from kernelc.passes.access import loop_ranges, narrow
from kernelc.printer import expr_text

Box = tuple[tuple[int, int], ...]


@dataclass
class Access:
    """A box of a tensor that an item reads or writes, and where in the source."""

    tensor: str
    box: Box
    span: Span


@dataclass
class Footprint:
    """What one item touches, at the ``#define`` sizes."""

    reads: list[Access]
    writes: list[Access]
    needed: list[Access]  # reads of data that earlier items (or maps) must have produced
    regions: dict[str, Box]  # kernel tensor parameter -> bound region
    written_regions: list[Region]


def check(
    items: list[Item],
    order: Order,
    tensors: dict[str, Tensor],
    sizes: dict[str, int],
    inputs: list[str],
) -> list[ir.TaskCall]:
    """Run the checks and return the calls with their explicit orders."""
    prints = [footprint(item, tensors, sizes) for item in items]
    ordered = order.ordered_pairs([item.node for item in items])
    _races(items, prints, ordered, tensors)
    _coverage(prints, tensors, sizes, inputs)
    return _explicit_order(items, prints)


# ------------------------------------------------------------------------------ footprints


def footprint(item: Item, tensors: dict[str, Tensor], sizes: dict[str, int]) -> Footprint:
    kernel = item.kernel
    regions: dict[str, Box] = {}
    env = dict(sizes)
    scalars: dict[str, int] = {}
    for p, arg in zip(kernel.params, item.call.args, strict=True):
        if p.is_scalar:
            if isinstance(arg, ir.Const):
                scalars[p.name] = int(arg.value) if not isinstance(arg.value, float) else 0
            continue
        regions[p.name] = _box(arg, tensors, sizes)
    for p, ref in zip(kernel.outputs, item.call.results, strict=True):
        regions[p.name] = _box(ref, tensors, sizes)
    for p in kernel.all_params:
        if p.is_scalar:
            continue
        for dim, (lo, hi) in zip(p.shape, regions[p.name], strict=True):
            if isinstance(dim, ir.Name):
                env[dim.name] = hi - lo
    walker = _Walker(item, regions)
    walker.block(kernel.body, {n: (v, v) for n, v in {**env, **scalars}.items()}, {})
    written = [
        Region(item.tensors[p.name], regions[p.name], (True,) * len(regions[p.name]))
        for p in kernel.outputs
    ]
    return Footprint(walker.reads, walker.writes, walker.needed, regions, written)


def _box(ref: ir.TensorRef, tensors: dict[str, Tensor], sizes: dict[str, int]) -> Box:
    shape = [evaluate(d, sizes) for d in tensors[ref.name].shape]
    if ref.slices is None:
        return tuple((0, n) for n in shape)
    return tuple((evaluate(s.lo, sizes), evaluate(s.hi, sizes)) for s in ref.slices)


class _Walker:
    """Collects the boxes an item's kernel reads and writes (in tensor coordinates)."""

    def __init__(self, item: Item, regions: dict[str, Box]) -> None:
        self.item = item
        self.regions = regions
        self.outputs = {p.name for p in item.kernel.outputs}
        refs = [*item.call.args, *item.call.results]
        self.sections = {
            p.name
            for p, ref in zip(item.kernel.all_params, refs, strict=True)
            if isinstance(ref, ir.TensorRef) and ref.slices is not None and item.kind == "task"
        }
        self.reads: list[Access] = []
        self.writes: list[Access] = []
        self.needed: list[Access] = []  # reads of data earlier items must have produced
        # Elements this item has surely written so far: (tensor, per dimension either
        # ("=", index text) or ("range", lo, hi)), so its later reads of them need no producer.
        self.facts: list[tuple[str, tuple]] = []

    def block(self, body, ranges, aliases) -> None:
        aliases = dict(aliases)
        for stmt in body:
            for e in ir.own_exprs(stmt):
                self.expr(e, ranges, aliases)
            match stmt:
                case ir.For():
                    lo = _range(stmt.lo, ranges, aliases)
                    hi = _range(stmt.hi, ranges, aliases)
                    inner = loop_ranges(ranges, stmt.var, lo, hi)
                    if inner is None:
                        continue
                    before = len(self.facts)
                    self.block(stmt.body, inner, aliases)
                    inside = _defined(stmt.body) | {stmt.var}
                    span = (
                        (lo[0], hi[0]) if lo and hi and lo[0] == lo[1] and hi[0] == hi[1] else None
                    )
                    self.facts[before:] = [
                        f
                        for f in (_lift(f, stmt.var, span, inside) for f in self.facts[before:])
                        if f is not None
                    ]
                case ir.Let():
                    form = affine(stmt.value, aliases)
                    if form is not None:
                        aliases[stmt.name] = form
                case ir.Store():
                    self.access(stmt.tensor, stmt.indices, ranges, aliases, stmt.span, True)
                    if stmt.op != "=":
                        self.read_output(stmt.tensor, stmt.indices, ranges, aliases, stmt.span)
                    self.facts.append(
                        (stmt.tensor, tuple(("=", expr_text(i)) for i in stmt.indices))
                    )
                case ir.Assign():
                    self.facts = [
                        f for f in self.facts if not any(stmt.name in str(d) for d in f[1])
                    ]
                case ir.If():
                    # what every branch that can run writes is written after the if
                    start, after = self.facts, []
                    for branch, negated in ((stmt.then, False), (stmt.orelse, True)):
                        where = narrow(stmt.cond, ranges, aliases, negated)
                        if where is not None:
                            self.facts = list(start)
                            self.block(branch, where, aliases)
                            inside = _defined(branch)  # the branch's own names end with it
                            after.append([f for f in self.facts if not _mentions(f, inside)])
                    self.facts = (
                        [f for f in after[0] if all(f in o for o in after)] if after else start
                    )

    def expr(self, e: ir.Expr, ranges, aliases) -> None:
        for node in ir.walk(e):
            if isinstance(node, ir.Load):
                self.access(node.tensor, node.indices, ranges, aliases, node.span, False)
                if node.tensor in self.outputs:
                    self.read_output(node.tensor, node.indices, ranges, aliases, node.span)
                else:
                    self.needed.append(self.reads[-1])
            elif isinstance(node, ir.Search):
                region = self.regions[node.tensor]
                self.reads.append(Access(self.item.tensors[node.tensor], region, node.span))
                if node.tensor not in self.outputs:
                    self.needed.append(self.reads[-1])

    def access(self, tensor, indices, ranges, aliases, span: Span, write: bool) -> None:
        box = self.box(tensor, indices, ranges, aliases, span)
        (self.writes if write else self.reads).append(Access(self.item.tensors[tensor], box, span))

    def box(self, tensor, indices, ranges, aliases, span: Span) -> Box:
        region = self.regions[tensor]
        out = []
        for dim, (index, (lo, hi)) in enumerate(zip(indices, region, strict=True)):
            reach = _range(index, ranges, aliases)
            if reach is None:
                out.append((lo, hi))
                continue
            if reach[0] < 0 or reach[1] >= hi - lo:
                if tensor in self.sections:
                    raise KernelcError(
                        f"this access to '{tensor}' (dimension {dim}) reaches "
                        f"{lo + (reach[0] if reach[0] < 0 else reach[1])}, outside the task's "
                        f"depend section {lo}:{hi}; widen the section so OpenMP orders the "
                        "tasks that produce and consume these elements",
                        span,
                    )
                out.append((max(lo, lo + reach[0]), min(hi, lo + reach[1] + 1)))
                continue
            out.append((lo + reach[0], lo + reach[1] + 1))
        return tuple(out)

    def read_output(self, tensor, indices, ranges, aliases, span: Span) -> None:
        """A read of an output parameter: from earlier items unless this item wrote it first."""
        for fact_tensor, dims in self.facts:
            if fact_tensor == tensor and all(
                _covers(fact, index, ranges, aliases)
                for fact, index in zip(dims, indices, strict=True)
            ):
                return
        box = self.box(tensor, indices, ranges, aliases, span)
        self.needed.append(Access(self.item.tensors[tensor], box, span))


def _lift(fact, var: str, span: tuple[int, int] | None, inside: set[str]):
    """A fact established in every iteration of a loop over ``var`` holds for the loop's whole
    range (when that range is known); facts about names of the loop body end with it."""
    tensor, dims = fact
    lifted = []
    for dim in dims:
        if dim[0] == "=" and dim[1] == var and span is not None:
            lifted.append(("range", *span))
        elif dim[0] == "=" and _words(dim[1]) & inside:
            return None
        else:
            lifted.append(dim)
    return tensor, tuple(lifted)


def _mentions(fact, names: set[str]) -> bool:
    return any(dim[0] == "=" and _words(dim[1]) & names for dim in fact[1])


def _covers(fact: tuple, index: ir.Expr, ranges, aliases) -> bool:
    if fact[0] == "=":
        return fact[1] == expr_text(index)
    reach = _range(index, ranges, aliases)
    return reach is not None and fact[1] <= reach[0] and reach[1] < fact[2]


def _defined(body: tuple[ir.Stmt, ...]) -> set[str]:
    names = set()
    for node in ir.walk_body(body):
        if isinstance(node, ir.Let | ir.VarDecl):
            names.add(node.name)
        elif isinstance(node, ir.For):
            names.add(node.var)
    return names


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", text))


def _range(e: ir.Expr, ranges, aliases) -> Interval | None:
    """The values an integer expression can take: from its affine form, or by evaluating it
    when every name in it has one value (trip counts such as ``(N + 2) / 3``)."""
    form = affine(e, aliases)
    if form is not None:
        result = bounds(form, ranges)
        return result[0] if result else None
    fixed = {n: lo for n, (lo, hi) in ranges.items() if lo == hi}
    value = value_of(e, fixed)
    return None if value is None else (value, value)


# ------------------------------------------------------------------------------------ races


def _overlap(a: Box, b: Box) -> bool:
    return all(lo1 < hi2 and lo2 < hi1 for (lo1, hi1), (lo2, hi2) in zip(a, b, strict=True)) and (
        all(hi > lo for lo, hi in a) and all(hi > lo for lo, hi in b)
    )


def _races(items: list[Item], prints: list[Footprint], ordered: set, tensors) -> None:
    candidates = overlapping_pairs(
        (i, access.tensor, access.box, write)
        for i, fp in enumerate(prints)
        for accesses, write in ((fp.reads, False), (fp.writes, True))
        for access in accesses
    )
    for i, j in sorted(candidates):
        a, b = items[i], items[j]
        if (a.node, b.node) in ordered or (b.node, a.node) in ordered:
            continue
        fa, fb = prints[i], prints[j]
        pairs = [(w, x) for w in fa.writes for x in (*fb.reads, *fb.writes)]
        pairs += [(r, w) for r in fa.reads if r.tensor not in a.firstprivate for w in fb.writes]
        for first, second in pairs:
            if first.tensor == second.tensor and _overlap(first.box, second.box):
                raise KernelcError(
                    f"race: this {_what(b)} and the {_what(a)} at {a.call.span.line}:"
                    f"{a.call.span.col} may run at the same time (no depend clause, taskwait or "
                    f"barrier orders them; depend clauses only order tasks created by the same "
                    "thread), and both access "
                    f"{_region_text(tensors[second.tensor].c_name, second.box)}, at "
                    "least one writing it",
                    second.span,
                    [(first.span, "the other access")],
                )


def _what(item: Item) -> str:
    return {"task": "task", "loop": "loop", "step": "code", "copy": "map"}[item.kind]


def _region_text(tensor: str, box: Box) -> str:
    return f"{tensor}[{', '.join(f'{lo}:{hi}' for lo, hi in box)}]"


# --------------------------------------------------------------------------------- coverage


def _coverage(prints, tensors, sizes, inputs) -> None:
    defined: dict[str, list[Region]] = {}
    for name in inputs:
        shape = tuple(evaluate(d, sizes) for d in tensors[name].shape)
        defined[name] = [Region.whole(name, shape)]
    for fp in prints:
        for access in fp.needed:
            region = Region(access.tensor, access.box, (True,) * len(access.box))
            if region.is_empty or covered(region, defined.get(access.tensor, [])):
                continue
            source = tensors[access.tensor].c_name
            raise KernelcError(
                f"this reads {_region_text(source, access.box)}, but no earlier task writes all "
                f"of it and no map(to:) or map(tofrom:) provides it, so OpenMP would read "
                "undefined values",
                access.span,
            )
        for access in fp.writes:
            defined.setdefault(access.tensor, []).append(
                Region(access.tensor, access.box, (True,) * len(access.box))
            )


# ---------------------------------------------------------------------------------- orders


def _explicit_order(items: list[Item], prints: list[Footprint]) -> list[ir.TaskCall]:
    """Order writers of overlapping regions that no data dependence orders (list order)."""
    deps = nx.DiGraph()
    deps.add_nodes_from(range(len(items)))
    after: dict[int, list[int]] = {j: [] for j in range(len(items))}
    earlier: dict[int, list[int]] = {j: [] for j in range(len(items))}
    for i, j in sorted(_conflicting_pairs(items, prints)):
        earlier[j].append(i)
    for j in range(len(items)):
        for i in reversed(earlier[j]):
            if _data_edge(items[i], prints[i], items[j], prints[j]):
                deps.add_edge(i, j)
                continue
            overlap = any(
                wi.overlaps(wj)
                for wi in prints[i].written_regions
                for wj in prints[j].written_regions
            )
            if overlap and not nx.has_path(deps, i, j):
                deps.add_edge(i, j)
                after[j].append(i)
    return [replace(item.call, after=tuple(after[j])) for j, item in enumerate(items)]


def _conflicting_pairs(items: list[Item], prints: list[Footprint]) -> set[tuple[int, int]]:
    """The pairs of items whose regions overlap with a write: no other pair can be ordered."""
    return overlapping_pairs(
        (i, region.tensor, region.box, write)
        for i, (item, fp) in enumerate(zip(items, prints, strict=True))
        for regions, write in ((_read_regions(item, fp), False), (fp.written_regions, True))
        for region in regions
    )


def _data_edge(a: Item, fa: Footprint, b: Item, fb: Footprint) -> bool:
    """Whether the graph's own region analysis orders a before b (flow or anti dependence)."""
    reads_a, reads_b = _read_regions(a, fa), _read_regions(b, fb)
    return any(w.overlaps(r) for w in fa.written_regions for r in reads_b) or any(
        w.overlaps(r) for w in fb.written_regions for r in reads_a
    )


def _read_regions(item: Item, fp: Footprint) -> list[Region]:
    out = []
    for p in item.kernel.params:
        if not p.is_scalar:
            box = fp.regions[p.name]
            out.append(Region(item.tensors[p.name], box, (True,) * len(box)))
    return out
