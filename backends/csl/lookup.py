"""Item-wise lookups with a reduction (the XS lookup): tables split over columns, items over rows.

The kernel form: a parallel loop over items ``l`` whose body gathers from tables through a
data-dependent key (``let n = mat_nucs[m, j]; ... egrid[n, ...] ... xs[n, ...]``) and only adds
into outputs indexed by the item (``macro[l, c] += ...``). The decomposition, chosen so that no
PE needs all nuclide data:

- the tables indexed by the key (the largest such group: egrid and xs) are split by key over
  the grid columns: column x holds nuclides ``n0(x) .. n1(x)``, each nuclide's whole grid;
- the items (energy, material, macro rows) are split over the grid rows, and every PE of a row
  holds that row's items; small tables (materials) are replicated;
- every PE runs the loop over its row's items, and right after the key is known it takes only
  the contributions of the nuclides it holds (``if (n0 <= n && n < n1)``, with the key clamped
  like every gather); the partial sums of a row are then added along the row to the last
  column (``<collectives_2d>`` reduce_fadds), which holds the result.

It is the "row reduce" variant of hpc-science/mc_on_accelerators (each PE holds 1/W of the
nuclides for all of the row's particles); their round-robin variant instead moves the particles
around the row and so never sums partials. The sums here are taken in a different order than
the reference's (per PE, then across the row), so results agree within rounding. Each nuclide's
grid must fit on one PE (no energy banding): a grid too long for 48 KB is reported by the memory
plan. Inner parallel loops with affine access (the 5 reaction channels) become DSD operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kernelc import ir
from kernelc.affine import affine, evaluate
from kernelc.backends.csl import machine
from kernelc.backends.csl import model as m
from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.contract import _collectives
from kernelc.backends.csl.partition import DimMap, Layout, Split
from kernelc.backends.csl.scalar import Place, ScalarGen
from kernelc.backends.csl.stencil import Shared, _merge, check_whole, split_params, tensor_of
from kernelc.backends.csl.vector import Access, Space, VectorGen
from kernelc.diagnostics import KernelcError
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

KEY = "key_"  # IR name of the clamped key inserted by the transformation
LO, HI = "key_lo_", "key_hi_"


@dataclass(frozen=True)
class LookupShape:
    loop: ir.For
    key: str | None  # the let whose value indexes the tables
    tables: frozenset[str]  # kernel parameters split over columns
    items: frozenset[str]  # kernel parameters split over rows (first index is the item)
    outputs: frozenset[str]


def _accesses(body) -> list[ir.Load | ir.Store | ir.Search]:
    return [n for s in body for n in ir.walk(s) if isinstance(n, ir.Load | ir.Store | ir.Search)]


def lookup_shape(task: Task) -> LookupShape | None:
    body = task.kernel.body
    if len(body) != 1 or not isinstance(body[0], ir.For) or not body[0].parallel:
        return None
    loop = body[0]
    item = loop.var
    accesses = _accesses(loop.body)
    stores = [a for a in accesses if isinstance(a, ir.Store)]
    if not stores or any(s.op != "+=" for s in stores):
        return None
    for s in stores:
        if not (isinstance(s.indices[0], ir.Name) and s.indices[0].name == item):
            return None
    if any(isinstance(n, ir.Assign) for s in loop.body for n in ir.walk(s)):
        return None
    outputs = frozenset(s.tensor for s in stores)
    first: dict[str, set[str | None]] = {}
    for a in accesses:
        index = a.indices[0]
        name = index.name if isinstance(index, ir.Name) else None
        first.setdefault(a.tensor, set()).add(name)
    lets = {n.name for s in loop.body for n in ir.walk(s) if isinstance(n, ir.Let)}
    items = frozenset(t for t, names in first.items() if names == {item})
    groups: dict[str, set[str]] = {}
    for t, names in first.items():
        if len(names) == 1 and (key := next(iter(names))) in lets and t not in outputs:
            groups.setdefault(key, set()).add(t)
    sizes = task.size_env
    params = {p.name: p for p in task.kernel.params}

    def nbytes(t: str) -> int:
        shape = [evaluate(d, sizes) for d in params[t].shape]
        total = params[t].dtype.numpy.itemsize
        for n in shape:
            total *= n
        return total

    key = max(groups, key=lambda k: (sum(nbytes(t) for t in groups[k]), k), default=None)
    tables = frozenset(groups.get(key, ()))
    if key is not None:
        extents = {evaluate(params[t].shape[0], sizes) for t in tables}
        if len(extents) != 1:
            return None
    return LookupShape(loop, key, tables, items, outputs)


def check_fits(task: Task, graph: TaskGraph, arch: machine.Arch) -> None:
    """One key's rows of every split table must fit on a PE: they are never split further."""
    shape = lookup_shape(task)
    if shape.key is None:
        return
    per_key = 0
    for p in sorted(shape.tables):
        decl = graph.tensor(tensor_of(task, p))
        per_key += decl.nbytes // max(decl.shape[0], 1)
    room = arch.pe_memory - machine.CODE_BASE_BYTES
    if per_key > room:
        names = ", ".join(f"'{p}'" for p in sorted(shape.tables))
        raise KernelcError(
            f"one '{shape.key}' row of the tables {names} takes {per_key:,} bytes, more than the "
            f"{room:,} bytes a PE has for data: the csl lookup decomposition splits the tables "
            f"by '{shape.key}' over PE columns but keeps each row (e.g. one nuclide's energy "
            "grid) on one PE; use a shorter grid (smaller NG)",
            task.span,
        )


