"""Data-parallel (map and stencil) tasks: block decomposition, halo exchange, DSD compute.

A task whose body is a nest of parallel loops storing ``out[i, j] = f(in[i + a, j + b], ...)``
is decomposed like its output: the last two dimensions in blocks over the rows and columns of
the PE grid (a 1-D output over all PEs in row-major order). Each PE computes the iterations that
fall in its block. Inputs read at offsets carry a halo (widths from the access analysis,
``kernelc.passes.access.summarise``); before computing, each PE exchanges halos with its four
neighbours over the fabric in two stages, columns first and then full padded rows, so the
corners arrive too. Exchanges use two colors per direction, alternating with the PE's parity,
so no PE receives and sends on one color (csl.md 4.1). The loop body becomes DSD operations
(vector.py) over a 2-D iteration space when the temporaries fit, else row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernelc import ir
from kernelc.affine import affine
from kernelc.backends.csl.builder import Builder, csl_type
from kernelc.backends.csl.cost import ops_cycles
from kernelc.backends.csl.lowered import Lowered, Misfit, Rect, Refusal
from kernelc.backends.csl.placement import (
    ExchangeResources,
    Shared,
    check_whole,
    default_layout,
    merge_layout,
    split_params,
    tensor_of,
)
from kernelc.backends.csl.scalar import Place, ScalarGen
from kernelc.backends.csl.vector import Access, Space, TempPool, VectorGen
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.forms import Map
from kernelc.forms.blocks import DimMap, Layout
from kernelc.graph import Task, TaskGraph
from kernelc.passes.access import summarise
from kernelc.types import DType

CODE_RESERVE = machine.CODE_BASE_BYTES + 3000  # modelled code of a typical map program
OP_OVERHEAD = 2  # modelled scalar work to issue one DSD builtin statement
PASS_OVERHEAD = 6  # modelled scalar work per row of a piece run row by row (loop, DSD offsets)
TASK_OVERHEAD = 8  # modelled scalar work of the compute task itself
EXCHANGE_IDLE = 15  # modelled: a stage on a PE without neighbours along its axis
EXCHANGE_BASE = 32  # modelled: a stage's scalar work besides its moves
EXCHANGE_PER_MOVE = 9  # modelled: issuing one async halo move and taking its completion
EXCHANGE_WIRE = 47  # modelled: setup, hops and completions around a stage's wavelets


def plan_map(
    task: Task,
    shape: Map,
    graph: TaskGraph,
    layouts: dict[str, Layout],
    width: int,
    height: int,
) -> Refusal | Misfit | None:
    """Choose the placement of every tensor the task touches (called consumers first)."""
    refused = check_whole(task, graph)
    if refused is not None:
        return refused
    out = tensor_of(task, shape.stores[0].tensor)
    decl = graph.tensor(out)
    out_layout = layouts.get(out) or default_layout(out, decl.dtype, decl.shape, width, height)
    var_dim = {i.name: d for d, i in enumerate(shape.stores[0].indices)}
    for s in shape.stores:
        t = tensor_of(task, s.tensor)
        d = graph.tensor(t)
        placed = Layout(
            t, d.dtype, tuple(DimMap(dm.extent, dm.axis, dm.split) for dm in out_layout.dims)
        )
        if d.shape != decl.shape:
            return Misfit(f"outputs '{out}' and '{t}' differ in shape", task.span)
        refused = merge_layout(layouts, placed if t != out else out_layout, task.span)
        if refused is not None:
            return refused
    halos = {a.tensor: a.halo for a in summarise(task.kernel)}
    for node in (n for p in shape.pieces for n in ir.walk_body(p.body)):
        if not isinstance(node, ir.Load):
            continue
        t = tensor_of(task, node.tensor)
        d = graph.tensor(t)
        dims = []
        for k, index in enumerate(node.indices):
            form = affine(index)
            var = _single_var(form, var_dim)
            if var is not None and out_layout.dims[var_dim[var]].split is not None:
                src = out_layout.dims[var_dim[var]]
                if d.shape[k] == src.extent:
                    dims.append(DimMap(d.shape[k], src.axis, src.split, halos[node.tensor][k]))
                    continue
            dims.append(DimMap(d.shape[k]))
        for dm in dims:
            if dm.axis == "xy" and dm.halo != (0, 0):
                return Refusal(
                    f"'{node.tensor}' of '{task.kernel.name}' is read with a halo along a "
                    "dimension spread over all PEs; the csl backend exchanges halos of 2-D "
                    "blocks only",
                    node.span,
                )
        refused = merge_layout(layouts, Layout(t, d.dtype, tuple(dims)), node.span)
        if refused is not None:
            return refused
    return None


def _single_var(form, var_dim: dict[str, int]) -> str | None:
    if form is None or len(form.terms) != 1:
        return None
    ((name, coef),) = form.terms
    return name if coef == 1 and name in var_dim else None


# ------------------------------------------------------------------------------- code


class _Exchange:
    """Builds the halo exchange stages of one tensor."""

    def __init__(self, b: Builder, shared: Shared, arch: machine.Arch) -> None:
        self.b, self.shared, self.arch = b, shared, arch

    def resources(self) -> ExchangeResources:
        if self.shared.exchange is not None:
            return self.shared.exchange
        b = self.b
        nb = {
            "west": b.pe_param(
                "has_west",
                "bool",
                m.Binary(">", m.Name("x"), m.Int(0)),
                "neighbours that exist (halo exchange)",
            ),
            "east": b.pe_param(
                "has_east",
                "bool",
                m.Binary("<", m.Name("x"), m.Binary("-", m.Name("width"), m.Int(1))),
            ),
            "north": b.pe_param("has_north", "bool", m.Binary(">", m.Name("y"), m.Int(0))),
            "south": b.pe_param(
                "has_south",
                "bool",
                m.Binary("<", m.Name("y"), m.Binary("-", m.Name("height"), m.Int(1))),
            ),
        }
        colors: dict[str, str] = {}
        queues: dict[str, str] = {}
        flows = (
            ("east", "x", "EAST", "WEST"),
            ("west", "x", "WEST", "EAST"),
            ("south", "y", "SOUTH", "NORTH"),
            ("north", "y", "NORTH", "SOUTH"),
        )
        opposite = {"east": "west", "west": "east", "south": "north", "north": "south"}
        for k, (flow, coord, out_dir, in_dir) in enumerate(flows):
            pair = [
                b.color(
                    f"halo_{flow}_{p}",
                    f"halo data moving {flow}, sent by PEs with even {coord}"
                    if p == 0
                    else f"halo data moving {flow}, sent by odd {coord}",
                )
                for p in (0, 1)
            ]
            parity = m.Binary("==", m.Binary("%", m.Name(coord), m.Int(2)), m.Int(0))
            tx = b.pe_param(
                f"tx_{flow}", "color", m.IfExpr(parity, m.Name(pair[0]), m.Name(pair[1]))
            )
            rx = b.pe_param(
                f"rx_{opposite[flow]}", "color", m.IfExpr(parity, m.Name(pair[1]), m.Name(pair[0]))
            )
            colors[f"tx_{flow}"], colors[f"rx_{opposite[flow]}"] = tx, rx
            # An async op runs on the microthread of its queue's number (WSE-2, and WSE-3
            # without .ut_id), so the four ops of one stage (a send and a receive each way
            # along one axis) take four numbers: sends 2..5, one output queue per color, and
            # receives on the numbers of the other axis's sends (2..5 are free of memcpy).
            queues[f"tx_{flow}"] = b.fresh(f"tx_{flow}_oq")
            queues[f"rx_{opposite[flow]}"] = b.fresh(f"rx_{opposite[flow]}_iq")
            b.const(
                queues[f"tx_{flow}"],
                m.builtin("get_output_queue", m.Int(2 + k)),
                m.Named("output_queue"),
            )
            b.const(
                queues[f"rx_{opposite[flow]}"],
                m.builtin("get_input_queue", m.Int(2 + (k + 2) % 4)),
                m.Named("input_queue"),
            )
            send = m.struct(routes=m.Name(b.route("RAMP", out_dir)))
            recv = m.struct(routes=m.Name(b.route(in_dir, "RAMP")))
            for p, color in enumerate(pair):
                mine = m.Binary("==", m.Binary("%", m.Name(coord), m.Int(2)), m.Int(p))
                b.layout_loop.append(
                    m.ExprStmt(
                        m.builtin(
                            "set_color_config",
                            m.Name("x"),
                            m.Name("y"),
                            m.Name(color),
                            m.IfExpr(mine, send, recv),
                        )
                    )
                )
            init = m.If(
                m.builtin("is_arch", m.Str("wse3")),
                (
                    m.ExprStmt(
                        m.builtin(
                            "initialize_queue",
                            m.Name(queues[f"tx_{flow}"]),
                            m.struct(color=m.Name(tx)),
                        )
                    ),
                    m.ExprStmt(
                        m.builtin(
                            "initialize_queue",
                            m.Name(queues[f"rx_{opposite[flow]}"]),
                            m.struct(color=m.Name(rx)),
                        )
                    ),
                ),
            )
            b.comptime.append(init)
        stage = b.scalar("stage", "i16", m.Int(0), "halo exchange state of the running task")
        pending = b.scalar("pending", "i16", m.Int(0))
        running = b.scalar("running", "i16", m.Int(0))
        events = {}
        for ev in ("tx_lo", "rx_lo", "tx_hi", "rx_hi"):
            events[ev] = b.task_id(f"halo_{ev}", f"halo {ev.replace('_', ' ')} side done")
        step = b.fresh("halo_step")
        advance = b.fresh("halo_advance")
        b.code(
            m.FnDecl(
                step,
                (),
                m.Named("void"),
                (
                    m.Comment(
                        "one async halo operation finished; start the next stage when all have"
                    ),
                    m.Assign(m.Name(pending), "-=", m.Int(1)),
                    m.If(
                        m.Binary("==", m.Name(pending), m.Int(0)),
                        (
                            m.Assign(m.Name(stage), "+=", m.Int(1)),
                            m.ExprStmt(m.call(advance)),
                        ),
                    ),
                ),
            )
        )
        for ev, tid in events.items():
            name = b.fresh(f"halo_{ev}_done")
            b.code(m.TaskDecl(name, (), (m.ExprStmt(m.call(step)),)))
            b.bind(name, tid)
        self.shared.exchange = ExchangeResources(
            nb, colors, queues, events, stage, pending, running
        )
        b.exchange_advance = advance
        return self.shared.exchange

    def stages(self, layout: Layout, shared: Shared, span) -> list[list[m.Stmt]]:
        """Statements issuing each exchange stage of one 2-D tensor (columns, then rows)."""
        split = layout.split_dims()
        if not any(layout.dims[d].halo != (0, 0) for d in split):
            return []
        if len(layout.dims) != 2 or [layout.dims[d].axis for d in split] != ["y", "x"]:
            self.b.misfit(
                f"halo exchange of '{layout.tensor}' needs a 2-D tensor split over rows and "
                "columns",
                span,
            )
            return []
        res = self.resources()
        b = self.b
        ydm, xdm = layout.dims
        rows = split_params(b, shared, ydm).size
        cols = split_params(b, shared, xdm).size
        hn, hs = ydm.halo
        hw, he = xdm.halo
        pitch = layout.local_shape[1]
        arr = layout.tensor
        t = csl_type(layout.dtype)
        out = []

        rv, cv = b.fresh("row"), b.fresh("col")

        def mem(name: str, extents: tuple[m.Expr, m.Expr], row0: m.Expr, col0: m.Expr) -> str:
            dsd = b.fresh(f"{arr}_{name}")
            flat = m.add(m.mul(m.add(m.Name(rv), row0), m.Int(pitch)), m.add(m.Name(cv), col0))
            access = m.TensorAccess((rv, cv), extents, m.Index(m.Name(arr), (flat,)))
            b.const(dsd, m.builtin("get_dsd", m.Name("mem4d_dsd"), m.struct(tensor_access=access)))
            return dsd

        def fab(kind: str, which: str, count: m.Expr) -> str:
            dsd = b.fresh(f"{arr}_{which}")
            qkey = "output_queue" if kind == "fabout_dsd" else "input_queue"
            b.const(
                dsd,
                m.builtin(
                    "get_dsd",
                    m.Name(kind),
                    m.Struct(
                        (
                            ("fabric_color", m.Name(res.colors[which])),
                            ("extent", count),
                            (qkey, m.Name(res.queues[which])),
                        )
                    ),
                ),
            )
            return dsd

        def op(dst: str, src: str, event: str) -> list[m.Stmt]:
            opts = m.struct(**{"async": m.Bool(True), "activate": m.Name(res.events[event])})
            return [
                m.Assign(m.Name(res.pending), "+=", m.Int(1)),
                m.ExprStmt(
                    m.builtin(f"fmov{'s' if t == 'f32' else 'h'}", m.Name(dst), m.Name(src), opts)
                ),
            ]

        if hw or he:
            stmts: list[m.Stmt] = []
            west: list[m.Stmt] = []
            east: list[m.Stmt] = []
            if he:
                n = m.mul(m.Name(rows), m.Int(he))
                send = mem("west_edge", (m.Name(rows), m.Int(he)), m.Int(hn), m.Int(hw))
                west += op(fab("fabout_dsd", "tx_west", n), send, "tx_lo")
                recv = mem(
                    "east_halo",
                    (m.Name(rows), m.Int(he)),
                    m.Int(hn),
                    m.add(m.Name(cols), m.Int(hw)),
                )
                east += op(recv, fab("fabin_dsd", "rx_east", n), "rx_hi")
            if hw:
                n = m.mul(m.Name(rows), m.Int(hw))
                send = mem("east_edge", (m.Name(rows), m.Int(hw)), m.Int(hn), m.Name(cols))
                east += op(fab("fabout_dsd", "tx_east", n), send, "tx_hi")
                recv = mem("west_halo", (m.Name(rows), m.Int(hw)), m.Int(hn), m.Int(0))
                west += op(recv, fab("fabin_dsd", "rx_west", n), "rx_lo")
            if west:
                stmts.append(m.If(m.Name(res.neighbours["west"]), tuple(west)))
            if east:
                stmts.append(m.If(m.Name(res.neighbours["east"]), tuple(east)))
            out.append(
                [m.Comment(f"'{arr}' columns: {hw} from the west, {he} from the east"), *stmts]
            )
        if hn or hs:
            stmts = []
            north: list[m.Stmt] = []
            south: list[m.Stmt] = []
            wide = m.add(m.Name(cols), m.Int(hw + he))
            if hs:
                n = m.mul(m.Int(hs), wide)
                send = mem("north_edge", (m.Int(hs), wide), m.Int(hn), m.Int(0))
                north += op(fab("fabout_dsd", "tx_north", n), send, "tx_lo")
                recv = mem(
                    "south_halo", (m.Int(hs), wide), m.add(m.Name(rows), m.Int(hn)), m.Int(0)
                )
                south += op(recv, fab("fabin_dsd", "rx_south", n), "rx_hi")
            if hn:
                n = m.mul(m.Int(hn), wide)
                send = mem("south_edge", (m.Int(hn), wide), m.Name(rows), m.Int(0))
                south += op(fab("fabout_dsd", "tx_south", n), send, "tx_hi")
                recv = mem("north_halo", (m.Int(hn), wide), m.Int(0), m.Int(0))
                north += op(recv, fab("fabin_dsd", "rx_north", n), "rx_lo")
            if north:
                stmts.append(m.If(m.Name(res.neighbours["north"]), tuple(north)))
            if south:
                stmts.append(m.If(m.Name(res.neighbours["south"]), tuple(south)))
            out.append(
                [
                    m.Comment(
                        f"'{arr}' rows (with their halo columns): {hn} from the "
                        f"north, {hs} from the south"
                    ),
                    *stmts,
                ]
            )
        return out


@dataclass(frozen=True)
class Window:
    """One loop of one piece as the PE program runs it."""

    var: str
    lo: int
    hi: int
    dim: DimMap | None  # the output dimension the loop walks, when split over the grid
    count: m.Expr  # iterations in this PE's block (a parameter, or a literal when whole)
    offset: m.Expr  # the first one's place in the block
    largest: int  # most iterations on any PE

    def counts(self) -> tuple[str | None, tuple[int, ...]]:
        """The grid axis the loop is split over and its iterations on each PE along it."""
        if self.dim is None:
            return None, (max(self.hi - self.lo, 0),)
        sp = self.dim.split
        return self.dim.axis, tuple(
            max(min(self.hi, sp.start(p) + sp.size(p)) - max(self.lo, sp.start(p)), 0)
            for p in range(sp.parts)
        )


@dataclass(frozen=True)
class PieceCode:
    """The vector work of one piece: its ops and its loops' iterations per PE."""

    ops: tuple[tuple[str, int], ...]  # (op, cycles per element), one pass
    counts: tuple[tuple[str | None, tuple[int, ...]], ...]  # per loop, outermost first
    vector_count: int  # innermost loops run as one DSD pass


