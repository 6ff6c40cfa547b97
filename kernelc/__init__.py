"""kernelc: write a kernel once, run it on CPUs and AI accelerators.

import kernelc as kc
prog = kc.load("examples/sobel.k", params={"H": 64, "W": 48})
out = kc.run(prog, "interp", {"img": image})["mag"]
"""

from kernelc.api import Program, build, interpret, load, loads, run, run_with_stats
from kernelc.artifact import Artifact
from kernelc.diagnostics import KernelcError, Unsupported
from kernelc.version import VERSION as __version__

__all__ = [
    "Artifact",
    "KernelcError",
    "Program",
    "Unsupported",
    "__version__",
    "build",
    "interpret",
    "load",
    "loads",
    "run",
    "run_with_stats",
]
