"""Models of the SDK libraries the emitted programs import.

``<memcpy/get_params>`` and ``<collectives_2d/params>`` are evaluated by the layout;
``<memcpy/memcpy>``, ``<layout>``, ``<math>`` and ``<collectives_2d/pe>`` by each PE. The
collectives move their data through the simulated fabric (see ``CollectiveHub`` in hub.py):
a broadcast's wavelets travel hop by hop from the root, a reduction's partial sums flow along
the row or column towards the root, adding at every PE.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from kernelc import semantics
from kernelc.csl import machine
from kernelc.csl.charges import routine_cycles
from kernelc.runtime.fabric.values import Array, Color, FabricError, Pointer, Struct, TaskId

if TYPE_CHECKING:
    from kernelc.runtime.fabric.pe import PE


class _Module:
    """Base: members are looked up by name through ``csl_member``."""

    members: dict[str, object]

    def csl_member(self, name: str) -> object:
        if name not in self.members:
            raise FabricError(f"{self.path} has no member '{name}'")
        return self.members[name]

    path = "<module>"


class _PeModule(_Module, ABC):
    """A module bound to one PE: its members act on that PE (coordinates, command stream)."""

    pe: PE

    def csl_member(self, name: str) -> object:
        tracer = self.pe.tracer
        if tracer is not None:  # a setup that reads PE-bound members is not copied (setup.py)
            tracer.member_read = True
        return super().csl_member(name)

    @abstractmethod
    def rebind(self, pe: PE) -> _PeModule:
        """The same module imported by another PE (with its checks), for a copied setup."""


class MemcpyParams(_Module):
    """Layout side of memcpy: ``get_params(x)`` gives the per-column parameter struct."""

    path = "<memcpy/get_params>"

    def __init__(self, cfg: Struct, width: int, height: int) -> None:
        w, h = int(cfg.get("width", -1)), int(cfg.get("height", -1))
        if (w, h) != (width, height):
            raise FabricError(
                f"<memcpy/get_params> was given {w} x {h}, but the rectangle is {width} x {height}"
            )
        self.members = {"get_params": self.get_params}
        self.width = width
        self.streams: dict[str, Color] = {}  # streaming-mode colors the layout gives memcpy
        for name in STREAM_COLORS:
            color = cfg.get(name)
            if color is None:
                continue
            if not isinstance(color, Color):
                raise FabricError(f"<memcpy/get_params>: .{name} must be a color, got {color!r}")
            self.streams[name] = color
        ids = [c.id for c in self.streams.values()]
        if len(set(ids)) != len(ids):
            raise FabricError(f"<memcpy/get_params>: two streaming colors share one ID ({ids})")

    def get_params(self, x: object) -> Struct:
        """The struct for a column. It holds what the model of memcpy needs there: the
        streaming colors and the column's place in the row (memcpy's row routes end at the
        edge columns), so the columns between the edges get equal structs and their PEs can
        share one compiled program (the SDK's own struct is not documented)."""
        col = int(x)
        if not 0 <= col < self.width:
            raise FabricError(f"memcpy.get_params({col}) is outside the rectangle")
        # the streaming colors are fields too, void ({}) where the layout gave none
        given = {name: self.streams.get(name, Struct()) for name in STREAM_COLORS}
        place = machine.place_in_line(col, self.width)
        return Struct(
            {"__memcpy__": True, "place": place, "streams": Struct(self.streams), **given}
        )


STREAM_COLORS = ("MEMCPYH2D_1", "MEMCPYH2D_2", "MEMCPYD2H_1")


class MemcpyModule(_PeModule):
    """PE side of memcpy: the command stream, and the streaming colors the layout gave
    ``<memcpy/get_params>`` (H2D wavelets arrive on them; D2H wavelets leave on them, routed by
    memcpy, never by the program). Copy-mode transfers need nothing from the PE."""

    path = "<memcpy/memcpy>"

    def __init__(self, pe: PE, params: object) -> None:
        if not (isinstance(params, Struct) and params.get("__memcpy__")):
            raise FabricError(f"PE {pe.coords}: <memcpy/memcpy> needs memcpy.get_params(x)")
        place = machine.place_in_line(pe.x, pe.sim.width)
        if params.get("place") != place:
            raise FabricError(
                f"PE {pe.coords}: memcpy params are for a column placed '{params.get('place')}' "
                f"in the row, this PE's is '{place}'"
            )
        self.pe, self.params = pe, params
        pe.memcpy = True
        streams: dict[str, Color] = params.get("streams").fields
        self.members = {"unblock_cmd_stream": pe.unblock_cmd_stream, **streams}

    def csl_member(self, name: str) -> object:
        if name in STREAM_COLORS and name not in self.members:
            raise self.pe.error(
                f"sys_mod.{name}: the layout did not give <memcpy/get_params> .{name} = <color>"
            )
        return super().csl_member(name)

    def rebind(self, pe: PE) -> MemcpyModule:
        return MemcpyModule(pe, self.params)


class LayoutModule(_PeModule):
    path = "<layout>"

    def __init__(self, pe: PE) -> None:
        self.pe = pe
        self.members = {
            "get_x_coord": lambda: np.uint16(pe.x),
            "get_y_coord": lambda: np.uint16(pe.y),
        }

    def rebind(self, pe: PE) -> LayoutModule:
        return LayoutModule(pe)


TSC_WORDS = 3  # <time>: the 48-bit cycle counter as three u16 words, low first (csl.md 10)


def _cycle_words(t: int) -> np.ndarray:
    return np.array([(t >> (16 * k)) & 0xFFFF for k in range(TSC_WORDS)], dtype=np.uint16)


class TimeModule(_PeModule):
    """``<time>``: the PE's timestamp counter, read as the simulated cycle (a modelled figure,
    never a hardware measurement)."""

    path = "<time>"

    def __init__(self, pe: PE) -> None:
        self.pe = pe
        self.enabled = False
        self.members = {
            "tsc_size_words": TSC_WORDS,
            "enable_tsc": self.enable_tsc,
            "disable_tsc": self.disable_tsc,
            "get_timestamp": self.get_timestamp,
        }

    def rebind(self, pe: PE) -> TimeModule:
        return TimeModule(pe)

    def enable_tsc(self) -> None:
        self.enabled = True

    def disable_tsc(self) -> None:
        self.enabled = False

    def get_timestamp(self, buf: object) -> None:
        if not (isinstance(buf, Pointer) and buf.array.data.dtype == np.uint16):
            raise self.pe.error("get_timestamp takes a pointer to [3]u16")
        if buf.offset + TSC_WORDS > buf.array.data.shape[0]:
            raise self.pe.error(f"get_timestamp writes {TSC_WORDS} u16 words")
        if not self.enabled:
            raise self.pe.error("get_timestamp before enable_tsc(): the counter does not run")
        buf.array.data[buf.offset : buf.offset + TSC_WORDS] = _cycle_words(self.pe.now)


class RandomModule(_PeModule):
    """``<random>``: uniform f32 values from a per-PE stream seeded by the PE's coordinates
    (deterministic; not the hardware PRNG's sequence, which the host cannot reproduce either)."""

    path = "<random>"

    def __init__(self, pe: PE) -> None:
        self.pe = pe
        self.rng = np.random.Generator(np.random.PCG64([pe.x, pe.y]))
        self.members = {"random_f32": self.random_f32}

    def rebind(self, pe: PE) -> RandomModule:
        return RandomModule(pe)

    def random_f32(self, lo: object, hi: object) -> np.float32:
        return np.float32(self.rng.uniform(float(lo), float(hi)))


def _decimal(value: object) -> str:
    return str(int(value))


def _hex(bits: int):
    return lambda value: f"0x{int(value) & ((1 << bits) - 1):0{bits // 4}x}"


class SimprintModule(_PeModule):
    """``<simprint>``: text a PE prints, a line (up to "\\n") at a time, to the simulator's
    log (sim.log, as the SDK's simulator writes it)."""

    path = "<simprint>"

    def __init__(self, pe: PE) -> None:
        self.pe = pe
        self.pending = ""
        self.members = {"print_string": self.print_string}
        formats = {"decimal": _decimal, "hex": None}
        for kind in ("u16", "i16", "u32", "i32"):
            for style, fmt in formats.items():
                show = fmt or _hex(int(kind[1:]))
                self.members[f"print_{kind}_{style}"] = self._printer(show)

    def rebind(self, pe: PE) -> SimprintModule:
        return SimprintModule(pe)

    def _printer(self, show):
        return lambda value: self.print_string(show(value))

    def print_string(self, text: object) -> None:
        self.pending += str(text)
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self.pe.sim.simlog.append((self.pe.now, f"PE {self.pe.coords}: {line}"))


class DebugModule(_PeModule):
    """``<debug>``: a trace buffer per import (``.key``), read on the host with debug_util's
    ``read_trace(x, y, key)``. Entries are kept in order; ``.buffer_size`` is not enforced."""

    path = "<debug>"

    def __init__(self, pe: PE, cfg: object) -> None:
        key = cfg.get("key") if isinstance(cfg, Struct) else None
        if not isinstance(key, str):
            raise pe.error('<debug> needs .key = "name"')
        self.pe, self.cfg, self.key = pe, cfg, key
        self.entries = pe.sim.traces.setdefault((pe.x, pe.y, key), [])
        self.members = {
            "trace_string": lambda s: self.entries.append(str(s)),
            "trace_timestamp": lambda: self.entries.append(int(self.pe.now)),
        }
        for kind in ("u8", "i8", "u16", "i16", "u32", "i32", "bool"):
            self.members[f"trace_{kind}"] = lambda v: self.entries.append(int(v))
        for kind in ("f16", "f32"):
            self.members[f"trace_{kind}"] = lambda v: self.entries.append(float(v))

    def rebind(self, pe: PE) -> DebugModule:
        return DebugModule(pe, self.cfg)


def _math_fn(fn, name: str):
    def run(x):
        return fn(np.asarray(x, dtype=np.float32))[()]

    run.cycles = routine_cycles(name)  # type: ignore[attr-defined]
    run.__name__ = name
    return run


class MathModule(_Module):
    path = "<math>"

    def __init__(self) -> None:
        self.members = {
            "sqrt_f32": _math_fn(np.sqrt, "sqrt_f32"),
            "exp_f32": _math_fn(semantics.exp, "exp_f32"),
            "log_f32": _math_fn(semantics.log, "log_f32"),
        }


CONTROL_OPCODES = {"NOP": 0, "SWITCH_ADV": 1, "SWITCH_RST": 2, "TEARDOWN": 3}
NO_ENTRYPOINT = 0x7F


def encode_control(opcode: int, ce_ignore: bool, entrypoint: int, data: int) -> np.uint32:
    """The simulator's own packing of a control wavelet (not the machine's bit layout, which no
    source gives): data in bits 0..15, the control task ID in 16..22 (0x7F: none), the opcode
    in 24..26, "the CE ignores it" in bit 28."""
    word = (int(data) & 0xFFFF) | (entrypoint << 16) | (opcode << 24) | (int(ce_ignore) << 28)
    return np.uint32(word)


def decode_control(word: int) -> tuple[int, bool, int | None, int]:
    """Opcode, CE-ignore, control task ID (None: none) and data of a control wavelet."""
    entry = (word >> 16) & 0x7F
    return (
        (word >> 24) & 0x7,
        bool((word >> 28) & 1),
        None if entry == NO_ENTRYPOINT else entry,
        word & 0xFFFF,
    )


class ControlModule(_Module):
    """``<control>``: payloads of control wavelets (switch commands, control task entry)."""

    path = "<control>"

    def __init__(self) -> None:
        self.members = {
            "opcode": Struct(dict(CONTROL_OPCODES)),
            "encode_single_payload": self.encode_single_payload,
            "encode_control_task_payload": self.encode_control_task_payload,
        }

    @staticmethod
    def _entry(task: object) -> int:
        if isinstance(task, TaskId) and task.kind == "control":
            if not 0 <= task.id < NO_ENTRYPOINT:
                raise FabricError(f"<control>: control task ID {task.id} is not modelled")
            return task.id
        if isinstance(task, Struct) and not task.fields and not task.items:
            return NO_ENTRYPOINT
        raise FabricError(f"<control>: expected a control task ID or {{}}, got {task!r}")

    def encode_single_payload(self, opcode, ce_ignore, entrypoint, data) -> np.uint32:
        if int(opcode) not in CONTROL_OPCODES.values():
            raise FabricError(f"<control>: unknown opcode {opcode}")
        return encode_control(int(opcode), bool(ce_ignore), self._entry(entrypoint), int(data))

    def encode_control_task_payload(self, entrypoint) -> np.uint32:
        return encode_control(CONTROL_OPCODES["NOP"], False, self._entry(entrypoint), 0)


class C2dParams(_Module):
    """Layout side of collectives_2d: per-PE parameters for the row (x) and column (y) axes."""

    path = "<collectives_2d/params>"

    def __init__(self, width: int, height: int) -> None:
        self.members = {"get_params": self.get_params}
        self.width, self.height = width, height

    def get_params(self, px: object, py: object, cfg: Struct) -> Struct:
        x, y = int(px), int(py)
        axes = {}
        for axis in ("x", "y"):
            colors = cfg.get(f"{axis}_colors")
            entries = cfg.get(f"{axis}_entrypoints")
            if not isinstance(colors, Struct) or len(colors.items) != 2:
                raise FabricError(f"collectives_2d needs two {axis}_colors")
            if not isinstance(entries, Struct) or len(entries.items) != 2:
                raise FabricError(f"collectives_2d needs two {axis}_entrypoints")
            # the PE's place along the axis (the ends of a row or column route differently);
            # its index there (pe_id) is read from its coordinates at run time
            index, count = (x, self.width) if axis == "x" else (y, self.height)
            axes[axis] = Struct(
                {
                    "__c2d__": axis,
                    "place": machine.place_in_line(index, count),
                    "colors": colors,
                    "entrypoints": entries,
                }
            )
        return Struct(axes)


class Collectives2D(_PeModule):
    """PE side of collectives_2d along one axis: broadcast and reduce_fadds over the fabric."""

    path = "<collectives_2d/pe>"

    def __init__(self, pe: PE, cfg: Struct) -> None:
        dim = cfg.get("dim_params")
        if not (isinstance(dim, Struct) and dim.get("__c2d__") in ("x", "y")):
            raise FabricError(f"PE {pe.coords}: <collectives_2d/pe> needs .dim_params")
        self.pe, self.cfg = pe, cfg
        self.axis = dim.get("__c2d__")
        index, count = (pe.x, pe.sim.width) if self.axis == "x" else (pe.y, pe.sim.height)
        if dim.get("place") != machine.place_in_line(index, count):
            raise FabricError(f"PE {pe.coords}: collectives params belong to another PE")
        self.colors = tuple(c.id for c in dim.get("colors").items)
        self._claim_resources(cfg)
        self.calls = 0
        self.members = {
            "init": lambda: None,
            "pe_id": np.uint16(index),
            "broadcast": self.broadcast,
            "scatter": self.scatter,
            "gather": self.gather,
            "reduce_fadds": self.reduce_fadds,
        }
        pe.reserve_colors(self.colors, f"collectives_2d ({self.axis})")

    def rebind(self, pe: PE) -> Collectives2D:
        return Collectives2D(pe, self.cfg)

    def _claim_resources(self, cfg: Struct) -> None:
        """The queues and DSRs this import runs its operations on. The row and column
        collectives of a PE may run at once, so two imports sharing either would share a
        microthread or a register. Defaults as gemv-collectives_2d states them (gemm's values)."""
        pe, axis = self.pe, self.axis
        who = f"collectives_2d ({axis})"
        queues = _ids(cfg.get("queues"), C2D_QUEUES[axis])
        for q in queues:
            if not 0 <= q < pe.sim.arch.queue_ids:
                raise pe.error(f"{who}: queue {q} is outside 0..{pe.sim.arch.queue_ids - 1}")
            if pe.memcpy and q in pe.sim.arch.memcpy_queues:
                raise pe.error(f"{who}: queue {q} is held by memcpy on {pe.sim.arch.name}")
        claims = [(f"queue {q}", q) for q in queues]
        for kind in ("dest", "src0", "src1"):
            claims += [
                (f"{kind} DSR {d}", (kind, d))
                for d in _ids(cfg.get(f"{kind}_dsr_ids"), C2D_DSRS[axis])
            ]
        for label, key in claims:
            other = pe.library_claims.get(key)
            if other is not None and other != who:
                raise pe.error(
                    f"{who} uses {label}, which {other} uses too: the row and column "
                    "collectives may run at once and need their own queues and DSRs"
                )
            pe.library_claims[key] = who

    def _join(self, kind: str, root: object, args: tuple, cb: object) -> None:
        if not isinstance(cb, TaskId):
            raise FabricError(f"PE {self.pe.coords}: collectives callback must be a task ID")
        self.pe.now += machine.DSD_SETUP_CYCLES
        self.pe.sim.hub.join(self, kind, int(root), args, cb, self.calls)
        self.calls += 1

    def broadcast(self, root: object, buf: Pointer, count: object, cb: object) -> None:
        self._join("broadcast", root, (buf, int(count)), cb)

    def reduce_fadds(
        self, root: object, send: Pointer, recv: Pointer, count: object, cb: object
    ) -> None:
        self._join("reduce_fadds", root, (send, recv, int(count)), cb)

    def scatter(self, root: object, send: Pointer, recv: Pointer, count: object, cb: object):
        """The root's ``send`` holds ``count`` elements per PE of the line, in PE order."""
        self._join("scatter", root, (send, recv, int(count)), cb)

    def gather(self, root: object, send: Pointer, recv: Pointer, count: object, cb: object):
        """Each PE's ``count`` elements land in the root's ``recv``, in PE order."""
        self._join("gather", root, (send, recv, int(count)), cb)


# collectives_2d's queue and DSR IDs when the import gives none (gemv-collectives_2d refers to
# gemm-collectives_2d's values as the defaults)
C2D_QUEUES = {"x": (2, 4), "y": (3, 5)}
C2D_DSRS = {"x": (1,), "y": (2,)}


def _ids(value: object, default: tuple[int, ...]) -> tuple[int, ...]:
    if value is None:
        return default
    if isinstance(value, Array):
        return tuple(int(v) for v in value.data)
    raise FabricError(f"collectives_2d: expected a [n]u16 array of IDs, got {value!r}")


LAYOUT_MODULES = {"<memcpy/get_params>", "<collectives_2d/params>"}
PE_MODULES = {"<memcpy/memcpy>", "<layout>", "<math>", "<collectives_2d/pe>"}
