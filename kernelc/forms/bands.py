"""Energy bands: one table dimension cut along the binary-search tree of ``search``.

``search`` probes a fixed implicit tree: the root probes the middle of [0, n), a probe at
``mid`` leaves [lo, mid) or [mid + 1, hi). Cutting that tree at depth ``d`` gives 2**d
contiguous bands (the subtrees) separated by the 2**d - 1 top probe points. A PE that stores
the top probe points (in heap order) and one band, widened by one point on each side, can
replay the search exactly (the same probes, so also on unsorted data): every PE walks the top
levels, and only the PE whose band the walk reaches probes further and owns the bracket
``(lo, lo + 1)``. The widening supplies both bracket points: the result ``clamp(hi - 1, 0,
n - 2)`` of a walk that ends in band [a, b) lies in [a - 1, b - 1], clamped into the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Bands:
    """The bands of one dimension of ``extent`` points, cut at tree depth ``depth``."""

    extent: int
    depth: int
    tree: tuple[int, ...]  # the top probe points, heap order (children of k: 2k + 1, 2k + 2)
    stored: tuple[tuple[int, int], ...]  # per band: the points it stores, [first, last + 1)

    @property
    def count(self) -> int:
        return len(self.stored)

    @property
    def local(self) -> int:
        """Points every PE allocates: the top probe points, then the longest stored band."""
        return len(self.tree) + max(b - a for a, b in self.stored)


@lru_cache(maxsize=256)
def cut(extent: int, depth: int) -> Bands | None:
    """The bands at ``depth``, or None where some band would be empty (too few points)."""
    if depth < 1 or extent < 3:
        return None
    tree = [0] * ((1 << depth) - 1)
    level = [(0, extent)]
    for d in range(depth):
        below = []
        for k, (lo, hi) in enumerate(level):
            if hi <= lo:
                return None
            mid = lo + (hi - lo) // 2
            tree[(1 << d) - 1 + k] = mid
            below += [(lo, mid), (mid + 1, hi)]
        level = below
    if any(hi <= lo for lo, hi in level):
        return None
    stored = tuple((max(lo - 1, 0), min(hi + 1, extent)) for lo, hi in level)
    return Bands(extent, depth, tuple(tree), stored)
