"""Module-scope setup of PE programs, evaluated once per distinct set of the values it reads.

Evaluating a PE program's module scope (params, globals, DSDs, task bindings) for each of tens
of thousands of PEs dominated large simulations, yet most PEs of a grid differ only in params
their setup never reads (block starts, memcpy columns) or in a few classes (edges, parities).
The first PE evaluated with given param values is traced: which params its evaluation read, in
order, and which builtins it called. A later PE whose params have the same values for those
names (and the same set of given params) would follow the same path to the same state, so it
gets a copy of that state instead: its own arrays, pointers and DSDs over them, its own library
modules (rebuilt for it, with their checks), shared functions and immutable values. A setup that
calls a builtin whose effect is not in that state (activating a task, a DSD operation), reads a
member of a PE-bound module (its coordinates) or holds a value the copy does not know is
evaluated per PE, as before.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

from kernelc.runtime.fabric import libraries as lib
from kernelc.runtime.fabric.evaluate import FnValue, RangeValue, run_module
from kernelc.runtime.fabric.values import (
    Array,
    ArrayType,
    Color,
    CslType,
    Direction,
    DsdKind,
    FabDsd,
    FnType,
    MemDsd,
    Pointer,
    PtrType,
    Queue,
    Struct,
    TaskId,
    convert,
)

if TYPE_CHECKING:
    from kernelc.runtime.fabric.pe import PE

# builtins whose whole effect at module scope is in the copied state (or repeated by rebinding)
SETUP_BUILTINS = frozenset(
    {
        "import_module",
        "bind_local_task",
        "bind_data_task",
        "export_symbol",
        "set_local_color_config",
        "initialize_queue",
        "is_arch",
        "get_rectangle",
    }
)
# values shared between PEs as they are: immutable, or (functions) holding no PE state
SHARED = (
    int,
    float,
    bool,
    str,
    type(None),
    np.generic,
    Color,
    TaskId,
    Queue,
    Direction,
    CslType,
    ArrayType,
    PtrType,
    FnType,
    DsdKind,
    FabDsd,
    RangeValue,
    FnValue,
    lib.MathModule,
    lib.ControlModule,
)
PE_MODULES = (
    lib.MemcpyModule,
    lib.LayoutModule,
    lib.Collectives2D,
    lib.TimeModule,
    lib.RandomModule,
    lib.SimprintModule,
    lib.DebugModule,
)
COPIED = (*SHARED, Array, Pointer, MemDsd, *PE_MODULES)


class Unkeyable(Exception):
    """A param value with no exact hashable form: that PE is evaluated on its own."""


def frozen(value: object) -> object:
    """A hashable form of a param value, equal only for values that behave alike (same type,
    same bits: 0.0 and -0.0, 1 and 1.0 and True stay apart)."""
    kind = type(value)
    if kind is float:
        return (kind, struct.pack("<d", value))
    if kind in (int, bool, str, type(None)):
        return (kind, value)
    if isinstance(value, np.generic):
        return (kind, value.tobytes())
    if kind in (Color, TaskId, Queue, Direction, CslType):
        return (kind, value)
    if kind is Struct:
        fields = tuple((k, frozen(v)) for k, v in value.fields.items())
        return (kind, fields, tuple(frozen(v) for v in value.items))
    raise Unkeyable(kind.__name__)


class Tracer:
    """What one traced module-scope evaluation did: params read, builtins, modules made."""

    def __init__(self) -> None:
        self.read: dict[str, None] = {}
        self.calls: set[str] = set()
        self.modules: list[object] = []
        self.member_read = False


class TracingGlobals(dict):
    """A PE's globals while its setup is traced: notes each param it is asked about."""

    def __init__(self, params: frozenset[str], tracer: Tracer) -> None:
        super().__init__()
        self.params, self.tracer = params, tracer

    def __contains__(self, name: object) -> bool:
        if name in self.params:
            self.tracer.read[name] = None  # type: ignore[index]
        return super().__contains__(name)

    def __getitem__(self, name: str) -> object:
        if name in self.params:
            self.tracer.read[name] = None
        return super().__getitem__(name)

    def plain(self) -> dict[str, object]:
        """The globals as a plain dict, copied without counting as reads."""
        self.params = frozenset()
        return dict(self)


def _clonable(value: object) -> bool:
    if isinstance(value, COPIED):
        return True
    if isinstance(value, Struct):
        return all(_clonable(v) for v in (*value.fields.values(), *value.items))
    return False