def plan(task: Task, graph: TaskGraph, layouts: dict[str, Layout], w: int, h: int) -> None:
    check_whole(task, graph)
    shape = lookup_shape(task)
    params = {p.name for p in task.kernel.all_params if not p.is_scalar}
    for p in sorted(params):
        t = tensor_of(task, p)
        decl = graph.tensor(t)
        dims = [DimMap(n) for n in decl.shape]
        if p in shape.items or p in shape.outputs:
            dims[0] = DimMap(decl.shape[0], "y", Split(decl.shape[0], h))
        elif p in shape.tables:
            dims[0] = DimMap(decl.shape[0], "x", Split(decl.shape[0], w))
        _merge(layouts, Layout(t, decl.dtype, tuple(dims)), task.span)
    if shape.key is None and w > 1:
        raise KernelcError(
            f"'{task.kernel.name}' has no table indexed by a key to split over {w} columns; "
            "use a grid with one column",
            task.span,
        )


# ------------------------------------------------------------------------ transformation


def _guard(body: tuple[ir.Stmt, ...], shape: LookupShape, extent: int) -> tuple[ir.Stmt, ...]:
    """After ``let key = ...``: clamp the key like a gather would, and keep the rest of the
    block only on the PEs whose column holds that key."""
    out: list[ir.Stmt] = []
    for k, s in enumerate(body):
        if isinstance(s, ir.Let) and s.name == shape.key:
            span = s.span
            i32 = DType.I32

            def name(n: str, span=span) -> ir.Name:
                return ir.Name(name=n, span=span, dtype=DType.I32)

            def const(v: int, span=span) -> ir.Const:
                return ir.Const(value=v, span=span, dtype=DType.I32)

            clamped = ir.Intrinsic(
                fn="max",
                args=(
                    ir.Intrinsic(
                        fn="min", args=(name(s.name), const(extent - 1)), span=span, dtype=i32
                    ),
                    const(0),
                ),
                span=span,
                dtype=i32,
            )
            rest = tuple(_rewrite(x, shape) for x in body[k + 1 :])
            mine = ir.Binary(
                op="&&",
                lhs=ir.Binary(op=">=", lhs=name(KEY), rhs=name(LO), span=span, dtype=DType.BOOL),
                rhs=ir.Binary(op="<", lhs=name(KEY), rhs=name(HI), span=span, dtype=DType.BOOL),
                span=span,
                dtype=DType.BOOL,
            )
            out += [
                s,
                ir.Let(name=KEY, value=clamped, span=span, declared=i32),
                ir.If(cond=mine, then=rest, orelse=(), span=span),
            ]
            return tuple(out)
        out.append(_descend(s, shape, extent))
    return tuple(out)


