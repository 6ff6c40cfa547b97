"""The ``Map`` and ``Reduction`` forms on the IPU: a parallel nest's iteration space cut into
blocks over tiles, one MultiVertex per tile over its block, halos connected from the
neighbours' slices. (A Reduction is its kept loop as a one-loop nest: the folds along the other
dimension run inside the loop body, whole on one worker.)

A one- or two-loop nest's iteration space is cut into a grid of near-equal blocks (rows, or
rows x columns: the grid that gives the busiest worker least to do, then the smallest halo),
one block per tile. Each tensor dimension indexed by ``loop + c`` follows that loop's cut, so a
tile holds the block of every tensor it writes and the matching blocks of what it reads (compute
follows data). A 2-D tensor is connected as a list field ``Vector<Input<Vector<T>>>``: one
entry per row of the box the block touches (its own rows plus the halo rows and columns, which
live on the neighbouring tiles: the exchange brings them before the compute set). The six
workers of the tile take the block's rows in turn. Integer vertex state gives each vertex its
block and the origin of each box, so one codelet serves every tile.

A Map's guarded pieces (a stencil's interior and its border cells, kernelc/forms/map.py) run in
the same vertex: in each of its rows a worker runs the pieces whose rows hold it (one test per
row and group of pieces), each over its columns clipped to the block (computed once per
vertex). No element tests a guard, and the interior's loads, proven in range, are not clamped.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from kernelc import ir
from kernelc.affine import Affine, affine, bounds, evaluate, is_static
from kernelc.backends.poplar.codelet import CPP_TYPE, ScalarCodelet, literal
from kernelc.backends.poplar.cost import AccessCounter, instructions
from kernelc.backends.poplar.lowered import (
    Box,
    Codelet,
    CodeletField,
    Edge,
    Instance,
    LoweredTask,
    TileMap,
    region_box,
    spread,
)
from kernelc.backends.poplar.machine import WORKERS
from kernelc.backends.poplar.names import Names
from kernelc.forms.blocks import Split
from kernelc.forms.map import Map, Piece
from kernelc.forms.reduction import Reduction
from kernelc.graph import Region, Task, TaskGraph
from kernelc.types import DType


@dataclass(frozen=True)
class Access:
    """A tensor parameter of the task and every index tuple it is accessed with."""

    param: str
    region: Region
    dtype: DType
    direction: str  # "Input", "Output" or "InOut"
    indices: tuple[tuple[ir.Expr, ...], ...]
    follows: tuple[int | None, ...]  # per dimension: the loop whose cut it follows

    @property
    def shape(self) -> tuple[int, ...]:
        return self.region.view_shape


@dataclass(frozen=True)
class Window:
    """A piece of a nest: the box of iterations it runs (per loop, ``[lo, hi)`` at these
    sizes; None: the whole nest) and the body of one of them (unused locals left out)."""

    box: tuple[tuple[int, int], ...] | None
    body: tuple[ir.Stmt, ...]


@dataclass(frozen=True)
class Nest:
    """What the block lowering spreads: one or two parallel loops and the pieces of their
    iteration space (a Map's guarded pieces; one piece otherwise), whose stores may sit in
    inner sequential loops."""

    form: str  # the form's name, for the report
    loops: tuple[ir.For, ...]
    pieces: tuple[Window, ...]
    how: str  # what else the report says

    @property
    def body(self) -> tuple[ir.Stmt, ...]:
        """Every piece's statements (what the fields must reach)."""
        return tuple(s for p in self.pieces for s in p.body)

    @property
    def stores(self) -> tuple[ir.Store, ...]:
        return tuple(n for n in ir.walk_body(self.body) if isinstance(n, ir.Store))


@dataclass(frozen=True)
class MapBlocks:
    nest: Nest
    loops: tuple[tuple[str, int, int], ...]  # variable, first, last + 1
    splits: tuple[Split, ...]  # per loop
    first: int  # the first tile
    accesses: tuple[Access, ...]
    aliases: dict[str, Affine]
    mappings: dict[str, TileMap]

    @property
    def tiles_used(self) -> int:
        return math.prod(s.parts for s in self.splits)

    def tile(self, coords: tuple[int, ...]) -> int:
        """The tile of the block at grid coordinates (per loop)."""
        flat = 0
        for c, s in zip(coords, self.splits, strict=True):
            flat = flat * s.parts + c
        return self.first + flat

    def ranges(self, coords: tuple[int, ...]) -> dict[str, tuple[int, int]]:
        """The closed range of each loop variable in one block."""
        out = {}
        for (var, lo, _), s, c in zip(self.loops, self.splits, coords, strict=True):
            out[var] = (lo + s.start(c), lo + s.start(c) + s.size(c) - 1)
        return out

    def box(self, access: Access, ranges: dict[str, tuple[int, int]]) -> Box:
        """The box of an access's view that one block touches (clamped: loads clamp)."""
        out = []
        for d, extent in enumerate(access.shape):
            lo, hi = extent, -1
            for index in access.indices:
                form = affine(index[d], self.aliases)
                found = None if form is None else bounds(form, ranges)
                a, b = (0, extent - 1) if found is None else found[0]
                lo = min(lo, max(0, min(a, extent - 1)))
                hi = max(hi, min(extent - 1, max(b, 0)))
            out.append((lo, hi + 1))
        return tuple(out)


def grid(extents: tuple[int, ...], tiles: int) -> tuple[int, ...]:
    """Blocks per loop: the busiest worker's iterations least, then the smallest halo."""
    if len(extents) == 1:
        return (min(extents[0], tiles),)
    rows, cols = extents
    best: tuple[tuple[int, int, int], tuple[int, int]] | None = None
    for by in range(1, min(rows, tiles) + 1):
        bx = min(cols, tiles // by)
        r, c = -(-rows // by), -(-cols // bx)
        key = (-(-r // WORKERS) * c, r + c, by * bx)
        if best is None or key < best[0]:
            best = (key, (by, bx))
    assert best is not None
    return best[1]


class BlockLowering:
    """Blocks of a parallel nest over tiles, one MultiVertex per tile (the forms' lowerings
    below say which nest a form is)."""

    def nest(self, form: object, sizes: dict[str, int]) -> Nest | str:
        """The nest of a form at these sizes, or why the form is not taken."""
        raise NotImplementedError

    def plan(self, task: Task, form: object, graph: TaskGraph, tiles: range) -> MapBlocks | str:
        nest = self.nest(form, task.size_env)
        if isinstance(nest, str):
            return nest
        static = set(task.kernel.sizes)
        sizes = task.size_env
        loops = []
        for lp in nest.loops:
            if not (is_static(lp.lo, static) and is_static(lp.hi, static)):
                return f"the bounds of loop '{lp.var}' depend on data"
            lo, hi = evaluate(lp.lo, sizes), evaluate(lp.hi, sizes)
            if hi <= lo:
                return f"loop '{lp.var}' is empty"
            loops.append((lp.var, lo, hi))
        aliases: dict[str, Affine] = {}
        for s in nest.body:
            if isinstance(s, ir.Let):
                found = affine(s.value, aliases)
                if found is not None:
                    aliases[s.name] = found
        accesses = []
        reads: dict[str, Region] = {}
        writes: dict[str, Region] = {}
        loads = [n for n in ir.walk_body(nest.body) if isinstance(n, ir.Load)]
        outputs = {p.name for p in task.kernel.outputs}
        position = {var: k for k, (var, _, _) in enumerate(loops)}
        for p in task.kernel.all_params:
            b = task.binding(p.name)
            if b.region is None:
                continue
            region = b.region
            if not all(region.keep) or len(region.view_shape) not in (1, 2):
                return f"'{p.name}' is not a whole 1-D or 2-D view of a tensor"
            stored = tuple(s.indices for s in nest.stores if s.tensor == p.name)
            loaded = tuple(ld.indices for ld in loads if ld.tensor == p.name)
            if not stored and not loaded:
                continue  # a parameter the body does not use is no field of the vertex
            if p.name in outputs:
                if not stored:
                    return f"it reads output '{p.name}' without writing it"
                if any(_key(i) != _key(stored[0]) for i in loaded):
                    return f"it reads output '{p.name}' at another element than it writes"
                plain = not loaded and all(s.op == "=" for s in nest.stores if s.tensor == p.name)
                direction = "Output" if plain else "InOut"
                writes[p.name] = region
            else:
                direction = "Input"
                reads[p.name] = region
            indices = stored + loaded
            follows = tuple(_follows(indices, d, aliases, position) for d in range(len(region.box)))
            accesses.append(Access(p.name, region, p.dtype, direction, indices, follows))
        for w, out in writes.items():
            for r, inp in reads.items():
                if out.overlaps(inp):
                    return f"it reads '{r}' and writes '{w}', views of one tensor (double buffering is not done)"  # noqa: E501
        parts = grid(tuple(hi - lo for _, lo, hi in loops), len(tiles))
        splits = tuple(Split(hi - lo, n) for (_, lo, hi), n in zip(loops, parts, strict=True))
        blocks = MapBlocks(nest, tuple(loops), splits, tiles[0], tuple(accesses), aliases, {})
        shapes = {t.name: t.shape for t in graph.tensors}
        for a in accesses:
            blocks.mappings[a.region.tensor] = _mapping(blocks, a, shapes[a.region.tensor])
        return blocks

    def lower(
        self, task: Task, form: object, blocks: MapBlocks, cls: str, step: int
    ) -> LoweredTask:
        names = Names()
        kernel = task.kernel
        fields: list[CodeletField] = []
        values: dict[str, str] = {}
        prologue: list[str] = []
        edges_of: list[Access | str] = []  # per edge field: a tensor access or a graph scalar
        used = {n.name for n in ir.walk_body(blocks.nest.body) if isinstance(n, ir.Name)}
        for p in kernel.all_params:
            b = task.binding(p.name)
            access = next((a for a in blocks.accesses if a.param == p.name), None)
            if b.region is not None and access is None:
                continue  # unused by the body
            name = names(p.name)
            if access is not None:
                kind = "list" if len(access.shape) == 2 else "vector"
                note = f"the block of {access.region}"
                if access.direction == "Input":
                    note = f"the box of {access.region} the block reads (halo included)"
                fields.append(CodeletField(name, kind, access.direction, p.dtype, note))
                edges_of.append(access)
                values[p.name] = name
            elif b.scalar is not None:
                fields.append(CodeletField(name, "scalar", "Input", p.dtype))
                edges_of.append(b.scalar)
                values[p.name] = f"(*{name})"
            elif p.name in used:  # a constant the specialised body no longer names is dropped
                prologue.append(
                    f"const {CPP_TYPE[p.dtype]} {name} = {literal(b.constant, p.dtype)};"
                )
                values[p.name] = name
        state: list[str] = []
        bounds_of: dict[str, tuple[str, str]] = {}
        for var, _, _ in blocks.loops:
            first, last = names.derived(f"{var}Begin"), names.derived(f"{var}End")
            bounds_of[var] = (first, last)
            state += [first, last]
            fields += [
                CodeletField(first, "state", "", DType.I32, f"the block's first '{var}'"),
                CodeletField(last, "state", "", DType.I32, f"the block's last '{var}' + 1"),
            ]
        bases: dict[str, tuple[str, ...]] = {}
        for a in blocks.accesses:
            suffixes = ("Row", "Col") if len(a.shape) == 2 else ("First",)
            bases[a.param] = tuple(names.derived(f"{values[a.param]}{s}") for s in suffixes)
            whats = ("row", "column") if len(a.shape) == 2 else ("element",)
            for d, (base, what) in enumerate(zip(bases[a.param], whats, strict=True)):
                note = f"the first {what} of the box of '{a.param}' (in the whole tensor)"
                origin = (values[a.param], d)
                fields.append(CodeletField(base, "state", "", DType.I32, note, origin))
        shapes = {a.param: a.shape for a in blocks.accesses}
        dtypes = {a.param: a.dtype for a in blocks.accesses}
        offsets = {a.param: tuple(lo for lo, _ in a.region.box) for a in blocks.accesses}
        gen = BlockCodelet(task.size_env, shapes, dtypes, names, values, bases=bases)
        gen.offsets = offsets
        for var, lo, hi in blocks.loops:
            gen.ranges[var] = (lo, hi - 1)
            gen.values[var] = names(var)
        body = list(prologue)
        pieces = blocks.nest.pieces
        clipped = [_clipped(names, blocks.loops, bounds_of, p.box, k) for k, p in enumerate(pieces)]
        for declarations, _ in clipped:
            body += declarations
        var = blocks.loops[0][0]
        v, (first, last) = gen.values[var], bounds_of[var]
        body.append(
            f"for (int {v} = {first} + int(workerId); {v} < {last}; {v} += int(numWorkers())) {{"
        )
        rows: dict[tuple[int, int] | None, list[int]] = {}  # the pieces sharing rows
        for k, piece in enumerate(pieces):
            rows.setdefault(piece.box[0] if piece.box else None, []).append(k)
        for group in rows.values():
            body += _rows(gen, blocks.loops, [(pieces[k], clipped[k][1], k) for k in group])
        body.append("}")
        instances = []
        fixed = {n: (v, v) for n, v in task.size_env.items()}
        for coords in _coords(blocks.splits):
            ranges = {**fixed, **blocks.ranges(coords)}
            edges, values_ = [], []
            for var, _, _ in blocks.loops:
                values_ += [ranges[var][0], ranges[var][1] + 1]
            for a in blocks.accesses:
                values_ += [lo for lo, _ in region_box(a.region, blocks.box(a, ranges))]
            for e in edges_of:
                if isinstance(e, str):
                    edges.append(Edge(e, ()))
                else:
                    box = blocks.box(e, ranges)
                    edges.append(Edge(e.region.tensor, region_box(e.region, box)))
            instances.append(Instance(blocks.tile(coords), tuple(edges), tuple(values_)))
        cuts = " x ".join(str(s.parts) for s in blocks.splits)
        first, last = blocks.first, blocks.first + blocks.tiles_used - 1
        describe = (
            f"form {blocks.nest.form}: {cuts} blocks of its iteration space, one MultiVertex "
            f"per tile (tiles {first}..{last}), {blocks.nest.how}"
        )
        note = f"form {blocks.nest.form}, one block per tile"
        codelet = Codelet(cls, True, tuple(fields), tuple(body), note)
        return LoweredTask(task, step, codelet, tuple(instances), describe, frozenset(gen.helpers))

    def cycles(self, lowered: LoweredTask) -> tuple[tuple[int, ...], ...]:
        task = lowered.task
        nest = self.nest(task.form, task.size_env)
        assert not isinstance(nest, str)
        weights = {
            p.name: 2 if len(task.binding(p.name).region.view_shape) == 2 else 1
            for p in task.kernel.all_params
            if task.binding(p.name).region is not None
        }
        scalars = {b.param for b in task.bindings if b.scalar is not None}
        counter = AccessCounter(task.size_env, scalars, weights)
        per_iteration = [counter.block(p.body) for p in nest.pieces]
        out = []
        for inst in lowered.instances:
            block = tuple(
                (inst.state[2 * d], inst.state[2 * d + 1]) for d in range(len(nest.loops))
            )
            work = [0.0] * WORKERS
            for piece, accesses in zip(nest.pieces, per_iteration, strict=True):
                box = piece.box or block
                (r0, r1), inner = _clip(block[0], box[0]), block[1:]
                cols = math.prod(max(0, hi - lo) for lo, hi in map(_clip, inner, box[1:]))
                for w in range(WORKERS):
                    rows = sum(
                        1 for r in range(block[0][0] + w, block[0][1], WORKERS) if r0 <= r < r1
                    )
                    work[w] += rows * cols * accesses
            out.append(tuple(instructions(n) for n in work))
        return tuple(out)


class MapLowering(BlockLowering):
    """A Map's blocks; its guarded pieces (the interior and borders of a stencil) run one
    after another in each row of the block, each over its window of the row, so no element
    tests a guard and the interior's loads need no clamping."""

    def nest(self, form: object, sizes: dict[str, int]) -> Nest | str:
        assert isinstance(form, Map)
        if len(form.loops) > 2:
            return f"a nest of {len(form.loops)} loops (the tile lowering takes one or two)"
        how = "halos connected from the neighbours' blocks"
        if len(form.pieces) == 1:
            return Nest("Map", form.loops, (Window(None, _used(form.pieces[0])),), how)
        pieces = tuple(sorted((Window(p.bounds(sizes), _used(p)) for p in form.pieces), key=_at))
        how += f", {len(pieces)} guarded pieces each over its window of the block"
        return Nest("Map", form.loops, pieces, how)


class ReductionLowering(BlockLowering):
    """The kept index spread over tiles (its rows, or columns, in blocks), the six workers of
    a tile taking the block's kept indices in turn; each fold runs whole on its worker, in the
    language's order, so the result is the sequential one."""

    def nest(self, form: object, sizes: dict[str, int]) -> Nest | str:
        assert isinstance(form, Reduction)
        if form.loop is None:
            return "a fold with no kept index (nothing to spread over tiles)"
        body = ir.without_unused_locals(form.loop.body)
        how = f"each '{form.kept}' (the kept index) folded whole by one worker"
        return Nest("Reduction", (form.loop,), (Window(None, body),), how)


@dataclass
class BlockCodelet(ScalarCodelet):
    """A Map body over one block: elements are reached through the box each field holds."""

    bases: dict[str, tuple[str, ...]] | None = None  # per param: its box's origin fields
    offsets: dict[str, tuple[int, ...]] | None = None  # per param: its view's origin

    def element(self, tensor: str, idx: list[str]) -> str:
        assert self.bases is not None and self.offsets is not None
        parts = "".join(
            f"[{_offset(i, off, base)}]"
            for i, off, base in zip(idx, self.offsets[tensor], self.bases[tensor], strict=True)
        )
        return f"{self.values[tensor]}{parts}"


def _offset(index: str, offset: int, base: str) -> str:
    """A view index made an index into the box that starts at ``base`` of the whole tensor."""
    inner = index[1:-1] if index.startswith("(") and index.endswith(")") else index
    if not all(ch.isalnum() or ch in "_ +-*" for ch in inner):
        inner = index
    return f"{inner} + {offset} - {base}" if offset else f"{inner} - {base}"


def _used(piece: Piece) -> tuple[ir.Stmt, ...]:
    return ir.without_unused_locals(piece.body)


def _at(piece: Window) -> tuple[tuple[int, int], ...]:
    """Pieces in the order of their boxes: rows first, then columns (they are disjoint)."""
    assert piece.box is not None
    return piece.box


def _clip(block: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    return max(block[0], box[0]), min(block[1], box[1])


def _clipped(
    names: Names,
    loops: tuple[tuple[str, int, int], ...],
    bounds_of: dict[str, tuple[str, str]],
    box: tuple[tuple[int, int], ...] | None,
    k: int,
) -> tuple[list[str], list[tuple[str, str]]]:
    """A piece's window of the block in the inner loop: its declarations (computed once, before
    the rows) and the bounds of the inner loop."""
    lines, inner = [], []
    for d, (var, lo, hi) in enumerate(loops[1:], start=1):
        first, last = bounds_of[var]
        if box is not None and box[d][0] > lo:
            name = names.derived(f"{first}{k + 1}")
            lines.append(f"const int {name} = {first} > {box[d][0]} ? {first} : {box[d][0]};")
            first = name
        if box is not None and box[d][1] < hi:
            name = names.derived(f"{last}{k + 1}")
            lines.append(f"const int {name} = {last} < {box[d][1]} ? {last} : {box[d][1]};")
            last = name
        inner.append((first, last))
    return lines, inner


def _rows(
    gen: BlockCodelet,
    loops: tuple[tuple[str, int, int], ...],
    group: list[tuple[Window, list[tuple[str, str]], int]],
) -> list[str]:
    """The pieces that share rows, inside the rows loop: those rows tested (where the pieces
    have fewer than the nest), then each piece's inner loop over its window and its body, with
    the indices' ranges narrowed to the piece (its loads are proven in range, so unclamped)."""
    full = tuple((lo, hi) for _, lo, hi in loops)
    var, lo, hi = loops[0]
    (first, last), v = (group[0][0].box or full)[0], gen.values[var]
    tests = ([f"{v} >= {first}"] if first > lo else []) + ([f"{v} < {last}"] if last < hi else [])
    out, outer = [], "  "
    if tests:
        out.append(f"{outer}if ({' && '.join(tests)}) {{")
        outer += "  "
    for piece, inner, k in group:
        box = piece.box or full
        if piece.box is not None:
            out.append(f"{outer}// piece {k + 1}: {_describe(loops, box)}")
        indent = outer
        for (var, _, _), (begin, end) in zip(loops[1:], inner, strict=True):
            v = gen.values[var]
            out.append(f"{indent}for (int {v} = {begin}; {v} < {end}; ++{v}) {{")
            indent += "  "
        saved = dict(gen.ranges)
        gen.ranges.update({var: (a, b - 1) for (var, _, _), (a, b) in zip(loops, box, strict=True)})
        out += gen.block(piece.body, indent)
        gen.ranges = saved
        while indent != outer:
            indent = indent[:-2]
            out.append(f"{indent}}}")
    if tests:
        out.append("  }")
    return out


def _describe(loops: tuple[tuple[str, int, int], ...], box: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(
        f"{var} in {lo} .. {hi - 1}" for (var, _, _), (lo, hi) in zip(loops, box, strict=True)
    )


def _key(indices: tuple[ir.Expr, ...]) -> tuple[str, ...]:
    return tuple(repr(i) for i in indices)


def _follows(
    indices: tuple[tuple[ir.Expr, ...], ...],
    d: int,
    aliases: dict[str, Affine],
    position: dict[str, int],
) -> int | None:
    """The loop whose cut dimension ``d`` follows: every access indexes it ``loop + c``."""
    found: set[str] = set()
    for index in indices:
        form = affine(index[d], aliases)
        if form is None or len(form.terms) != 1 or form.terms[0][1] != 1:
            return None
        found.add(form.terms[0][0])
    if len(found) != 1 or next(iter(found)) not in position:
        return None
    return position[next(iter(found))]


def _coords(splits: tuple[Split, ...]) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = [()]
    for s in splits:
        out = [c + (k,) for c in out for k in range(s.parts)]
    return out


def _shift(a: Access, d: int, aliases: dict[str, Affine]) -> int:
    """The constant every access adds to its loop in dimension ``d`` (``a[i + 16]`` of a
    team's rebased nest: 16), so the block read lives with its reader; 0 when they differ (a
    stencil's halo)."""
    consts = set()
    for index in a.indices:
        form = affine(index[d], aliases)
        consts.add(None if form is None else form.const)
    return consts.pop() if len(consts) == 1 and None not in consts else 0


def _mapping(blocks: MapBlocks, a: Access, shape: tuple[int, ...]) -> TileMap:
    """The tensor's blocks: dimensions that follow a loop cut as it is, the rest whole (on the
    tiles of the first block along the loops no dimension follows)."""
    cuts = []
    for d, extent in enumerate(a.shape):
        k = a.follows[d]
        if k is None:
            cuts.append((0, extent))
            continue
        _, lo, _ = blocks.loops[k]
        lo += _shift(a, d, blocks.aliases)
        cuts.append(tuple(min(extent, max(0, lo + b)) for b in blocks.splits[k].bounds))
    placed = spread(a.region, shape, tuple(cuts))
    core = tuple((lo + c[0], lo + c[-1]) for (lo, _), c in zip(a.region.box, cuts, strict=True))
    tiles = []
    for block in itertools.product(*(range(len(c) - 1) for c in placed)):
        coords = [0] * len(blocks.loops)
        for d, k in enumerate(a.follows):
            if k is not None:
                coords[k] = block[d]
        tiles.append(blocks.tile(tuple(coords)))
    return TileMap(placed, tuple(tiles), core)
