"""From a C function with target regions to an IR graph: the compile-time execution of the code
that creates tasks.

Each target region is run at compile time, once per thread of each parallel region (threads in
lockstep between barriers): scalar code that decides the graph (thread numbers, loop counters,
sizes fixed by ``#define``) is evaluated, ``for`` loops that create tasks are unrolled, and each
``task``, worksharing loop or run of plain statements becomes a work item (``constructs.py``).
Maps decide the tensors (``memory.py``); OpenMP's order is recorded (``order.py``) for
``checks.py``. Plain scalars that are computed on the device and read by later constructs become
device scalars: tensors of shape [1].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.frontends.omp import c_types, constructs, loops
from kernelc.frontends.omp import ctree as c
from kernelc.frontends.omp.directives import Directive, split
from kernelc.frontends.omp.evaluate import (
    SizeResolver,
    concrete,
    creation_lowerer,
    spans_whole,
)
from kernelc.frontends.omp.exprs import (
    ALLOCATION,
    OMP_QUERIES,
    Context,
    ExprLowerer,
    flatten_index,
)
from kernelc.frontends.omp.items import Works
from kernelc.frontends.omp.kernels import unsupported_statement
from kernelc.frontends.omp.memory import Memory
from kernelc.frontends.omp.order import Team, Thread
from kernelc.frontends.omp.sharing import check_clauses
from kernelc.frontends.omp.state import (
    ArrayVar,
    Binding,
    DeviceScalar,
    Event,
    Exec,
    GraphScalar,
    Item,
    Names,
    Region,
    Val,
    arrays_in,
    written_in,
)
from kernelc.frontends.omp.teams import distribute
from kernelc.printer import expr_text
from kernelc.types import DType

MAX_THREADS = 1_472 * 6  # a team larger than the most threads any target runs at once


@dataclass
class FunctionLowering:
    ctx: Context
    fn: c.Function
    names: Names
    warnings: list[tuple[str, Span]]

    def __post_init__(self) -> None:
        self.memory = Memory(self.names)
        self.works = Works(self.ctx, self.fn.name, self.memory)

    @property
    def items(self) -> list[Item]:
        return self.works.items

    # ---------------------------------------------------------------------- function
    def lower(self) -> ir.Graph:
        fn = self.fn
        if c_types.scalar_type(fn.words, fn.span, allow_void=True) is not None or fn.stars:
            raise KernelcError(
                f"function '{fn.name}' has a target region, so it must return void (results "
                "are written to array parameters)",
                fn.span,
            )
        top: dict[str, Binding] = {}
        scalars: list[ir.Param] = []
        for p in fn.params:
            if p.name is None:
                if p.words == ("void",) and len(fn.params) == 1:
                    continue
                raise KernelcError("every parameter needs a name", p.span)
            top[p.name] = binding = self.param(p)
            if isinstance(binding, GraphScalar):
                scalars.append(ir.Param(name=p.name, dtype=binding.dtype, shape=(), span=p.span))
            else:
                self.memory.parameter(binding)
        host = Thread("start")
        ex = Exec([top, {}], host, Team([host]), 1, None, {}, False, Region({}, {}))
        for stmt in fn.body.items:
            self.function_stmt(stmt, ex, stmt is fn.body.items[-1])
        return self.graph(scalars)

    def param(self, p: c.Param) -> Binding:
        dtype = c_types.scalar_type(p.words, p.span)
        if p.stars and not p.dims:
            raise KernelcError(
                f"'{p.name}' is a pointer; give the parameter a static size, like "
                f"'{c_types.c_name(dtype)} {p.name}[N]', so kernelc knows the array it points to",
                p.span,
            )
        if p.stars:
            raise KernelcError(f"'{p.name}': arrays of pointers are not supported", p.span)
        if not p.dims:
            return GraphScalar(p.name, dtype)
        dims = self.dims(p.dims, p.name, p.span)
        return ArrayVar(p.name, dtype, dims, True, c_types.is_const(p.words), p.span)

    def dims(self, dims: tuple[c.Expr | None, ...], name: str, span: Span) -> tuple[ir.Expr, ...]:
        out = []
        for d in dims:
            if d is None:
                raise KernelcError(
                    f"every dimension of '{name}' needs a size (a literal or a #define)", span
                )
            value = ExprLowerer(self.ctx, SizeResolver(name)).index_value(d, "an array size")
            for node in ir.walk(value):
                if isinstance(node, ir.Binary) and node.op not in ("+", "-", "*", "/"):
                    raise KernelcError(
                        f"operator '{node.op}' is not allowed in an array size", node.span
                    )
            out.append(value)
        return tuple(out)

    def function_stmt(self, stmt: c.Stmt, ex: Exec, last: bool) -> None:
        match stmt:
            case c.Construct(body=body) if stmt.pragma.words[0] == "target" and body is not None:
                self.target(stmt, ex)
                return
            case c.Construct():
                raise KernelcError(
                    f"'#pragma omp {stmt.pragma.directive}' outside a target region: kernelc "
                    "compiles the target regions of a function; put it inside "
                    "'#pragma omp target'",
                    stmt.pragma.words_span,
                )
            case c.Decl():
                self.declare(stmt, ex)
                return
            case c.Return(value=None) if last:
                return
            case c.Empty():
                return
            case c.Unsupported():
                raise unsupported_statement(stmt)
        raise KernelcError(
            "code outside a target region is host code, which kernelc does not compile; put "
            "it inside a '#pragma omp target' region",
            stmt.span,
        )

    def declare(self, d: c.Decl, ex: Exec) -> None:
        """Local arrays, and scalars of the task-creating code (compile-time values)."""
        dtype = c_types.scalar_type(d.words, d.span)
        for decl in d.declarators:
            _check_allocation(decl.init)
            if decl.stars:
                raise KernelcError(
                    f"pointer variable '{decl.name}' is not supported (pointer arithmetic would "
                    "hide which data a task touches); use an array",
                    decl.span,
                )
            if decl.dims:
                self.local_array(d, decl, dtype, ex)
                continue
            if decl.init is None or isinstance(decl.init, c.InitList):
                raise KernelcError(
                    f"'{decl.name}' needs an initial value here (it is part of the code that "
                    "builds the task graph)",
                    decl.span,
                )
            value = c_types.convert(creation_lowerer(self.ctx, ex).lower(decl.init), dtype)
            ex.scopes[-1][decl.name] = Val(value)

    def local_array(self, d: c.Decl, decl: c.Declarator, dtype: DType, ex: Exec) -> None:
        if decl.init is not None:
            raise KernelcError(
                f"array '{decl.name}' cannot have an initialiser; fill it with a loop",
                decl.init.span,
            )
        if ex.in_parallel:
            raise KernelcError(
                f"array '{decl.name}' is declared inside a parallel region, where each thread "
                "has its own copy; declare it before the parallel region",
                decl.span,
            )
        for size in decl.dims:
            for n in loops.names_in(size):
                if n not in self.ctx.macros:
                    raise KernelcError(
                        f"'{decl.name}' would be a variable-length array: its size uses '{n}', "
                        "which is not a compile-time constant (#define it)",
                        size.span,
                    )
        dims = self.dims(decl.dims, decl.name, decl.span)
        var = ArrayVar(decl.name, dtype, dims, False, c_types.is_const(d.words), decl.span)
        ex.scopes[-1][decl.name] = var
        self.memory.local(var)
        if ex.region.live:  # declared in the target region: a device temporary
            ex.region.device[decl.name] = self.memory.new(var, decl.name)
            ex.region.maps[decl.name] = "alloc"

    # ------------------------------------------------------------------------ target
    def target(self, stmt: c.Construct, ex: Exec) -> None:
        outer, inner = split(stmt.pragma)
        maps = self.maps(outer, ex)
        body: c.Stmt = stmt.body
        if inner is not None:
            inner_pragma = replace(stmt.pragma, words=inner.words, clauses=inner.clauses)
            body = c.Construct(inner_pragma, stmt.body, stmt.span)
        _check_teams_alone(body)
        for name, first in arrays_in(body, ex).items():
            var = ex.lookup(name)
            if name in maps or not isinstance(var, ArrayVar):
                continue
            if var.pointer:
                raise KernelcError(
                    f"'{name}' is used in the target region but not mapped; add "
                    f"map(to: {name}[0:{expr_text(var.dims[0])}]) (or from:/tofrom:)",
                    first.span,
                )
            maps[name] = ("tofrom", first.span)  # OpenMP's implicit map of an array
        written = written_in(body, ex)
        region = Region({}, {}, live=True)
        copies: list[tuple[str, str, str, Span]] = []
        for name, (kind, span) in maps.items():
            var = ex.lookup(name)
            if var.const and name in written:
                raise KernelcError(f"'{name}' is const and cannot be written", written[name].span)
            region.maps[name] = kind
            tensor, source = self.memory.device_tensor(var, kind, name in written)
            region.device[name] = tensor
            if source is not None:
                copies.append((source, tensor, name, span))
            if kind == "to" and name in written:
                self.warnings.append(
                    (
                        f"'{name}' is mapped with map(to:), so this write stays on the device "
                        "and is not copied back (map it tofrom: to get it back)",
                        written[name].span,
                    )
                )
        team = Team([Thread(ex.thread.pos)])
        inner_ex = Exec([*ex.scopes, {}], team.threads[0], team, 1, None, {}, False, region)
        for src, dst, c_name, span in copies:
            self.works.copy(src, dst, c_name, span, inner_ex)
        self.run_team(team, [self.run_stmt(body, inner_ex)])
        self.works.order.barrier(team)  # a target region ends when all its tasks have
        ex.thread.pos = team.threads[0].pos
        for name, kind in region.maps.items():
            if kind in ("from", "tofrom"):
                self.memory.host[name] = region.device[name]

    def maps(self, outer: Directive, ex: Exec) -> dict[str, tuple[str, Span]]:
        maps: dict[str, tuple[str, Span]] = {}
        for clause in outer.all("map"):
            kind = clause.modifier or "tofrom"
            if kind not in ("to", "from", "tofrom", "alloc"):
                raise KernelcError(
                    f"map type '{kind}' is not supported; use to, from, tofrom or alloc",
                    clause.span,
                )
            for item in clause.args:
                name = self.map_item(item, ex)
                if name is None:
                    continue
                if name in maps:
                    raise KernelcError(f"'{name}' is mapped twice", item.span)
                maps[name] = (kind, item.span)
        for clause in outer.all("firstprivate"):
            for item in clause.args:
                if not isinstance(item, c.Name) or isinstance(ex.lookup(item.name), ArrayVar):
                    raise KernelcError(
                        "firstprivate on target takes scalars; map arrays instead", item.span
                    )
        return maps

    def map_item(self, item: c.Expr, ex: Exec) -> str | None:
        base, parts = flatten_index(item) if isinstance(item, c.Index) else (item, [])
        if not isinstance(base, c.Name):
            raise KernelcError("expected an array or an array section", item.span)
        var = ex.lookup(base.name)
        if var is None:
            raise KernelcError(f"unknown name '{base.name}'", base.span)
        if not isinstance(var, ArrayVar):
            if isinstance(var, GraphScalar | Val) and not parts:
                return None  # a mapped scalar is firstprivate, as an unmapped one is
            raise KernelcError(f"'{base.name}' is not an array", base.span)
        if var.pointer and not parts:
            raise KernelcError(
                f"map({base.name}) maps the pointer parameter '{base.name}', not the array it "
                f"points to; write a section, like {base.name}[0:{expr_text(var.dims[0])}]",
                item.span,
            )
        lowerer = creation_lowerer(self.ctx, ex, clause=True)
        for dim, part in enumerate(parts):
            whole = isinstance(part, c.Section) and spans_whole(
                lowerer.index_value(part.lo) if part.lo is not None else None,
                lowerer.index_value(part.length) if part.length is not None else None,
                var.dims[dim],
            )
            if not whole:
                raise KernelcError(
                    f"this section maps part of '{base.name}'; kernelc maps whole arrays "
                    f"(dimension {dim} has {expr_text(var.dims[dim])})",
                    part.span,
                )
        return base.name

    # ------------------------------------------------------------ compile-time execution
    def run_team(self, team: Team, bodies: list[Iterator[Event]]) -> None:
        """Run the threads of a team in lockstep, from one collective event to the next."""
        order = self.works.order
        while True:
            events = [next(body, None) for body in bodies]
            if all(e is None for e in events):
                return
            first = next(e for e in events if e is not None)
            for e in events:
                if e is None or e.kind != first.kind or e.span != first.span:
                    raise KernelcError(
                        "the threads of this parallel region do not all reach the same barrier "
                        "or worksharing construct",
                        (e or first).span,
                    )
            if first.kind == "barrier":
                order.barrier(team)
            elif first.kind == "loop":
                constructs.loop(self.works, first.directive, first.stmt, first.ex, team)
            else:  # single: one (unknown) thread runs it, then an implicit barrier
                single = replace(first.ex, thread_known=False, scopes=[*first.ex.scopes, {}])
                self.run_alone(self.run_stmt(first.stmt, single), "single")
                order.barrier(team)

    def run_alone(self, body: Iterator[Event], where: str) -> None:
        for event in body:
            raise KernelcError(
                f"a barrier or worksharing construct cannot be nested in {where}", event.span
            )

    def run_block(self, items: tuple[c.Stmt, ...], ex: Exec) -> Iterator[Event]:
        """Run a block: compile-time code now, runs of plain statements as device steps."""
        ex = ex.child()
        runtime, device = self.device_scalars(items, ex)
        run: list[c.Stmt] = []
        for stmt in items:
            if isinstance(stmt, c.Decl) and _creation_time(stmt, runtime):
                self.flush(run, ex)
                run = []
                self.declare(stmt, ex)
            elif _is_plain(stmt):
                self.declare_device(stmt, ex, device)
                run.append(stmt)
            else:
                self.flush(run, ex)
                run = []
                yield from self.run_stmt(stmt, ex)
        self.flush(run, ex)

    def run_stmt(self, stmt: c.Stmt, ex: Exec) -> Iterator[Event]:
        if _is_plain(stmt) and not isinstance(stmt, c.Block):
            yield from self.run_block((stmt,), ex)
            return
        match stmt:
            case c.Block():
                yield from self.run_block(stmt.items, ex)
            case c.Construct():
                yield from self.construct(stmt, ex)
            case c.If():
                cond = creation_lowerer(self.ctx, ex).lower(stmt.cond)
                branch = stmt.then if self.value(c_types.truth(cond), ex) else stmt.orelse
                if branch is not None:
                    yield from self.run_block((branch,), ex)
            case c.For():
                yield from self.unroll(stmt, ex)
            case c.Unsupported():
                raise unsupported_statement(stmt)
            case _:
                yield from self.run_block((stmt,), ex)

    def value(self, e: ir.Expr, ex: Exec) -> int | float | bool:
        return concrete(e, ex.instance, self.ctx)

    def unroll(self, stmt: c.For, ex: Exec) -> Iterator[Event]:
        """A loop whose body creates tasks: unrolled, its counter an instance variable."""
        canon = loops.canonical(stmt)
        lowerer = creation_lowerer(self.ctx, ex)
        start = self.value(lowerer.index_value(canon.start, "a loop start"), ex)
        bound = self.value(lowerer.index_value(canon.bound, "a loop bound"), ex)
        counter = self.names.fresh(canon.var)
        for value in loops.iterations(canon, start, bound):
            inner = ex.child()
            inner.instance = {**ex.instance, counter: value}
            name = ir.Name(name=counter, span=canon.var_span, dtype=DType.I32)
            inner.scopes[-1][canon.var] = Val(name)
            yield from self.run_block((stmt.body,), inner)

    def construct(self, stmt: c.Construct, ex: Exec) -> Iterator[Event]:
        d, inner = split(stmt.pragma)
        if inner is not None or d.kind == "target":
            raise KernelcError("target regions cannot be nested", stmt.pragma.words_span)
        if d.kind == "barrier":
            yield Event("barrier", stmt.span)
        elif d.kind == "taskwait":
            self.works.order.taskwait(ex.thread)
        elif d.kind == "loop":
            if "parallel" in d.words and ex.in_parallel:
                raise KernelcError("nested parallel regions are not supported", d.span)
            if d.words[0] == "distribute":
                raise KernelcError("distribute must be inside a teams region", d.span)
            if d.words[0] == "teams" and ex.in_parallel:
                raise KernelcError("teams cannot be nested in a parallel region", d.span)
            if d.words[0] == "for" and ex.in_parallel:
                yield Event("loop", stmt.span, d, stmt.body, ex)
            elif d.words[0] == "teams":
                self.league(d, d, stmt.body, ex)
            else:
                constructs.loop(self.works, d, stmt.body, ex, None)
        elif d.kind == "parallel":
            self.parallel(d, stmt.body, ex)
        elif d.kind == "teams":
            self.teams(d, stmt.body, ex)
        elif d.kind == "task":
            constructs.task(self.works, d, stmt.body, ex)
        elif d.kind == "single":
            yield Event("single", stmt.span, d, stmt.body, ex)
        else:
            self.masked(d, stmt.body, ex)

    def parallel(self, d: Directive, body: c.Stmt, ex: Exec) -> None:
        if ex.in_parallel:
            raise KernelcError("nested parallel regions are not supported", d.span)
        clause = d.clause("num_threads")
        size: int | None = None
        if clause is None:
            _check_thread_count_free(d, body)
            n = 1  # every thread would create the same graph; one stands for them all
        else:
            n = size = constructs.clause_int(self.works, clause, ex)
            if n < 1:
                raise KernelcError(f"num_threads must be at least 1, got {n}", clause.span)
            if n > MAX_THREADS:
                raise KernelcError(
                    f"num_threads({n:,}) is more threads than kernelc unrolls into a static task "
                    f"graph (at most {MAX_THREADS:,}, the worker contexts of a 1,472-tile IPU: "
                    "each thread's tasks become task instances of the graph)",
                    clause.span,
                )
        check_clauses(d, ex)
        order = self.works.order
        team = order.team(n, ex.thread)
        thread_var = self.names.fresh("omp_thread")
        bodies = []
        for t, thread in enumerate(team.threads):
            instance = {**ex.instance, thread_var: t}
            tex = Exec([*ex.scopes, {}], thread, team, size, thread_var, instance, True, ex.region)
            bodies.append(self.run_stmt(body, tex))
        self.run_team(team, bodies)
        order.join(team, ex.thread)

    def teams(self, d: Directive, body: c.Stmt, ex: Exec) -> None:
        """A league of teams: kernelc supports the distribute loops they share."""
        while isinstance(body, c.Block) and len(body.items) == 1:
            body = body.items[0]
        for stmt in body.items if isinstance(body, c.Block) else (body,):
            if isinstance(stmt, c.Construct) and "distribute" in stmt.pragma.words:
                self.league(d, split(stmt.pragma)[0], stmt.body, ex)
            elif isinstance(stmt, c.Decl):
                self.declare(stmt, ex)
            else:
                raise KernelcError(
                    "in a teams region every team would run this statement; kernelc supports "
                    "distribute loops there (teams distribute parallel for)",
                    stmt.span,
                )

    def league(self, teams: Directive, loop: Directive, body: c.Stmt, ex: Exec) -> None:
        """A distribute loop: one task per team when num_teams(T) says how many teams."""
        clause = teams.clause("num_teams")
        if clause is None:
            constructs.loop(self.works, loop, body, ex, None)
            return
        count = constructs.clause_int(self.works, clause, ex)
        if count < 1:
            raise KernelcError(f"num_teams must be at least 1, got {count}", clause.span)
        distribute(self.works, loop, body, ex, count)

    def masked(self, d: Directive, body: c.Stmt, ex: Exec) -> None:
        if not ex.thread_known:
            raise KernelcError(f"'{d.name}' inside single is not supported", d.span)
        clause = d.clause("filter")
        chosen = constructs.clause_int(self.works, clause, ex) if clause is not None else 0
        if ex.instance.get(ex.thread_var, 0) == chosen:
            self.run_alone(self.run_stmt(body, ex.child()), d.name)

    # ----------------------------------------------------------------- plain code runs
    def device_scalars(self, items: tuple[c.Stmt, ...], ex: Exec) -> tuple[set[str], set[str]]:
        """The block's run-time scalars (computed from data, or reassigned), and those of them
        that code outside their run of plain statements reads: the device scalars."""
        segments: list[list[c.Stmt]] = [[]]
        for stmt in items:
            if _is_plain(stmt):
                segments[-1].append(stmt)
            else:
                segments += [[stmt], []]
        runtime: set[str] = set()
        device: set[str] = set()
        for i, segment in enumerate(segments):
            for stmt in segment:
                if not isinstance(stmt, c.Decl):
                    continue
                later = [s for seg in segments[i:] for s in seg]
                elsewhere = [s for j, seg in enumerate(segments) if j != i for s in seg]
                for decl in stmt.declarators:
                    if decl.dims:
                        continue
                    reassigned = any(
                        decl.name in loops.assigned_names(s) or decl.name in _reduction_names(s)
                        for s in later
                    )
                    if not reassigned and self.compile_time(decl.init, ex):
                        continue
                    runtime.add(decl.name)
                    if any(decl.name in loops.names_in(s) for s in elsewhere):
                        device.add(decl.name)
        return runtime, device

    def compile_time(self, init: object, ex: Exec) -> bool:
        """Whether an initialiser needs no device data (no array element, no device scalar)."""
        if init is None or isinstance(init, c.InitList):
            return False
        called = {id(n.fn) for n in loops.walk(init) if isinstance(n, c.Call)}
        for n in loops.walk(init):
            if isinstance(n, c.Index):
                return False
            if isinstance(n, c.Name) and id(n) not in called:
                binding = ex.lookup(n.name)
                if isinstance(binding, ArrayVar | DeviceScalar):
                    return False
                if binding is None and n.name not in self.ctx.macros:
                    return False
        return True

    def declare_device(self, stmt: c.Stmt, ex: Exec, device: set[str]) -> None:
        if not isinstance(stmt, c.Decl):
            return
        for decl in stmt.declarators:
            if decl.name not in device:
                continue
            if ex.in_parallel and ex.thread_known:
                raise KernelcError(
                    f"every thread of the parallel region computes '{decl.name}' at run time (it "
                    "reads device data, or is assigned after its declaration) and later code "
                    "uses it; kernelc cannot pass such per-thread values to tasks. Compute it "
                    "from thread numbers and sizes in one declaration, or store it in an array",
                    decl.span,
                )
            dtype = c_types.scalar_type(stmt.words, stmt.span)
            tensor = self.memory.scalar(decl.name, dtype, decl.span)
            ex.scopes[-1][decl.name] = DeviceScalar(decl.name, tensor, dtype)

    def flush(self, run: list[c.Stmt], ex: Exec) -> None:
        """A run of plain statements: a sequential step on the device, when it writes."""
        if not run:
            return
        if ex.in_parallel and ex.thread_known:
            stmt = next((s for s in run if arrays_in(s, ex) or loops.assigned_names(s)), None)
            if stmt is not None:
                raise KernelcError(
                    "every thread of the parallel region would run this statement; put array "
                    "work in a task (with depend clauses), a worksharing loop, or single",
                    stmt.span,
                )
            return
        constructs.step(self.works, run, ex)

    # ------------------------------------------------------------------------ graph
    def graph(self, scalars: list[ir.Param]) -> ir.Graph:
        used = {
            ref.name
            for item in self.items
            for ref in (*item.call.args, *item.call.results)
            if isinstance(ref, ir.TensorRef)
        }
        inputs, outputs, temps = self.memory.interface(used)
        sizes = tuple(
            n for n, m in self.ctx.macros.items() if m.size is not None and n not in self.ctx.fixed
        )
        return ir.Graph(
            name=self.fn.name,
            params=(*inputs, *scalars),
            outputs=tuple(outputs),
            temps=tuple(temps),
            calls=tuple(item.call for item in self.items),
            span=self.fn.span,
            sizes=sizes,
        )


def _creation_time(d: c.Decl, runtime: set[str]) -> bool:
    """Whether a declaration runs at compile time: arrays, and scalars with compile-time
    values that nothing reassigns."""
    arrays = [decl for decl in d.declarators if decl.dims]
    if arrays and len(arrays) != len(d.declarators):
        raise KernelcError("declare arrays and scalars in separate declarations", d.span)
    return bool(arrays) or all(decl.name not in runtime for decl in d.declarators)


def _is_plain(stmt: c.Stmt) -> bool:
    """A statement with no OpenMP construct inside: it runs as ordinary device code."""
    return not isinstance(stmt, c.Unsupported) and not any(
        isinstance(n, c.Construct) for n in loops.walk(stmt)
    )


def _reduction_names(stmt: c.Stmt) -> set[str]:
    names = set()
    for n in loops.walk(stmt):
        if isinstance(n, c.Clause) and n.name == "reduction":
            names |= {a.name for a in n.args if isinstance(a, c.Name)}
    return names


def _check_teams_alone(body: c.Stmt) -> None:
    """OpenMP: a target region with a teams construct contains nothing else."""
    items = body.items if isinstance(body, c.Block) else (body,)
    for stmt in items:
        if isinstance(stmt, c.Construct) and stmt.pragma.words[0] == "teams" and len(items) > 1:
            raise KernelcError(
                "a target region that contains a teams construct may contain nothing else; "
                "use one target region per teams construct, or parallel for",
                stmt.pragma.words_span,
            )


def _check_allocation(init: object) -> None:
    """Report malloc and friends before anything else about the declaration they initialise."""
    for n in loops.walk(init):
        if isinstance(n, c.Call) and isinstance(n.fn, c.Name) and n.fn.name in ALLOCATION:
            ExprLowerer.allocation_error(n.fn.name, n.span)


THREAD_FREE = {"single", "barrier", "taskwait"}
"""Constructs a parallel region without num_threads may hold: their effect is the same for any
number of threads (single runs once, then every thread waits)."""


def _check_thread_count_free(d: Directive, body: c.Stmt) -> None:
    """A parallel region without num_threads(N) is accepted when nothing in it depends on the
    number of threads: it holds only single, barrier, taskwait and scalar declarations, and
    never asks for a thread number or count."""
    items = [body]
    while items:
        stmt = items.pop()
        if isinstance(stmt, c.Block):
            items.extend(stmt.items)
            continue
        free = (
            isinstance(stmt, c.Empty)
            or (isinstance(stmt, c.Decl) and not any(x.dims for x in stmt.declarators))
            or (isinstance(stmt, c.Construct) and split(stmt.pragma)[0].name in THREAD_FREE)
        )
        if not free:
            raise KernelcError(
                "give the parallel region num_threads(N): every thread runs this statement, so "
                "what it creates depends on the number of threads",
                d.span,
                [(stmt.span, "run by every thread")],
            )
    for node in loops.walk(body):
        if isinstance(node, c.Call) and isinstance(node.fn, c.Name) and node.fn.name in OMP_QUERIES:
            raise KernelcError(
                f"{node.fn.name}() depends on the number of threads; give the parallel region "
                "num_threads(N)",
                node.span,
            )
