"""Block decompositions of tensors over a processor grid (csl PEs, IPU tiles), and what each
processor stores of a tensor.

A tensor dimension is either kept whole on every PE or split over one grid axis ("x" columns,
"y" rows, or "xy": the PEs in row-major order) into near-equal blocks: the first ``n % p`` blocks
are one element longer, so sizes that do not divide the grid are handled without padding the
problem. A split dimension may carry a halo (elements owned by the neighbouring PEs that this PE
also stores). Every PE allocates the largest block (plus halo) so that all PEs share one memory
layout and the host can move equal-length pieces with one memcpy.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernelc.forms.bands import Bands
from kernelc.types import DType


@dataclass(frozen=True)
class Split:
    """``n`` elements in ``parts`` near-equal blocks."""

    n: int
    parts: int

    def size(self, i: int) -> int:
        return self.n // self.parts + (1 if i < self.n % self.parts else 0)

    def start(self, i: int) -> int:
        return i * (self.n // self.parts) + min(i, self.n % self.parts)

    @property
    def largest(self) -> int:
        return -(-self.n // self.parts)

    @property
    def smallest(self) -> int:
        return self.n // self.parts

    @property
    def bounds(self) -> tuple[int, ...]:
        return tuple(self.start(i) for i in range(self.parts + 1))


@dataclass(frozen=True)
class DimMap:
    """How one tensor dimension is placed: whole, or split over a grid axis with a halo.

    Usually there is one block per PE along the axis. With ``slots`` > 1 there are more blocks
    than PEs: block k goes to PE k mod P in slot k // P (SUMMA's B panels over the rows). With
    ``div`` > 1, groups of ``div`` neighbouring PEs along the axis share block k (PE index // div);
    a dimension with ``bands`` is cut into energy bands (banding.py): PE index % bands.count.
    """

    extent: int
    axis: str | None = None  # None (whole), "x", "y" or "xy"
    split: Split | None = None
    halo: tuple[int, int] = (0, 0)
    slots: int = 1
    div: int = 1
    bands: Bands | None = None

    @property
    def local(self) -> int:
        """Elements of this dimension every PE allocates."""
        if self.bands is not None:
            return self.bands.local
        if self.split is None:
            return self.extent
        return self.slots * self.split.largest + self.halo[0] + self.halo[1]


@dataclass(frozen=True)
class Layout:
    """Placement of a whole tensor: one DimMap per dimension (row-major local storage)."""

    tensor: str
    dtype: DType
    dims: tuple[DimMap, ...]

    @property
    def local_shape(self) -> tuple[int, ...]:
        return tuple(d.local for d in self.dims)

    @property
    def local_size(self) -> int:
        size = 1
        for n in self.local_shape:
            size *= n
        return size

    @property
    def local_bytes(self) -> int:
        return self.local_size * self.dtype.numpy.itemsize

    @property
    def pitches(self) -> tuple[int, ...]:
        """Row-major element strides of the local array."""
        out, acc = [], 1
        for n in reversed(self.local_shape):
            out.append(acc)
            acc *= n
        return tuple(reversed(out))

    def split_dims(self) -> list[int]:
        return [i for i, d in enumerate(self.dims) if d.split is not None]

    def same_placement(self, other: Layout) -> bool:
        """Whether two layouts put every element on the same PE (halos may differ)."""
        return len(self.dims) == len(other.dims) and all(
            (a.axis, a.split, a.slots, a.div, a.bands) == (b.axis, b.split, b.slots, b.div, b.bands)
            for a, b in zip(self.dims, other.dims, strict=True)
        )

    def with_halo(self, dim: int, halo: tuple[int, int]) -> Layout:
        dims = list(self.dims)
        old = dims[dim]
        dims[dim] = DimMap(
            old.extent,
            old.axis,
            old.split,
            (max(old.halo[0], halo[0]), max(old.halo[1], halo[1])),
            old.slots,
            old.div,
            old.bands,
        )
        return Layout(self.tensor, self.dtype, tuple(dims))
