"""The host memory a simulation takes, checked before it starts.

The simulator keeps every PE's arrays and its own state per PE in this process: a plan of
hundreds of thousands of PEs (the wafer-wide XS lookup at its default sizes) would run for many
minutes and then be killed for memory. Checking first turns that into an error that says what
to change.
"""

from __future__ import annotations

from pathlib import Path

PE_STATE_BYTES = 18_000  # simulator state per PE beyond its arrays: measured 2026-12-04 on
# Sobel, 40x40 against 80x80 PEs (the peak resident size grows 18.3 KB per PE)
LANE_BYTES = 3_000  # a PE's share of a lockstep run (runtime/fabric/lockstep.py): its clocks,
# its locals as lane values, its rows of the gathered operands, its handed-over frame; its
# arrays are rows of the per-file stores, which replace the per-PE arrays rather than copy them.
# Measured 2026-12-05: `kernelc check` of XS at L=20000 on 644 x 112 PEs peaked at 7,406,136
# KiB resident (105 KB per PE, the process's own memory included) for 40,940 bytes of arrays
# per PE; this estimate gives 102.9 KB per PE
HOST_COPIES = 2  # the fabric's arrays once (`kernelc run` and `check` hand the cslc stand-in's
# fabric to run.py in the same process), and run.py's host buffers of what it copies in, which
# hold at most as much (replicated tables: one block per PE)
HEADROOM = 0.9  # of the available memory a simulation may plan to use


def host_bytes(pes: int, array_bytes_per_pe: int) -> int:
    """The run's estimated peak host memory for ``pes`` PEs."""
    return pes * (HOST_COPIES * array_bytes_per_pe + PE_STATE_BYTES + LANE_BYTES)


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The memory the kernel says is available to a new process; None where it does not say."""
    try:
        text = meminfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def too_big(pes: int, array_bytes_per_pe: int, available: int | None) -> str | None:
    """Why a simulation of this size should not start here, or None when it fits."""
    need = host_bytes(pes, array_bytes_per_pe)
    if available is None or need <= HEADROOM * available:
        return None
    return (
        f"simulating {pes:,} PEs needs about {need / 2**30:.1f} GiB of host memory "
        f"({array_bytes_per_pe:,} bytes of arrays, as much again in the host's buffers, and "
        f"about {(PE_STATE_BYTES + LANE_BYTES) // 1000} KB of simulator state per PE); this "
        f"machine has "
        f"{available / 2**30:.1f} GiB available"
    )
