"""The PE-grid simulator: runs a parsed CSL program on a grid of simulated PEs.

Model (every figure it reports is simulated, from the modelled costs in kernelc/csl/machine.py):
- Each PE has its own memory (48 KB with a modelled code allowance), its routes per color, its
  task table (activate/block bits, data tasks fed by wavelets), a compute engine (CE) that runs
  one task at a time and a DSD engine; async DSD ops complete later and activate or unblock a task.
- Wavelets travel as trains: every wavelet of a train advances one link per cycle; a train that
  crosses a link occupies it one cycle per wavelet, so colors sharing a link are serialised
  (train by train, in the order the simulator injects them). Input queues are finite
  (``machine.INPUT_QUEUE_WAVELETS`` of a color that nothing reads yet): the rest of a train waits
  and its sender's operation stalls until a reader makes room.
- Machine rules, each a located error naming the PE: queues memcpy holds, one async operation
  per microthread (the queue's ID, or WSE-3's ``.ut_id``), one configuration per PE and color.
- Event driven: task runs, async completions and launches are events in cycle order.
- Deadlock: when no event is left while some PE has not released the command stream (or
  wavelets are stuck at a router with no route for them), the simulator reports every waiting
  PE with its coordinates and what it waits for, stalled senders with the full queue's PE and
  color.
"""

from __future__ import annotations

import functools
import gc
import heapq
import posixpath
from collections import deque
from collections.abc import Callable

import numpy as np

from kernelc import progress
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.diagnostics import Span
from kernelc.runtime.fabric import libraries as lib
from kernelc.runtime.fabric import lockstep
from kernelc.runtime.fabric.evaluate import Compiler, FnValue, ModuleScope, UserModule, run_module
from kernelc.runtime.fabric.hub import CollectiveHub
from kernelc.runtime.fabric.layout import evaluate_layout
from kernelc.runtime.fabric.operations import (
    DONE,
    LAUNCH,
    RUN,
    ControlWavelet,
    HostStream,
    Microthread,
    PendingOp,
    Stall,
    Transfer,
)
from kernelc.runtime.fabric.routes import Route, check_color, duplicate_config, read_route
from kernelc.runtime.fabric.setup import SetupCache, Tracer
from kernelc.runtime.fabric.values import (
    FLOAT_DSD_OPS,
    OPPOSITE,
    STEP,
    Array,
    Color,
    FabDsd,
    FabricError,
    Fifo,
    MemDsd,
    Pointer,
    Queue,
    Struct,
    TaskId,
)
from kernelc.runtime.fabric.wavelets import as_bits, wavelet_args, words_of

EVENTS_PER_UPDATE = 512  # events run between two progress updates (each reads the clock)
_Branching = ValueError  # NumPy's "truth value of an array is ambiguous": a branch on an array
MAX_REPORTED_PES = 12


# -------------------------------------------------------------------------------------- PE


def _convert(values: object, dtype: type) -> np.ndarray:
    """@fs2h/@fh2s: round to nearest even, out-of-range values to infinity."""
    with np.errstate(over="ignore"):
        return np.asarray(values).astype(dtype)


def _low16(values: object) -> np.ndarray:
    """The low 16 bits of integer operands (a 16-bit op reads only those of a wavelet)."""
    return np.asarray(values).astype(np.int64) & 0xFFFF


def _int16(values: np.ndarray) -> np.ndarray:
    """16-bit integer results, wrapped as the machine wraps them."""
    return (values & 0xFFFF).astype(np.uint16).view(np.int16)


FLOATS = {"f32": np.dtype(np.float32), "f16": np.dtype(np.float16)}
OPS: dict[str, tuple[str, int, Callable]] = {
    **FLOAT_DSD_OPS,
    "fs2h": ("", 1, lambda a: _convert(a, np.float16)),
    "fh2s": ("", 1, lambda a: _convert(a, np.float32)),
    "mov32": ("", 1, lambda a: a),
    "mov16": ("", 1, lambda a: a),
    "add16": ("", 2, lambda a, b: _int16(_low16(a) + _low16(b))),
    "sub16": ("", 2, lambda a, b: _int16(_low16(a) - _low16(b))),
}


