"""Layout strings and the memory plan: which MEM slices each tensor takes, and whether it fits.

A layout names a hemisphere (``H1(W)``/``H1(E)``), the vector dimension (``-1``) and a slice
count ``Sn`` with an optional range list (``S16(4-38)``). A multi-byte element takes one slice per
byte (one byte plane each), so ``n`` must be a multiple of the element's bytes. As with the Groq
compiler's default, different tensors take different slices (slice-exclusive allocation), so a
program runs out of slices as well as of addresses.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import chip
from .errors import fail

_PART = re.compile(r"^(?:H1\((?P<h>[WE])\)|H2|-1|S(?P<n>\d+)(?:\((?P<r>[\d,\-\s]+)\))?|B1\(\d\))$")


@dataclass(frozen=True)
class Layout:
    text: str
    hemisphere: str | None  # None: H2 or unspecified (either)
    slices: int
    ranges: tuple[int, ...] | None  # the allowed slice numbers, when given


def parse_layout(text: str, where: str | None = None) -> Layout:
    hemisphere, slices, allowed = None, None, None
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        match = _PART.match(part)
        if match is None:
            raise fail(f"layout '{text}': '{part}' is no layout dimension", where)
        if match.group("h"):
            hemisphere = match.group("h")
        if match.group("n"):
            slices = int(match.group("n"))
            if match.group("r"):
                allowed = tuple(_ranges(match.group("r")))
    if slices is None or slices < 1:
        raise fail(f"layout '{text}' names no slice count (Sn)", where)
    if allowed is not None and len(allowed) < slices:
        raise fail(f"layout '{text}': S{slices} from a range of {len(allowed)} slices", where)
    return Layout(text, hemisphere, slices, allowed)


def _ranges(text: str) -> list[int]:
    out: list[int] = []
    for item in text.split(","):
        lo, _, hi = item.strip().partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def addresses(shape: tuple[int, ...], dtype: str, slices: int) -> int:
    """Addresses per slice a tensor needs: every 320-lane piece of a row, one per byte plane."""
    rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
    pieces = rows * math.ceil(shape[-1] / chip.LANES) * chip.DTYPE_BYTES[dtype]
    return math.ceil(pieces / slices)


def check_fits(name: str, shape, dtype: str, layout: Layout, where: str | None = None) -> None:
    size = chip.DTYPE_BYTES[dtype]
    nbytes = math.prod(shape) * size
    what = f"tensor '{name}' ({dtype}{list(shape)}, {nbytes:,} bytes)"
    if layout.slices % size:
        raise fail(
            f"{what}: layout '{layout.text}' has {layout.slices} slices; a {size}-byte element "
            f"needs a multiple of {size} (one slice per byte plane)",
            where,
        )
    need = addresses(shape, dtype, layout.slices)
    if need > chip.ADDRESSES_PER_SLICE:
        raise fail(
            f"{what} does not fit its layout '{layout.text}': it needs {need:,} addresses per "
            f"slice and a slice has {chip.ADDRESSES_PER_SLICE:,}",
            where,
        )


def allocate(tensors: list[tuple[str, Layout, str]]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Slice-exclusive placement in program order: name -> (hemisphere, slices).

    ``tensors`` holds (name, layout, where); a tensor no hemisphere has free slices for is an
    error naming it and what is left.
    """
    free = {h: list(chip.usable_slices(h)) for h in chip.HEMISPHERES}
    placed: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, layout, where in tensors:
        choices = (
            [layout.hemisphere]
            if layout.hemisphere
            else sorted(chip.HEMISPHERES, key=lambda h: -len(free[h]))
        )
        for h in choices:
            pool = [s for s in free[h] if layout.ranges is None or s in layout.ranges]
            if layout.ranges is not None:
                reserved = sorted(set(layout.ranges) & chip.RESERVED_SLICES[h])
                if reserved:
                    raise fail(
                        f"tensor '{name}': layout '{layout.text}' names reserved slices "
                        f"{reserved} of hemisphere {h}",
                        where,
                    )
            if len(pool) >= layout.slices:
                taken = tuple(pool[: layout.slices])
                free[h] = [s for s in free[h] if s not in taken]
                placed[name] = (h, taken)
                break
        else:
            left = ", ".join(f"{h}: {len(free[h])}" for h in chip.HEMISPHERES)
            raise fail(
                f"tensor '{name}' needs {layout.slices} MEM slices ({layout.text}) and no "
                f"hemisphere has them free (free slices {left}; tensors are slice-exclusive)",
                where,
            )
    return placed
