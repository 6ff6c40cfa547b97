"""``groq.api`` as the emulator answers it: the subset of the Groq API that kernelc emits.

Building a program records it: every tensor is symbolic (shape, dtype, layout) and every call is a
node of the current program, checked as the Groq compiler checks it (shapes, dtypes a unit takes,
layouts, streams that leave their scope, tensors of another program) and located at the emitted
line. ``compile`` places the memory tensors (``memory.allocate``), schedules the nodes
(``schedule.schedule``) and writes the IOP that ``groq.runner.tsp`` executes (``iop.py``).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import chip
from .errors import caller, fail
from .memory import Layout, allocate, check_fits, parse_layout


@dataclass(frozen=True)
class DataType:
    name: str

    @property
    def size(self) -> int:
        return chip.DTYPE_BYTES[self.name]

    def to_nptype(self) -> np.dtype:
        return np.dtype(self.name)

    def __repr__(self) -> str:
        return f"g.{self.name}"


int8, uint8 = DataType("int8"), DataType("uint8")
int16, uint16 = DataType("int16"), DataType("uint16")
int32, uint32 = DataType("int32"), DataType("uint32")
float16, float32 = DataType("float16"), DataType("float32")
_BY_NUMPY = {
    np.dtype(t.name): t for t in (int8, uint8, int16, uint16, int32, uint32, float16, float32)
}


class _Groups:
    """Stream groups ``g.SG1[i]`` .. ``g.SG16``: accepted and recorded, one per tensor."""

    def __init__(self, width: int) -> None:
        self.width = width

    def __getitem__(self, index: int) -> str:
        count = 32 // self.width
        if not 0 <= index < count:
            raise fail(f"stream group SG{self.width}[{index}]: there are {count}")
        return f"SG{self.width}_{index}"


SG1, SG2, SG4, SG8, SG16 = (_Groups(w) for w in (1, 2, 4, 8, 16))


# ------------------------------------------------------------------------------ programs


@dataclass
class Node:
    op: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    attrs: dict[str, Any]
    where: str
    scope: Scope
    unit: str  # "mem", "vxm", "sxm", "mxm:<planes>" or "view" (addressing only)
    vectors: int  # cycles the unit streams for this node
    latency: int


@dataclass
class Scope:
    name: str
    parent: Scope | None
    time: int | None
    predecessors: tuple[Scope, ...]
    buffered: bool
    where: str
    start: int = 0
    end: int = 0


@dataclass
class Program:
    name: str
    nodes: list[Node] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # tensor name -> where declared
    scopes: list[Scope] = field(default_factory=list)
    stack: list[Scope] = field(default_factory=list)

    def __post_init__(self) -> None:
        root = Scope("program", None, 0, (), True, "")
        self.scopes.append(root)
        self.stack.append(root)

    @property
    def scope(self) -> Scope:
        return self.stack[-1]


_CONTEXT: list[Program] = [Program("program")]


def _program() -> Program:
    return _CONTEXT[-1]


def reset_program_context() -> None:
    _CONTEXT[:] = [Program("program")]


@contextlib.contextmanager
def ProgramContext(name: str = "program") -> Iterator[Program]:  # noqa: N802 (the API's name)
    _CONTEXT.append(Program(name))
    try:
        yield _CONTEXT[-1]
    finally:
        _CONTEXT.pop()


# ------------------------------------------------------------------------------- tensors


class Tensor:
    def __init__(self, shape: Sequence[int], dtype: DataType, where: str) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = dtype
        self.program = _program()
        self.scope = self.program.scope
        self.where = where
        self.id = len(self.program.tensors)
        self.program.tensors.append(self)

    @property
    def vectors(self) -> int:
        """320-lane vectors the tensor streams: rows times inner splits."""
        rows = math.prod(self.shape[:-1]) if len(self.shape) > 1 else 1
        return rows * math.ceil(self.shape[-1] / chip.LANES)

    def _use(self, where: str) -> None:
        if self.program is not _program():
            raise fail(
                f"{self.describe()} belongs to another program; share it across programs "
                "with g.shared_memory_tensor",
                where,
            )


class MemoryTensor(Tensor):
    def __init__(
        self,
        shape: Sequence[int],
        dtype: DataType,
        name: str,
        layout: Layout | None,
        kind: str,
        where: str,
        data: np.ndarray | None = None,
    ) -> None:
        super().__init__(shape, dtype, where)
        self.name = name
        self.layout = layout
        self.kind = kind  # "input", "constant", "write" or "view"
        self.data = data
        self.is_output = False
        if kind != "view":
            _name(name, where)

    def describe(self) -> str:
        return f"tensor '{self.name}'"

    def is_memory_tensor(self) -> bool:
        return True

    def read(self, streams: str | _Groups | None = None, time: int | None = None) -> StreamTensor:
        where = caller()
        self._use(where)
        out = StreamTensor(self.shape, self.dtype, where)
        record("read", (self,), (out,), {}, where, "mem", self.vectors, chip.MEM_LATENCY)
        return out

    def set_program_output(self) -> None:
        if self.kind == "view":
            raise fail(f"{self.describe()} is a view; write it before making it an output")
        self.is_output = True


class StreamTensor(Tensor):
    def describe(self) -> str:
        return f"stream tensor of shape {self.shape} from {self.where}"

    def is_memory_tensor(self) -> bool:
        return False

    def write(
        self,
        name: str | None = None,
        layout: str | None = None,
        program_output: bool = False,
        storage_req: Any = None,
        streams: Any = None,
    ) -> MemoryTensor:
        where = caller()
        _stream_in_scope(self, where)
        if name is None:
            raise fail("name every written tensor (names are the runtime's keys)", where)
        if layout is None:
            raise fail(f"tensor '{name}': give the layout it is written in", where)
        lay = parse_layout(layout, where)
        check_fits(name, self.shape, self.dtype.name, lay, where)
        out = MemoryTensor(self.shape, self.dtype, name, lay, "write", where)
        record("write", (self,), (out,), {}, where, "mem", self.vectors, chip.MEM_WRITE_LATENCY)
        if program_output:
            out.is_output = True
        return out


def _name(name: str, where: str) -> None:
    program = _program()
    if not isinstance(name, str) or not name.isidentifier():
        raise fail(f"tensor name {name!r} is not an identifier", where)
    if name in program.names:
        raise fail(f"tensor name '{name}' is already used at {program.names[name]}", where)
    program.names[name] = where


def _stream_in_scope(t: Tensor, where: str) -> None:
    if isinstance(t, StreamTensor) and t.scope is not _program().scope:
        raise fail(
            f"{t.describe()} is used outside the scope that produced it "
            f"('{t.scope.name}'); streams only exist while flowing: write it to memory first",
            where,
        )


def record(op, inputs, outputs, attrs, where, unit, vectors, latency) -> Node:
    program = _program()
    for t in inputs:
        t._use(where)
        _stream_in_scope(t, where)
    node = Node(
        op, tuple(inputs), tuple(outputs), attrs, where, program.scope, unit, vectors, latency
    )
    program.nodes.append(node)
    return node


def _dtype(dtype: Any, where: str) -> DataType:
    if isinstance(dtype, DataType):
        return dtype
    raise fail(f"{dtype!r} is no Groq API dtype (g.float32, g.float16, g.int8, ...)", where)


def input_tensor(shape, dtype, name=None, layout=None, format=None) -> MemoryTensor:  # noqa: A002
    where = caller()
    dt = _dtype(dtype, where)
    if name is None:
        raise fail("name every input tensor (the name is the runner's keyword)", where)
    if layout is None:
        raise fail(f"input tensor '{name}': give its layout", where)
    lay = parse_layout(layout, where)
    check_fits(name, tuple(shape), dt.name, lay, where)
    return MemoryTensor(shape, dt, name, lay, "input", where)


def from_data(data: np.ndarray, name: str | None = None, layout: str | None = None) -> MemoryTensor:
    where = caller()
    array = np.asarray(data)
    if array.dtype not in _BY_NUMPY:
        raise fail(f"constant '{name}': NumPy dtype {array.dtype} is no Groq API dtype", where)
    if name is None or layout is None:
        raise fail("g.from_data needs name= and layout=", where)
    dt = _BY_NUMPY[array.dtype]
    lay = parse_layout(layout, where)
    check_fits(name, array.shape, dt.name, lay, where)
    return MemoryTensor(array.shape, dt, name, lay, "constant", where, np.array(array))


def zeros(shape, dtype, layout=None, name=None) -> MemoryTensor:
    where = caller()
    dt = _dtype(dtype, where)
    if name is None or layout is None:
        raise fail("g.zeros needs name= and layout=", where)
    lay = parse_layout(layout, where)
    check_fits(name, tuple(shape), dt.name, lay, where)
    return MemoryTensor(shape, dt, name, lay, "constant", where, np.zeros(shape, dt.to_nptype()))


# ----------------------------------------------------------------------------------- VXM


def _vxm(op: str, args: tuple[Tensor, ...], where: str, out_dtype: DataType | None = None, **attrs):
    for t in args:
        if not isinstance(t, Tensor):
            raise fail(f"g.{op} takes tensors, got {type(t).__name__}", where)
        if t.dtype.name not in chip.VXM_DTYPES:
            raise fail(f"g.{op}: the VXM does not take {t.dtype.name} ({t.describe()})", where)
    first = args[0]
    for t in args[1:]:
        if t.shape != first.shape:
            raise fail(f"g.{op}: shapes {first.shape} and {t.shape} differ", where)
        if t.dtype != first.dtype:
            raise fail(f"g.{op}: dtypes {first.dtype.name} and {t.dtype.name} differ", where)
    out = StreamTensor(first.shape, out_dtype or first.dtype, where)
    record(op, args, (out,), attrs, where, "vxm", first.vectors, chip.VXM_LATENCY)
    return out


def add(a: Tensor, b: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    return _vxm("add", (a, b), caller())


def sub(a: Tensor, b: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    return _vxm("sub", (a, b), caller())


def mul(a: Tensor, b: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    return _vxm("mul", (a, b), caller())


def neg(a: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    return _vxm("neg", (a,), caller())


def rsqrt(a: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    where = caller()
    if a.dtype.name not in ("float32", "float16"):
        raise fail(f"g.rsqrt takes floating-point tensors, not {a.dtype.name}", where)
    return _vxm("rsqrt", (a,), where)


def cast(a: Tensor, dtype: DataType, fp16_inf: bool = True, alus=None, time=None) -> StreamTensor:
    where = caller()
    return _vxm("cast", (a,), where, _dtype(dtype, where))


def _floating(op: str, a: Tensor, where: str) -> None:
    if a.dtype.name not in ("float32", "float16"):
        raise fail(f"g.{op} takes floating-point tensors, not {a.dtype.name}", where)


def exp2(a: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    where = caller()
    _floating("exp2", a, where)
    return _vxm("exp2", (a,), where)


def maximum(a: Tensor, b: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    """The larger operand per lane; a NaN operand gives the other one (IEEE maxNum, assumed)."""
    return _vxm("maximum", (a, b), caller())


def minimum(a: Tensor, b: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    """The smaller operand per lane; a NaN operand gives the other one (IEEE minNum, assumed)."""
    return _vxm("minimum", (a, b), caller())


def bitwise_and(a: Tensor, b: Tensor, alus=None, time=None, output_streams=None) -> StreamTensor:
    where = caller()
    for t in (a, b):
        if t.dtype.name.startswith("float"):
            raise fail(f"g.bitwise_and takes integer tensors, not {t.dtype.name}", where)
    return _vxm("bitwise_and", (a, b), where)


def right_shift(a: Tensor, n: int, alus=None, time=None, output_streams=None) -> StreamTensor:
    """An arithmetic right shift of signed integers by ``n`` bits (an immediate, assumed)."""
    where = caller()
    if a.dtype.name.startswith("float") or not isinstance(n, int) or not 0 <= n < 8 * a.dtype.size:
        raise fail(f"g.right_shift of {a.dtype.name} by {n!r}", where)
    return _vxm("right_shift", (a,), where, None, n=n)


def reinterpret(a: Tensor, dtype: DataType) -> Tensor:
    """The same bytes read as another dtype of the same width: addressing only, no ALU."""
    where = caller()
    dt = _dtype(dtype, where)
    if not isinstance(a, Tensor):
        raise fail("g.reinterpret takes a tensor", where)
    if dt.size != a.dtype.size:
        raise fail(
            f"g.reinterpret from {a.dtype.name} to {dt.name}: element sizes differ "
            f"({a.dtype.size} and {dt.size} bytes)",
            where,
        )
    out = StreamTensor(a.shape, dt, where)
    record("reinterpret", (a,), (out,), {}, where, "view", 0, 0)
    return out


# ----------------------------------------------------------------------------------- SXM


def shift(a: Tensor, n: int, permutor_id: int = 0, shift_src=None, output_streams=None, time=None):
    """Lanes move up by ``n`` (down for negative ``n``); vacated lanes are 0."""
    where = caller()
    if not isinstance(a, Tensor):
        raise fail("g.shift takes a tensor", where)
    if a.shape[-1] > chip.LANES:
        raise fail(
            f"g.shift of {a.describe()}: the SXM shifts lanes within one {chip.LANES}-lane "
            f"vector and a row of {a.shape[-1]} lanes is {math.ceil(a.shape[-1] / chip.LANES)} "
            "inner splits: shift each (g.split_inner_splits) and move the lanes that cross a "
            "split's edge from its neighbour",
            where,
        )
    if not isinstance(n, int) or abs(n) >= a.shape[-1]:
        raise fail(f"g.shift by {n!r} on {a.shape[-1]} lanes", where)
    if permutor_id not in range(chip.SXM_PERMUTORS):
        raise fail(f"g.shift: permutor {permutor_id} does not exist (0..1)", where)
    out = StreamTensor(a.shape, a.dtype, where)
    record("shift", (a,), (out,), {"n": n}, where, "sxm", a.vectors, chip.SXM_LATENCY)
    return out


def broadcast_lane_0(
    a: Tensor,
    permutor_req: int = 0,
    old_bitmap=None,
    mask_bitmap=None,
    input_streams=None,
    output_streams=None,
    time=None,
) -> StreamTensor:
    """Lane 0 of every vector copied to all its lanes (the SXM's lane-0 broadcast)."""
    where = caller()
    if not isinstance(a, Tensor):
        raise fail("g.broadcast_lane_0 takes a tensor", where)
    if permutor_req not in range(chip.SXM_PERMUTORS):
        raise fail(f"g.broadcast_lane_0: permutor {permutor_req} does not exist (0..1)", where)
    out = StreamTensor(a.shape, a.dtype, where)
    record("broadcast_lane_0", (a,), (out,), {}, where, "sxm", a.vectors, chip.SXM_LATENCY)
    return out


# --------------------------------------------------------------------------- shape views


def split_vectors(t: Tensor, sizes: Sequence[int]) -> list[Tensor]:
    where = caller()
    if len(t.shape) != 2:
        raise fail(f"g.split_vectors takes a rank-2 tensor, not shape {t.shape}", where)
    sizes = [int(s) for s in sizes]
    if sum(sizes) != t.shape[0] or min(sizes) < 1:
        raise fail(f"g.split_vectors: sizes {sizes} do not split {t.shape[0]} rows", where)
    outs: list[Tensor] = []
    start = 0
    for size in sizes:
        shape = (size, t.shape[1])
        if isinstance(t, MemoryTensor):
            piece: Tensor = MemoryTensor(
                shape, t.dtype, f"{t.name}[{start}:{start + size}]", None, "view", where
            )
        else:
            piece = StreamTensor(shape, t.dtype, where)
        record("rows", (t,), (piece,), {"start": start}, where, "view", 0, 0)
        outs.append(piece)
        start += size
    return outs


def split(t: Tensor, dim: int, splits: Sequence[int] | None = None, num_splits=None) -> list:
    """Pieces of a tensor along ``dim`` (views of a memory tensor, streams of a stream)."""
    where = caller()
    if not isinstance(t, Tensor) or not 0 <= dim < len(t.shape):
        raise fail(f"g.split along dimension {dim!r} of {getattr(t, 'shape', t)!r}", where)
    if splits is None:
        if not num_splits or t.shape[dim] % num_splits:
            raise fail(f"g.split: {num_splits!r} equal pieces of {t.shape[dim]}", where)
        splits = [t.shape[dim] // num_splits] * num_splits
    sizes = [int(n) for n in splits]
    if sum(sizes) != t.shape[dim] or min(sizes) < 1:
        raise fail(f"g.split: sizes {sizes} do not split {t.shape[dim]}", where)
    outs: list[Tensor] = []
    start = 0
    for size in sizes:
        shape = tuple(size if k == dim else n for k, n in enumerate(t.shape))
        if isinstance(t, MemoryTensor):
            piece: Tensor = MemoryTensor(shape, t.dtype, f"{t.name}.split", None, "view", where)
        else:
            piece = StreamTensor(shape, t.dtype, where)
        record("split", (t,), (piece,), {"dim": dim, "start": start}, where, "view", 0, 0)
        outs.append(piece)
        start += size
    return outs


def split_inner_splits(t: Tensor) -> list[Tensor]:
    """A tensor's inner splits: one full 320-lane vector per row each, the last one's lanes
    past the tensor's inner dimension zero."""
    where = caller()
    if not isinstance(t, Tensor) or len(t.shape) != 2:
        raise fail(
            f"g.split_inner_splits takes a rank-2 tensor, not {getattr(t, 'shape', t)!r}", where
        )
    outs: list[Tensor] = []
    for k in range(math.ceil(t.shape[1] / chip.LANES)):
        shape = (t.shape[0], chip.LANES)
        if isinstance(t, MemoryTensor):
            piece: Tensor = MemoryTensor(shape, t.dtype, f"{t.name}.inner{k}", None, "view", where)
        else:
            piece = StreamTensor(shape, t.dtype, where)
        record("inner_split", (t,), (piece,), {"k": k}, where, "view", 0, 0)
        outs.append(piece)
    return outs


def concat_inner_splits(parts: Sequence[Tensor]) -> Tensor:
    """Inner splits side by side: a (rows, 320 x splits) tensor."""
    where = caller()
    parts = list(parts)
    if not parts or any(p.shape != parts[0].shape or p.shape[-1] != chip.LANES for p in parts):
        raise fail("g.concat_inner_splits takes 320-lane tensors of one shape", where)
    if any(p.dtype != parts[0].dtype for p in parts):
        raise fail("g.concat_inner_splits: the pieces' dtypes differ", where)
    if len({isinstance(p, MemoryTensor) for p in parts}) != 1:
        raise fail("g.concat_inner_splits mixes memory and stream tensors", where)
    shape = (parts[0].shape[0], chip.LANES * len(parts))
    if isinstance(parts[0], MemoryTensor):
        out: Tensor = MemoryTensor(shape, parts[0].dtype, "inner", None, "view", where)
    else:
        out = StreamTensor(shape, parts[0].dtype, where)
    record("inner_concat", tuple(parts), (out,), {}, where, "view", 0, 0)
    return out


def concat_vectors(parts: Sequence[Tensor], shape: Sequence[int]) -> Tensor:
    where = caller()
    parts = list(parts)
    shape = tuple(int(n) for n in shape)
    if not parts:
        raise fail("g.concat_vectors of nothing", where)
    kinds = {isinstance(p, MemoryTensor) for p in parts}
    if len(kinds) != 1:
        raise fail("g.concat_vectors mixes memory and stream tensors", where)
    for p in parts:
        if len(p.shape) != 2 or p.shape[1] != shape[1]:
            raise fail(f"g.concat_vectors: a piece of shape {p.shape} in a {shape} tensor", where)
        if p.dtype != parts[0].dtype:
            raise fail(f"g.concat_vectors: dtypes {parts[0].dtype.name} and {p.dtype.name}", where)
    rows = sum(p.shape[0] for p in parts)
    if rows != shape[0]:
        raise fail(
            f"g.concat_vectors: the pieces have {rows} rows, not {shape[0]}",
            where,
        )
    if isinstance(parts[0], MemoryTensor):
        out: Tensor = MemoryTensor(shape, parts[0].dtype, "concat", None, "view", where)
    else:
        out = StreamTensor(shape, parts[0].dtype, where)
    record("concat", tuple(parts), (out,), {}, where, "view", 0, 0)
    return out


# --------------------------------------------------------------------------------- gathers


def mem_gather(table: MemoryTensor, index: Tensor, output_streams=None, time=None) -> StreamTensor:
    """Per superlane, the row of ``table`` addressed by the first lane of that superlane in
    ``index``: each of the 20 superlanes of an output vector reads its own 16 lanes of its own
    row (one gather serves 20 independently addressed lookups)."""
    where = caller()
    if not isinstance(table, MemoryTensor):
        raise fail("g.mem_gather reads a memory tensor", where)
    if len(table.shape) != 2 or table.shape[1] != chip.LANES:
        raise fail(f"g.mem_gather: {table.describe()} is no table of {chip.LANES}-lane rows", where)
    if not isinstance(index, Tensor) or index.dtype.name not in ("int32", "uint16", "int16"):
        raise fail("g.mem_gather: the addresses are an int32, int16 or uint16 tensor", where)
    if len(index.shape) != 2 or index.shape[1] != chip.LANES:
        raise fail(f"g.mem_gather: addresses of shape {index.shape}, not (rows, 320)", where)
    out = StreamTensor(index.shape, table.dtype, where)
    record("mem_gather", (table, index), (out,), {}, where, "mem", index.vectors, chip.MEM_LATENCY)
    return out


# ------------------------------------------------------------------ components and scopes


class ResourceScope:
    def __init__(
        self, name: str, is_buffered: bool = False, time: int | None = None, predecessors=None
    ):
        self.where = caller()
        program = _program()
        preds = tuple(p.scope if isinstance(p, ResourceScope) else p for p in (predecessors or ()))
        if time is None and not preds:
            raise fail(
                f"resource scope '{name}': time=None needs predecessors to place it", self.where
            )
        for p in preds:
            if not isinstance(p, Scope) or not p.buffered:
                raise fail(
                    f"resource scope '{name}': a predecessor is no buffered scope", self.where
                )
        self.scope = Scope(name, program.scope, time, preds, is_buffered, self.where)
        program.scopes.append(self.scope)

    @property
    def end_time(self) -> int:
        return self.scope.end

    def __enter__(self) -> ResourceScope:
        _program().stack.append(self.scope)
        return self

    def __exit__(self, *exc) -> None:
        _program().stack.pop()


class Component:
    """A user component: ``build(..., time=0)`` wires it; calling it runs build in its own scope."""

    def __init__(
        self,
        name: str | None = None,
        is_buffered: bool = True,
        is_resource_scope: bool = False,
        **kwargs,
    ):
        self.name = name or type(self).__name__
        self.is_buffered = is_buffered
        self.scope: Scope | None = None

    def build(self, *args, time: int = 0):
        raise NotImplementedError

    def __call__(self, *args, time: int | None = 0, predecessors=None, **kwargs):
        with ResourceScope(self.name, self.is_buffered, time, predecessors) as rs:
            self.scope = rs.scope
            return self.build(*args, **kwargs, time=0)

    @property
    def end_time(self) -> int:
        return self.scope.end if self.scope else 0


# ---------------------------------------------------------------------------------- compile


def compile(  # noqa: A001 (the API's name)
    base_name: str,
    result_tensor: MemoryTensor | Sequence[MemoryTensor] | None = None,
    gen_vis_data: bool = False,
    output_dir: str | None = None,
    check_stream_conflicts: bool = False,
) -> str:
    from .iop import write_iop
    from .schedule import schedule

    where = caller()
    program = _program()
    results = (
        []
        if result_tensor is None
        else (list(result_tensor) if isinstance(result_tensor, list | tuple) else [result_tensor])
    )
    for t in results:
        if not isinstance(t, MemoryTensor) or t.kind == "view":
            raise fail("a program's results are written memory tensors", where)
        t._use(where)
        t.is_output = True
    outputs = [t for t in program.tensors if isinstance(t, MemoryTensor) and t.is_output]
    if not outputs:
        raise fail("the program has no outputs (result_tensor= or program_output=True)", where)
    allocate(
        [
            (t.name, t.layout, t.where)
            for t in program.tensors
            if isinstance(t, MemoryTensor) and t.kind != "view"
        ]
    )
    cycles = schedule(program)
    path = Path(output_dir or os.getcwd()) / f"{base_name}.iop"
    write_iop(path, program, cycles)
    return str(path)


def __getattr__(name: str):
    """An API name the emulator does not provide is a clear error, not an AttributeError deep
    inside the program."""
    raise AttributeError(f"groq.api.{name} is not part of the subset kernelc's emulator provides")
