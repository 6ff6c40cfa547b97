"""One simulated PE: the context its program runs in. It answers the program's builtins (task
bindings, routes, @map, library imports), keeps its memory within the PE's, and schedules its
tasks: the compute engine runs one at a time, choosing among activated, unblocked tasks and
data tasks with wavelets queued. The DSD engine and input queues it derives from are in dsd.py."""

from __future__ import annotations

import posixpath
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from kernelc.csl import machine
from kernelc.diagnostics import Span
from kernelc.runtime.fabric import libraries as lib
from kernelc.runtime.fabric import lockstep
from kernelc.runtime.fabric.dsd import OPS, DsdEngine
from kernelc.runtime.fabric.evaluate import FnValue, ModuleScope, UserModule, run_module
from kernelc.runtime.fabric.operations import (
    LAUNCH,
    RUN,
    ControlWavelet,
    Microthread,
    PendingOp,
    Stall,
    Transfer,
)
from kernelc.runtime.fabric.routes import Route, check_color, duplicate_config, read_route
from kernelc.runtime.fabric.setup import Tracer
from kernelc.runtime.fabric.values import (
    Array,
    Color,
    FabricError,
    Fifo,
    MemDsd,
    Pointer,
    Queue,
    Struct,
    TaskId,
)
from kernelc.runtime.fabric.wavelets import wavelet_args, words_of

if TYPE_CHECKING:
    from kernelc.runtime.fabric.fabric import Simulator

_Branching = ValueError  # NumPy's "truth value of an array is ambiguous": a branch on an array


class PE(DsdEngine):
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