@dataclass(frozen=True)
class Stage:
    """One halo exchange stage of one tensor along one grid axis."""

    parts: int  # PEs along the axis
    halo: tuple[int, int]  # (low, high) widths
    line: int  # elements per halo row or column

    def cycles(self) -> int:
        """Modelled cycles on the busiest PE: issuing the async moves and taking their
        completions overlaps the wavelets on the links, so the longer of the two counts."""
        lo, hi = self.halo
        sides = {1: [], 2: [(True, False), (False, True)]}.get(
            self.parts, [(True, False), (False, True), (True, True)]
        )
        worst = EXCHANGE_IDLE
        for has_lo, has_hi in sides:
            # to the low neighbour: my low edge (its high halo) out, my low halo in; and the
            # mirror image to the high neighbour
            pairs = ((hi, has_lo), (lo, has_lo), (lo, has_hi), (hi, has_hi))
            moves = [w for w, there in pairs if there and w]
            sent = (hi if has_lo else 0) + (lo if has_hi else 0)
            got = (lo if has_lo else 0) + (hi if has_hi else 0)
            wire = EXCHANGE_WIRE + max(sent, got) * self.line
            worst = max(worst, EXCHANGE_BASE + EXCHANGE_PER_MOVE * len(moves), wire)
        return worst


