"""Matrix products ``c[i, j] = sum(k) a[i, k] * b[k, j]`` on the PE grid: SUMMA or split-K.

SUMMA (as in the SDK's gemm-collectives_2d benchmark): C is in blocks over rows and columns of
the grid, A in blocks whose K range is split over the W columns, and B's K range in the same W
panels, panel s held by grid row s mod H. In step s every PE row broadcasts the A panel of
column s along the row and every column broadcasts B panel s from its holder down the column
(``<collectives_2d>``); the compute task, joined on both broadcasts (one activates it, the other
unblocks it), accumulates its block with ``@fmacs`` over the longer of the two block sides.

Split-K (for tall-skinny products such as PCA's projection, B x P times P x K with P large):
K is split over all PEs, each PE multiplies its slice into a partial C, and the partial sums
are reduced along each row to the last column and down that column to the corner PE, which
holds C. The plan picks the scheme with the lower modelled cycle count that fits in memory.
Both accumulate in ascending k on each PE, like the reference; split-K then adds partial sums
in a different order, so its results agree within rounding rather than bit for bit.

Prologues (centring, f16 casts: element-wise work on an operand) run on each PE's operand
blocks before the first step, into f32 copies that the steps then read; the epilogue (bias,
scale, ReLU: element-wise work on the sum) runs in place where C ends up, after the last step
(pointwise.py). Their vectors are placed as the rows or columns of the block they apply to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelc.backends.csl.builder import Builder
from kernelc.backends.csl.lowered import Lowered, Misfit, Refusal
from kernelc.backends.csl.placement import (
    Shared,
    check_whole,
    collectives,
    merge_layout,
    split_params,
    tensor_of,
)
from kernelc.backends.csl.pointwise import (
    Op,
    element_code,
    element_cycles,
    element_ops,
    operand_layout,
)
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.forms import Contraction
from kernelc.forms.blocks import DimMap, Layout, Split
from kernelc.forms.contraction import OPERAND, PRODUCT
from kernelc.graph import Task, TaskGraph
from kernelc.types import DType

# --------------------------------------------------------------------------------- plan


SUMMA_START_CYCLES = 4 + 1 + 2  # both collectives' init calls, step = 0; the final unblock call
SUMMA_A_WAIT_CYCLES = 36  # step call, the two source pointers, the row broadcast call, its task
SUMMA_B_WAIT_CYCLES = 44  # ... the column broadcast call, its task, compute's entry and exit


def _summa_layouts(
    c: Contraction, names: dict[str, str], types: dict[str, DType], w: int, h: int
) -> dict[str, Layout]:
    kp = Split(c.k, w)
    return {
        "a": Layout(
            names["a"], types["a"], (DimMap(c.m, "y", Split(c.m, h)), DimMap(c.k, "x", kp))
        ),
        "b": Layout(
            names["b"],
            types["b"],
            (DimMap(c.k, "y", kp, slots=-(-w // h)), DimMap(c.n, "x", Split(c.n, w))),
        ),
        "c": Layout(
            names["c"],
            types["c"],
            (DimMap(c.m, "y", Split(c.m, h)), DimMap(c.n, "x", Split(c.n, w))),
        ),
    }


def _splitk_layouts(
    c: Contraction, names: dict[str, str], types: dict[str, DType], w: int, h: int
) -> dict[str, Layout]:
    ks = Split(c.k, w * h)
    return {
        "a": Layout(names["a"], types["a"], (DimMap(c.m), DimMap(c.k, "xy", ks))),
        "b": Layout(names["b"], types["b"], (DimMap(c.k, "xy", ks), DimMap(c.n))),
        "c": Layout(names["c"], types["c"], (DimMap(c.m), DimMap(c.n))),
    }


def _summa_cost(c: Contraction, work: Around, w: int, h: int) -> tuple[int, int]:
    mt, nt, kp = -(-c.m // h), -(-c.n // w), -(-c.k // w)
    slots = -(-w // h)
    wait = max(mt * kp + SUMMA_A_WAIT_CYCLES, kp * nt + SUMMA_B_WAIT_CYCLES)
    per_step = wait + _gemm_cycles(mt, nt, kp)
    blocks = {"a": mt * kp, "b": slots * kp * nt, "c": mt * nt}
    memory = 4 * (2 * mt * kp + (slots + 1) * kp * nt + mt * nt)
    extra_cycles, extra_memory = _around_cost(work, blocks)
    return w * per_step + extra_cycles, memory + extra_memory


def _splitk_cost(c: Contraction, work: Around, w: int, h: int) -> tuple[int, int]:
    kb = -(-c.k // (w * h))
    cycles = _gemm_cycles(c.m, c.n, kb) + 2 * c.m * c.n + w + h
    memory = 4 * (c.m * kb + kb * c.n + 3 * c.m * c.n)
    extra_cycles, extra_memory = _around_cost(work, {"a": c.m * kb, "b": kb * c.n, "c": c.m * c.n})
    return cycles + extra_cycles, memory + extra_memory


def _around_cost(work: Around, blocks: dict[str, int]) -> tuple[int, int]:
    """Cycles and bytes of the prologues (each an f32 copy of its block, f16 scratch for a
    rounding) and of the epilogue, one DSD operation per op over the block."""
    cycles = memory = 0
    for key, ops in work.blocks():
        if ops:
            copy = 0 if key == "c" else 1
            cycles += element_cycles(len(ops) + copy, blocks[key])
            memory += 4 * copy * blocks[key]
            memory += 2 * blocks[key] * any(op.builtin == "fs2h" for op in ops)
    return cycles, memory


def _gemm_cycles(mt: int, nt: int, kp: int) -> int:
    rows = mt * kp * (machine.DSD_SETUP_CYCLES + nt + 9)
    cols = nt * kp * (machine.DSD_SETUP_CYCLES + mt + 9)
    return min(rows, cols)


def plan(
    task: Task, c: Contraction, graph: TaskGraph, layouts: dict[str, Layout], w: int, h: int
) -> Refusal | None:
    refused = check_whole(task, graph)
    if refused is not None:
        return refused
    names = {"a": tensor_of(task, c.a), "b": tensor_of(task, c.b), "c": tensor_of(task, c.c)}
    fixed = layouts.get(names["c"])
    work = around(task, c)
    if isinstance(work, Refusal):
        return work
    summa_cycles, summa_mem = _summa_cost(c, work, w, h)
    split_cycles, split_mem = _splitk_cost(c, work, w, h)
    room = machine.WSE2.pe_memory - machine.CODE_BASE_BYTES - 4000
    if fixed is not None and all(d.split is None for d in fixed.dims):
        scheme = "splitk"
    elif fixed is not None:
        scheme = "summa"
    elif (summa_mem <= room) != (split_mem <= room):
        scheme = "summa" if summa_mem <= room else "splitk"
    elif summa_mem > room:
        scheme = "summa" if summa_mem <= split_mem else "splitk"
    else:
        scheme = "summa" if summa_cycles <= split_cycles else "splitk"
    types = {key: graph.tensor(name).dtype for key, name in names.items()}
    chosen = (_summa_layouts if scheme == "summa" else _splitk_layouts)(c, names, types, w, h)
    wanted = [chosen[key] for key in ("c", "a", "b")]
    for key, ops in work.blocks():
        for op in ops:
            x = op.operand
            if x is not None and x.param is not None:
                name = tensor_of(task, x.param)
                wanted.append(operand_layout(x, name, chosen[key]))
    for layout in wanted:
        refused = merge_layout(layouts, layout, task.span)
        if refused is not None:
            return refused
    return None


# ------------------------------------------------------------------- prologues, epilogue


@dataclass(frozen=True)
class Around:
    """The element-wise work around the product as DSD operations on each block."""

    a: tuple[Op, ...]
    b: tuple[Op, ...]
    c: tuple[Op, ...]

    def blocks(self) -> tuple[tuple[str, tuple[Op, ...]], ...]:
        return (("a", self.a), ("b", self.b), ("c", self.c))


def around(task: Task, c: Contraction) -> Around | Refusal:
    """The prologues and the epilogue as DSD operations; or the refusal naming what has none."""
    name = task.kernel.name
    if c.epilogue is not None and c.epilogue.dtype != DType.F32:
        return Refusal(
            f"'{name}': the csl backend stores matrix products as f32, not {c.epilogue.dtype}",
            c.epilogue.span,
        )
    wanted = (
        (c.prologue_a, OPERAND, {c.row: 0, c.red: 1}, "prologue"),
        (c.prologue_b, OPERAND, {c.red: 0, c.col: 1}, "prologue"),
        (c.epilogue, PRODUCT, {c.row: 0, c.col: 1}, "epilogue"),
    )
    blocks = []
    for e, placeholder, indices, what in wanted:
        ops = () if e is None else element_ops(e, placeholder, indices, what, name)
        if isinstance(ops, Refusal):
            return ops
        blocks.append(ops)
    return Around(*blocks)


# --------------------------------------------------------------------------------- code


@dataclass
class ContractionCode:
    launch: str
    scheme: str
    steps: int
    mt: int
    nt: int
    kp: int
    by_rows: bool
    broadcast: tuple[int, int] = (0, 0)
    depth: int = 0  # K, whose panels differ by one between SUMMA steps
    reduce: int = 0
    prologue: int = 0  # modelled cycles of the prologues on the operand blocks
    epilogue: int = 0  # modelled cycles of the epilogue on the C block
    output_rects: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    @property
    def describe(self) -> str:
        side = "a row of C" if self.by_rows else "a column of C"
        if self.scheme == "summa":
            text = (
                f"SUMMA matrix product in {self.steps} steps: A panels broadcast along the rows, "
                "B panels down the columns (collectives_2d), then C += A panel x B panel with "
                f"one @fmacs per element pair over {side}"
            )
        else:
            text = (
                "split-K matrix product: K over all PEs, partial products with @fmacs over "
                f"{side}, summed along each row and down the last column (collectives_2d "
                "reduce_fadds) into the corner PE"
            )
        if self.prologue:
            text += "; the prologues first, as DSD ops on each PE's operand blocks"
        if self.epilogue:
            text += "; the epilogue last, as DSD ops on each C block"
        return text


def lower(
    task: Task,
    c: Contraction,
    graph: TaskGraph,
    layouts: dict[str, Layout],
    b: Builder,
    shared: Shared,
) -> ContractionCode | Refusal | Misfit:
    work = around(task, c)
    if isinstance(work, Refusal):
        return work
    collectives(b, shared)
    arrays = {key: b.tensor_arrays[tensor_of(task, getattr(c, key))] for key in ("a", "b", "c")}
    lays = {key: layouts[tensor_of(task, getattr(c, key))] for key in ("a", "b", "c")}
    params = {
        x.param: b.tensor_arrays[tensor_of(task, x.param)]
        for _, ops in work.blocks()
        for x in (op.operand for op in ops)
        if x is not None and x.param is not None
    }
    prologue: list[m.Stmt] = []
    prologue_cycles = 0
    for key, ops in work.blocks()[:2]:
        if ops:
            lay = lays[key]
            copy = b.array(
                f"{task.kernel.name}_{key}_f32",
                DType.F32,
                lay.local_size,
                f"the {key.upper()} block after the prologue (f32)",
            )
            dtype = graph.tensor(tensor_of(task, getattr(c, key))).dtype
            stmts = element_code(b, ops, (arrays[key], dtype), copy, lay.local_shape, params)
            prologue += [m.Comment(f"prologue of {key.upper()} on this PE's block"), *stmts]
            prologue_cycles += element_cycles(len(stmts), lay.local_size)
            arrays[key] = copy
    epilogue: list[m.Stmt] = []
    epilogue_cycles = 0
    if work.c:
        lay = lays["c"]
        stmts = element_code(
            b, work.c, (arrays["c"], DType.F32), arrays["c"], lay.local_shape, params
        )
        epilogue = [m.Comment("epilogue on this PE's C block"), *stmts]
        epilogue_cycles = element_cycles(len(stmts), lay.local_size)
    if any(d.split is not None for d in lays["c"].dims):  # SUMMA splits C; split-K keeps it whole
        code = _summa(task, c, arrays, lays, b, shared, prologue, epilogue)
    else:
        code = _splitk(task, c, arrays, lays, b, shared, prologue, epilogue)
    if not isinstance(code, ContractionCode):
        return code
    code.prologue, code.epilogue = prologue_cycles, epilogue_cycles
    return code if b.refused is None else b.refused


def _fmacs_loops(
    b: Builder,
    c_arr: str,
    c_pitch: int,
    a_src: m.Expr,
    a_pitch: int,
    b_src: m.Expr,
    b_pitch: int,
    rows: m.Expr,
    cols: m.Expr,
    depth: m.Expr,
    by_rows: bool,
    bases: tuple[str, str],
) -> list[m.Stmt]:
    """C[rows, cols] += A[rows, depth] @ B[depth, cols] as @fmacs, k ascending per element.

    ``by_rows``: one op per (i, k) over a row of C (extent cols), else one per (k, j) over a
    column of C (extent rows); the planner picks the side with fewer, longer operations.
    ``bases`` name the arrays the A-column and B-row DSDs are declared on; ``a_src``/``b_src``
    re-base them (@set_dsd_base_addr) or are indexed for the scalar operand.
    """
    f32 = m.Name("f32")
    iv, kv, jv = b.fresh("i"), b.fresh("k"), b.fresh("j")
    i, k, j = m.Name(iv), m.Name(kv), m.Name(jv)

    def step(var: str, by: m.Expr) -> m.Assign:
        return m.Assign(m.Name(var), "=", m.builtin("increment_dsd_offset", m.Name(var), by, f32))

    if by_rows:
        c_dsd = b.fresh(f"{c_arr}_row")
        b.const(
            c_dsd,
            m.builtin(
                "get_dsd",
                m.Name("mem1d_dsd"),
                m.struct(
                    tensor_access=m.TensorAccess((jv,), (cols,), m.Index(m.Name(c_arr), (j,)))
                ),
            ),
        )
        b_dsd = b.fresh(f"{bases[1]}_row")
        b.const(
            b_dsd,
            m.builtin(
                "get_dsd",
                m.Name("mem1d_dsd"),
                m.struct(
                    tensor_access=m.TensorAccess((jv,), (cols,), m.Index(m.Name(bases[1]), (j,)))
                ),
            ),
        )
        c_cur, b_cur = b.fresh("c_cur"), b.fresh("b_cur")
        inner = m.For(
            m.builtin("range", m.Name("i16"), depth),
            kv,
            (
                m.ExprStmt(
                    m.builtin(
                        "fmacs",
                        m.Name(c_cur),
                        m.Name(c_cur),
                        m.Name(b_cur),
                        m.Index(a_src, (m.add(m.mul(i, m.Int(a_pitch)), k),)),
                    )
                ),
                step(b_cur, m.Int(b_pitch)),
            ),
        )
        return [
            m.VarDecl(c_cur, None, m.Name(c_dsd)),
            m.For(
                m.builtin("range", m.Name("i16"), rows),
                iv,
                (
                    m.VarDecl(b_cur, None, m.builtin("set_dsd_base_addr", m.Name(b_dsd), b_src)),
                    inner,
                    step(c_cur, m.Int(c_pitch)),
                ),
            ),
        ]
    c_dsd = b.fresh(f"{c_arr}_col")
    b.const(
        c_dsd,
        m.builtin(
            "get_dsd",
            m.Name("mem4d_dsd"),
            m.struct(
                tensor_access=m.TensorAccess(
                    (iv,), (rows,), m.Index(m.Name(c_arr), (m.mul(i, m.Int(c_pitch)),))
                )
            ),
        ),
    )
    a_dsd = b.fresh(f"{bases[0]}_col")
    b.const(
        a_dsd,
        m.builtin(
            "get_dsd",
            m.Name("mem4d_dsd"),
            m.struct(
                tensor_access=m.TensorAccess(
                    (iv,), (rows,), m.Index(m.Name(bases[0]), (m.mul(i, m.Int(a_pitch)),))
                )
            ),
        ),
    )
    c_cur, a_cur = b.fresh("c_cur"), b.fresh("a_cur")
    inner = m.For(
        m.builtin("range", m.Name("i16"), cols),
        jv,
        (
            m.ExprStmt(
                m.builtin(
                    "fmacs",
                    m.Name(c_cur),
                    m.Name(c_cur),
                    m.Name(a_cur),
                    m.Index(b_src, (m.add(m.mul(k, m.Int(b_pitch)), j),)),
                )
            ),
            step(c_cur, m.Int(1)),
        ),
    )
    return [
        m.For(
            m.builtin("range", m.Name("i16"), depth),
            kv,
            (
                m.VarDecl(c_cur, None, m.Name(c_dsd)),
                m.VarDecl(
                    a_cur,
                    None,
                    m.builtin(
                        "increment_dsd_offset",
                        m.builtin("set_dsd_base_addr", m.Name(a_dsd), a_src),
                        k,
                        f32,
                    ),
                ),
                inner,
            ),
        ),
    ]


def _summa(
    task, c, arrays, lays, b: Builder, shared: Shared, prologue: list, epilogue: list
) -> ContractionCode | Refusal | Misfit:
    w, h = b.width, b.height
    a_lay, c_lay = lays["a"], lays["c"]
    mt_max, kp_max = a_lay.local_shape
    nt_max = c_lay.local_shape[1]
    name = task.kernel.name
    rows = split_params(b, shared, c_lay.dims[0]).size
    cols = split_params(b, shared, c_lay.dims[1]).size
    if "a_buf" not in b.arrays:
        b.array("a_buf", DType.F32, mt_max * kp_max, "SUMMA: the A and B panels of the step")
        b.array("b_buf", DType.F32, kp_max * nt_max)
    elif b.arrays["a_buf"] < 4 * mt_max * kp_max or b.arrays["b_buf"] < 4 * kp_max * nt_max:
        return b.refuse(
            "two matrix products of different shapes in one graph are not "
            "supported by the csl backend yet",
            task.span,
        )
    # u16 like the collectives' pe_id and root it is compared with and passed as
    step = b.scalar(f"{name}_step", "u16", m.Int(0), f"SUMMA step of '{task.name}'")
    compute_id = b.task_id(f"{name}_compute", f"SUMMA compute step of {task.name}")
    x_id = b.task_id(f"{name}_x_done", "row broadcast of the A panel finished")
    y_id = b.task_id(f"{name}_y_done", "column broadcast of the B panel finished")
    a_src = b.fresh("a_src")
    b_src = b.fresh("b_src")
    ptr = m.ManyPtrT(m.Named("f32"))
    b.pe_decls.append(m.VarDecl(a_src, ptr, m.Unary("&", m.Name("a_buf"))))
    b.pe_decls.append(m.VarDecl(b_src, ptr, m.Unary("&", m.Name("b_buf"))))
    panel = b.fresh(f"{name}_panel")
    kk = c.k
    s = m.Name("s")
    size: m.Expr = m.lit(kk // w)
    if kk % w:
        size = m.Binary("+", size, m.IfExpr(m.Binary("<", s, m.lit(kk % w)), m.Int(1), m.Int(0)))
    b.code(
        m.FnDecl(
            panel,
            (("s", m.Named("u16")),),
            m.Named("i16"),
            (
                m.Comment(
                    f"K = {kk} in {w} panels"
                    + (f": the first {kk % w} hold one more" if kk % w else " of equal length")
                ),
                m.Return(size),
            ),
        )
    )
    step_fn = b.fresh(f"{name}_summa_step")
    stp = m.Name(step)
    root_row = m.Binary("%", stp, m.Name("height_"))
    b_slot = m.mul(m.Binary("/", stp, m.Name("height_")), m.Int(kp_max * nt_max))
    u32p = m.TypeExpr(m.ManyPtrT(m.Named("u32")))
    b.code(
        m.FnDecl(
            step_fn,
            (),
            m.Named("void"),
            (
                m.Comment(
                    "step s: column s broadcasts its A panel along each row, the holder of B "
                    "panel s (row s % height) down each column"
                ),
                m.Assign(
                    m.Name(a_src),
                    "=",
                    m.IfExpr(
                        m.Binary("==", stp, m.Field(m.Name("mpi_x"), "pe_id")),
                        m.Unary("&", m.Name(arrays["a"])),
                        m.Unary("&", m.Name("a_buf")),
                    ),
                ),
                m.Assign(
                    m.Name(b_src),
                    "=",
                    m.IfExpr(
                        m.Binary("==", root_row, m.Field(m.Name("mpi_y"), "pe_id")),
                        # a [*]f32 into b, as the examples write it: &b[i] alone is a *f32
                        m.builtin(
                            "ptrcast",
                            m.TypeExpr(m.ManyPtrT(m.Named("f32"))),
                            m.Unary("&", m.Index(m.Name(arrays["b"]), (b_slot,))),
                        ),
                        m.Unary("&", m.Name("b_buf")),
                    ),
                ),
                m.ExprStmt(
                    m.call(
                        m.member("mpi_x", "broadcast"),
                        stp,
                        m.builtin("ptrcast", u32p, m.Name(a_src)),
                        m.lit(mt_max * kp_max),
                        m.Name(x_id),
                    )
                ),
                m.ExprStmt(
                    m.call(
                        m.member("mpi_y", "broadcast"),
                        root_row,
                        m.builtin("ptrcast", u32p, m.Name(b_src)),
                        m.lit(kp_max * nt_max),
                        m.Name(y_id),
                    )
                ),
            ),
        )
    )
    if "height_" not in b.names:
        b.names.add("height_")
        b.const("height_", m.lit(h), m.Named("u16"))
    by_rows = _by_rows(
        c_lay.dims[0].split.largest, c_lay.dims[1].split.largest, a_lay.dims[1].split.largest
    )
    loops = _fmacs_loops(
        b,
        arrays["c"],
        nt_max,
        m.Name(a_src),
        kp_max,
        m.Name(b_src),
        nt_max,
        m.Name(rows),
        m.Name(cols),
        m.call(panel, stp),
        by_rows,
        ("a_buf", "b_buf"),
    )
    c_all = b.whole_dsd(arrays["c"], mt_max * nt_max)
    x_task = b.fresh(f"{name}_x_done")
    y_task = b.fresh(f"{name}_y_done")
    b.code(m.TaskDecl(x_task, (), (m.ExprStmt(m.builtin("activate", m.Name(compute_id))),)))
    b.code(m.TaskDecl(y_task, (), (m.ExprStmt(m.builtin("unblock", m.Name(compute_id))),)))
    compute = b.fresh(f"{name}_compute")
    b.code(
        m.TaskDecl(
            compute,
            (),
            (
                m.Comment("runs when both broadcasts of the step are in: C += A panel x B panel"),
                m.ExprStmt(m.builtin("block", m.Name(compute_id))),
                *loops,
                m.Assign(stp, "+=", m.Int(1)),
                m.If(
                    m.Binary("<", stp, m.lit(w)),
                    (m.ExprStmt(m.call(step_fn)),),
                    (*epilogue, m.ExprStmt(m.call(m.member("sys_mod", "unblock_cmd_stream")))),
                ),
            ),
        )
    )
    b.bind(x_task, x_id)
    b.bind(y_task, y_id)
    b.bind(compute, compute_id)
    b.comptime.append(m.ExprStmt(m.builtin("block", m.Name(compute_id))))
    launch = b.fresh(f"f_{task.name}")
    b.code(
        m.FnDecl(
            launch,
            (),
            m.Named("void"),
            (
                m.Comment(f"launched by the host: task {task.name} ({name}), SUMMA in {w} steps"),
                m.ExprStmt(m.call(m.member("mpi_x", "init"))),
                m.ExprStmt(m.call(m.member("mpi_y", "init"))),
                *prologue,
                m.ExprStmt(m.builtin("fmovs", m.Name(c_all), m.Float(0.0))),
                m.Assign(stp, "=", m.Int(0)),
                m.ExprStmt(m.call(step_fn)),
            ),
        )
    )
    b.launch(launch)
    return ContractionCode(
        launch,
        "summa",
        w,
        c_lay.dims[0].split.largest,
        c_lay.dims[1].split.largest,
        a_lay.dims[1].split.largest,
        by_rows,
        (mt_max * kp_max, kp_max * nt_max),
        kk,
    )


def _by_rows(mt: int, nt: int, kp: int) -> bool:
    return mt * kp * (machine.DSD_SETUP_CYCLES + nt) <= nt * kp * (machine.DSD_SETUP_CYCLES + mt)


def _splitk(
    task, c, arrays, lays, b: Builder, shared: Shared, prologue: list, epilogue: list
) -> ContractionCode:
    w, h = b.width, b.height
    name = task.kernel.name
    a_lay = lays["a"]
    kb_max = a_lay.local_shape[1]
    kb = split_params(b, shared, a_lay.dims[1]).size
    part = b.array(f"{name}_part", DType.F32, c.m * c.n, "split-K: this PE's partial product")
    row = b.array(f"{name}_rowsum", DType.F32, c.m * c.n, "sum of the partials of a PE row")
    last_col = b.pe_param(
        "is_last_col", "bool", m.Binary("==", m.Name("x"), m.Binary("-", m.Name("width"), m.Int(1)))
    )
    row_id = b.task_id(f"{name}_row_done", "row reduction finished")
    col_id = b.task_id(f"{name}_col_done", "column reduction finished")
    by_rows = _by_rows(c.m, c.n, kb_max)
    part_zero = b.whole_dsd(part, c.m * c.n)
    if by_rows:
        b_src: m.Expr = m.Unary("&", m.Name(arrays["b"]))
        a_src: m.Expr = m.Name(arrays["a"])
    else:
        b_src = m.Name(arrays["b"])
        a_src = m.Unary("&", m.Name(arrays["a"]))
    loops = _fmacs_loops(
        b,
        part,
        c.n,
        a_src,
        kb_max,
        b_src,
        c.n,
        m.lit(c.m),
        m.lit(c.n),
        m.Name(kb),
        by_rows,
        (arrays["a"], arrays["b"]),
    )
    n_el = m.lit(c.m * c.n)
    launch = b.fresh(f"f_{task.name}")
    b.code(
        m.FnDecl(
            launch,
            (),
            m.Named("void"),
            (
                m.Comment(f"launched by the host: task {task.name} ({name}), K split over all PEs"),
                m.ExprStmt(m.call(m.member("mpi_x", "init"))),
                m.ExprStmt(m.call(m.member("mpi_y", "init"))),
                *prologue,
                m.ExprStmt(m.builtin("fmovs", m.Name(part_zero), m.Float(0.0))),
                *loops,
                m.ExprStmt(
                    m.call(
                        m.member("mpi_x", "reduce_fadds"),
                        m.lit(w - 1),
                        m.Unary("&", m.Name(part)),
                        m.Unary("&", m.Name(row)),
                        n_el,
                        m.Name(row_id),
                    )
                ),
            ),
        )
    )
    row_task = b.fresh(f"{name}_row_done")
    col_task = b.fresh(f"{name}_col_done")
    b.code(
        m.TaskDecl(
            row_task,
            (),
            (
                m.Comment("the last column sums the row totals down to the corner PE"),
                m.If(
                    m.Name(last_col),
                    (
                        m.ExprStmt(
                            m.call(
                                m.member("mpi_y", "reduce_fadds"),
                                m.lit(h - 1),
                                m.Unary("&", m.Name(row)),
                                m.Unary("&", m.Name(arrays["c"])),
                                n_el,
                                m.Name(col_id),
                            )
                        ),
                    ),
                    (m.ExprStmt(m.call(m.member("sys_mod", "unblock_cmd_stream"))),),
                ),
            ),
        )
    )
    b.code(
        m.TaskDecl(
            col_task,
            (),
            (*epilogue, m.ExprStmt(m.call(m.member("sys_mod", "unblock_cmd_stream")))),
        )
    )
    b.bind(row_task, row_id)
    b.bind(col_task, col_id)
    b.launch(launch)
    out = tensor_of(task, c.c)
    return ContractionCode(
        launch,
        "splitk",
        1,
        c.m,
        c.n,
        kb_max,
        by_rows,
        (0, 0),
        c.k,
        c.m * c.n,
        output_rects={out: (w - 1, h - 1, 1, 1)},
    )


def contraction_cycles(code: ContractionCode, low) -> dict[str, int]:
    """What the simulator charges the emitted code: the DSD ops and, per loop iteration and
    statement, one cycle per operator, load or call (machine.py; the figures below count the
    operators of the statements _summa, _splitk and _fmacs_loops emit)."""
    setup = machine.DSD_SETUP_CYCLES
    zero = setup + code.mt * code.nt + 2  # the @fmovs that clears C (or the partial product)
    if code.scheme == "summa":
        return _summa_cycles(code, zero)
    compute = _fmacs_cycles(code, code.kp, bound=0, base=1)  # a Name bound; &array bases
    reduce = 2 * (code.reduce + setup) + low.width + low.height + 20
    phases = {"compute": zero + compute + 12, "reduce": reduce}
    if code.prologue:
        phases["prologue"] = code.prologue
    if code.epilogue:
        phases["epilogue"] = code.epilogue
    return phases


def _summa_cycles(code: ContractionCode, zero: int) -> dict[str, int]:
    """Step s starts when both panels are in: the row broadcast is issued 8 cycles before the
    column one, each completes ``count`` cycles after its call (the launch's skew of one cycle
    per hop matches the wavelets' travel), then the @fmacs loops over panel s of K."""
    a, b = code.broadcast
    wait = max(a + SUMMA_A_WAIT_CYCLES, b + SUMMA_B_WAIT_CYCLES)
    panel, longer = divmod(code.depth, code.steps)
    bound = 4 if longer else 1  # the panel-length call: returns a sum, or a constant
    steps = sum(
        wait + _fmacs_cycles(code, panel + (s < longer), bound, base=0) for s in range(code.steps)
    )
    phases = {"start": SUMMA_START_CYCLES + zero, "steps": steps}
    if code.prologue:
        phases["prologue"] = code.prologue
    if code.epilogue:
        phases["epilogue"] = code.epilogue
    return phases


def _fmacs_cycles(code: ContractionCode, depth: int, bound: int, base: int) -> int:
    """The @fmacs loops of _fmacs_loops over ``depth`` columns of A; ``bound``: what evaluating
    the depth loop's bound costs, ``base``: the re-based operand's address (``&a``: one more)."""
    setup = machine.DSD_SETUP_CYCLES
    if code.by_rows:  # per i: the depth loop's bound; per (i, k): an op over a row of C
        return code.mt * (depth * (setup + code.nt + 9) + 6 + bound + base)
    return depth * (code.nt * (setup + code.mt + 9) + 6 + base) + bound


class ContractionLowering:
    """Matrix products: SUMMA broadcasts or split-K with a reduction, whichever models faster."""

    def plan(self, task, form: Contraction, graph, layouts, width, height) -> Refusal | None:
        return plan(task, form, graph, layouts, width, height)

    def lower(
        self, task, index, form: Contraction, graph, layouts, b, shared
    ) -> ContractionCode | Refusal | Misfit:
        return lower(task, form, graph, layouts, b, shared)

    def cycles(self, code: ContractionCode, low: Lowered) -> dict[str, int]:
        return contraction_cycles(code, low)

    def fewest_pes(self, task, form, graph, arch, planner) -> int:
        return 1


CONTRACTION = ContractionLowering()