class Prototype:
    """The state of the first PE set up with some param values, to copy to PEs alike. Copies
    are made while the simulator is built, before anything runs on the prototype."""

    def __init__(self, pe: PE, modules: list[object]) -> None:
        self.pe, self.modules = pe, modules
        # values copied per PE; the rest of the globals are shared by every copy
        self.copied = [(n, v) for n, v in pe.g.items() if not isinstance(v, SHARED)]
        self.exports = [(n, v, isinstance(v, SHARED)) for n, v in pe.exports.items()]

    def copy_to(self, pe: PE, given: dict[str, object]) -> None:
        """Give ``pe`` this state, with its own copies and its own param values."""
        src = self.pe
        memo: dict[object, object] = {}
        for module in self.modules:  # in creation order, as evaluation made them
            memo[module] = module.rebind(pe)
        g = dict(src.g)
        for n, v in self.copied:
            g[n] = _copy(v, memo)
        for n, value in given.items():  # its own values (the ones the setup read are equal)
            if n in src.gt:
                g[n] = convert(value, src.gt[n]) if not isinstance(value, np.ndarray) else value
        pe.g = g
        pe.gt, pe.data = src.gt, src.data  # written only by setup: shared
        pe.exports = {n: v if shared else _copy(v, memo) for n, v, shared in self.exports}
        pe.tasks = dict(src.tasks)
        pe.routes = dict(src.routes)
        pe.route_at = dict(src.route_at)
        pe.queue_color = dict(src.queue_color)
        pe.reserved.update(src.reserved)


def _copy(value: object, memo: dict[object, object]) -> object:
    kind = type(value)
    if kind is MemDsd:
        return MemDsd(_copy(value.array, memo), value.offset, value.shape, value.strides)
    if kind is Array:
        if value not in memo:
            memo[value] = Array(value.name, value.data.copy(), value.dims)
        return memo[value]
    if kind is Pointer:
        return Pointer(_copy(value.array, memo), value.offset, value.element)
    if isinstance(value, SHARED):
        return value
    if kind is Struct:
        return Struct(
            {k: _copy(v, memo) for k, v in value.fields.items()},
            tuple(_copy(v, memo) for v in value.items),
        )
    return memo[value]  # a PE-bound module: rebound before the globals are copied


class SetupCache:
    """Module-scope setup of one PE program file, shared by the PEs whose setups agree."""

    def __init__(self, actions: list[tuple[str, object]]) -> None:
        self.actions = actions
        self.params = tuple(p[0] for kind, p in actions if kind == "param")
        self.names = frozenset(self.params)
        # (given params, params read in order) -> their values -> the prototype
        self.seen: dict[tuple[frozenset[str], tuple[str, ...]], dict[tuple, Prototype]] = {}
        self.enabled = True

    def set_up(self, pe: PE, given: dict[str, object]) -> None:
        """Evaluate module scope on ``pe``, or copy the state of a PE whose setup agrees."""
        if not self.enabled:
            run_module(self.actions, pe, given)
            return
        present = frozenset(n for n in self.params if n in given)
        try:
            for (have, read), protos in self.seen.items():
                if have == present:
                    proto = protos.get(_read_values(given, read))
                    if proto is not None:
                        proto.copy_to(pe, given)
                        return
        except Unkeyable:
            run_module(self.actions, pe, given)
            return
        tracer = Tracer()
        traced = TracingGlobals(self.names, tracer)
        pe.g, pe.tracer = traced, tracer
        try:
            run_module(self.actions, pe, given)
        finally:
            pe.g, pe.tracer = traced.plain(), None
        read = tuple(tracer.read)
        try:
            key = _read_values(given, read)
        except Unkeyable:
            return
        if (
            tracer.calls <= SETUP_BUILTINS
            and not tracer.member_read
            and all(_clonable(v) for v in (*pe.g.values(), *pe.exports.values()))
        ):
            self.seen.setdefault((present, read), {})[key] = Prototype(pe, tracer.modules)
        else:
            self.enabled = False


def _read_values(given: dict[str, object], read: tuple[str, ...]) -> tuple:
    """The values of the given params a setup read, in the order it read them: what a copy's
    setup must agree on (raises Unkeyable for a value that cannot be a key)."""
    return tuple(frozen(given[n]) for n in read if n in given)
