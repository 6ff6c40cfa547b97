"""``Map`` on the VXM: rows stream as 320-lane vectors, lane offsets through SXM shifts,
guarded pieces as bands of rows whose lanes are chosen through their bits."""

from __future__ import annotations

import math

from kernelc import ir
from kernelc.affine import affine
from kernelc.backends.groq import machine
from kernelc.backends.groq.builder import ProgramBuilder, size_value
from kernelc.backends.groq.model import Stage, StageCost, program_shape, refuse
from kernelc.backends.groq.vector import VectorStage
from kernelc.forms import Map
from kernelc.forms.map import Piece
from kernelc.graph import Task


class MapStage(VectorStage):
    """One ``Map`` task as VXM work over (rows x lanes) vectors.

    Its guarded pieces are static boxes of the loop indices: the rows are cut into bands at
    every piece's row bounds, each piece is evaluated over the rows of each band it covers, and
    its stores keep only its lanes (through their bits, as any store outside its lane range);
    the bands are joined row-wise, so no element tests a condition.
    """

    def __init__(self, low: ProgramBuilder, task: Task, form: Map) -> None:
        super().__init__(low, task)
        self.form = form
        sizes = task.size_env
        if len(form.loops) > 2:
            raise refuse(f"the {len(form.loops)}-deep loop nest of '{task.kernel.name}'", task.span)
        bounds = []
        for lp in form.loops:
            lo, hi = affine(lp.lo), affine(lp.hi)
            if lo is None or hi is None:
                raise refuse(f"the bounds of loop '{lp.var}'", lp.span)
            bounds.append((lp.var, size_value(lo, sizes, lp.span), size_value(hi, sizes, lp.span)))
        if len(bounds) == 1:
            self.row, self.r0, self.r1 = "", 0, 1
            self.lane, self.c0, self.c1 = bounds[0]
        else:
            (self.row, self.r0, self.r1), (self.lane, self.c0, self.c1) = bounds
            if form.output_indices != (self.row, self.lane):
                raise refuse(
                    f"the store of '{task.kernel.name}' indexed [{', '.join(form.output_indices)}]"
                    " (a transposed store)",
                    form.stores[0].span,
                )
        out = task.binding(form.stores[0].tensor).region.tensor
        self.width = program_shape(low.graph.tensor(out).shape)[1]
        self.nrows = self.r1 - self.r0
        self.height, self.top = self.nrows, self.r0  # the loop's rows (bands cut them)
        self.lanes_loop = (self.lane, self.c0, self.c1)

    # ----------------------------------------------------------------------------- stage

    def lower(self) -> Stage:
        task = self.task
        empty = self.nrows <= 0 or self.c1 <= self.c0
        order: list[str] = []
        values: dict[str, dict[tuple[int, int], list[tuple[int, int, str]]]] = {}
        for s in self.form.pieces[0].stores:
            tensor = task.binding(s.tensor).region.tensor
            if tensor not in order:
                order.append(tensor)
        for r0, r1, parts in [] if empty else self.bands():
            self.r0, self.r1, self.nrows = r0, r1, r1 - r0
            for piece, c0, c1 in parts:
                self.c0, self.c1 = c0, c1
                self.lets = {}
                for s in piece.body:
                    if isinstance(s, ir.Let):
                        self.lets[s.name] = self.value(s.value)
                for s in piece.stores:
                    if s.op != "=":
                        raise refuse(f"the compound store '{s.op}' in '{task.kernel.name}'", s.span)
                    tensor = task.binding(s.tensor).region.tensor
                    band = values.setdefault(tensor, {}).setdefault((r0, r1), [])
                    band.append((c0, c1, self.value(s.value)))
        writes = 0
        for tensor in order:
            if empty:
                writes += self.unchanged(tensor)
            else:
                bands = [(r0, r1, parts) for (r0, r1), parts in values[tensor].items()]
                writes += self.store(tensor, sorted(bands))
        self.nrows = self.height
        lines = self.tables()
        ops = -(-self.work // max(self.height, 1))
        depth = max(self.depths.values(), default=0)
        vectors = self.height * math.ceil(self.width / machine.LANES)
        if self.split_shifts:  # shifts of one inner split's rows each
            cost = StageCost(
                ops, self.split_shifts, vectors, depth, (), writes, sxm_rows=self.height
            )
        else:
            cost = StageCost(ops, self.sxm, vectors, depth, (), writes)
        loops = " x ".join(
            f"{n} in {a}..{b}"
            for n, a, b in ((self.row, self.top, self.top + self.height), self.lanes_loop)
            if n
        )
        guarded = len(self.form.pieces) > 1
        pieces = f" in {len(self.form.pieces)} guarded pieces (bands of rows, lanes by bit masks)"
        return Stage(
            task.name,
            f"Task '{task.name}' ({task.kernel.name}): element-wise on the VXM over {loops}"
            f"{pieces if guarded else ''}, {self.height} row(s) of {self.width} lanes; lane "
            "offsets through SXM shifts.",
            tuple(sorted(self.after - {"", task.name})),
            tuple(lines),
            cost,
        )

    def bands(self) -> list[tuple[int, int, list[tuple[Piece, int, int]]]]:
        """The rows cut at every piece's row bounds; per band, the pieces covering it and their
        lanes, by lane."""
        boxes = []
        for p in self.form.pieces:
            bounds = p.bounds(self.sizes)
            (r0, r1), (c0, c1) = bounds if len(bounds) == 2 else ((0, 1), bounds[0])
            if r0 < r1 and c0 < c1:
                boxes.append((p, r0, r1, c0, c1))
        cuts = sorted({r for _, r0, r1, _, _ in boxes for r in (r0, r1)})
        out = []
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            parts = sorted(
                ((p, c0, c1) for p, r0, r1, c0, c1 in boxes if r0 <= lo and hi <= r1),
                key=lambda part: part[1],
            )
            if parts:
                out.append((lo, hi, parts))
        return out