def _descend(s: ir.Stmt, shape: LookupShape, extent: int) -> ir.Stmt:
    match s:
        case ir.For():
            return replace(s, body=_guard(s.body, shape, extent))
        case ir.If():
            return replace(
                s, then=_guard(s.then, shape, extent), orelse=_guard(s.orelse, shape, extent)
            )
    return s


def _rewrite(node, shape: LookupShape):
    """Table accesses use the clamped key."""
    if isinstance(node, ir.Load | ir.Search) and node.tensor in shape.tables:
        first = ir.Name(name=KEY, span=node.indices[0].span, dtype=DType.I32)
        node = replace(node, indices=(first, *node.indices[1:]))
    if isinstance(node, tuple):
        return tuple(_rewrite(x, shape) for x in node)
    if hasattr(node, "__dataclass_fields__") and not isinstance(node, ir.Const | ir.Name):
        changes = {}
        for f in node.__dataclass_fields__:
            if f == "span":
                continue
            value = getattr(node, f)
            if isinstance(value, tuple) or hasattr(value, "__dataclass_fields__"):
                new = _rewrite(value, shape)
                if new is not value:
                    changes[f] = new
        return replace(node, **changes) if changes else node
    return node


# ------------------------------------------------------------------------------- lower


@dataclass
class LookupCode:
    launch: str
    items: int  # items on the busiest PE
    visits: float  # modelled table visits per item on one PE
    visit_cycles: int  # modelled cycles of one visit (search and interpolation)
    item_cycles: int
    reduce: int
    output_rects: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    describe: str = (
        "item-wise lookup: the key-indexed tables are split over the grid columns (each "
        "column holds some keys' whole rows), the items over the rows; every PE adds the "
        "contributions of its own keys for its row's items, and the partial sums are added "
        "along each row into the last column (collectives_2d reduce_fadds)"
    )


