"""The DSD engine of a simulated PE and its input queues: DSD operations (the float ones of
values.FLOAT_DSD_OPS plus conversions and 16-bit integer ones) run on memory at once, or wait
until their fabric wavelets, FIFO elements and destination room are there; asynchronous ones
hold a microthread and activate or unblock a task when they end. Arriving trains enter the
finite input queues, and what does not fit is held back, stalling its sender, until a reader
makes room."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from kernelc.csl import machine
from kernelc.runtime.fabric.operations import DONE, RUN, Microthread, PendingOp, Stall, Transfer
from kernelc.runtime.fabric.values import FLOAT_DSD_OPS, FabDsd, FabricError, Fifo, MemDsd, Struct
from kernelc.runtime.fabric.wavelets import as_bits


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


class DsdEngine:
    """A PE's DSD engine and input queues, kept apart from its task scheduling: ``PE`` (pe.py)
    derives from it and holds the state both use (its clock, pending operations, queues, bound
    tasks); an operation's completion runs the PE's @activate or @unblock builtin."""

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
