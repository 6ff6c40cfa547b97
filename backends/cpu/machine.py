"""The host CPU as the cpu target sees it: LLVM target machine, vector width, cores, GEMM tiles.

The target machine is created for the host CPU name and feature string, so LLVM's loop and SLP
vectorisers (which ask the target for its register width) use the widest vectors the host has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import llvmlite.binding as llvm


@dataclass(frozen=True)
class Machine:
    """Figures of the host that code generation and the runtime depend on."""

    triple: str
    cpu: str
    features: str
    cores: int
    vector_bits: int  # widest float vector register: 512 (AVX-512), 256 (AVX2) or 128

    @property
    def lanes(self) -> int:
        """f32 lanes of one vector register."""
        return self.vector_bits // 32

    @property
    def gemm_tile(self) -> tuple[int, int]:
        """Register tile (rows, columns) of the GEMM micro-kernel.

        Rows x column-vectors accumulators must leave registers for the B vectors and the
        broadcast A value: 8 x 2 of 32 registers with AVX-512, 6 x 2 of 16 otherwise.
        """
        return (8, 2 * self.lanes) if self.vector_bits == 512 else (6, 2 * self.lanes)


def _initialise() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


@cache
def host() -> Machine:
    _initialise()
    features = llvm.get_host_cpu_features()
    if features.get("avx512f"):
        width = 512
    elif features.get("avx2") or features.get("avx"):
        width = 256
    else:
        width = 128
    return Machine(
        triple=llvm.get_process_triple(),
        cpu=llvm.get_host_cpu_name(),
        features=features.flatten(),
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        vector_bits=width,
    )


def new_target_machine(pic: bool = False) -> llvm.TargetMachine:
    """An O3 target machine for the host CPU (position-independent for object files).

    A fresh one per JIT engine: MCJIT takes ownership of its target machine and frees it with
    the engine, so engines must never share one.
    """
    m = host()
    target = llvm.Target.from_triple(m.triple)
    return target.create_target_machine(
        cpu=m.cpu,
        features=m.features,
        opt=3,
        reloc="pic" if pic else "default",
        codemodel="default" if pic else "jitdefault",
        jit=not pic,
    )


@cache
def target_machine(pic: bool = False) -> llvm.TargetMachine:
    """The shared target machine for optimisation and object emission (never given to MCJIT)."""
    return new_target_machine(pic)
