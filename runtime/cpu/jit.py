"""JIT-compile optimised LLVM IR in-process and expose each task entry as a ctypes function.

ctypes releases the GIL for the duration of a foreign call, so Python threads calling the same
entry on different row ranges run truly in parallel.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

import llvmlite.binding as llvm

from kernelc.backends.cpu.machine import new_target_machine

ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
SHARES = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class JitModule:
    """One MCJIT engine holding one compiled module; kept alive as long as its functions.

    ``functions`` maps each task symbol to its worker loop (``<symbol>_shares``).
    """

    def __init__(self, llvm_ir: str, symbols: Iterable[str]) -> None:
        module = llvm.parse_assembly(llvm_ir)
        self._engine = llvm.create_mcjit_compiler(module, new_target_machine())
        self._engine.finalize_object()
        address = self._engine.get_function_address
        self.entries = {s: ENTRY(address(s)) for s in symbols}
        self.functions = {s: SHARES(address(s + "_shares")) for s in symbols}
