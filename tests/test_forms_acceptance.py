"""Issue 9's acceptance on csl, with default options (``--grid auto``): the kernels of the issue
(the conformance forms at larger sizes, and variants) and the GEMM, Sobel and PCA examples run on
more than one PE, match their independent NumPy references, model at least 4x fewer cycles than
the same graph as scalar tasks (the fallback), and the modelled cycles are within ACCEPT of the
fabric simulator's.

The lookup's trip counts depend on its data (materials of 4 to 34 nuclides); its model counts
the emitted code and takes the slowest row's trips (kernelc/csl/charges.py, csl/lookup.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from conformance import cases as c
from test_conformance import assert_matches

import kernelc as kc
from kernelc.backends.csl import cost, lower
from kernelc.cli import main
from kernelc.csl import machine

ACCEPT = 0.15  # |modelled - simulated| / simulated, the figure
FASTER = 4  # the scalar fallback must model at least this many times the cycles


@dataclass(frozen=True)
class Kernel:
    name: str
    source: Path
    params: dict[str, int]
    inputs: object  # rng -> inputs
    reference: object  # inputs -> {output: (array, rtol)}

    def __str__(self) -> str:
        return self.name


def _heat(n: int, m: int, source: str = "heat.k", dtype=np.float32, ref=c._heat) -> Kernel:
    return Kernel(
        f"{source[:-2]}_{n}x{m}",
        c.CONF / source,
        {"N": n, "M": m},
        c._heat_inputs(n, m, dtype),
        ref,
    )


def _dense(r: int, i: int, o: int, source: str = "dense.k") -> Kernel:
    dtype = np.float16 if "f16" in source else np.float32

    def draw(rng):
        x = c._f({"x": (r, i), "w": (i, o)})(rng)
        return {**{k: v.astype(dtype) for k, v in x.items()}, "b": c.uniform(rng, o)}

    return Kernel(f"{source[:-2]}_{r}x{i}x{o}", c.CONF / source, {"R": r, "I": i, "O": o}, draw,
                  c._dense)  # fmt: skip


def _mc_xs(lookups: int) -> Kernel:
    return Kernel(f"mc_xs_L{lookups}", c.CONF / "mc_xs.k", {**c.XS_SIZES, "L": lookups},
                  c._mc_xs_inputs, c._mc_xs(7, lookups))  # fmt: skip


KERNELS = [
    _heat(48, 40),
    _heat(5, 17),
    _heat(48, 40, "heat_one_sided.k", ref=c._smooth),
    _heat(12, 10, "heat_one_sided.k", ref=c._smooth),
    _heat(48, 40, "heat_f16.k", np.float16),
    _dense(24, 36, 40),
    _dense(40, 30, 20),
    _dense(24, 36, 40, "dense_f16.k"),
    _dense(6, 10, 7, "dense_f16.k"),
    Kernel("softmax_37x100", c.CONF / "softmax.k", {"R": 37, "C": 100}, c._f({"x": (37, 100)}),
           c._softmax),
    Kernel("softmax_20x33", c.CONF / "softmax.k", {"R": 20, "C": 33}, c._f({"x": (20, 33)}),
           c._softmax),
    Kernel("softmax_5x9", c.CONF / "softmax.k", {"R": 5, "C": 9}, c._f({"x": (5, 9)}), c._softmax),
    Kernel("gemm_24x36x40", c.EXAMPLES / "gemm.k", {"M": 24, "N": 36, "K": 40},
           c._f({"a": (24, 40), "b": (40, 36)}), c._gemm),
    Kernel("sobel_64x48", c.EXAMPLES / "sobel.k", {"H": 64, "W": 48}, c._f({"img": (64, 48)}),
           c._sobel),
    Kernel("pca_8x512x8", c.EXAMPLES / "pca.k", {"B": 8, "P": 512, "K": 8},
           c._f({"frames": (8, 512), "mean": 512, "basis": (512, 8)}), c._pca),
]  # fmt: skip
LOOKUPS = [_mc_xs(256), _mc_xs(32)]
SLOW_KERNELS = [
    _heat(100, 90),
    _dense(64, 48, 80),
    Kernel("softmax_64x256", c.CONF / "softmax.k", {"R": 64, "C": 256}, c._f({"x": (64, 256)}),
           c._softmax),
    _mc_xs(1024),
]  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    grid: tuple[int, int]
    modelled: int
    simulated: int
    scalar: int

    @property
    def error(self) -> float:
        return abs(self.modelled - self.simulated) / self.simulated


BY_NAME = {k.name: k for k in KERNELS + LOOKUPS + SLOW_KERNELS}


@cache
def _outcome(name: str) -> Outcome:
    """Build and run with default options; check the outputs against NumPy on the way."""
    kernel = BY_NAME[name]
    program = kc.load(kernel.source, params=kernel.params)
    given = kernel.inputs(np.random.default_rng(0))
    result = kc.run_with_stats(program, "csl", given)
    for name, (want, rtol) in kernel.reference(given).items():
        assert_matches(result.outputs[name], want, rtol, f"{kernel.name}: {name}")
    fallback = lower.lower(program.graph(), machine.WSE2, 1, 1, scalar=True)
    w, h = (int(n) for n in result.stats["grid"].split("x"))
    return Outcome(
        (w, h),
        result.stats["modelled_cycles"],
        result.stats["simulated_kernel_cycles"],
        cost.model(fallback).cycles,
    )


def _check_spread_and_speed(kernel: Kernel) -> None:
    out = _outcome(kernel.name)
    assert out.grid[0] * out.grid[1] > 1, f"{kernel.name} ran on one PE"
    assert out.modelled * FASTER <= out.scalar, (
        f"{kernel.name}: {out.modelled:,} modelled cycles, scalar fallback {out.scalar:,}"
    )


def _check_model(kernel: Kernel) -> None:
    out = _outcome(kernel.name)
    assert out.error <= ACCEPT, (
        f"{kernel.name} on {out.grid}: modelled {out.modelled:,}, simulated {out.simulated:,}"
    )


@pytest.mark.parametrize("kernel", KERNELS + LOOKUPS, ids=str)
def test_default_grid_spreads_matches_numpy_and_beats_the_fallback(kernel: Kernel) -> None:
    _check_spread_and_speed(kernel)


@pytest.mark.parametrize("kernel", KERNELS, ids=str)
def test_model_agrees_with_the_simulator_on_the_default_grid(kernel: Kernel) -> None:
    _check_model(kernel)


@pytest.mark.parametrize("kernel", LOOKUPS, ids=str)
def test_lookup_model_agrees_with_the_simulator(kernel: Kernel) -> None:
    _check_model(kernel)


@pytest.mark.slow
@pytest.mark.parametrize("kernel", SLOW_KERNELS, ids=str)
def test_larger_variants(kernel: Kernel) -> None:
    _check_spread_and_speed(kernel)
    _check_model(kernel)


def test_cli_builds_the_small_gemm_on_more_than_one_pe(tmp_path, capsys) -> None:
    out = tmp_path / "gemm"
    argv = ["build", str(c.EXAMPLES / "gemm.k"), "--target", "csl", "-o", str(out)]
    assert main([*argv, "-D", "M=24", "-D", "N=36", "-D", "K=40"]) == 0
    report = capsys.readouterr().out
    chosen = re.search(r"placement auto \(.*\): (\d+) x (\d+) PEs", report)
    assert chosen is not None, report
    assert int(chosen[1]) * int(chosen[2]) > 1, chosen[0]
