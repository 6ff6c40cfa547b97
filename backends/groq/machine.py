"""The GroqChip (TSP) as the groq backend plans for it.

The figures themselves (clock, 320-lane vectors, 2 x 44 MEM slices of 8192 addresses x 320
bytes = 220 MiB, reserved slices, MXM planes and dtypes, unit latencies) are the emulator's
(``kernelc.runtime.tsp.chip``), so that the plan and the machine that checks it cannot disagree;
this module adds what the emitter chooses: layouts and the slice budget of a plan.
"""

from __future__ import annotations

import math

from kernelc.runtime.tsp import chip
from kernelc.runtime.tsp.chip import (
    CLOCK_HZ,
    DTYPE_BYTES,
    LANES,
    MXM_BLOCK,
    SLICE_BYTES,
    usable_slices,
)

__all__ = [
    "CHIP",
    "CLOCK_HZ",
    "DTYPE_BYTES",
    "LANES",
    "MXM_BLOCK",
    "SLICE_BYTES",
    "WEIGHT_SLICES",
    "chip",
    "slices_for",
    "usable_slices",
]

CHIP = "GroqChip1 (TSP v1)"
WEIGHT_SLICES = 16  # matmul weights in S16: one hemisphere, slice concurrency (matmul_i8.py)


def slices_for(shape: tuple[int, ...], dtype: str, least: int = 1) -> int:
    """The fewest slices (a multiple of the element's bytes, at least ``least``) that hold a
    tensor: every 320-lane piece of a row takes one address per byte plane."""
    size = DTYPE_BYTES[dtype]
    rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
    pieces = rows * math.ceil(shape[-1] / LANES) * size
    n = size * math.ceil(pieces / (size * chip.ADDRESSES_PER_SLICE))
    return max(n, least)
