"""The PE-grid simulator: runs a parsed CSL program on a grid of simulated PEs.

This module holds the grid: its event queue, the wavelets it forwards along the routes, memcpy
and launches from the host, and deadlock reports. The layout is evaluated in layout.py, each PE
is a pe.py PE with a dsd.py DSD engine, and hub.py carries out the collectives.

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
from collections.abc import Callable

import numpy as np

from kernelc import progress
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.runtime.fabric import libraries as lib
from kernelc.runtime.fabric import lockstep
from kernelc.runtime.fabric.evaluate import Compiler, FnValue
from kernelc.runtime.fabric.hub import CollectiveHub
from kernelc.runtime.fabric.layout import evaluate_layout
from kernelc.runtime.fabric.operations import DONE, LAUNCH, RUN, HostStream, Transfer
from kernelc.runtime.fabric.pe import PE
from kernelc.runtime.fabric.routes import duplicate_config
from kernelc.runtime.fabric.setup import SetupCache
from kernelc.runtime.fabric.values import OPPOSITE, STEP, FabricError, Pointer, TaskId
from kernelc.runtime.fabric.wavelets import words_of

EVENTS_PER_UPDATE = 512  # events run between two progress updates (each reads the clock)
MAX_REPORTED_PES = 12


def _joined(reasons: list[str]) -> str:
    """A PE's reasons for waiting, a repeated one (a loop's stalled writes) given once."""
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    return "; ".join(r if n == 1 else f"{r} ({n} times)" for r, n in counts.items())


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
