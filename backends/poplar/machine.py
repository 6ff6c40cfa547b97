"""IPU figures (shared/reference/poplar.md §5): Mk2 GC200 and Bow, one IPU each."""

from __future__ import annotations

from dataclasses import dataclass

from kernelc.diagnostics import KernelcError, Span


@dataclass(frozen=True)
class Arch:
    name: str
    sdk_target: str  # popc --target and IPUModel(...) name
    tiles: int
    tile_memory: int  # bytes of SRAM per tile
    workers: int  # worker contexts per tile
    clock_hz: float
    exchange_bytes_per_cycle: int  # per tile (Target::getExchangeBytesPerCycle on ipu2)
    sync_cycles: int  # one global sync, as poplibs' planners assume


WORKERS = 6  # worker contexts per tile, the same on Mk2 GC200 and Bow (MultiVertex workers)

GC200 = Arch("gc200", "ipu2", 1472, 624 * 1024, WORKERS, 1.33e9, 4, 90)
BOW = Arch("bow", "ipu2", 1472, 624 * 1024, WORKERS, 1.85e9, 4, 90)
ARCHS = {a.name: a for a in (GC200, BOW)}


def arch(name: str | None, span: Span | None = None) -> Arch:
    if name is None:
        return GC200
    if name not in ARCHS:
        raise KernelcError(
            f"unknown IPU '{name}'; available: {', '.join(ARCHS)}",
            span or Span("<command line>", 1, 1),
        )
    return ARCHS[name]
