"""A PE's operations in flight, between the events that start and end them: the microthread an
asynchronous DSD operation holds, fabric writes whose wavelets full input queues hold back (and
the host's streaming writes, held back alike), control wavelets queued behind data, and DSD
operations waiting for their fabric or FIFO operands. Also the kinds of event the simulator
schedules for a PE."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kernelc.csl import machine
from kernelc.diagnostics import Span
from kernelc.runtime.fabric.values import FabDsd, Fifo

if TYPE_CHECKING:
    from kernelc.runtime.fabric.pe import PE

RUN, DONE, LAUNCH = 0, 1, 2  # a PE's task choice, an operation's completion, a launch


class Microthread:
    """The asynchronous operation a microthread runs: ``end`` is None until it is known."""

    __slots__ = ("at", "end", "op", "why")

    def __init__(self, op: str, at: Span | None, why: str) -> None:
        self.op, self.at = op, at
        self.why = why  # how the operation came to this microthread (its queue, or .ut_id)
        self.end: int | None = None


class Transfer:
    """The wavelets one fabric-writing op sends, and the parts of them that receiving PEs'
    full input queues hold back: the op completes when the last part is taken."""

    __slots__ = ("done", "last", "op", "pe", "stalls")

    def __init__(self, pe: PE, op: PendingOp) -> None:
        self.pe, self.op = pe, op
        self.stalls: list[Stall] = []  # held back, in the order they stalled
        self.last = 0  # when the last released wavelet entered its receiver's queue
        self.done: Callable[[int], None] | None = None  # the op's completion, once known

    def released(self, stall: Stall) -> None:
        self.stalls.remove(stall)
        if not self.stalls:
            if self in self.pe.sends:
                self.pe.sends.remove(self)
            if self.done is not None:
                self.done(self.last)

    def describe(self) -> str:
        parts = []
        for st in self.stalls:
            parts.append(
                f"{len(st.times)} wavelet(s) on color {st.color} wait for room in PE "
                f"{st.pe.coords}'s input queue ({st.pe.queued(st.color)} queued, "
                f"{machine.INPUT_QUEUE_WAVELETS} fit, nothing reads them)"
            )
        where = f" ({self.op.at})" if self.op.at is not None else ""
        return f"@{self.op.name}{where} is stalled: " + "; ".join(parts)


class HostStream:
    """The wavelets of one streaming ``memcpy_h2d``: the command completes when every PE's
    input queue has taken its share (the host, like a sending PE, is held back by full
    queues; a stream nothing reads stalls the command stream)."""

    __slots__ = ("color", "last", "stalls")

    def __init__(self, color: int) -> None:
        self.color = color
        self.stalls: list[Stall] = []
        self.last = 0

    def released(self, stall: Stall) -> None:
        self.stalls.remove(stall)


class Stall:
    """Wavelets of one train that a receiving PE's full input queue holds back."""

    __slots__ = ("color", "pe", "times", "transfer", "values")

    def __init__(self, pe: PE, color: int, times, values, transfer) -> None:
        self.pe, self.color, self.times, self.values = pe, color, times, values
        self.transfer = transfer


class ControlWavelet:
    """A control wavelet waiting in a data task's queue, behind the data sent before it."""

    __slots__ = ("data", "entry")

    def __init__(self, entry: int, data: int) -> None:
        self.entry, self.data = entry, data


class PendingOp:
    """A DSD operation; fabric-reading ones wait here until their wavelets have arrived."""

    def __init__(self, pe, name, spec, dst, srcs, n, opts, issue, inputs: list[FabDsd], fifos):
        self.pe, self.name, self.spec = pe, name, spec
        self.dst, self.srcs, self.n, self.opts, self.issue = dst, srcs, n, opts, issue
        self.inputs = inputs  # the fabric sources
        self.thread: Microthread | None = None
        self.at = pe.at  # the call that issued it, for reports
        # FIFO operands: the op runs element by element as its sources and destination allow
        self.fifos = fifos
        self.done = 0  # elements done so far (ops with a FIFO operand)
        if fifos:
            self.channels = [s.color.id for s in inputs] + [f for f in srcs if type(f) is Fifo]
            self.cursor = issue + machine.DSD_SETUP_CYCLES  # when its next element can go
            self.first: int | None = None  # the first element's arrival
            self.transfer: Transfer | None = None

    def describe(self) -> str:
        parts = []
        for s in self.inputs:
            have = self.pe.available(s.color.id)
            parts.append(f"{have} of {self.n - self.done} wavelets on color {s.color.id}")
        for f in self.srcs:
            if type(f) is Fifo:
                parts.append(f"its source FIFO over '{f.buffer.name}' (empty)")
        if type(self.dst) is Fifo and not self.dst.room:
            parts.append(f"room in its destination FIFO over '{self.dst.buffer.name}' (full)")
        done = f" ({self.done} of {self.n} elements done)" if self.fifos else ""
        return f"@{self.name}{done} waits for " + ", ".join(parts)
