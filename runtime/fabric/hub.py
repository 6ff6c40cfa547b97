"""The collectives hub: matches the <collectives_2d> calls of the PEs of one row or column
(broadcast, scatter, gather, reduce_fadds) and moves their data over the line's links, with the
cycles the trains take; libraries.py models the library's API that joins a PE to a round."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from kernelc.csl import machine
from kernelc.runtime.fabric.values import FabricError, Pointer, TaskId

if TYPE_CHECKING:
    from kernelc.runtime.fabric.fabric import Simulator
    from kernelc.runtime.fabric.pe import PE


def _floats(values: np.ndarray) -> np.ndarray:
    """The f32 elements reduce_fadds reads through its ``[*]f32`` pointers (an array of u32 or
    i32 cast with @ptrcast holds their bits)."""
    if values.dtype.itemsize == 4 and values.dtype.kind != "f":
        return values.view(np.float32)
    return values.astype(np.float32)


def _store(ptr: Pointer, at: int, values: np.ndarray) -> None:
    """Elements written through a pointer, bit for bit where the widths agree."""
    target = ptr.array.data
    values = np.asarray(values)
    if values.dtype.itemsize == target.dtype.itemsize:
        values = values.view(target.dtype)
    start = ptr.offset + at
    target[start : start + len(values)] = values


class CollectiveHub:
    """Matches the collective calls of the PEs of one row or column and moves the data."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.rounds: dict[tuple, dict] = {}

    def join(self, module, kind: str, root: int, args: tuple, cb: TaskId, seq: int) -> None:
        pe = module.pe
        axis = module.axis
        line = pe.y if axis == "x" else pe.x
        size = self.sim.width if axis == "x" else self.sim.height
        if not 0 <= root < size:
            raise FabricError(f"PE {pe.coords}: collective root {root} is outside 0..{size - 1}")
        key = (axis, line, seq)
        entry = self.rounds.setdefault(key, {"kind": kind, "root": root, "calls": {}})
        if entry["kind"] != kind or entry["root"] != root:
            raise FabricError(
                f"PE {pe.coords}: collective call #{seq} along {axis} is {kind} with root {root}, "
                f"but another PE of the line called {entry['kind']} with root {entry['root']}"
            )
        index = pe.x if axis == "x" else pe.y
        count = args[-1]
        snapshot = []
        for k, a in enumerate(args):
            if isinstance(a, Pointer):
                n = count * size if (kind, k) == ("scatter", 0) else count
                if a.offset + n > a.array.data.shape[0]:
                    raise pe.error(f"{kind}: {n} elements overrun '{a.array.name}'")
                snapshot.append(a.array.data[a.offset : a.offset + n].copy())
            else:
                snapshot.append(a)
        entry["calls"][index] = (pe, pe.now, args, tuple(snapshot), cb)
        if len(entry["calls"]) == size:
            del self.rounds[key]
            if kind == "broadcast":
                self._broadcast(axis, entry)
            elif kind == "reduce_fadds":
                self._reduce(axis, entry)
            else:
                self._exchange(axis, entry, kind)

    def _path_times(self, pe_from, step: tuple[int, int], times: np.ndarray) -> np.ndarray:
        d = {(1, 0): "EAST", (-1, 0): "WEST", (0, 1): "SOUTH", (0, -1): "NORTH"}[step]
        return self.sim.cross_link(pe_from.x, pe_from.y, d, times + machine.HOP_CYCLES)

    def _broadcast(self, axis: str, entry: dict) -> None:
        calls, root = entry["calls"], entry["root"]
        rpe, rt, rargs, rsnap, rcb = calls[root]
        count = rargs[1]
        values = rsnap[0]
        start = rt + np.arange(count, dtype=np.int64)
        self.sim.complete_at(rpe, rt + count, rcb)
        rpe.busy += count
        unit = (1, 0) if axis == "x" else (0, 1)
        for sign in (1, -1):
            times, index = start, root
            step = (unit[0] * sign, unit[1] * sign)
            while (index + sign) in calls:
                here = calls[index][0]
                times = self._path_times(here, step, times)
                index += sign
                pe, t_call, args, _snap, cb = calls[index]
                steps = np.arange(count, dtype=np.int64)
                done = np.maximum(times, t_call + steps)
                done = np.maximum.accumulate(done - steps) + steps if count else done
                dst = args[0]
                dst.array.data[dst.offset : dst.offset + count] = values
                end = int(done[-1]) + 1 if count else t_call
                pe.busy += count
                self.sim.complete_at(pe, end, cb)

    def _train(self, axis: str, calls: dict, a: int, b: int, times: np.ndarray) -> np.ndarray:
        """Arrival times of a train sent from PE ``a`` of the line to PE ``b``, link by link."""
        sign = 1 if b > a else -1
        step = (sign, 0) if axis == "x" else (0, sign)
        for index in range(a, b, sign):
            times = self._path_times(calls[index][0], step, times)
        return times

    def _exchange(self, axis: str, entry: dict, kind: str) -> None:
        """Scatter (the root's chunks out to each PE) or gather (each PE's chunk in to the
        root): one train per PE, the nearest first, over the links of the line."""
        calls, root = entry["calls"], entry["root"]
        rpe, rt, rargs, rsnap, rcb = calls[root]
        count = rargs[2]
        steps = np.arange(count, dtype=np.int64)
        order = sorted(calls, key=lambda i: (abs(i - root), i))
        root_end = rt + count
        for slot, index in enumerate(order):
            pe, t_call, args, snap, cb = calls[index]
            if kind == "scatter":
                chunk = rsnap[0][index * count : (index + 1) * count]
                start = rt + machine.DSD_SETUP_CYCLES + slot * count + steps
                times = self._train(axis, calls, root, index, start)
                times = np.maximum(times, t_call + steps)
                _store(args[1], 0, chunk)
                if index != root:
                    self.sim.complete_at(pe, int(times[-1]) + 1 if count else t_call, cb)
                root_end = max(root_end, int(start[-1]) + 1 if count else rt)
            else:
                start = t_call + machine.DSD_SETUP_CYCLES + steps
                times = self._train(axis, calls, index, root, start)
                times = np.maximum(times, rt + steps)
                _store(rargs[1], index * count, snap[0])
                if index != root:
                    self.sim.complete_at(pe, int(start[-1]) + 1 if count else t_call, cb)
                root_end = max(root_end, int(times[-1]) + 1 if count else rt)
            pe.busy += count
        self.sim.complete_at(rpe, root_end, rcb)

    def _reduce(self, axis: str, entry: dict) -> None:
        calls, root = entry["calls"], entry["root"]
        count = calls[root][2][2]
        steps = np.arange(count, dtype=np.int64)
        unit = (1, 0) if axis == "x" else (0, 1)
        partials = []
        for ends, sign in (((0, root), 1), ((len(calls) - 1, root), -1)):
            far, _ = ends
            if far == root:
                partials.append(None)
                continue
            acc, times = None, None
            index = far
            while index != root:
                pe, t_call, _args, snap, cb = calls[index]
                own = _floats(snap[0])
                ready = t_call + machine.DSD_SETUP_CYCLES + steps
                if acc is None:
                    acc, times = own, ready
                else:
                    acc = (acc + own).astype(np.float32)
                    times = np.maximum(times, ready)
                    times = np.maximum.accumulate(times - steps) + steps if count else times
                pe.busy += count
                self.sim.complete_at(pe, (int(times[-1]) + 1) if count else t_call, cb)
                step = (unit[0] * sign, unit[1] * sign)
                times = self._path_times(pe, step, times)
                index += sign
            partials.append((acc, times))
        rpe, rt, rargs, rsnap, rcb = calls[root]
        result = _floats(rsnap[0])
        times = rt + machine.DSD_SETUP_CYCLES + steps
        west, east = partials
        if west is not None:
            result = (west[0] + result).astype(np.float32)
            times = np.maximum(times, west[1])
        if east is not None:
            result = (result + east[0]).astype(np.float32)
            times = np.maximum(times, east[1])
        if count:
            times = np.maximum.accumulate(times - steps) + steps
        _store(rargs[1], 0, result)
        rpe.busy += count
        self.sim.complete_at(rpe, (int(times[-1]) + 1) if count else rt, rcb)

    def waiting(self, pe: PE) -> list[str]:
        reasons = []
        for (axis, line, seq), entry in self.rounds.items():
            for call in entry["calls"].values():
                if call[0] is pe:
                    size = self.sim.width if axis == "x" else self.sim.height
                    missing = [i for i in range(size) if i not in entry["calls"]]
                    where = ", ".join(
                        f"({i}, {line})" if axis == "x" else f"({line}, {i})" for i in missing
                    )
                    reasons.append(
                        f"collective {entry['kind']} #{seq} along {axis} (root {entry['root']}) "
                        f"waits for PE(s) {where}"
                    )
        return reasons