@dataclass
class MapCode:
    """What the cost model needs to know about one lowered map task."""

    launch: str
    pieces: list[PieceCode]
    exchange: list[Stage]
    describe: str = ""
    output_rects: dict[str, Rect] = field(default_factory=dict)  # outputs cover the rectangle


def lower_map(
    task: Task,
    index: int,
    shape: Map,
    graph: TaskGraph,
    layouts: dict[str, Layout],
    b: Builder,
    shared: Shared,
) -> MapCode | Refusal | Misfit:
    """Emit the launch function, exchange and compute task of one map task."""
    kname = task.kernel.name
    tensor = {p.name: tensor_of(task, p.name) for p in task.kernel.all_params if not p.is_scalar}
    out_layout = layouts[tensor[shape.stores[0].tensor]]
    var_dim = {i.name: d for d, i in enumerate(shape.stores[0].indices)}
    sizes = task.size_env
    dtype = shape.stores[0].value.dtype
    if dtype not in (DType.F32, DType.F16):
        return b.refuse(
            f"the csl backend vectorises {kname} over f32/f16 only; its outputs are {dtype}",
            task.span,
        )
    csl = {lp.var: b.fresh(lp.var) for lp in shape.loops}  # loop variables in the CSL code
    # ----------------------------------------------------------- iteration windows
    made: dict[tuple[str, int, int], Window] = {}

    def window(var: str, lo: int, hi: int) -> Window:
        if (var, lo, hi) in made:
            return made[var, lo, hi]
        dm = out_layout.dims[var_dim[var]]
        if dm.split is None:
            n = max(hi - lo, 0)
            made[var, lo, hi] = Window(var, lo, hi, None, m.Int(n), m.Int(lo), n)
            return made[var, lo, hi]
        sp = split_params(b, shared, dm)
        cnt = b.pe_param(
            f"n_{var}",
            "i16",
            m.call("window_count", m.lit(lo), m.lit(hi), m.Name(sp.start), m.Name(sp.size)),
            f"iterations of '{var}' ({lo} .. {hi}) in this PE's block, and the "
            "first one's place in it",
        )
        off = b.pe_param(f"o_{var}", "i16", m.call("window_offset", m.lit(lo), m.Name(sp.start)))
        largest = min(max(hi - lo, 0), dm.split.largest)
        made[var, lo, hi] = Window(var, lo, hi, dm, m.Name(cnt), m.Name(off), largest)
        return made[var, lo, hi]

    pieces = [
        (p, [window(lp.var, *r) for lp, r in zip(shape.loops, p.bounds(sizes), strict=True)])
        for p in shape.pieces
    ]
    # ------------------------------------------------------------- exchange stages
    ex = _Exchange(b, shared, b.arch)
    stage_blocks: list[list[m.Stmt]] = []
    exchange_stages: list[Stage] = []
    read = sorted(
        {
            tensor[n.tensor]
            for piece in shape.pieces
            for n in ir.walk_body(piece.body)
            if isinstance(n, ir.Load)
        }
    )
    for t in read:
        lay = layouts[t]
        blocks = ex.stages(lay, shared, task.span)
        stage_blocks.extend(blocks)
        if blocks:
            ydm, xdm = lay.dims
            rows, cols = ydm.split.largest, xdm.split.largest
            if xdm.halo != (0, 0):
                exchange_stages.append(Stage(xdm.split.parts, xdm.halo, rows))
            if ydm.halo != (0, 0):
                exchange_stages.append(Stage(ydm.split.parts, ydm.halo, cols + sum(xdm.halo)))
            for dm in lay.dims:
                if dm.split is not None and max(dm.halo) > dm.split.smallest:
                    return b.misfit(
                        f"'{t}' blocks of {dm.split.smallest} along {dm.axis} are thinner than "
                        f"its halo of {max(dm.halo)}; use fewer PEs along {dm.axis}",
                        task.span,
                    )
    # ------------------------------------------------------------------ compute
    compute_id = b.task_id(f"{kname}_compute", f"compute of task {task.name}")
    compute = b.fresh(f"{kname}_compute")

    def place(tname: str, indices, proven, node) -> Place:
        lay = layouts[tensor[tname]]
        flat: m.Expr = m.Int(0)
        for k, (idx, dm) in enumerate(zip(indices, lay.dims, strict=True)):
            local = idx
            if dm.split is not None:
                sp = split_params(b, shared, dm)
                local = m.add(m.Binary("-", idx, m.Name(sp.start)), m.Int(dm.halo[0]))
            flat = m.add(flat, m.mul(local, m.Int(lay.pitches[k])))
        return Place(arrays[tensor[tname]], flat)

    arrays = b.tensor_arrays

    def make_access(loops: list[Window], vector_vars: list[str], outer: dict[str, m.Expr]):
        loop_info = {w.var: w for w in loops}

        def access(tname: str, indices: tuple[ir.Expr, ...], node) -> Access:
            lay = layouts[tensor[tname]]
            static: m.Expr = m.Int(0)
            runtime: m.Expr | None = None
            for k, (idx, dm) in enumerate(zip(indices, lay.dims, strict=True)):
                form = affine(idx)
                if form is None:
                    b.refuse("a data-dependent index in a vectorised loop", idx.span)
                    return Access(arrays[tensor[tname]], m.Int(0), None)
                pitch = m.Int(lay.pitches[k])
                const = form.const + dm.halo[0]
                term: m.Expr = m.Int(0)
                rt: m.Expr | None = None
                for name, coef in form.terms:
                    if name not in loop_info:
                        b.refuse(f"'{name}' in a vectorised index", idx.span)
                        continue
                    w = loop_info[name]
                    if w.dim is not None and dm.split is None:
                        sp = split_params(b, shared, w.dim)
                        base = m.add(m.Name(sp.start), w.offset)
                    elif w.dim is not None:
                        base = w.offset
                    else:
                        base = m.lit(w.lo)
                    if dm.split is not None and w.dim is None:
                        b.misfit(f"'{tname}' is split but indexed by a whole loop", idx.span)
                        continue
                    if name in vector_vars:
                        term = m.add(term, m.mul(m.lit(coef), m.add(m.Name(csl[name]), base)))
                    else:
                        term = m.add(term, m.mul(m.lit(coef), base))
                        piece = m.mul(m.lit(coef), outer[name])
                        rt = piece if rt is None else m.add(rt, piece)
                local = (
                    m.add(term, m.lit(const)) if const >= 0 else m.Binary("-", term, m.Int(-const))
                )
                static = m.add(static, m.mul(local, pitch))
                if rt is not None:
                    scaled = m.mul(rt, pitch)
                    runtime = scaled if runtime is None else m.add(runtime, scaled)
            return Access(arrays[tensor[tname]], static, runtime)

        return access

    def generate(
        loops: list[Window],
        body: tuple[ir.Stmt, ...],
        vector_count: int,
        builder: Builder,
        temps: TempPool,
    ) -> tuple[list[m.Stmt], VectorGen]:
        vec = loops[len(loops) - vector_count :]
        outer = loops[: len(loops) - vector_count]
        outer_names = {w.var: m.Name(csl[w.var]) for w in outer}
        globals_of = {}
        for w in outer:
            if w.dim is None:
                globals_of[w.var] = m.add(m.lit(w.lo), m.Name(csl[w.var]))
            else:
                start = m.Name(split_params(builder, shared, w.dim).start)
                globals_of[w.var] = m.add(m.add(start, w.offset), m.Name(csl[w.var]))
        space = Space(
            tuple(w.var for w in vec),
            tuple(csl[w.var] for w in vec),
            tuple(w.count for w in vec),
            tuple(max(w.largest, 1) for w in vec),
        )
        sgen = ScalarGen(
            builder, place, globals_of, shapes={p: graph.tensor(tensor[p]).shape for p in tensor}
        )
        for name, value in sizes.items():
            sgen.names.setdefault(name, m.lit(value))
        access = make_access(loops, [w.var for w in vec], outer_names)
        gen = VectorGen(builder, space, dtype, access, sgen, pool=temps)
        stmts = gen.body(body)
        for w in reversed(outer):
            stmts = [m.For(m.builtin("range", m.Name("i16"), w.count), csl[w.var], tuple(stmts))]
        return stmts, gen

    def capacity(loops: list[Window], vector_count: int) -> int:
        n = 1
        for w in loops[len(loops) - vector_count :]:
            n *= max(w.largest, 1)
        return n

    rank = len(shape.loops)
    vector_count = min(rank, 4)
    scratch = Builder(b.arch, b.width, b.height, b.pe_file)
    scratch.tensor_arrays = dict(arrays)
    scratch.names = set(b.names)
    trial_pool = TempPool(max(capacity(loops, vector_count) for _, loops in pieces))
    for piece, loops in pieces:
        generate(loops, piece.body, vector_count, scratch, trial_pool)
    refused = b.refused or scratch.refused
    if refused is not None:
        return refused
    block_bytes = len(trial_pool.arrays) * trial_pool.size * dtype.numpy.itemsize
    if b.data_bytes + block_bytes + CODE_RESERVE > b.arch.pe_memory and rank > 1:
        vector_count = 1
    pool = TempPool(max(capacity(loops, vector_count) for _, loops in pieces))
    stmts: list[m.Stmt] = [
        m.Comment(f"{kname}: the loop body as DSD operations over this PE's iterations")
    ]
    piece_codes: list[PieceCode] = []
    op_count = 0
    for piece, loops in pieces:
        body, gen = generate(loops, piece.body, vector_count, b, pool)
        if len(pieces) > 1:
            stmts.append(m.Comment(_describe_box(loops)))
        counts = [w.count for w in loops if isinstance(w.count, m.Name)]
        guard: m.Expr | None = None
        for c in counts:
            cond = m.Binary(">", c, m.Int(0))
            guard = cond if guard is None else m.Binary("and", guard, cond)
        if guard is not None:
            stmts.append(m.If(guard, tuple(body)))
        else:
            stmts.extend(body)
        counted = tuple(w.counts() for w in loops)
        piece_codes.append(PieceCode(tuple(gen.ops), counted, vector_count))
        op_count += len(gen.ops)
    stmts.append(m.ExprStmt(m.call(m.member("sys_mod", "unblock_cmd_stream"))))
    b.code(m.TaskDecl(compute, (), tuple(stmts)))
    b.bind(compute, compute_id)
    # -------------------------------------------------------------- launch and stages
    launch = b.fresh(f"f_{task.name}")
    if stage_blocks:
        res = shared.exchange
        exchange_fn = b.fresh(f"{kname}_exchange")
        chain: m.Stmt | None = None
        for k in reversed(range(len(stage_blocks))):
            cond = m.Binary("==", m.Name(res.stage), m.Int(k))
            chain = m.If(cond, tuple(stage_blocks[k]), (chain,) if chain else ())
        loop = m.While(
            m.Binary("<", m.Name(res.stage), m.Int(len(stage_blocks))),
            None,
            (
                chain,
                m.If(m.Binary(">", m.Name(res.pending), m.Int(0)), (m.Return(),)),
                m.Assign(m.Name(res.stage), "+=", m.Int(1)),
            ),
        )
        b.code(
            m.FnDecl(
                exchange_fn,
                (),
                m.Named("void"),
                (
                    m.Comment("issue the halo exchange stage by stage; halo_step() resumes it"),
                    loop,
                    m.ExprStmt(m.builtin("activate", m.Name(compute_id))),
                ),
            )
        )
        shared.dispatch.append((index, exchange_fn))
        start = [
            m.Assign(m.Name(res.running), "=", m.lit(index)),
            m.Assign(m.Name(res.stage), "=", m.Int(0)),
            m.Assign(m.Name(res.pending), "=", m.Int(0)),
            m.ExprStmt(m.call(exchange_fn)),
        ]
    else:
        start = [m.ExprStmt(m.builtin("activate", m.Name(compute_id)))]
    b.code(
        m.FnDecl(
            launch,
            (),
            m.Named("void"),
            (m.Comment(f"launched by the host: task {task.name} ({kname})"), *start),
        )
    )
    b.launch(launch)
    halos = [t for t in read if any(d.halo != (0, 0) for d in layouts[t].dims)]
    how = (
        f"data-parallel loop nest in blocks over the grid; halo exchange of "
        f"{', '.join(repr(t) for t in halos)} with the four neighbours in {len(stage_blocks)} "
        "stage(s)"
        if halos
        else "data-parallel loop nest in blocks over the grid (no halo)"
    )
    mode = "the whole block at once" if vector_count == rank else "row by row"
    regions = f" in {len(pieces)} guarded pieces" if len(pieces) > 1 else ""
    describe = f"{how}; the body is {op_count} DSD operation(s){regions} over {mode}"
    code = MapCode(launch, piece_codes, exchange_stages, describe)
    return code if b.refused is None else b.refused


