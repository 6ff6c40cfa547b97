"""The slice-exclusive MEM plan: every memory tensor takes whole slices of one hemisphere."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kernelc.backends.groq import machine
from kernelc.diagnostics import Span, Unsupported


@dataclass
class Budget:
    """The slice-exclusive memory plan: slices left per hemisphere."""

    free: dict[str, int] = field(
        default_factory=lambda: {h: len(machine.usable_slices(h)) for h in ("W", "E")}
    )
    # name -> (layout, bytes, bytes used in each of its slices)
    taken: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def take(
        self,
        name: str,
        shape,
        dtype: str,
        span: Span,
        least: int = 1,
        hemi: str = "",
        slices: int | None = None,
    ) -> str:
        """Slices for a memory tensor (``slices``: exactly that many, where the hardware fixes
        them), in the emptier hemisphere unless ``hemi`` is given."""
        n = machine.slices_for(shape, dtype, least) if slices is None else slices
        nbytes = math.prod(shape) * machine.DTYPE_BYTES[dtype]
        choices = [hemi] if hemi else sorted(self.free, key=lambda h: (-self.free[h], h))
        for h in choices:
            if self.free[h] >= n:
                self.free[h] -= n
                return self.record(name, f"H1({h}), -1, S{n}", shape, dtype)
        left = ", ".join(f"{h} {self.free[h]}" for h in sorted(self.free))
        raise Unsupported(  # a valid program, too big for this chip
            f"groq: tensor '{name}' ({dtype}{list(shape)}, {nbytes:,} bytes) does not fit the "
            f"GroqChip's memory: it needs {n} MEM slices of {machine.SLICE_BYTES:,} bytes "
            f"{'in hemisphere ' + hemi if hemi else 'in one hemisphere'} and {left} are free "
            f"(220 MiB in all, slice-exclusive tensors)",
            span,
        )

    def record(self, name: str, layout: str, shape, dtype: str) -> str:
        """Note a memory tensor's layout, bytes and bytes per slice (for the report)."""
        n = int(layout.rsplit("S", 1)[1])
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        planes = rows * math.ceil(shape[-1] / machine.LANES) * machine.DTYPE_BYTES[dtype]
        nbytes = math.prod(shape) * machine.DTYPE_BYTES[dtype]
        self.taken[name] = (layout, nbytes, math.ceil(planes / n) * machine.chip.VECTOR_BYTES)
        return layout
