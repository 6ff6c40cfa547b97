"""The GroqChip (TSP) figures the emulator enforces and its cycle model uses.

Sources are in shared/reference/groq.md §11; "observed" figures are pipeline depths users wrote
into public code after reading GroqView (order of magnitude only), "assumed" ones are ours.
"""

from __future__ import annotations

CLOCK_HZ = 900_000_000  # nominal clock (groqflow's estimator, ALCF docs)
LANES = 320  # elements of one vector: 20 superlanes x 16 lanes
SUPERLANES = 20
HEMISPHERES = ("W", "E")
SLICES_PER_HEMISPHERE = 44
BANKS_PER_SLICE = 2
ADDRESSES_PER_BANK = 4096
ADDRESSES_PER_SLICE = BANKS_PER_SLICE * ADDRESSES_PER_BANK  # 8192 vectors of 320 bytes
VECTOR_BYTES = 320
SLICE_BYTES = ADDRESSES_PER_SLICE * VECTOR_BYTES  # 2.5 MiB
RESERVED_SLICES = {"W": frozenset({16, 20, 24, 28, 38}), "E": frozenset({16, 20, 24, 28})}
CHIP_BYTES = len(HEMISPHERES) * SLICES_PER_HEMISPHERE * SLICE_BYTES  # 220 MiB


def usable_slices(hemisphere: str) -> tuple[int, ...]:
    return tuple(s for s in range(SLICES_PER_HEMISPHERE) if s not in RESERVED_SLICES[hemisphere])


# MXM: four 320 x 320 planes, 0-1 West, 2-3 East; fp16 takes a pair, int8 one plane.
MXM_PLANES = {0: "W", 1: "W", 2: "E", 3: "E"}
MXM_BLOCK = 320  # a weight block is 320 x 320
MXM_INSTALL_INT8 = 20  # cycles to install one weight block over 16 streams (matmul_i8.py)
MXM_INSTALL_FP16 = 40  # two byte planes, twice the int8 install (assumed)
MXM_ROW_CYCLES = {"int8": 1, "float16": 2}  # activation rows per cycle (calibration, §11)
MXM_LATENCY = 13  # multiply pipeline (observed)
MXM_ACCUMULATE_LATENCY = 34  # accumulation through the VXM across K passes (observed)
MXM_WARMUP = 22  # arith_mode_warmup / clear_mxm: 20 to clear, 2 to load (matmul_i8.py)

# VXM: 16 ALUs per lane; one vector per ALU per cycle once a chain is full.
VXM_ALUS = 16
VXM_LATENCY = 3  # cycles entering an ALU (observed)
# SXM: lane shifts on the permutors (request ids 0-1 in user code), one vector per cycle each.
SXM_PERMUTORS = 2
SXM_LATENCY = 9  # cycles to cross the SXM (observed)
STREAM_HOP_LATENCY = 10  # stream-register hops from memory to the VXM (observed)
MEM_LATENCY = 6  # a memory read's first vector leaves the slice (observed: leaving the SXM)
MEM_WRITE_LATENCY = 6  # assumed equal to the read latency

# Host link (groqflow's estimator): 24 GB/s and 10 us each way.
HOST_BYTES_PER_S = 24e9
HOST_LATENCY_S = 10e-6

# Bytes per element of each Groq API dtype; element types the units take.
DTYPE_BYTES = {
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
}
MXM_DTYPES = frozenset({"int8", "float16"})
VXM_DTYPES = frozenset({"int8", "int16", "int32", "float16", "float32"})
