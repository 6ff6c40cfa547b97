"""Item-wise lookups with a reduction (the XS lookup): tables split over columns by key and
energy band, items over rows.

The kernel form: a parallel loop over items ``l`` whose body gathers from tables through a
data-dependent key (``let n = mat_nucs[m, j]; ... egrid[n, ...] ... xs[n, ...]``) and only adds
into outputs indexed by the item (``macro[l, c] += ...``) once the key is known; it may zero
them (``macro[l, c] = 0``) before its first addition, as C kernels do. The decomposition, chosen
so that no PE needs all nuclide data, nor even one nuclide's whole grid:

- the tables indexed by the key (the largest such group: egrid and xs) are split over the grid
  columns by key and, where the kernel allows it, by energy band: the columns form K groups of
  B = 2**d neighbouring columns; group k holds nuclides ``n0(k) .. n1(k)`` and column ``x`` of
  it holds band ``x % B`` of each of them (columns past K * B hold no table data);
- an energy band is a subtree of the binary-search tree of ``search`` cut at depth d
  (banding.py): a PE stores the 2**d - 1 top probe points of each of its nuclides, then its
  band's grid points widened by one point on each side (the bands overlap, so the bracket
  ``(lo, lo + 1)`` is always on one PE);
- the items (energy, material, macro rows) are split over the grid rows, and every PE of a row
  holds that row's items; small tables (materials) are replicated;
- every PE runs the loop over its row's items; right after the key is known it keeps only the
  nuclides it holds (``if (n0 <= n && n < n1)``, with the key clamped like every gather); with
  bands it then replays the top levels of the search on the top probe points, and only the PE
  whose band the walk reaches finishes the search on its band and adds the contribution. The
  probes are exactly those of the whole-grid search, so the bracket equals the reference
  interpreter's on any data, sorted or not, including the clamping to [0, NG - 2];
- the partial sums of a row are then added along the row to the last column
  (``<collectives_2d>`` reduce_fadds), which holds the result.

K and d are chosen per grid for the fewest table bytes per PE (fewer bands on ties); without a
banding-friendly search (one whole-row ``search`` of a table, bound by a let in the key's block
with no store before it, every table read at the bracket) each column holds whole rows. It is
the "row reduce" variant of hpc-science/mc_on_accelerators (each PE holds a slice of the
nuclide data for all of the row's particles); their round-robin variant instead moves the
particles around the row and so never sums partials. The sums here are taken in a different
order than the reference's (per PE, then across the row), so results agree within rounding.
Inner parallel loops with affine access (the 5 reaction channels) become DSD operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from kernelc import ir
from kernelc.affine import affine, evaluate
from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.lowered import Batches, Lowered, Misfit, Planner, Refusal
from kernelc.backends.csl.placement import (
    Shared,
    check_whole,
    collectives,
    merge_layout,
    split_params,
    tensor_of,
)
from kernelc.backends.csl.scalar import Place, ScalarGen
from kernelc.backends.csl.vector import Access, Space, VectorGen
from kernelc.csl import charges, machine
from kernelc.csl import model as m
from kernelc.forms import BandSite, Lookup
from kernelc.forms.bands import Bands, cut
from kernelc.forms.blocks import DimMap, Layout, Split
from kernelc.forms.lookup import accesses, largest_normal, slowest_trips
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

KEY = "key_"  # IR name of the clamped key inserted by the transformation
LO, HI = "key_lo_", "key_hi_"
OWN = "band_own_"  # IR name of "this PE's band holds the bracket", set by the banded search
# PE code room kept free when sizing batches: the XS lookups' PE programs model 7.3 to 7.6 KB
LOOKUP_CODE_BYTES = 8 * 1024


def _table_sizes(task: Task, graph: TaskGraph, shape: Lookup) -> tuple[int, int]:
    """(keys, bytes of one key's rows of all tables)."""
    keys = graph.tensor(tensor_of(task, next(iter(sorted(shape.tables))))).shape[0]
    per_key = sum(
        graph.tensor(tensor_of(task, p)).nbytes // max(keys, 1) for p in sorted(shape.tables)
    )
    return keys, per_key


def table_cut(task: Task, shape: Lookup, graph: TaskGraph, w: int) -> tuple[int, Bands | None, int]:
    """(key blocks, bands, table bytes per PE) for ``w`` columns: the fewest table bytes per
    PE, fewer bands on ties. Without bands the keys are split over all ``w`` columns."""
    keys, per_key = _table_sizes(task, graph, shape)
    best = (-(-keys // w) * per_key, w, None)
    site = shape.site
    if site is None or keys == 0:
        return best[1], best[2], best[0]
    per_point = per_key // site.extent
    depth = 1
    while (1 << depth) <= w:
        bands = cut(site.extent, depth)
        if bands is None:
            break
        blocks = min(keys, w >> depth)
        nbytes = -(-keys // blocks) * bands.local * per_point
        if nbytes < best[0]:
            best = (nbytes, blocks, bands)
        depth += 1
    return best[1], best[2], best[0]


def fewest_pes(
    task: Task, shape: Lookup, graph: TaskGraph, arch: machine.Arch, planner: Planner
) -> int | Refusal | Misfit:
    """A lower bound on the PEs of a grid whose plan holds the tables and every item at once
    (code base included), where the automatic grid search starts; when no grid does, the
    fewest columns that hold the tables times every row (the items then go through in
    batches); a ``Misfit`` naming the sizes when no grid of the machine can hold the tables
    even with energy bands."""
    if shape.key is None:
        return 1
    mw, mh = arch.max_program
    room = arch.pe_memory - machine.CODE_BASE_BYTES
    tables = {w: table_cut(task, shape, graph, w)[2] for w in range(1, mw + 1)}
    if min(tables.values()) > room:
        keys, per_key = _table_sizes(task, graph, shape)
        names = ", ".join(f"'{p}'" for p in sorted(shape.tables))
        how = (
            "even cut into energy bands"
            if shape.site is not None
            else "(no energy banding: the kernel does not search them in the form it replays)"
        )
        return Misfit(
            f"the tables {names} ({keys:,} '{shape.key}' rows of {per_key:,} bytes) need at "
            f"least {min(tables.values()):,} bytes per PE on {mw} columns {how}, more than the "
            f"{room:,} bytes a PE has for data; use fewer or shorter rows",
            task.span,
        )

    out = tensor_of(task, next(iter(sorted(shape.outputs))))

    def fits(w: int, h: int, room: int) -> bool:
        """Whether the w x h plan holds every item at once (no batches) in ``room``."""
        layouts = planner.plan(graph, w, h)
        if not isinstance(layouts, dict):
            return False
        if layouts[out].dims[0].extent != graph.tensor(out).shape[0]:
            return False
        partials = sum(layouts[tensor_of(task, p)].local_bytes for p in shape.outputs)
        return sum(lay.local_bytes for lay in layouts.values()) + partials <= room

    def smallest(room: int) -> tuple[int, int] | None:
        best = None
        for w in range(1, mw + 1):
            if best is not None and w >= best[0] * best[1]:
                break
            if tables[w] > room or not fits(w, mh, room):
                continue
            lo, hi = 1, mh
            while lo < hi:
                mid = (lo + hi) // 2
                if fits(w, mid, room):
                    hi = mid
                else:
                    lo = mid + 1
            if best is None or w * lo < best[0] * best[1]:
                best = (w, lo)
        return best

    first = smallest(room)
    if first is None:
        # not even the whole machine holds every item at once: batches over all its rows
        # on the fewest columns that hold the tables
        return min(w for w, nbytes in tables.items() if nbytes <= room) * mh
    # one PE program serves every grid, so its modelled code size measured here holds for all
    code = planner.code_bytes(graph, arch, *first)
    if not isinstance(code, int):
        return code
    again = smallest(arch.pe_memory - code) if code > machine.CODE_BASE_BYTES else first
    found = again or first
    return found[0] * found[1]


def batch_size(task: Task, shape: Lookup, graph: TaskGraph, w: int, h: int) -> int | None:
    """Items per batch when this row count cannot hold all items beside the resident tables
    (then the host sends them in batches of this many, over the rows); None when it can, or
    when batches do not apply: a lookup feeding or fed by other tasks, or a loop range that
    leaves the item tensors."""
    out = graph.tensor(tensor_of(task, next(iter(sorted(shape.outputs)))))
    extent = out.shape[0]
    if len(graph.tasks) != 1 or shape.first < 0 or shape.end > extent:
        return None
    params = [p for p in task.kernel.all_params if not p.is_scalar]
    per_item = 0
    fixed = table_cut(task, shape, graph, w)[2] if shape.key is not None else 0
    for p in params:
        decl = graph.tensor(tensor_of(task, p.name))
        if p.name in shape.items or p.name in shape.outputs:
            copies = 2 if p.name in shape.outputs else 1  # the result and the partial sums
            per_item += copies * decl.nbytes // max(decl.shape[0], 1)
        elif p.name not in shape.tables:
            fixed += decl.nbytes
    room = machine.WSE2.pe_memory - LOOKUP_CODE_BYTES - fixed
    if -(-extent // h) * per_item <= room or room < per_item:
        return None
    return min(room // per_item * h, shape.end - shape.first)


def plan(
    task: Task, shape: Lookup, graph: TaskGraph, layouts: dict[str, Layout], w: int, h: int
) -> Refusal | Misfit | None:
    refused = check_whole(task, graph)
    if refused is not None:
        return refused
    for param in task.kernel.outputs:
        if param.name in shape.outputs and param.dtype != DType.F32:
            return Refusal(
                f"output '{param.name}' is {param.dtype}: the csl lookup lowering adds the PEs' "
                "partial sums with reduce_fadds, which takes f32",
                task.span,
            )
    blocks, bands, _ = table_cut(task, shape, graph, w) if shape.key is not None else (w, None, 0)
    batch = batch_size(task, shape, graph, w, h)
    params = {p.name for p in task.kernel.all_params if not p.is_scalar}
    for p in sorted(params):
        t = tensor_of(task, p)
        decl = graph.tensor(t)
        dims = [DimMap(n) for n in decl.shape]
        if p in shape.items or p in shape.outputs:
            extent = batch or decl.shape[0]
            dims[0] = DimMap(extent, "y", Split(extent, h))
        elif p in shape.tables:
            div = bands.count if bands is not None else 1
            dims[0] = DimMap(decl.shape[0], "x", Split(decl.shape[0], blocks), div=div)
            if bands is not None:
                dims[1] = DimMap(decl.shape[1], "x", bands=bands)
        refused = merge_layout(layouts, Layout(t, decl.dtype, tuple(dims)), task.span)
        if refused is not None:
            return refused
    if shape.key is None and w > 1:
        return Misfit(
            f"'{task.kernel.name}' has no table indexed by a key to split over {w} columns; "
            "use a grid with one column",
            task.span,
            shape=True,
        )
    return None


# ------------------------------------------------------------------------ transformation


def _guard(
    body: tuple[ir.Stmt, ...], shape: Lookup, extent: int, site: BandSite | None = None
) -> tuple[ir.Stmt, ...]:
    """After ``let key = ...``: clamp the key like a gather would, and keep the rest of the
    block only on the PEs whose column holds that key (and, with bands, after the search only
    on the PE whose band holds the bracket)."""
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
            if site is not None:
                rest = _owned(rest, site.var)
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
        out.append(_descend(s, shape, extent, site))
    return tuple(out)


def _owned(block: tuple[ir.Stmt, ...], var: str) -> tuple[ir.Stmt, ...]:
    """The statements after ``let var = search(...)`` run only where the band owns the bracket."""
    for k, s in enumerate(block):
        if isinstance(s, ir.Let) and s.name == var:
            own = ir.Name(name=OWN, span=s.span, dtype=DType.BOOL)
            return (*block[: k + 1], ir.If(cond=own, then=block[k + 1 :], orelse=(), span=s.span))
    raise AssertionError(var)


def _descend(s: ir.Stmt, shape: Lookup, extent: int, site: BandSite | None) -> ir.Stmt:
    match s:
        case ir.For():
            return replace(s, body=_guard(s.body, shape, extent, site))
        case ir.If():
            return replace(
                s,
                then=_guard(s.then, shape, extent, site),
                orelse=_guard(s.orelse, shape, extent, site),
            )
    return s


def _rewrite(node, shape: Lookup):
    """Table accesses use the clamped key."""

    def keyed(n):
        if isinstance(n, ir.Load | ir.Search) and n.tensor in shape.tables:
            first = ir.Name(name=KEY, span=n.indices[0].span, dtype=DType.I32)
            return replace(n, indices=(first, *n.indices[1:]))
        return n

    return ir.transform(node, keyed)


# ------------------------------------------------------------------------------- lower


@dataclass
class LookupCode:
    launch: str
    items: int  # items on the busiest PE
    rows: int  # rows of PEs the items are split over
    cost: ItemCost
    reduce: int
    output_rects: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    describe: str = (
        "item-wise lookup: the key-indexed tables are split over the grid columns (each "
        "column holds some keys' whole rows), the items over the rows; every PE adds the "
        "contributions of its own keys for its row's items, and the partial sums are added "
        "along each row into the last column (collectives_2d reduce_fadds)"
    )


def lower(
    task: Task,
    shape: Lookup,
    graph: TaskGraph,
    layouts: dict[str, Layout],
    b: Builder,
    shared: Shared,
) -> LookupCode | Refusal | Misfit:
    name = task.kernel.name
    collectives(b, shared)
    tensor = {p.name: tensor_of(task, p.name) for p in task.kernel.all_params if not p.is_scalar}
    shapes = {p: graph.tensor(t).shape for p, t in tensor.items()}
    partials: dict[str, str] = {}
    starts: dict[tuple[str, int], tuple[m.Expr, int]] = {}  # (param, dim) -> (start, offset)
    for p in sorted(shape.outputs):
        lay = layouts[tensor[p]]
        partials[p] = b.array(
            f"{tensor[p]}_part",
            lay.dtype,
            lay.local_size,
            f"this PE's partial sums of '{tensor[p]}' (its nuclides only)",
        )
    out0 = tensor[next(iter(sorted(shape.outputs)))]
    item_dm = layouts[out0].dims[0]
    items = split_params(b, shared, item_dm)
    batches = -(-(shape.end - shape.first) // item_dm.extent)
    batched = item_dm.extent != graph.tensor(out0).shape[0]
    item0: m.Expr = m.Name(items.start)  # global index of this PE's first item
    base = ""
    if batched:
        base = b.fresh("item_base")
        item0 = m.Name(b.fresh("item0"))
        for p in shape.items | shape.outputs:
            starts[(p, 0)] = (item0, 0)
        b.batches = Batches(
            item_dm.extent,
            batches,
            shape.first,
            shape.end,
            tuple(sorted(tensor[p] for p in shape.items | shape.outputs)),
        )
    table_extent = 0
    key_params = {}
    band: BandCode | None = None
    if shape.key is not None:
        table_lay = layouts[tensor[next(iter(sorted(shape.tables)))]]
        table_dm = table_lay.dims[0]
        table_extent = table_dm.extent
        if table_lay.dims[1].bands is None:
            sp = split_params(b, shared, table_dm)
            size = m.builtin("as", m.Name("i32"), m.Name(sp.size))
            key_params = {LO: m.Name(sp.start), HI: m.add(m.Name(sp.start), size)}
        else:
            site = shape.site
            band = _band_params(b, table_lay, site, b.tensor_arrays[tensor[site.table]])
            key_params = {LO: band.key_start, HI: m.add(band.key_start, band.keys)}
            for p in shape.tables:
                starts[(p, 0)] = (band.key_start, 0)
                starts[(p, 1)] = (band.first, len(band.bands.tree))
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
                    idx = sgen.clamped(idx, dm.extent)
            if (param, d) in starts:
                start, offset = starts[(param, d)]
                idx = m.add(_minus(idx, start), m.lit(offset))
            elif dm.split is not None:
                idx = _minus(idx, m.Name(split_params(b, shared, dm).start))
            flat = m.add(flat, m.mul(idx, m.lit(lay.pitches[d])))
        return Place(array, flat, guard)

    sgen = BandedGen(b, place, shapes=shapes, band=band)
    for n, v in sizes.items():
        sgen.names[n] = m.lit(v)
    sgen.names.update(key_params)
    # the item loop counts in i16 (DSD-sized); the global item index is an i32
    sgen.names[shape.loop.var] = m.add(
        item0, m.builtin("as", m.Name("i32"), m.Name(shape.loop.var))
    )
    sgen.ranges[shape.loop.var] = (shape.first, shape.end - 1)
    if shape.key is not None:
        sgen.ranges[KEY] = (0, table_extent - 1)
    sgen.vectorise = lambda loop: _vector_loop(loop, sgen, b, layouts, tensor, partials, sizes)
    b.names.add(shape.loop.var)
    body = shape.loop.body
    if shape.key is not None:
        body = _guard(body, shape, table_extent, band.site if band is not None else None)
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
        return b.misfit("the csl lookup lowering reduces one output", task.span)
    launch = b.fresh(f"f_{task.name}")
    window = _item_window(b, shape, item_dm, items.start, items.size, batched)
    loop = m.For(m.builtin("range", *window), shape.loop.var, tuple(stmts))
    first_item: tuple[m.Stmt, ...] = ()
    if batched:
        first_item = (
            m.Comment("the batch's first item (sent by the host with each launch), then ours"),
            m.VarDecl(item0.id, m.Named("i32"), m.add(m.Name(base), m.Name(items.start)), True),
        )
    b.code(
        m.FnDecl(
            launch,
            ((base, m.Named("i32")),) if batched else (),
            m.Named("void"),
            (
                m.Comment(
                    f"launched by the host: task {task.name} ({name}) over this row's items, "
                    "using the nuclides of this column"
                ),
                *first_item,
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
    b.launch(launch, (m.Named("i32"),) if batched else ())
    out = tensor[next(iter(sorted(shape.outputs)))]
    lay = layouts[out]
    bands = band.bands if band is not None else None
    key = None
    if shape.key is not None:
        split = layouts[tensor[next(iter(sorted(shape.tables)))]].dims[0].split
        key = (sgen.names[KEY].id, split.largest / table_extent)  # the busiest group's keys
        groups = split.parts
    band = None
    if bands is not None:
        band = (sgen.names[OWN].id, bands.count, (bands.local - len(bands.tree)).bit_length())
    if b.refused is not None:
        return b.refused
    cost = _estimate(shape, task, stmts, b, key, band)
    if isinstance(cost, Misfit):
        return cost
    code = LookupCode(
        launch,
        item_dm.split.largest,
        item_dm.split.parts,
        cost,
        lay.local_size,
        {out: (b.width - 1, 0, 1, b.height)},
    )
    if bands is not None:
        code.describe = (
            "item-wise lookup with energy bands: the key-indexed tables are split over the grid "
            f"columns in {groups} groups of {bands.count} neighbouring columns (group x / "
            f"{bands.count} holds a block of keys; column x % {bands.count} of a group holds "
            f"energy band x % {bands.count} of each: a subtree of the search tree cut at depth "
            f"{bands.depth}, widened by one grid point on each side, after the "
            f"{len(bands.tree)} top probe points); the items are split over the rows; every PE "
            "of a key's group replays the top levels of the search, only the PE whose band the "
            "search reaches finishes it (the same probes as a whole-grid search, so the same "
            "bracket on any data) and adds the contribution; the partial sums are added along "
            "each row into the last column (collectives_2d reduce_fadds)"
        )
    return code if b.refused is None else b.refused


# ------------------------------------------------------------------------- energy bands


@dataclass
class BandCode:
    """The PE parameters and storage of the banded search."""

    site: BandSite
    bands: Bands
    array: str  # local array of the searched table
    pitch: int  # its local stride between keys
    key_start: m.Expr
    keys: m.Expr
    band: m.Expr
    first: m.Expr  # global index of the first stored point of this PE's band


def _band_params(b: Builder, lay: Layout, site: BandSite, array: str) -> BandCode:
    bands = lay.dims[1].bands
    keys = lay.dims[0]
    count = m.lit(bands.count)
    group = m.Binary("/", m.Name("x"), count)
    band = m.Binary("%", m.Name("x"), count)
    n, parts = m.lit(keys.extent), m.lit(keys.split.parts)
    start = b.pe_param(
        "keys_start",
        "i32",
        m.call("block_start", n, parts, group),
        f"this column's key block (group x / {bands.count} of {keys.split.parts}; none past "
        f"the last group) and energy band (x % {bands.count}, search tree depth {bands.depth})",
    )
    size = b.pe_param(
        "keys",
        "i32",
        m.IfExpr(m.Binary("<", group, parts), m.call("block_size", n, parts, group), m.Int(0)),
    )
    which = b.pe_param("band", "i32", band)
    first = b.pe_param(
        "band_first", "i32", m.call("band_start", m.lit(bands.extent), m.lit(bands.depth), band)
    )
    if not any(isinstance(f, m.FnDecl) and f.name == "band_start" for f in b.layout_fns):
        b.layout_fns.append(_band_first_fn())
    return BandCode(
        site,
        bands,
        array,
        lay.pitches[0],
        m.Name(start),
        m.Name(size),
        m.Name(which),
        m.Name(first),
    )


def _band_first_fn() -> m.FnDecl:
    """Layout helper: the first grid point a band stores (banding.cut, in CSL)."""
    i32 = m.Named("i32")
    lo, hi, mid, level = m.Name("lo"), m.Name("hi"), m.Name("mid"), m.Name("level")
    shift = m.Binary("-", m.Binary("-", m.Name("depth"), m.Int(1)), level)
    bit = m.Binary("&", m.Binary(">>", m.Name("band"), shift), m.Int(1))
    half = m.Binary("+", lo, m.Binary("/", m.Binary("-", hi, lo), m.Int(2)))
    walk = (
        m.VarDecl("mid", i32, half, True),
        m.If(
            m.Binary("==", bit, m.Int(1)),
            (m.Assign(lo, "=", m.Binary("+", mid, m.Int(1))),),
            (m.Assign(hi, "=", mid),),
        ),
    )
    return m.FnDecl(
        "band_start",
        (("n", i32), ("depth", i32), ("band", i32)),
        i32,
        (
            m.Comment(
                "first grid point that energy band 'band' stores: follow the search tree of "
                "0 .. n down the band's bits (highest first), then one point to the left"
            ),
            m.VarDecl("lo", i32, m.Int(0)),
            m.VarDecl("hi", i32, m.Name("n")),
            m.For(m.builtin("range", m.Name("i32"), m.Name("depth")), "level", walk),
            m.Return(m.IfExpr(m.Binary(">", lo, m.Int(0)), m.Binary("-", lo, m.Int(1)), m.Int(0))),
        ),
    )


@dataclass
class BandedGen(ScalarGen):
    """ScalarGen whose ``search`` of the banded table replays the whole-grid probes: the top
    levels on the stored top probe points (every PE of the key's group), the rest on the band
    the walk reaches (only its PE, which sets the ownership flag)."""

    band: BandCode | None = None

    def _search(self, e: ir.Search) -> m.Expr:
        bc = self.band
        if bc is None or e.tensor != bc.site.table:
            return super()._search(e)
        top = len(bc.bands.tree)
        i32 = m.Named("i32")
        lo, hi, node, mid, mid2, own, res = (
            self._tmp(n) for n in ("b_lo", "b_hi", "b_node", "b_mid", "b_mid", "b_own", "b_idx")
        )
        value = self.expr(e.value)
        row = m.mul(m.Binary("-", self.expr(e.indices[0]), bc.key_start), m.lit(bc.pitch))

        def probe(local: m.Expr) -> m.Expr:
            return m.Binary("<=", m.Index(m.Name(bc.array), (m.add(row, local),)), value)

        def half(name: str) -> m.Stmt:
            span = m.Binary("/", m.Binary("-", m.Name(hi), m.Name(lo)), m.Int(2))
            return m.VarDecl(name, i32, m.Binary("+", m.Name(lo), span), True)

        def step(name: str, local: m.Expr, left: tuple, right: tuple) -> m.Stmt:
            return m.If(
                probe(local),
                (m.Assign(m.Name(lo), "=", m.Binary("+", m.Name(name), m.Int(1))), *right),
                (m.Assign(m.Name(hi), "=", m.Name(name)), *left),
            )

        def child(k: int) -> tuple:
            nxt = m.Binary("+", m.Binary("*", m.Int(2), m.Name(node)), m.Int(k))
            return (m.Assign(m.Name(node), "=", nxt),)

        in_band = m.add(m.Binary("-", m.Name(mid2), bc.first), m.lit(top))
        clamp = self.helper("kc_clamp_i32", DType.I32)
        self.prelude += [
            m.Comment("search: the top levels on the top probe points, then this PE's band"),
            m.VarDecl(lo, i32, m.Int(0)),
            m.VarDecl(hi, i32, m.lit(bc.bands.extent)),
            m.VarDecl(node, i32, m.Int(0)),
            m.For(
                m.builtin("range", m.Name("i32"), m.lit(bc.bands.depth)),
                self._tmp("b_level"),
                (half(mid), step(mid, m.Name(node), child(1), child(2))),
            ),
            m.VarDecl(
                own, m.Named("bool"), m.Binary("==", m.Name(node), m.add(bc.band, m.lit(top))), True
            ),
            m.If(
                m.Name(own),
                (
                    m.While(
                        m.Binary("<", m.Name(lo), m.Name(hi)),
                        None,
                        (half(mid2), step(mid2, in_band, (), ())),
                    ),
                ),
            ),
            m.VarDecl(
                res,
                i32,
                m.call(
                    clamp, m.Binary("-", m.Name(lo), m.Int(1)), m.Int(0), m.lit(bc.bands.extent - 2)
                ),
                True,
            ),
        ]
        self.names[OWN] = m.Name(own)
        return m.Name(res)


def _item_window(
    b: Builder, shape: Lookup, dm: DimMap, start: str, size: str, batched: bool
) -> tuple[m.Expr, ...]:
    """The ``@range`` arguments of a PE's item loop: its whole block, or (the loop does not
    cover every item) the part of it inside ``first .. end``. A batch lies inside that range:
    the host sends the batches of ``first .. end`` and drops the results of the padding past
    ``end`` in the last one."""
    if batched or (shape.first == 0 and shape.end == dm.extent):
        return (m.Name("i16"), m.Name(size))

    def clamp(bound: int) -> m.Expr:
        local = m.Binary("-", m.lit(bound), m.Name(start))
        low = m.IfExpr(m.Binary("<", local, m.Int(0)), m.Int(0), local)
        return m.IfExpr(m.Binary(">", low, m.Name(size)), m.Name(size), low)

    first = b.pe_param(
        "items_first",
        "i16",
        clamp(shape.first),
        f"the part of this row's items inside the item loop's range {shape.first} .. {shape.end}",
    )
    end = b.pe_param("items_end", "i16", clamp(shape.end))
    return (m.Name("i16"), m.Name(first), m.Name(end), m.Int(1))


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
    for node in accesses(loop.body):
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


def _data_loops(body) -> list:
    """The loops of an item whose bound is loaded from memory, outermost first."""
    found: list = []
    for node in body:
        match node:
            case ir.For() if affine(node.hi) is None:
                found.append(node)
            case ir.For():
                found += _data_loops(node.body)
            case ir.If():
                found += _data_loops(node.then) + _data_loops(node.orelse)
    return found


def _loaded_loops(stmts) -> list[m.For]:
    """The emitted loops whose range is loaded from memory, outermost first."""
    found: list[m.For] = []
    for s in stmts:
        match s:
            case m.For(iter=it) if any(isinstance(n, m.Index) for n in charges.walk(it)):
                found.append(s)
            case m.For(body=body) | m.While(body=body):
                found += _loaded_loops(body)
            case m.If(then=then, orelse=orelse):
                found += _loaded_loops(then) + _loaded_loops(orelse)
    return found


def _dsd_lengths(b: Builder) -> dict[str, int]:
    """The element count of each memory DSD the PE program declares."""
    lengths = {}
    for d in b.pe_decls:
        match d:
            case m.VarDecl(name=n, value=m.Builtin(name="get_dsd", args=(_, m.Struct() as cfg))):
                for key, value in cfg.fields:
                    if key == "tensor_access" and isinstance(value, m.TensorAccess):
                        extents = [e.value for e in value.extents if isinstance(e, m.Int)]
                        if len(extents) == len(value.extents):
                            lengths[n] = math.prod(extents)
    return lengths


@dataclass(frozen=True)
class ItemCost:
    """Modelled cycles of one item on a PE, counted from its emitted code."""

    fixed: float  # outside its data-dependent loop (sampling, the key, the loop's set-up)
    skipped: float  # one trip of that loop when another column holds the key (key and test)
    walk: float  # one trip on a key this PE's group holds, the bracket in another PE's band
    own: float  # one trip on a key this PE holds, the bracket in its band (search, interpolation)
    share: float  # the share of keys this PE's group holds
    bands: int  # energy bands a key's table is split into (1: none)
    extent: float  # the most trips the loop can make


def _estimate(
    shape: Lookup,
    task: Task,
    stmts: list[m.Stmt],
    b: Builder,
    key: tuple[str, float] | None,
    band: tuple[str, int, int] | None,
) -> ItemCost | Misfit:
    """An item's cycles, counted from the emitted item loop with the simulator's charges
    (kernelc/csl/charges.py). ``key``: the name of the key test and the share of keys a PE
    holds; ``band``: the name of the band-ownership flag, the band count and the probes of a
    band's bisection. Each trip is counted three ways (key elsewhere; key here, band elsewhere;
    both here); other branches are taken half the time, an inner data-dependent loop runs half
    its extent."""
    sizes = task.size_env
    params = {p.name: p for p in task.kernel.params}
    extents = []
    for loop in _data_loops(shape.loop.body):
        extent = 1
        for acc in accesses(loop.body):
            for d, i in enumerate(acc.indices):
                if isinstance(i, ir.Name) and i.name == loop.var:
                    extent = max(extent, evaluate(params[acc.tensor].shape[d], sizes))
        extents.append(extent)
    loaded = _loaded_loops(stmts)
    if len(loaded) != len(extents):
        return Misfit("the csl lookup model lost a data-dependent loop", task.span)
    mean = {id(loop): extent / 2 for loop, extent in zip(loaded, extents, strict=True)}
    outer = loaded[0] if loaded else None
    key_name, share = key if key is not None else ("", 1.0)
    band_name, count, band_steps = band if band is not None else ("", 1, 0)

    def counter(key_taken: float, band_taken: float, skip_outer: bool) -> charges.Counter:
        weights = {key_name: key_taken, band_name: band_taken}

        def taken(s: m.If) -> float:
            names = {n.id for n in charges.walk(s.cond) if isinstance(n, m.Name)}
            return next((weights[n] for n in sorted(names) if n in weights), 0.5)

        def trips(loop: m.For | m.While) -> float | None:
            if loop is outer:
                return 0.0 if skip_outer else None
            if isinstance(loop, m.While) and band_steps:
                return band_steps
            return mean.get(id(loop))

        return charges.Counter(functions, lengths, trips, taken)

    functions = {d.name: d for d in b.pe_code if isinstance(d, m.FnDecl)}
    lengths = _dsd_lengths(b)
    fixed = counter(share, 1.0 / count, True).block(tuple(stmts))
    if outer is None:
        return ItemCost(fixed, 0.0, 0.0, 0.0, share, count, 0.0)

    def trip(key_taken: float, band_taken: float) -> float:
        return charges.ITERATION_CYCLES + counter(key_taken, band_taken, False).block(outer.body)

    return ItemCost(
        fixed, trip(0.0, 0.0), trip(1.0, 0.0), trip(1.0, 1.0), share, count, float(extents[0])
    )


def slowest_band_share(items: int, bands: int) -> float:
    """The share of a row's items whose bracket lies in its busiest band: an item's energy
    picks one band for all its nuclides, so with few items per row some band gets more than
    1/bands of them (the largest of ``bands`` bins of ``items`` balls: at least its ceiling)."""
    if items == 0 or bands == 1:
        return 1.0
    p = 1.0 / bands
    normal = items * p + largest_normal(bands) * math.sqrt(items * p * (1 - p))
    return min(items, max(math.ceil(items * p), normal)) / items


def lookup_cycles(code: LookupCode, low) -> dict[str, int]:
    """The slowest row's items; their keys spread evenly over the column groups (a material's
    nuclides are distinct), their brackets in the busiest band of the group."""
    reduce = code.reduce + machine.DSD_SETUP_CYCLES + low.width
    cost = code.cost
    trips = slowest_trips(code.items, cost.extent, code.rows)
    band = slowest_band_share(code.items, cost.bands)
    here = cost.walk + band * (cost.own - cost.walk)
    per_trip = cost.skipped + cost.share * (here - cost.skipped)
    items = code.items * (cost.fixed + charges.ITERATION_CYCLES) + trips * per_trip
    return {"items": round(items), "reduce": reduce}


class LookupLowering:
    """Item-wise lookups: tables over columns by key and energy band, items over rows."""

    def plan(self, task, form: Lookup, graph, layouts, width, height) -> Refusal | Misfit | None:
        return plan(task, form, graph, layouts, width, height)

    def lower(
        self, task, index, form: Lookup, graph, layouts, b, shared
    ) -> LookupCode | Refusal | Misfit:
        return lower(task, form, graph, layouts, b, shared)

    def cycles(self, code: LookupCode, low: Lowered) -> dict[str, int]:
        return lookup_cycles(code, low)

    def fewest_pes(
        self, task, form: Lookup, graph, arch, planner: Planner
    ) -> int | Refusal | Misfit:
        return fewest_pes(task, form, graph, arch, planner)


LOOKUP = LookupLowering()
