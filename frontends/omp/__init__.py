"""The OpenMP frontend: C kernels with ``#pragma omp`` pragmas, lowered to a static task graph."""

from kernelc.frontends.omp.parser import parse

__all__ = ["parse"]