class PE:
    """One simulated processing element: the context that runs its PE program."""

    def __init__(self, sim: Simulator, x: int, y: int, file: str, code: int) -> None:
        self.sim, self.x, self.y, self.file = sim, x, y, file
        self.coords = f"({x}, {y})"
        self.g: dict[str, object] = {}
        self.gt: dict[str, object] = {}
        self.now = 0
        self.dsd_free = 0
        self.busy = 0
        self.last = 0
        self.code_bytes = code
        self.data: dict[str, int] = {}
        self.exports: dict[str, object] = {}
        self.tasks: dict[tuple[str, int], FnValue] = {}
        self.active: set[tuple[str, int]] = set()
        self.blocked: set[tuple[str, int]] = set()
        self.routes: dict[int, Route] = {}
        self.queue_color: dict[tuple[str, int], int] = {}
        self.inq: dict[int, list] = {}
        self.dataq: dict[int, deque] = {}
        self.pending: list[PendingOp] = []
        self.reserved: dict[int, str] = {}
        self.unblocked = True
        self.unblock_time = 0
        self.current = "module scope"
        self.tracer: Tracer | None = None
        self.at: Span | None = None  # the builtin or library call being evaluated
        self.route_at: dict[int, Span | None] = {}
        self.memcpy = False  # imports <memcpy/memcpy>, which holds the arch's memcpy queues
        self.streams: dict[int, str] = {}  # memcpy's streaming colors: ID -> MEMCPYH2D_1, ...
        self.to_host: list[tuple[np.ndarray, np.ndarray]] = []  # sent on MEMCPYD2H_1, untaken
        self.threads: dict[int, Microthread] = {}  # microthread ID -> its async operation
        self.stalled: dict[int, deque[Stall]] = {}  # per color: wavelets the queue held back
        self.sends: list[Transfer] = []  # this PE's ops whose wavelets are held back
        self.library_claims: dict[object, str] = {}  # library queues and DSRs -> their import
        self.releasing = False
        self.held: Transfer | None = None  # a synchronous fabric write its CE waits for
        self.switch_pos: dict[int, int] = {}  # per color with switches: its current position
        self.controls: deque[tuple[int, int, int]] = deque()  # (time, task ID, data) to run
        self.unblock_held = False  # unblock_cmd_stream() called while the CE waited
        self.runs = 0  # tasks run: a launch whose head ran in lockstep checks none ran since

    # ------------------------------------------------------------ memory and setup
    @property
    def memory(self) -> int:
        return self.code_bytes + sum(self.data.values())

    def declared(self, name: str, value: object, const: bool) -> None:
        if isinstance(value, Array):
            if value.data.dtype != object:  # arrays of colors or task IDs are comptime values
                self.data[name] = value.nbytes
        elif isinstance(value, np.generic) and not const:
            self.data[name] = max(int(value.dtype.itemsize), 2)

    def module_declared(self, file: str, name: str, value: object, const: bool) -> None:
        """A global of an imported file, allocated when the program first reaches it."""
        self.declared(f"{file}:{name}", value, const)
        if self.memory > self.sim.arch.pe_memory:
            raise FabricError(
                f"PE {self.coords} needs {self.memory:,} bytes once '{name}' of {file} is "
                f"allocated, more than the {self.sim.arch.pe_memory:,} bytes of a PE",
                file,
            )

    def reserve_colors(self, colors: tuple[int, ...], owner: str) -> None:
        for c in colors:
            check_color(Color(c), self.sim.arch, f"PE {self.coords}")
            self.reserved[c] = owner

    def set_route(self, color: Color, cfg: object) -> None:
        check_color(color, self.sim.arch, f"PE {self.coords}")
        if color.id in self.reserved:
            raise self.error(f"color {color.id} is used by {self.reserved[color.id]}")
        if color.id in self.routes:
            raise duplicate_config(f"PE {self.coords}", color.id, self.route_at[color.id], self)
        self.routes[color.id] = read_route(cfg, f"PE {self.coords} color {color.id}", self.sim.arch)
        self.route_at[color.id] = self.at

    def error(self, message: str) -> FabricError:
        """A fault of this PE's program, at the call being evaluated."""
        return FabricError(f"PE {self.coords}: {message}", self.file, self.at)

    def check_queue(self, queue: object, use: str) -> None:
        """A queue the program uses: not one that memcpy holds on this arch."""
        if not isinstance(queue, Queue):
            raise self.error(f"{use} needs an {'input' if 'in' in use else 'output'} queue")
        held = self.sim.arch.memcpy_queues
        if self.memcpy and queue.id in held:
            kind = "input" if queue.io == "in" else "output"
            raise self.error(
                f"{use} uses {kind} queue {queue.id}, which memcpy holds on "
                f"{self.sim.arch.name} (queues {', '.join(map(str, sorted(held)))}; user queues "
                f"start at {max(held) + 1})"
            )

    # ------------------------------------------------------------------- builtins
    def builtin(self, name: str, args: tuple) -> object:
        if self.tracer is not None:
            self.tracer.calls.add(name)
        if name in OPS:
            return self.dsd(name, args)
        handler = getattr(self, "_b_" + name, None)
        if handler is None:
            raise self.error(f"@{name} is not supported here")
        return handler(*args)

    def _b_import_module(self, path: str, cfg: object = None) -> object:
        return self.import_module(path, cfg, self.file)

    def import_module(self, path: str, cfg: object, base: str) -> object:
        """A library (``<...>``) or a program file, named relative to the importing file."""
        if not path.startswith("<"):
            name = posixpath.normpath(posixpath.join(posixpath.dirname(base), path))
            actions = self.sim.module_actions.get(name)
            if actions is None:
                raise self.error(f'@import_module("{path}"): no program file {name}')
            if cfg is not None and not isinstance(cfg, Struct):
                raise self.error(f'@import_module("{path}", ...) takes a struct of params')
            scope = ModuleScope(self, name)
            run_module(actions, scope, dict(cfg.fields) if cfg is not None else {})
            return UserModule(scope)
        if path == "<math>":
            return lib.MathModule()
        if path == "<control>":
            return lib.ControlModule()
        if path == "<memcpy/memcpy>":
            module = lib.MemcpyModule(self, cfg)
        elif path == "<layout>":
            module = lib.LayoutModule(self)
        elif path == "<collectives_2d/pe>":
            module = lib.Collectives2D(self, cfg)
        elif path == "<time>":
            module = lib.TimeModule(self)
        elif path == "<random>":
            module = lib.RandomModule(self)
        elif path == "<simprint>":
            module = lib.SimprintModule(self)
        elif path == "<debug>":
            module = lib.DebugModule(self, cfg)
        else:
            raise FabricError(f"the simulator has no model of module {path}", self.file)
        if self.tracer is not None:
            self.tracer.modules.append(module)
        return module

    def _key(self, task: object) -> tuple[str, int]:
        if isinstance(task, TaskId):
            return (task.kind, task.id)
        if isinstance(task, Color) and self.sim.arch.name == "wse2":
            return ("data", task.id)  # a color is its data task's ID on WSE-2
        if isinstance(task, Queue) and task.io == "in" and self.sim.arch.name == "wse3":
            return ("data", task.id)  # an input queue is its data task's ID on WSE-3
        if isinstance(task, FnValue):
            for key, fn in self.tasks.items():
                if fn is task:
                    return key
            raise FabricError(f"PE {self.coords}: task '{task.name}' is not bound", self.file)
        raise FabricError(f"PE {self.coords}: {task!r} is not a task ID", self.file)

    def _bind(self, fn: object, tid: object, kind: str) -> None:
        if not (isinstance(fn, FnValue) and fn.is_task):
            raise FabricError(f"PE {self.coords}: @bind_{kind}_task needs a task", self.file)
        if not isinstance(tid, TaskId) or tid.kind != kind:
            raise FabricError(f"PE {self.coords}: @bind_{kind}_task needs a {kind} task ID")
        if kind == "local":
            lo, hi = self.sim.arch.local_task_ids
            if not lo <= tid.id <= hi or tid.id in self.sim.arch.reserved_ids:
                raise FabricError(
                    f"PE {self.coords}: local task ID {tid.id} is outside {lo}..{hi} or reserved"
                )
        self.tasks[(kind, tid.id)] = fn

    def _b_bind_local_task(self, fn, tid):
        self._bind(fn, tid, "local")

    def _b_bind_data_task(self, fn, tid):
        self._bind(fn, tid, "data")

    def _b_bind_control_task(self, fn, tid):
        self._bind(fn, tid, "control")

    def control_in(self, color: int, times: np.ndarray, values: np.ndarray) -> None:
        """Control wavelets reaching the CE: one naming a control task runs that task (with
        its 16-bit data if the task takes an argument); one the CE ignores is dropped."""
        for t, word in zip(times.tolist(), words_of(values, 32).tolist(), strict=True):
            _opcode, ignore, entry, data = lib.decode_control(word)
            if ignore:
                continue
            if entry is None or ("control", entry) not in self.tasks:
                named = "no control task" if entry is None else f"control task ID {entry}"
                raise FabricError(
                    f"PE {self.coords}: a control wavelet on color {color} for {named} reaches "
                    "the CE, and no such control task is bound"
                )
            if self._data_task_for(color) is not None:  # in line with the data wavelets
                self.dataq.setdefault(color, deque()).append((t, ControlWavelet(entry, data)))
            else:
                self.controls.append((t, entry, data))
            self.sim.schedule(t, RUN, self)

    def _b_export_symbol(self, value, *rest):
        symbol = (
            str(rest[0])
            if len(rest) == 2
            else (value.name if isinstance(value, FnValue) else str(rest[-1]))
        )
        if not isinstance(value, Pointer | FnValue):
            raise FabricError(
                f"PE {self.coords}: export '{symbol}' through a pointer variable, not an array",
                self.file,
            )
        self.exports[symbol] = value

    def _b_set_local_color_config(self, color, cfg):
        self.set_route(color, cfg)

    def _b_initialize_queue(self, queue, cfg):
        if not isinstance(queue, Queue):
            raise self.error("@initialize_queue needs a queue")
        self.check_queue(queue, "@initialize_queue")
        self.queue_color[(queue.io, queue.id)] = cfg.get("color").id

    def _b_is_arch(self, name):
        return str(name) == self.sim.arch.name

    def _b_get_rectangle(self):
        return Struct({"width": self.sim.width, "height": self.sim.height})

    def _b_activate(self, task):
        self.active.add(self._key(task))
        self.sim.schedule(max(self.sim.time, self.now), RUN, self)

    def _b_block(self, task):
        self.blocked.add(self._key(task))

    def _b_unblock(self, task):
        self.blocked.discard(self._key(task))
        self.sim.schedule(max(self.sim.time, self.now), RUN, self)

    def _b_allocate_fifo(self, buffer):
        if not isinstance(buffer, Array) or len(buffer.dims) != 1:
            raise self.error("@allocate_fifo takes a one-dimensional array")
        return Fifo(buffer)

    def _b_map(self, fn, *args):
        opts = {}
        if args and isinstance(args[-1], Struct) and not args[-1].items:
            opts, args = args[-1].fields, args[:-1]
        *srcs, dst = args
        if type(dst) is Pointer and isinstance(fn, FnValue):
            self._map_into_scalar(fn, srcs, dst, opts)
            return
        if not isinstance(dst, MemDsd):
            raise FabricError(f"PE {self.coords}: @map writes a memory DSD", self.file)
        values = [self._read(s, dst.length) for s in srcs]
        before = self.now
        if isinstance(fn, FnValue):
            try:  # straight-line functions run on whole arrays at once
                out = np.broadcast_to(np.asarray(fn.invoke(self, tuple(values))), (dst.length,))
                body = (self.now - before) * dst.length
            except _Branching:
                out, body = self._map_elements(fn, values, dst.length, before)
            self.now = before
        else:
            out = np.broadcast_to(np.asarray(fn(*values)), (dst.length,))
            body = getattr(fn, "cycles", 1) * dst.length
        self._write(dst, out)
        self._charge_map(body, dst.length, opts)

    def _map_into_scalar(self, fn: FnValue, srcs: list, dst: Pointer, opts: dict) -> None:
        """@map into a scalar through a pointer: the function runs once per element of the
        DSD sources, each result stored before the next call (a reduction when the function
        also reads the pointer)."""
        mems = [a for a in srcs if type(a) is MemDsd]
        if not mems:
            raise self.error("@map needs a memory DSD source to iterate over")
        n = mems[0].length
        if any(a.length != n for a in mems):
            raise self.error("@map operands differ in length")
        columns = [self._read(a, n) if type(a) is MemDsd else None for a in srcs]
        before = self.now
        target = dst.array.data
        for k in range(n):
            args = tuple(a if c is None else c[k] for a, c in zip(srcs, columns, strict=True))
            target[dst.offset] = fn.invoke(self, args)
        body = self.now - before
        self.now = before
        self._charge_map(body, n, opts)

    def _charge_map(self, body: int, n: int, opts: dict) -> None:
        """An @map's cycles: the DSD set-up, the element function's ``body`` cycles and a call
        per element, on the DSD unit (async: the task goes on after one cycle)."""
        cost = machine.DSD_SETUP_CYCLES + body + machine.MAP_CALL_CYCLES * n
        start = max(self.now, self.dsd_free)
        self.dsd_free = start + cost
        if opts.get("async", False):
            self.now += 1
            self.busy += cost
        self._finish(start + cost, start, opts)

    def _map_elements(self, fn: FnValue, values: list, n: int, before: int):
        """@map one element at a time, for functions that branch on their arguments."""
        out = []
        for k in range(n):
            args = tuple(v[k] if isinstance(v, np.ndarray) else v for v in values)
            out.append(fn.invoke(self, args))
        body = self.now - before
        return np.array(out), body

    def unblock_cmd_stream(self) -> None:
        if self.unblocked or self.unblock_held:
            raise FabricError(
                f"PE {self.coords}: unblock_cmd_stream() called twice for one launch", self.file
            )
        if self.held is not None:  # takes effect when the CE is past the stalled write
            self.unblock_held = True
            return
        self.unblocked = True
        self.unblock_time = self.now
        self.sim.running -= 1

    # ----------------------------------------------------------------- DSD engine
    def _read(self, operand: object, n: int) -> object:
        if isinstance(operand, MemDsd):
            try:
                return operand.view().reshape(-1)
            except FabricError as err:
                raise FabricError(f"PE {self.coords}: {err.message}", self.file) from None
        if isinstance(operand, FabDsd):
            raise FabricError(f"PE {self.coords}: fabric operands are read by the DSD engine")
        return operand

    def _write(self, dst: MemDsd, values: np.ndarray) -> None:
        try:
            view = dst.view()
        except FabricError as err:
            raise FabricError(f"PE {self.coords}: {err.message}", self.file) from None
        if view.size:
            if type(values) is np.ndarray and values.dtype == np.uint32:
                values = as_bits(values, view.dtype)  # host words: their bits
            view[...] = np.asarray(values).reshape(view.shape)

    def dsd(self, name: str, args: tuple) -> None:
        opts: dict = {}
        if args and type(args[-1]) is Struct and not args[-1].items:
            opts, args = args[-1].fields, args[:-1]
        spec = OPS[name]
        if len(args) != spec[1] + 1:
            raise FabricError(f"PE {self.coords}: @{name} takes {spec[1] + 1} operands", self.file)
        dst, srcs = args[0], args[1:]
        mems = [a for a in args if type(a) is MemDsd]
        inputs = [s for s in srcs if type(s) is FabDsd]
        n_fabric = len(inputs) + (type(dst) is FabDsd)
        # FIFO operands are rare: look for them only when some operand is not a DSD
        fifos = [a for a in args if type(a) is Fifo] if len(mems) + n_fabric < len(args) else []
        if fifos and not opts.get("async", False):
            raise self.error(f"@{name} with a FIFO operand must be .async = true")
        if mems:
            n = mems[0].length
            for a in mems:
                if a.length != n:
                    lengths = ", ".join(str(a.length) for a in mems)
                    raise FabricError(
                        f"PE {self.coords}: @{name} operands differ in length ({lengths})"
                    )
        elif inputs or type(dst) is FabDsd:
            n = min(a.length for a in args if type(a) is FabDsd)
        else:
            raise FabricError(
                f"PE {self.coords}: @{name} needs a memory or fabric DSD operand", self.file
            )
        if (type(dst) is FabDsd and dst.kind != "out") or any(s.kind != "in" for s in inputs):
            raise FabricError(f"PE {self.coords}: @{name}: fabin is a source, fabout a destination")
        op = PendingOp(self, name, spec, dst, srcs, n, opts, self.now, inputs, fifos)
        is_async = bool(opts.get("async", False))
        fabric = [a for a in args if type(a) is FabDsd] if inputs or type(dst) is FabDsd else ()
        for f in fabric:
            if f.queue is None:
                which = "input" if f.kind == "in" else "output"
                raise self.error(f"@{name}: a fabric DSD names its .{which}_queue")
            self.check_queue(f.queue, f"@{name}")
        if is_async and (fabric or "ut_id" in opts):
            op.thread = self.claim_thread(name, fabric, opts)
        if op.fifos:
            self.pending.append(op)
            self.now += 1
            self.try_pending()
            return
        if op.inputs:
            if not is_async:
                raise self.error(
                    f"@{name} reads the fabric synchronously; the simulator (like memcpy) "
                    "needs fabric reads to be .async = true"
                )
            self.pending.append(op)
            self.now += 1
            if self.stalled:
                for c in {s.color.id for s in op.inputs}:  # a reader makes room on its colors
                    self.release(c, op.issue)
            self.try_pending()
            return
        start = max(self.now, self.dsd_free)
        end, transfer = self._execute(op, start, {})
        self.dsd_free = end
        if is_async:
            self.now += 1
            self.busy += end - start
            self._complete(op, end, start, transfer)
        else:
            self.now = end
            if transfer is not None and transfer.stalls and self.held is None:
                self._hold(transfer)

    def _hold(self, transfer: Transfer) -> None:
        """A synchronous fabric write whose wavelets a full queue holds back: the CE waits for
        it. The task's later statements have run already (the simulator runs a task body to
        its end), but no task starts, and unblock_cmd_stream() takes effect, only once the last
        held wavelet is taken; the PE's time moves on to then."""
        self.held = transfer

        def resume(last: int) -> None:
            self.held = None
            self.now = max(self.now, last + 1)
            self.last = max(self.last, self.now)
            if self.unblock_held:
                self.unblock_held = False
                self.unblock_cmd_stream()
            self.sim.schedule(self.now, RUN, self)

        transfer.done = resume

    def _complete(self, op: PendingOp, end: int, start: int, transfer: Transfer | None) -> None:
        """An async op ends at ``end``, or, when receivers held its wavelets back, once the
        last of them is taken: then its microthread is free and its completion task runs."""

        if transfer is None or not transfer.stalls:
            if op.thread is not None:
                op.thread.end = end
            self._finish(end, start, op.opts)
            return

        def finish(last: int) -> None:
            final = max(end, last + 1)
            if op.thread is not None:
                op.thread.end = final
            self._finish(final, start, op.opts)

        transfer.done = finish

    def claim_thread(self, name: str, fabric: list[FabDsd], opts: dict) -> Microthread | None:
        """The microthread an async op runs on, which no other op may hold until it ends.

        WSE-2: the queue of its first fabric operand (destination, then sources); WSE-3: its
        ``.ut_id``, else that queue. An op with no fabric operand and no ``.ut_id`` takes none.
        """
        explicit = opts.get("ut_id")
        if explicit is not None and self.sim.arch.name == "wse2":
            raise self.error(
                f"@{name}: .ut_id is a WSE-3 setting; on WSE-2 an asynchronous operation runs "
                "on the microthread of its queue"
            )
        if explicit is not None:
            ut, why = int(explicit), f".ut_id = {int(explicit)}"
        elif fabric:
            q = fabric[0].queue
            ut, why = q.id, f"its {'input' if q.io == 'in' else 'output'} queue {q.id}"
        else:
            return None
        held = self.threads.get(ut)
        if held is not None and (held.end is None or held.end > self.now):
            err = self.error(
                f"@{name} starts on microthread {ut} ({why}) while @{held.op} ({held.why}) "
                "still runs on it: concurrent asynchronous operations must not share a "
                "microthread (the machine would lose a completion)"
            )
            if held.at is not None:
                err.notes.append((held.at, f"@{held.op} started here on microthread {ut}"))
            raise err
        thread = Microthread(name, self.at, why)
        self.threads[ut] = thread
        return thread

    def _execute(
        self, op: PendingOp, start: int, arrivals: dict[int, tuple]
    ) -> tuple[int, Transfer | None]:
        dtype_name, _, fn = op.spec
        n = op.n
        values = []
        for s in op.srcs:
            if type(s) is FabDsd:
                got = arrivals[id(s)][1]
                values.append(as_bits(got, FLOATS[dtype_name]) if dtype_name else got)
            else:
                values.append(self._read(s, n))
        if dtype_name:
            dtype = FLOATS[dtype_name]
            values = [
                np.asarray(v, dtype=dtype) if not isinstance(v, np.ndarray) else v for v in values
            ]
        result = fn(*values)
        if type(result) is not np.ndarray or result.shape != (n,):
            result = np.broadcast_to(np.asarray(result), (n,))
        if not arrivals and not isinstance(op.dst, FabDsd):
            end = start + machine.DSD_SETUP_CYCLES + n  # memory only: one element per cycle
            times = None
        else:
            steps = np.arange(n, dtype=np.int64)
            times = start + machine.DSD_SETUP_CYCLES + steps
            for s in op.srcs:
                if isinstance(s, FabDsd):
                    times = np.maximum(times, arrivals[id(s)][0] + 1)
            if n:
                times = np.maximum.accumulate(times - steps) + steps
            end = int(times[-1]) + 1 if n else start + machine.DSD_SETUP_CYCLES
        transfer = None
        if isinstance(op.dst, MemDsd):
            self._write(op.dst, result)
        elif isinstance(op.dst, FabDsd):
            transfer = Transfer(self, op)
            self.sim.send(self, op.dst.color.id, times, np.array(result), transfer, op.dst.control)
            if transfer.stalls:
                self.sends.append(transfer)
        else:
            raise FabricError(f"PE {self.coords}: @{op.name} needs a DSD destination", self.file)
        return end, transfer

    def _finish(self, end: int, start: int, opts: dict) -> None:
        """After an op: a synchronous one holds the CE until ``end``; an async one completes
        then, activating or unblocking the task its options name."""
        self.last = max(self.last, end)
        if not opts.get("async", False):
            self.now = max(self.now, end)
            return
        act, unb = opts.get("activate"), opts.get("unblock")
        if act is None and unb is None:
            return

        def complete() -> None:
            if act is not None:
                self._b_activate(act)
            if unb is not None:
                self._b_unblock(unb)

        self.sim.schedule(end, DONE, self, complete)

    # ----------------------------------------------------------------- wavelets in
    def available(self, color: int) -> int:
        q = self.inq.get(color)
        return q[2] if q else 0

    def queued(self, color: int) -> int:
        """Wavelets of a color in this PE's input queue that nothing has taken yet."""
        if self._data_task_for(color) is not None:
            return len(self.dataq.get(color, ()))
        return self.available(color)

    def room(self, color: int, wanted: int = 0) -> int:
        """Wavelets of a color this PE can take now: the queue's free places, plus what the
        issued ops reading that color will take as they arrive (counted when the free places
        are fewer than ``wanted``)."""
        if self._data_task_for(color) is not None:
            return machine.INPUT_QUEUE_WAVELETS - len(self.dataq.get(color, ()))
        free = machine.INPUT_QUEUE_WAVELETS - self.available(color)
        if free >= wanted:
            return free
        return free + sum(
            op.n - op.done for op in self.pending for s in op.inputs if s.color.id == color
        )

    def deliver(
        self, color: int, times: np.ndarray, values: np.ndarray, transfer: Transfer | None
    ) -> None:
        """A train arrives: the queue takes what fits, the rest waits (the sender stalls)."""
        held = self.stalled.get(color)
        room = 0 if held else self.room(color, len(times))
        if room >= len(times):
            self._accept(color, times, values)
            return
        if room > 0:
            self._accept(color, times[:room], values[:room])
            times, values = times[room:], values[room:]
        stall = Stall(self, color, times, values, transfer)
        self.stalled.setdefault(color, deque()).append(stall)
        if transfer is not None:
            transfer.stalls.append(stall)

    def release(self, color: int, t: int) -> None:
        """Room appeared at ``t``: held-back wavelets move in, at most one per cycle from then."""
        held = self.stalled.get(color)
        if not held or self.releasing:
            return
        self.releasing = True
        try:
            while held:
                room = self.room(color, len(held[0].times))
                if room <= 0:
                    break
                stall = held[0]
                k = min(room, len(stall.times))
                steps = np.arange(k, dtype=np.int64)
                times = np.maximum(stall.times[:k], t + 1 + steps)
                times = np.maximum.accumulate(times - steps) + steps
                values = stall.values[:k]
                stall.times, stall.values = stall.times[k:], stall.values[k:]
                t = int(times[-1])
                if not len(stall.times):
                    held.popleft()
                self._accept(color, times, values)
                if stall.transfer is not None:
                    stall.transfer.last = max(stall.transfer.last, t)
                    if not len(stall.times):
                        stall.transfer.released(stall)
            if not held:
                del self.stalled[color]
        finally:
            self.releasing = False

    def _accept(self, color: int, times: np.ndarray, values: np.ndarray) -> None:
        if self._data_task_for(color) is not None:
            q = self.dataq.setdefault(color, deque())
            q.extend(zip(times.tolist(), values, strict=True))
            self.sim.schedule(int(times[0]), RUN, self)
            return
        q = self.inq.setdefault(color, [[], [], 0])
        q[0].append(times)
        q[1].append(values)
        q[2] += len(times)
        self.try_pending()

    def _take(self, color: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        q = self.inq[color]
        times, values = np.concatenate(q[0]), np.concatenate(q[1])
        q[0], q[1], q[2] = [times[n:]], [values[n:]], q[2] - n
        return times[:n], values[:n]

    def try_pending(self) -> None:
        progressed = True
        while progressed:  # an op that fills or drains a FIFO may let another one go on
            progressed = self._pending_pass()

    def _pending_pass(self) -> bool:
        waiting: set[object] = set()
        progressed = False
        for op in list(self.pending):
            if op.fifos:
                if not any(c in waiting for c in op.channels) and self._advance(op):
                    progressed = True
                if op.done < op.n:
                    waiting.update(op.channels)
                continue
            colors = [s.color.id for s in op.inputs]
            if any(c in waiting for c in colors) or any(
                self.available(c) < op.n * colors.count(c) for c in colors
            ):
                waiting.update(colors)
                continue
            self.pending.remove(op)
            arrivals = {id(s): self._take(s.color.id, op.n) for s in op.inputs}
            end, transfer = self._execute(op, op.issue, arrivals)
            first = min(int(a[0][0]) for a in arrivals.values()) if op.n else op.issue
            self.busy += end - max(op.issue, first)
            self._complete(op, end, op.issue, transfer)
        return progressed

    def _advance(self, op: PendingOp) -> bool:
        """Run the elements of an op with a FIFO operand that its sources hold and its
        destination has room for; it completes with its last element."""
        k = op.n - op.done
        for s in op.srcs:
            if type(s) is FabDsd:
                k = min(k, self.available(s.color.id))
            elif type(s) is Fifo:
                k = min(k, s.count)
        if type(op.dst) is Fifo:
            k = min(k, op.dst.room)
        if k <= 0:
            return False
        dtype_name, _, fn = op.spec
        lo = op.done
        times = op.cursor + np.arange(k, dtype=np.int64)
        values = []
        for s in op.srcs:
            if type(s) is FabDsd or type(s) is Fifo:
                got_t, got = self._take(s.color.id, k) if type(s) is FabDsd else s.take(k)
                times = np.maximum(times, got_t + 1)
                op.first = int(got_t[0]) if op.first is None else op.first
                values.append(as_bits(got, FLOATS[dtype_name]) if dtype_name else got)
            elif type(s) is MemDsd:
                values.append(self._read(s, op.n)[lo : lo + k])
            else:
                values.append(np.asarray(s, dtype=FLOATS[dtype_name]) if dtype_name else s)
        steps = np.arange(k, dtype=np.int64)
        times = np.maximum.accumulate(times - steps) + steps
        result = np.broadcast_to(np.asarray(fn(*values)), (k,))
        op.cursor = int(times[-1]) + 1
        if type(op.dst) is MemDsd:
            target = op.dst.array.data
            target[op.dst.indices()[lo : lo + k]] = as_bits(np.asarray(result), target.dtype)
        elif type(op.dst) is Fifo:
            op.dst.push(times, as_bits(np.asarray(result), op.dst.buffer.data.dtype))
        elif type(op.dst) is FabDsd:
            if op.transfer is None:
                op.transfer = Transfer(self, op)
            self.sim.send(
                self, op.dst.color.id, times, np.array(result), op.transfer, op.dst.control
            )
            if op.transfer.stalls and op.transfer not in self.sends:
                self.sends.append(op.transfer)
        else:
            raise self.error(f"@{op.name} needs a DSD or FIFO destination")
        op.done += k
        if op.done == op.n:
            self.pending.remove(op)
            self.busy += op.cursor - max(op.issue, op.first if op.first is not None else 0)
            self._complete(op, op.cursor, op.issue, op.transfer)
        return True

    def _data_task_for(self, color: int) -> tuple[str, int] | None:
        if self.sim.arch.name == "wse2":
            key = ("data", color)
            return key if key in self.tasks else None
        for (io, q), c in self.queue_color.items():
            if io == "in" and c == color and ("data", q) in self.tasks:
                return ("data", q)
        return None

    # ------------------------------------------------------------------- scheduler
    def run_tasks(self, t: int) -> None:
        if self.held is not None:
            return  # the CE waits for a synchronous write; its release schedules a run
        if self.now > t:
            self.sim.schedule(self.now, RUN, self)
            return
        if self.controls and self.controls[0][0] <= t:
            self._run_control(t)
            return
        if not self.active and not self.dataq:
            return  # nothing to choose from
        choice, arg = None, None
        for key in sorted(self.active | self._ready_data(t), key=lambda k: k[1]):
            if key in self.blocked or key not in self.tasks:
                continue
            choice = key
            break
        if choice is None:
            return
        if choice[0] == "data":
            color = self._data_color(choice[1])
            _, arg = self.dataq[color].popleft()
            self.release(color, t)
            if type(arg) is ControlWavelet:
                self.controls.appendleft((t, arg.entry, arg.data))
                self._run_control(t)
                return
        else:
            self.active.discard(choice)
        fn = self.tasks[choice]
        self.runs += 1
        self.now = t + machine.TASK_SWITCH_CYCLES
        self.current = f"task '{fn.name}'"
        fn.invoke(self, () if arg is None else wavelet_args(fn, arg))
        self.busy += self.now - t
        self.last = max(self.last, self.now)
        self.current = "idle"
        self.sim.schedule(self.now, RUN, self)

    def _run_control(self, t: int) -> None:
        _, entry, data = self.controls.popleft()
        fn = self.tasks[("control", entry)]
        self.runs += 1
        self.now = t + machine.TASK_SWITCH_CYCLES
        self.current = f"control task '{fn.name}'"
        fn.invoke(self, (np.uint16(data),) if fn.params else ())
        self.busy += self.now - t
        self.last = max(self.last, self.now)
        self.current = "idle"
        self.sim.schedule(self.now, RUN, self)

    def _data_color(self, task_id: int) -> int:
        if self.sim.arch.name == "wse2":
            return task_id
        return self.queue_color[("in", task_id)]

    def _ready_data(self, t: int) -> set[tuple[str, int]]:
        ready = set()
        for color, q in self.dataq.items():
            if q and q[0][0] <= t:
                key = self._data_task_for(color)
                if key is not None:
                    ready.add(key)
        return ready

    def start(self, t: int, fn: FnValue, args: tuple, resume: lockstep.Resume | None) -> None:
        if resume is not None and self.runs != resume.runs:
            raise FabricError(
                f"PE {self.coords} ran a task before its launch of '{fn.name}', whose first "
                f"statements the simulator had run in lockstep with other PEs; run with "
                f"{lockstep.ENV}=0 to run every PE on its own"
            )
        if self.now > t:
            self.sim.schedule(self.now, LAUNCH, self, (fn, args, None))
            return
        self.current = f"launched function '{fn.name}'"
        if resume is None:
            self.now = t
            fn.invoke(self, args)
        else:
            self.now = resume.now
            if resume.tail is not None:
                resume.tail(resume.frame)
        self.busy += self.now - t
        self.last = max(self.last, self.now)
        self.current = "idle"
        self.sim.schedule(self.now, RUN, self)

    # ---------------------------------------------------------------------- reports
    def waiting(self) -> list[str]:
        reasons = [op.describe() for op in self.pending]
        if self.held is not None:
            reasons.append("its CE waits for the synchronous write below")
        reasons.extend(t.describe() for t in self.sends)
        for key in sorted(self.active):
            if key in self.blocked and key in self.tasks:
                reasons.append(
                    f"task '{self.tasks[key].name}' ({key[0]} task ID {key[1]}) is activated "
                    "but blocked"
                )
        for color, q in self.dataq.items():
            key = self._data_task_for(color)
            if q and key is not None and key in self.blocked:
                reasons.append(
                    f"data task '{self.tasks[key].name}' is blocked with {len(q)} wavelet(s) "
                    f"queued on color {color}"
                )
        reasons.extend(self.sim.hub.waiting(self))
        return reasons


def _joined(reasons: list[str]) -> str:
    """A PE's reasons for waiting, a repeated one (a loop's stalled writes) given once."""
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return "; ".join(r if n == 1 else f"{r} ({n} times)" for r, n in counts.items())


# -------------------------------------------------------------------------------- simulator


def _collector_paused(method: Callable) -> Callable:
    """Run with Python's cyclic garbage collector paused: building a grid makes millions of
    long-lived objects, and the collector's repeated full passes over them (while building, and
    while events run) cost more than the work itself. Nothing here creates reference cycles;
    reference counting frees the rest, and the collector resumes afterwards."""

    @functools.wraps(method)
    def paused(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return method(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused


class Simulator:
    """A whole program on its rectangle of PEs, driven by the host through memcpy and launch."""

    @_collector_paused
    def __init__(
        self, program: m.Program, params: dict[str, int], arch: str = "wse2", channels: int = 1
    ) -> None:
        self.arch = machine.arch(arch)
        self.channels = channels
        self.files = {f.name: f for f in program.pe_files}  # for lockstep runs
        self.stores: dict[str, lockstep.Stores] = {}  # per file: its PEs' arrays as rows
        setups = {f.name: SetupCache(Compiler(f.name).module(f)) for f in program.pe_files}
        self.module_actions = {name: setup.actions for name, setup in setups.items()}
        self.layout = evaluate_layout(program.layout, params, self.arch, self.module_actions)
        self.width, self.height = self.layout.rectangle
        code = {f.name: machine.code_bytes(f.decls) for f in program.pe_files}
        self.events: list = []
        self.seq = 0
        self.time = 0
        self.links: dict[tuple[int, int, str], int] = {}
        self.stuck: list[str] = []
        self.hub = CollectiveHub(self)
        self.simlog: list[tuple[int, str]] = []  # <simprint> lines and their cycles
        self.traces: dict[tuple[int, int, str], list] = {}  # <debug> buffers per PE and key
        self.pes: list[PE] = []
        self.running = 0  # PEs of the current launch that have not released the command stream
        self.launch_start = 0  # the simulated cycle at which the current launch began
        count = self.width * self.height
        given = self.layout.memcpy.streams if self.layout.memcpy is not None else {}
        streams = {color.id: name for name, color in given.items()}
        with progress.phase(f"fabric simulator, setting up {count:,} PEs") as shown:
            for y in range(self.height):
                shown.update(lambda: f"{len(self.pes):,} done")
                for x in range(self.width):
                    if (x, y) not in self.layout.tiles:
                        raise FabricError(
                            f"PE ({x}, {y}) has no @set_tile_code", program.layout.name
                        )
                    file, params_struct = self.layout.tiles[(x, y)]
                    if file not in setups:
                        raise FabricError(f"tile code '{file}' of PE ({x}, {y}) was not loaded")
                    pe = PE(self, x, y, file, code[file])
                    pe.streams = streams
                    for c, owner in streams.items():
                        pe.reserve_colors((c,), f"memcpy's streaming color {owner}")
                    setups[file].set_up(pe, dict(params_struct.fields))
                    pe.now = pe.busy = pe.last = pe.dsd_free = 0
                    pe.current = "idle"
                    self.pes.append(pe)
        for (x, y, color), route in self.layout.routes.items():
            pe = self.pe(x, y)
            if color in pe.reserved:
                raise FabricError(f"PE ({x}, {y}): color {color} is used by {pe.reserved[color]}")
            if color in pe.routes:
                self.layout.at = self.layout.route_at[(x, y, color)]
                raise duplicate_config(f"PE ({x}, {y})", color, pe.route_at[color], self.layout)
            pe.routes[color] = route
        self._check_memory()
        self.kernel_cycles = 0
        self.launches: list[tuple[str, int]] = []

    def pe(self, x: int, y: int) -> PE:
        return self.pes[y * self.width + x]

    def _check_memory(self) -> None:
        limit = self.arch.pe_memory
        for pe in self.pes:
            if pe.memory > limit:
                largest = sorted(pe.data.items(), key=lambda kv: -kv[1])[:3]
                detail = ", ".join(f"'{n}' {b:,} bytes" for n, b in largest)
                raise FabricError(
                    f"PE {pe.coords} needs {pe.memory:,} bytes (data {pe.memory - pe.code_bytes:,}"
                    f" + modelled code {pe.code_bytes:,}), more than the {limit:,} bytes of a PE; "
                    f"largest: {detail}",
                    pe.file,
                )

    # ---------------------------------------------------------------------- events
    def schedule(self, t: int, kind: int, pe: PE, data: object = None) -> None:
        self.seq += 1
        heapq.heappush(self.events, (int(t), self.seq, kind, pe, data))

    def complete_at(self, pe: PE, t: int, cb: TaskId) -> None:
        pe.last = max(pe.last, t)
        self.schedule(t, DONE, pe, lambda: pe._b_activate(cb))

    def cross_link(self, x: int, y: int, direction: str, times: np.ndarray) -> np.ndarray:
        """Times at which a train's wavelets arrive after crossing one link (occupancy kept)."""
        key = (x, y, direction)
        free = self.links.get(key, 0)
        n = len(times)
        if n == 0:
            return times
        steps = np.arange(n, dtype=np.int64)
        out = np.maximum(times, free + steps)
        out = np.maximum.accumulate(out - steps) + steps
        self.links[key] = int(out[-1]) + 1
        return out

    def send(
        self,
        src: PE,
        color: int,
        times: np.ndarray,
        values: np.ndarray,
        transfer: Transfer,
        control: bool = False,
    ) -> None:
        if not control:
            self._forward(src, color, times, values, "RAMP", set(), transfer)
            return
        for k in range(len(times)):  # a control wavelet may move switches for the next one
            self._forward(
                src, color, times[k : k + 1], values[k : k + 1], "RAMP", set(), transfer, True
            )

    def _forward(
        self,
        pe: PE,
        color: int,
        times,
        values,
        came_from: str,
        seen: set,
        transfer: Transfer,
        control: bool = False,
    ) -> None:
        if (pe.x, pe.y) in seen:
            raise FabricError(f"routing loop on color {color} through PE {pe.coords}")
        seen = seen | {(pe.x, pe.y)}
        route = pe.routes.get(color)
        if route is not None and came_from in route.swap:
            # color swap (WSE-2): a wavelet entering along the swapped axis changes color to
            # the one differing in the lowest bit, and is routed as that color
            color ^= 1
            route = pe.routes.get(color)
        if route is None and came_from == "RAMP" and pe.streams.get(color) == "MEMCPYD2H_1":
            pe.to_host.append((times, values))  # memcpy takes it towards the host
            return
        rx, tx = (route.rx, route.tx) if route is not None else (frozenset(), ())
        if route is not None and route.positions is not None:
            rx, tx = route.positions[pe.switch_pos.get(color, route.start)]
        if route is None or came_from not in rx:
            how = "has no route" if route is None else f"does not accept {came_from}"
            self.stuck.append(
                f"{len(times)} wavelet(s) on color {color} stuck at PE {pe.coords}: its route "
                f"{how} (arriving from {came_from})"
            )
            return
        for d in tx:
            if d == "RAMP":
                if control:
                    pe.control_in(color, times, values)
                elif route.keep is None:
                    pe.deliver(color, times, values, transfer)
                else:
                    index = words_of(values, 32) >> 16
                    taken = (index >= route.keep[0]) & (index <= route.keep[1])
                    if taken.any():
                        pe.deliver(color, times[taken], np.asarray(values)[taken], transfer)
                continue
            dx, dy = STEP[d]
            nx, ny = pe.x + dx, pe.y + dy
            if not (0 <= nx < self.width and 0 <= ny < self.height):
                self.stuck.append(
                    f"{len(times)} wavelet(s) on color {color} leave the program rectangle at PE "
                    f"{pe.coords} going {d}"
                )
                continue
            arrive = self.cross_link(pe.x, pe.y, d, times + machine.HOP_CYCLES)
            self._forward(
                self.pe(nx, ny), color, arrive, values, OPPOSITE[d], seen, transfer, control
            )
        if control and route.positions is not None:
            # the switch moves once the control wavelet has passed (it took the old position)
            opcode = lib.decode_control(int(words_of(values, 32)[0]))[0]
            pos = pe.switch_pos.get(color, route.start)
            if opcode == lib.CONTROL_OPCODES["SWITCH_ADV"]:
                last = len(route.positions) - 1
                pe.switch_pos[color] = pos + 1 if pos < last else (0 if route.ring else last)
            elif opcode == lib.CONTROL_OPCODES["SWITCH_RST"]:
                pe.switch_pos[color] = 0

    def _drain(self, shown: progress.Phase | progress.Silent) -> None:
        events, pop, replace = self.events, heapq.heappop, heapq.heapreplace
        countdown = 1  # the first event updates too: a phase's line starts without delay
        with np.errstate(all="ignore"):
            while events:
                t, _, kind, pe, data = events[0]
                if t > self.time:
                    self.time = t
                countdown -= 1
                if not countdown:
                    countdown = EVENTS_PER_UPDATE
                    shown.update(self._running)
                if kind == RUN and pe.now > t:
                    # most RUN events: the PE is busy; look again when it is not (one sift:
                    # the (time, seq) keys are unique, so the order of events is unchanged)
                    self.seq += 1
                    replace(events, (int(pe.now), self.seq, RUN, pe, None))
                    continue
                pop(events)
                if kind == RUN:
                    pe.run_tasks(t)
                elif kind == DONE:
                    data()
                else:
                    pe.start(t, *data)

    # ------------------------------------------------------------------------ host
    @_collector_paused
    def launch(self, name: str, args: tuple = ()) -> int:
        """Run an exported function on every PE until all release the command stream."""
        start = self.time
        fns = []
        for pe in self.pes:
            fn = pe.exports.get(name)
            if not isinstance(fn, FnValue):
                raise FabricError(f"PE {pe.coords} does not export a function '{name}'", pe.file)
            fns.append(fn)
        times = [start + machine.LAUNCH_CYCLES + pe.x + pe.y for pe in self.pes]
        resumes = [None] * len(self.pes)
        if lockstep.enabled():
            with progress.phase(f"fabric simulator, launch '{name}': PEs in lockstep"):
                resumes = lockstep.run_heads(
                    self.files, self.stores, self.pes, fns, tuple(args), times
                )
        for pe, fn, t, resume in zip(self.pes, fns, times, resumes, strict=True):
            pe.unblocked = False
            self.schedule(t, LAUNCH, pe, (fn, args, resume))
        self.running = len(self.pes)
        self.launch_start = start
        with progress.phase(f"fabric simulator, launch '{name}'") as shown:
            self._drain(shown)
        waiting = [pe for pe in self.pes if not pe.unblocked or pe.pending or pe.held]
        if waiting or self.stuck:
            waiting = [pe for pe in self.pes if not pe.unblocked or pe.pending or pe.sends]
            raise FabricError(self._deadlock_report(name, waiting))
        end = max([self.time, *(pe.last for pe in self.pes), *(pe.unblock_time for pe in self.pes)])
        self.time = end
        self.kernel_cycles += end - start
        self.launches.append((name, end - start))
        return end - start

    def _running(self) -> str:
        cycles = self.time - self.launch_start
        return f"simulated cycle {cycles:,}, {self.running:,}/{len(self.pes):,} PEs busy"

    def _deadlock_report(self, name: str, waiting: list[PE]) -> str:
        lines = [
            f"deadlock in launch of '{name}' at simulated cycle {self.time}: no progress while "
            f"work remains ({len(waiting)} PE(s) still waiting)"
        ]
        for pe in waiting[:MAX_REPORTED_PES]:
            reasons = pe.waiting()
            if not pe.unblocked and not reasons:
                reasons = [
                    "nothing is activated or pending, and it never called unblock_cmd_stream()"
                ]
            lines.append(f"  PE {pe.coords}: " + _joined(reasons))
        if len(waiting) > MAX_REPORTED_PES:
            lines.append(f"  ... and {len(waiting) - MAX_REPORTED_PES} more PE(s)")
        lines.extend(f"  {s}" for s in self.stuck[:MAX_REPORTED_PES])
        return "\n".join(lines)

    def _exported(self, pe: PE, symbol: str) -> Pointer:
        if symbol not in self.layout.exports:
            raise FabricError(f"'{symbol}' is not named by @export_name in the layout")
        ptr = pe.exports.get(symbol)
        if not isinstance(ptr, Pointer):
            raise FabricError(f"PE {pe.coords} does not export data symbol '{symbol}'", pe.file)
        return ptr

    def _rect(self, x0: int, y0: int, w: int, h: int) -> None:
        if x0 < 0 or y0 < 0 or w < 1 or h < 1 or x0 + w > self.width or y0 + h > self.height:
            raise FabricError(
                f"memcpy rectangle ({x0}, {y0}, {w}, {h}) is outside the {self.width} x "
                f"{self.height} program"
            )

    def h2d(
        self, symbol: str, data: np.ndarray, x0: int, y0: int, w: int, h: int, bits: int = 32
    ) -> None:
        """Copy ``data`` (h, w, l) 32-bit words into the exported array of each PE of the
        rectangle: whole words, or with ``bits`` 16 the low half of each."""
        self._rect(x0, y0, w, h)
        exported = self.layout.exports.get(symbol)
        if exported is not None and not exported[1]:
            raise FabricError(f"'{symbol}' is exported read-only")
        length = data.shape[2]
        with progress.phase(f"fabric simulator, memcpy_h2d '{symbol}'") as shown:
            for j in range(h):
                shown.update(f"row {j + 1:,} of {h:,} PE rows")
                for i in range(w):
                    pe = self.pe(x0 + i, y0 + j)
                    ptr = self._exported(pe, symbol)
                    target = ptr.array.data
                    if ptr.offset + length > target.shape[0]:
                        raise FabricError(
                            f"memcpy of {length} elements into '{symbol}' overruns PE "
                            f"{pe.coords} ({target.shape[0] - ptr.offset} available)"
                        )
                    self._width_matches(symbol, target, bits)
                    chunk = data[j, i].view(np.uint32)
                    if bits == 16:
                        chunk = chunk.astype(np.uint16)
                    target[ptr.offset : ptr.offset + length] = chunk.view(target.dtype)
        self.time += self.memcpy_cycles(w * h * length)

    def d2h(
        self, symbol: str, x0: int, y0: int, w: int, h: int, length: int, bits: int = 32
    ) -> np.ndarray:
        """The first ``length`` elements of the exported array of each PE, as (h, w, l) u32
        (16-bit elements zero-extended, with ``bits`` 16)."""
        self._rect(x0, y0, w, h)
        out = np.zeros((h, w, length), dtype=np.uint32)
        with progress.phase(f"fabric simulator, memcpy_d2h '{symbol}'") as shown:
            for j in range(h):
                shown.update(f"row {j + 1:,} of {h:,} PE rows")
                for i in range(w):
                    pe = self.pe(x0 + i, y0 + j)
                    ptr = self._exported(pe, symbol)
                    source = ptr.array.data[ptr.offset : ptr.offset + length]
                    if source.shape[0] < length:
                        raise FabricError(f"memcpy of {length} elements from '{symbol}' overruns")
                    self._width_matches(symbol, source, bits)
                    if bits == 16:
                        out[j, i] = source.view(np.uint16).astype(np.uint32)
                    else:
                        out[j, i] = source.view(np.uint32)
        self.time += self.memcpy_cycles(w * h * length)
        return out

    def start(self) -> None:
        """``SdkRuntime.run``: the tasks the programs activate at start-up run."""
        with progress.phase("fabric simulator, start-up tasks") as shown:
            self._drain(shown)

    def _stream_color(self, color: int, kinds: tuple[str, ...], call: str) -> None:
        given = self.pes[0].streams
        if given.get(color) not in kinds:
            named = ", ".join(f"{n} = {c}" for c, n in sorted(given.items())) or "none"
            raise FabricError(
                f"{call}(streaming=True) on color {color}: the layout gave <memcpy/get_params> "
                f"no {' or '.join(kinds)} of that color (its streaming colors: {named})"
            )

    @_collector_paused
    def h2d_stream(
        self, color: int, data: np.ndarray, x0: int, y0: int, w: int, h: int, bits: int
    ) -> None:
        """Streaming ``memcpy_h2d``: each PE of the rectangle receives its ``l`` wavelets on
        ``color`` (host words: f32 as they are, other data as raw u32 bits), in row-major PE
        order; the command ends when every wavelet has entered its PE's input queue."""
        self._rect(x0, y0, w, h)
        self._stream_color(color, ("MEMCPYH2D_1", "MEMCPYH2D_2"), "memcpy_h2d")
        length = data.shape[2]
        words = data if bits == 32 and data.dtype == np.float32 else data.view(np.uint32)
        stream = HostStream(color)
        t0 = self.time
        per = max(machine.HOST_CYCLES_PER_WAVELET // max(self.channels, 1), 1)
        steps = np.arange(length, dtype=np.int64) * per
        for j in range(h):
            for i in range(w):
                pe = self.pe(x0 + i, y0 + j)
                first = t0 + ((j * w + i) * length) * per + pe.x + pe.y + 1
                pe.deliver(color, first + steps, words[j, i].copy(), stream)
        with progress.phase(f"fabric simulator, streaming memcpy_h2d on color {color}") as shown:
            self._drain(shown)
        if stream.stalls or self.stuck:
            lines = [
                f"deadlock in streaming memcpy_h2d on color {color} at simulated cycle "
                f"{self.time}: the command cannot complete"
            ]
            lines += [
                f"  {len(st.times)} wavelet(s) wait for room in PE {st.pe.coords}'s input queue "
                f"({st.pe.queued(color)} queued, {machine.INPUT_QUEUE_WAVELETS} fit, nothing "
                "reads them)"
                for st in stream.stalls[:MAX_REPORTED_PES]
            ]
            lines += self._waiting_lines()
            raise FabricError("\n".join(lines))
        self.time = max(self.time, t0 + self.memcpy_cycles(w * h * length))

    @_collector_paused
    def d2h_stream(
        self, color: int, x0: int, y0: int, w: int, h: int, length: int, bits: int
    ) -> np.ndarray:
        """Streaming ``memcpy_d2h``: the first ``length`` wavelets each PE of the rectangle sent
        on ``color``, as (h, w, l) u32 words (16-bit data zero-extended with ``bits`` 16)."""
        self._rect(x0, y0, w, h)
        self._stream_color(color, ("MEMCPYD2H_1",), "memcpy_d2h")
        t0 = self.time
        with progress.phase(f"fabric simulator, streaming memcpy_d2h on color {color}") as shown:
            self._drain(shown)
        out = np.zeros((h, w, length), dtype=np.uint32)
        last = self.time
        for j in range(h):
            for i in range(w):
                pe = self.pe(x0 + i, y0 + j)
                have = sum(len(t) for t, _ in pe.to_host)
                if have < length or self.stuck:
                    lines = [
                        f"deadlock in streaming memcpy_d2h on color {color} at simulated cycle "
                        f"{self.time}: it waits for {length} wavelet(s) from PE {pe.coords}, "
                        f"which sent {have}"
                    ]
                    raise FabricError("\n".join(lines + self._waiting_lines()))
                times = np.concatenate([t for t, _ in pe.to_host])
                values = np.concatenate([np.asarray(v) for _, v in pe.to_host])
                pe.to_host = [(times[length:], values[length:])] if have > length else []
                out[j, i] = words_of(values[:length], bits)
                last = max(last, int(times[length - 1]) + 1 if length else last)
        self.time = max(self.time, last, t0 + self.memcpy_cycles(w * h * length))
        return out

    def _waiting_lines(self) -> list[str]:
        lines = []
        waiting = [pe for pe in self.pes if pe.pending or pe.sends or pe.waiting()]
        for pe in waiting[:MAX_REPORTED_PES]:
            lines.append(f"  PE {pe.coords}: " + _joined(pe.waiting()))
        if len(waiting) > MAX_REPORTED_PES:
            lines.append(f"  ... and {len(waiting) - MAX_REPORTED_PES} more PE(s)")
        lines.extend(f"  {s}" for s in self.stuck[:MAX_REPORTED_PES])
        return lines

    @staticmethod
    def _width_matches(symbol: str, array: np.ndarray, bits: int) -> None:
        """memcpy moves the elements of the data type it is given: a 16-bit transfer of a 32-bit
        array (or the reverse) is the host program's error, as on the machine."""
        if array.dtype.itemsize * 8 != bits:
            raise FabricError(
                f"a {bits}-bit memcpy of '{symbol}', whose elements are "
                f"{array.dtype.itemsize * 8}-bit: use MEMCPY_{array.dtype.itemsize * 8}BIT"
            )

    def memcpy_cycles(self, wavelets: int) -> int:
        """Modelled host transfer time: I/O channel bandwidth plus crossing the rectangle."""
        return (
            machine.HOST_CYCLES_PER_WAVELET * wavelets // max(self.channels, 1)
            + self.width
            + self.height
        )

    # --------------------------------------------------------------------- report
    def stats(self) -> dict:
        busy = np.array([pe.busy for pe in self.pes]).reshape(self.height, self.width)
        memory = np.array([pe.memory for pe in self.pes]).reshape(self.height, self.width)
        return {
            "grid": [self.width, self.height],
            "arch": self.arch.name,
            "simulated_kernel_cycles": int(self.kernel_cycles),
            "simulated_total_cycles": int(self.time),
            "launches": [{"function": n, "simulated_cycles": int(c)} for n, c in self.launches],
            "busy_cycles_per_pe": busy.tolist(),
            "memory_bytes_per_pe": memory.tolist(),
            "max_memory_bytes": int(memory.max()),
            "max_busy_cycles": int(busy.max()),
        }