def _describe_box(loops: list[Window]) -> str:
    ranges = ", ".join(f"{w.var} in {w.lo} .. {w.hi}" for w in loops)
    return f"piece {ranges}: its window of this PE's block"


def piece_cycles(piece: PieceCode, width: int, height: int) -> np.ndarray:
    """Modelled cycles of one piece on every PE (rows by columns of the grid)."""
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    along = {"x": xs, "y": ys, "xy": ys * width + xs}
    counts = [
        np.asarray(per_pe)[along[axis]] if axis is not None else np.full(xs.shape, per_pe[0])
        for axis, per_pe in piece.counts
    ]
    elements = np.ones(xs.shape, dtype=np.int64)
    passes = np.ones(xs.shape, dtype=np.int64)
    inner = len(counts) - piece.vector_count
    for k, c in enumerate(counts):
        if k < inner:
            passes *= c
        else:
            elements *= c
    active = np.all([c > 0 for c in counts], axis=0)
    per_pass = ops_cycles(list(piece.ops), elements) + OP_OVERHEAD * len(piece.ops)
    if inner:
        per_pass = per_pass + PASS_OVERHEAD
    guard = 2 * sum(1 for axis, _ in piece.counts if axis is not None)  # the `if` on the counts
    return np.where(active, passes * per_pass, 0) + guard


