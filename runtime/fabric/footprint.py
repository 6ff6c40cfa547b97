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
HEADROOM = 0.9  # of the available memory a simulation may plan to use
FABRICS = 2  # `kernelc run` sets the whole fabric up twice: the cslc stand-in's check, in the
# kernelc process (whose heap keeps its peak), and run.py's simulation in a child process


def host_bytes(pes: int, array_bytes_per_pe: int) -> int:
    """The run's estimated peak host memory for ``pes`` PEs."""
    return FABRICS * pes * (array_bytes_per_pe + PE_STATE_BYTES)


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
        f"({array_bytes_per_pe:,} bytes of arrays and about {PE_STATE_BYTES // 1000} KB of "
        f"simulator state per PE, in the check and in the run); this machine has "
        f"{available / 2**30:.1f} GiB available"
    )