def lower(
    task: Task, index: int, graph: TaskGraph, layouts: dict[str, Layout], b: Builder, shared: Shared
) -> LookupCode:
    shape = lookup_shape(task)
    name = task.kernel.name
    _collectives(b, shared)
    tensor = {p.name: tensor_of(task, p.name) for p in task.kernel.all_params if not p.is_scalar}
    shapes = {p: graph.tensor(t).shape for p, t in tensor.items()}
    partials: dict[str, str] = {}
    for p in sorted(shape.outputs):
        lay = layouts[tensor[p]]
        partials[p] = b.array(
            f"{tensor[p]}_part",
            lay.dtype,
            lay.local_size,
            f"this PE's partial sums of '{tensor[p]}' (its nuclides only)",
        )
    item_dm = layouts[tensor[next(iter(sorted(shape.outputs)))]].dims[0]
    items = split_params(b, shared, item_dm)
    table_extent = 0
    key_params = {}
    if shape.key is not None:
        table_dm = layouts[tensor[next(iter(sorted(shape.tables)))]].dims[0]
        table_extent = table_dm.extent
        sp = split_params(b, shared, table_dm)
        key_params = {LO: m.Name(sp.start), HI: m.add(m.Name(sp.start), m.Name(sp.size))}
    sizes = task.size_env

    def place(param: str, indices, proven, node) -> Place:
        lay = layouts[tensor[param]]
        array = partials.get(param, b.tensor_arrays[tensor[param]])
        flat: m.Expr = m.Int(0)
        guard = None
        for d, (idx, dm, ok) in enumerate(zip(indices, lay.dims, proven, strict=True)):
            if not ok:
                if isinstance(node, ir.Store):
                    inside = m.Binary(
                        "and", m.Binary(">=", idx, m.Int(0)), m.Binary("<", idx, m.lit(dm.extent))
                    )
                    guard = inside if guard is None else m.Binary("and", guard, inside)
                else:
                    idx = m.call(
                        sgen.helper("kc_clamp_i32", DType.I32), idx, m.Int(0), m.lit(dm.extent - 1)
                    )
            if dm.split is not None:
                idx = _minus(idx, m.Name(split_params(b, shared, dm).start))
            flat = m.add(flat, m.mul(idx, m.lit(lay.pitches[d])))
        return Place(array, flat, guard)

    sgen = ScalarGen(b, place, shapes=shapes)
    for n, v in sizes.items():
        sgen.names[n] = m.lit(v)
    sgen.names.update(key_params)
    sgen.names[shape.loop.var] = m.add(m.Name(items.start), m.Name(shape.loop.var))
    sgen.ranges[shape.loop.var] = (0, item_dm.extent - 1)
    if shape.key is not None:
        sgen.ranges[KEY] = (0, table_extent - 1)
    sgen.vectorise = lambda loop: _vector_loop(loop, sgen, b, layouts, tensor, partials, sizes)
    b.names.add(shape.loop.var)
    body = shape.loop.body
    if shape.key is not None:
        body = _guard(body, shape, table_extent)
    stmts = sgen.block(body)
    done_id = b.task_id(f"{name}_done", f"row reduction of {task.name} finished")
    zero = []
    for p, part in sorted(partials.items()):
        lay = layouts[tensor[p]]
        dsd = b.whole_dsd(part, lay.local_size)
        zero.append(m.ExprStmt(m.builtin("fmovs", m.Name(dsd), m.Float(0.0))))
    reduces = []
    for p, part in sorted(partials.items()):
        lay = layouts[tensor[p]]
        reduces.append(
            m.ExprStmt(
                m.call(
                    m.member("mpi_x", "reduce_fadds"),
                    m.lit(b.width - 1),
                    m.Unary("&", m.Name(part)),
                    m.Unary("&", m.Name(b.tensor_arrays[tensor[p]])),
                    m.lit(lay.local_size),
                    m.Name(done_id),
                )
            )
        )
    if len(reduces) != 1:
        raise KernelcError("the csl lookup lowering reduces one output", task.span)
    launch = b.fresh(f"f_{task.name}")
    loop = m.For(
        m.builtin("range", m.Name("i16"), m.Name(items.size)), shape.loop.var, tuple(stmts)
    )
    b.code(
        m.FnDecl(
            launch,
            (),
            m.Named("void"),
            (
                m.Comment(
                    f"launched by the host: task {task.name} ({name}) over this row's items, "
                    "using the nuclides of this column"
                ),
                m.ExprStmt(m.call(m.member("mpi_x", "init"))),
                *zero,
                loop,
                m.Comment("add the partial sums along the row into the last column"),
                *reduces,
            ),
        )
    )
    done = b.fresh(f"{name}_done")
    b.code(m.TaskDecl(done, (), (m.ExprStmt(m.call(m.member("sys_mod", "unblock_cmd_stream"))),)))
    b.bind(done, done_id)
    b.launch(launch)
    out = tensor[next(iter(sorted(shape.outputs)))]
    lay = layouts[out]
    visits, visit_cycles, item_cycles = _estimate(shape, task, b.width)
    return LookupCode(
        launch,
        item_dm.split.largest,
        visits,
        visit_cycles,
        item_cycles,
        lay.local_size,
        {out: (b.width - 1, 0, 1, b.height)},
    )


def _minus(idx: m.Expr, start: m.Expr) -> m.Expr:
    """``idx - start``, cancelling a leading ``start + x`` (the item index is built that way)."""
    if isinstance(idx, m.Binary) and idx.op == "+" and idx.lhs == start:
        return idx.rhs
    return m.Binary("-", idx, start)