def finish_exchange(b: Builder, shared: Shared) -> None:
    """The dispatcher that resumes the exchange of whichever task is running."""
    if shared.exchange is None:
        return
    res = shared.exchange
    chain: m.Stmt | None = None
    for index, fn in reversed(shared.dispatch):
        cond = m.Binary("==", m.Name(res.running), m.lit(index))
        chain = m.If(cond, (m.ExprStmt(m.call(fn)),), (chain,) if chain else ())
    b.code(m.FnDecl(b.exchange_advance, (), m.Named("void"), (chain,) if chain else ()))


class MapLowering:
    """Maps and stencils: blocks over the grid, halos exchanged, DSD operations."""

    def plan(self, task, form: Map, graph, layouts, width, height) -> Refusal | Misfit | None:
        return plan_map(task, form, graph, layouts, width, height)

    def lower(
        self, task, index, form: Map, graph, layouts, b, shared
    ) -> MapCode | Refusal | Misfit:
        return lower_map(task, index, form, graph, layouts, b, shared)

    def cycles(self, code: MapCode, low: Lowered) -> dict[str, int]:
        exchange = sum(stage.cycles() for stage in code.exchange)
        total = sum(piece_cycles(p, low.width, low.height) for p in code.pieces)
        return {"exchange": exchange, "compute": int(np.max(total)) + TASK_OVERHEAD}

    def fewest_pes(self, task, form, graph, arch, planner) -> int:
        return 1


MAP = MapLowering()
