"""Run-time values of the CSL interpreter: types, colors, task IDs, arrays, pointers and DSDs."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from kernelc.diagnostics import KernelcError, Span


class FabricError(KernelcError):
    """A fault of the CSL program under simulation (bad route, deadlock, out-of-bounds DSD)."""

    def __init__(
        self, message: str, file: str = "<fabric simulator>", at: Span | None = None
    ) -> None:
        super().__init__(message, at or Span(file, 1, 1))


NUMERIC = {
    "f32": np.float32,
    "f16": np.float16,
    "i8": np.int8,
    "u8": np.uint8,
    "i16": np.int16,
    "u16": np.uint16,
    "i32": np.int32,
    "u32": np.uint32,
    "i64": np.int64,
    "u64": np.uint64,
    "bool": np.bool_,
}


@dataclass(frozen=True)
class CslType:
    """A named CSL type; ``dtype`` is set for the numeric ones."""

    name: str

    @cached_property  # asked for on every typed declaration and call the simulator runs
    def dtype(self) -> np.dtype | None:
        t = NUMERIC.get(self.name)
        return np.dtype(t) if t is not None else None


@dataclass(frozen=True)
class ArrayType:
    dims: tuple[int, ...]
    elem: CslType


@dataclass(frozen=True)
class PtrType:
    elem: object
    many: bool


@dataclass(frozen=True)
class FnType:
    params: tuple[object, ...]
    ret: object


@dataclass(frozen=True)
class Color:
    id: int


@dataclass(frozen=True)
class TaskId:
    kind: str  # "local", "data" or "control"
    id: int


@dataclass(frozen=True)
class Queue:
    io: str  # "in" or "out"
    id: int


@dataclass(frozen=True)
class Direction:
    name: str


DIRECTIONS = {n: Direction(n) for n in ("RAMP", "NORTH", "SOUTH", "EAST", "WEST")}
STEP = {"NORTH": (0, -1), "SOUTH": (0, 1), "EAST": (1, 0), "WEST": (-1, 0)}
OPPOSITE = {"NORTH": "SOUTH", "SOUTH": "NORTH", "EAST": "WEST", "WEST": "EAST"}


@dataclass(frozen=True)
class EnumValue:
    """A member of an ``enum`` type: equal to the same member only."""

    enum: str
    name: str
    value: int


@dataclass(frozen=True)
class EnumType:
    """``enum(tag) { a, b = 2 }``: members numbered from 0, or as given."""

    tag: str
    members: tuple[tuple[str, int], ...]

    def csl_member(self, name: str) -> EnumValue:
        for member, value in self.members:
            if member == name:
                return EnumValue(self.tag + "-enum", member, value)
        raise FabricError(f"the enum has no member '{name}'")


@dataclass(frozen=True)
class DsdKind:
    name: str  # mem1d_dsd, mem4d_dsd, fabin_dsd, fabout_dsd


# slots: tens of thousands of PEs hold their own arrays, pointers and DSDs
@dataclass(eq=False, slots=True)
class Array:
    """A PE array: flat storage, the declared dimensions, and its name for reports."""

    name: str
    data: np.ndarray
    dims: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def flat_index(self, idx: tuple[int, ...]) -> int:
        if len(idx) == 1:
            return int(idx[0])
        flat = 0
        for i, n in zip(idx, self.dims, strict=True):
            flat = flat * n + int(i)
        return flat


class Fifo:
    """``@allocate_fifo(buffer)``: a queue in PE memory between DSD operations. Writers push
    while it has room (its buffer's length), readers take what it holds, in order."""

    __slots__ = ("buffer", "count", "parts")

    def __init__(self, buffer: Array) -> None:
        self.buffer = buffer
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []  # (arrival times, values)
        self.count = 0

    @property
    def room(self) -> int:
        return self.buffer.data.shape[0] - self.count

    def push(self, times: np.ndarray, values: np.ndarray) -> None:
        self.parts.append((times, np.asarray(values).astype(self.buffer.data.dtype)))
        self.count += len(times)

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        times = np.concatenate([t for t, _ in self.parts])
        values = np.concatenate([v for _, v in self.parts])
        self.parts = [(times[n:], values[n:])] if n < len(times) else []
        self.count -= n
        return times[:n], values[:n]


@dataclass(frozen=True, slots=True)
class Pointer:
    """``&A`` or ``&A[i]``: an array and an element offset; ``p.*`` derefs to the same view."""

    array: Array
    offset: int = 0
    element: bool = False  # ``*T`` to one element (``&A[i]``): ``p.*`` is that element


@dataclass(frozen=True, slots=True)
class MemDsd:
    """A memory DSD: element offsets ``offset + sum(stride_k * i_k)`` over ``shape``."""

    array: Array
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    @property
    def length(self) -> int:
        return math.prod(self.shape) if self.shape else 0

    def view(self) -> np.ndarray:
        """The elements as a NumPy view (shape = the iteration space); raises if any is outside
        the array."""
        data = self.array.data
        place = _placement(data.shape[0], data.itemsize, self.offset, self.shape, self.strides)
        if isinstance(place, str):
            raise FabricError(f"DSD over '{self.array.name}' reaches {place}")
        if not self.length:
            return data[:0].reshape(self.shape) if self.shape else data[:0]
        return np.ndarray(self.shape, data.dtype, data, place[0], place[1])

    def indices(self) -> np.ndarray:
        idx = np.full(self.shape, self.offset, dtype=np.int64)
        for axis, (n, s) in enumerate(zip(self.shape, self.strides, strict=True)):
            if s:
                shape = [1] * len(self.shape)
                shape[axis] = n
                idx = idx + (np.arange(n, dtype=np.int64) * s).reshape(shape)
        return idx.reshape(-1)


@lru_cache(maxsize=1 << 14)  # PEs of a grid repeat the same few DSD shapes over like arrays
def _placement(
    size: int, item: int, offset: int, shape: tuple[int, ...], strides: tuple[int, ...]
) -> tuple[int, tuple[int, ...]] | str:
    """Byte offset and byte strides of a DSD's elements, or which elements fall outside."""
    lo = hi = offset
    for n, st in zip(shape, strides, strict=True):
        if n > 0:
            lo += min(0, st * (n - 1))
            hi += max(0, st * (n - 1))
    if shape and math.prod(shape) and (lo < 0 or hi >= size):
        return f"elements {lo}..{hi} of {size}"
    return offset * item, tuple(st * item for st in strides)


@dataclass(frozen=True)
class FabDsd:
    """A fabric DSD: ``fabin`` reads wavelets of a color, ``fabout`` sends them."""

    kind: str  # "in" or "out"
    color: Color
    extent: int
    queue: Queue | None
    control: bool = False

    @property
    def length(self) -> int:
        return self.extent


@dataclass
class Struct:
    """A comptime struct (``.{ .a = 1 }``) or an anonymous list (``.{ RAMP, EAST }``)."""

    fields: dict[str, object] = field(default_factory=dict)
    items: tuple[object, ...] = ()

    def get(self, name: str, default: object = None) -> object:
        return self.fields.get(name, default)


def wrap_int(value: int, dtype: np.dtype) -> np.generic:
    """A Python int converted to a fixed-width integer type with two's-complement wrap."""
    bits = dtype.itemsize * 8
    value &= (1 << bits) - 1
    if dtype.kind == "i" and value >= 1 << (bits - 1):
        value -= 1 << bits
    return dtype.type(value)


def convert(value: object, dtype: np.dtype | None) -> object:
    """Convert a value to a numeric type (``@as`` and typed declarations)."""
    if dtype is None or type(value) is dtype.type:
        return value
    if isinstance(value, np.ndarray):
        if dtype.kind in "iu" and value.dtype.kind == "f":
            return np.trunc(value).astype(dtype)
        return value.astype(dtype)
    if dtype.kind == "b":
        return np.bool_(bool(value))
    if dtype.kind in "iu":
        if isinstance(value, bool | np.bool_):
            return dtype.type(int(value))
        if isinstance(value, float | np.floating):
            f = float(value)
            if f != f or abs(f) >= 2.0**63:
                raise FabricError(f"@as({dtype}, {f}) is out of range (undefined in CSL)")
            return wrap_int(int(f), dtype)
        return wrap_int(int(value), dtype)
    return dtype.type(value)


# the DSD engine's float operations: element type, operand count, function. The simulator runs
# them per PE (dsd.OPS adds the conversions and 16-bit integer ones); lockstep on lanes.
FLOAT_DSD_OPS: dict[str, tuple[str, int, Callable]] = {
    "fadds": ("f32", 2, np.add),
    "faddh": ("f16", 2, np.add),
    "fsubs": ("f32", 2, np.subtract),
    "fsubh": ("f16", 2, np.subtract),
    "fmuls": ("f32", 2, np.multiply),
    "fmulh": ("f16", 2, np.multiply),
    "fmaxs": ("f32", 2, np.fmax),
    "fmaxh": ("f16", 2, np.fmax),
    "fmacs": ("f32", 3, lambda a, b, s: a + b * s),
    "fmach": ("f16", 3, lambda a, b, s: a + b * s),
    "fmovs": ("f32", 1, lambda a: a),
    "fmovh": ("f16", 1, lambda a: a),
    "fnegs": ("f32", 1, np.negative),
    "fnegh": ("f16", 1, np.negative),
    "fabss": ("f32", 1, np.abs),
    "fabsh": ("f16", 1, np.abs),
}