def _vector_loop(
    loop: ir.For, sgen: ScalarGen, b: Builder, layouts, tensor, partials, sizes
) -> list[m.Stmt] | None:
    """An inner parallel loop with unit-stride access along one dimension, as DSD ops."""
    lo_f, hi_f = affine(loop.lo), affine(loop.hi)
    if lo_f is None or hi_f is None or lo_f.terms or hi_f.terms:
        return None
    lo, hi = lo_f.const, hi_f.const
    if hi <= lo or not all(isinstance(s, ir.Let | ir.Store) for s in loop.body):
        return None
    var = loop.var
    dims: dict[str, int] = {}
    for node in _accesses(loop.body):
        if isinstance(node, ir.Search) or (
            isinstance(node, ir.Store) and node.op not in ("=", "+=", "-=", "*=")
        ):
            return None
        hits = []
        for d, index in enumerate(node.indices):
            form = affine(index)
            if any(isinstance(n, ir.Name) and n.name == var for n in ir.walk(index)):
                if form is None or form.coef(var) != 1 or len(form.terms) != 1:
                    return None
                hits.append(d)
        if len(hits) > 1:
            return None
        if hits:
            dims[node.tensor] = hits[0]
    dtypes = {s.value.dtype for s in loop.body if isinstance(s, ir.Store | ir.Let)}
    if dtypes != {DType.F32}:
        return None

    def access(param: str, indices: tuple[ir.Expr, ...], node) -> Access:
        d = dims[param]
        form = affine(indices[d])
        base_index = ir.Const(value=lo + form.const, span=indices[d].span, dtype=DType.I32)
        fixed = tuple(base_index if k == d else i for k, i in enumerate(indices))
        csl = tuple(sgen.expr(i) for i in fixed)
        proven = tuple(k == d or sgen._proven_at(param, k, i) for k, i in enumerate(fixed))
        place = sgen.place(param, csl, proven, node)
        pitch = layouts[tensor[param]].pitches[d]
        return Access(place.array, m.mul(m.Name(var), m.lit(pitch)), place.index)

    space = Space((var,), (var,), (m.lit(hi - lo),), (hi - lo,))
    gen = VectorGen(b, space, DType.F32, access, sgen)
    return [
        m.Comment(f"the '{var}' loop ({hi - lo} elements) as DSD operations"),
        *gen.body(loop.body),
    ]


def _estimate(shape: LookupShape, task: Task, width: int) -> tuple[float, int, int]:
    """Modelled visits per item and cycles per visit: every data-dependent trip count is
    taken as half the extent of the dimension its loop variable indexes."""
    sizes = task.size_env
    params = {p.name: p for p in task.kernel.params}
    trips = 1.0
    search_steps = 0
    for node in ir.walk_body(shape.loop.body):
        if isinstance(node, ir.For) and affine(node.hi) is None:
            for acc in _accesses(node.body):
                for d, i in enumerate(acc.indices):
                    if isinstance(i, ir.Name) and i.name == node.var:
                        trips = max(trips, evaluate(params[acc.tensor].shape[d], sizes) / 2)
        if isinstance(node, ir.Search):
            axis = next(d for d, i in enumerate(node.indices) if isinstance(i, ir.Slice))
            n = evaluate(params[node.tensor].shape[axis], sizes)
            search_steps = max(search_steps, n.bit_length())
    share = 1.0 / width if shape.key is not None else 1.0
    # scalar cycles as the simulator charges them (one per operator, load and call): a visit of
    # a key another column holds costs the key gather and the test; an own visit adds the
    # concentration, the search (16 per probe), the interpolation and the channel DSD ops
    skipped = 32
    visit = 142 + 16 * (search_steps + 1) + 3 * (machine.DSD_SETUP_CYCLES + 5)
    return trips, visit, int(trips * ((1 - share) * skipped + share * visit)) + 20


def lookup_cycles(code: LookupCode, low) -> dict[str, int]:
    reduce = code.reduce + machine.DSD_SETUP_CYCLES + low.width
    return {"items": code.items * code.item_cycles + 20, "reduce": reduce}
