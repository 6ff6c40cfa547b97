"""Benchmark the cpu target against NumPy, SciPy, OpenCV, Numba and XSBench on this machine.

    python benchmarks/cpu.py [--runs 7] [--quick] [--lookups 1000000]

Every workload runs side by side with its peers in this one process. Times are the median of
``--runs`` runs (at least 5) with the spread (min - max); compile times are reported apart, and
the first (compiling) call is never timed. kernelc is shown twice: "kernel" is the target's own
run time (output allocation, thread dispatch and the native code), "kc.run" the whole API call
(also binding the program to the input shapes and validating the inputs). Peers that are not
installed are skipped with a note. Prints Markdown tables (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import kernelc as kc
from kernelc import xsbench
from kernelc.backends.cpu.machine import host

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTES: list[str] = []


# ------------------------------------------------------------------------------------ timing


class Timing:
    def __init__(self, seconds: list[float]) -> None:
        self.median = statistics.median(seconds)
        self.low, self.high = min(seconds), max(seconds)

    def ms(self) -> str:
        return f"{self.median * 1e3:.3f} ({self.low * 1e3:.3f}-{self.high * 1e3:.3f})"


def race(cases: dict[str, Callable[[], object]], runs: int) -> dict[str, Timing]:
    """Time every case ``runs`` times, taking turns (case A, B, C, A, B, C, ...).

    Taking turns spreads slow phases of a shared or virtualised machine over all cases alike.
    A case may return its own time as a float (seconds); anything else is timed from outside.
    """
    for fn in cases.values():
        fn()  # warm-up: compiles, first touches
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            start = time.perf_counter()
            own = fn()
            elapsed = time.perf_counter() - start
            seconds[name].append(own if isinstance(own, float) else elapsed)
    return {name: Timing(values) for name, values in seconds.items()}


def kernelc_cases(prog, inputs: dict, **params) -> tuple[dict[str, Callable], float]:
    """The kernel-time and kc.run cases of one program at one size, and its compile seconds."""
    given = params or None
    first = kc.run_with_stats(prog, "cpu", inputs, params=given)
    compile_s = float(first.stats["compile_seconds"])

    def kernel() -> float:
        return kc.run_with_stats(prog, "cpu", inputs, params=given).stats["run_seconds"]

    def whole() -> None:
        kc.run(prog, "cpu", inputs, params=given)

    return {"kernelc cpu (kernel)": kernel, "kernelc cpu (kc.run)": whole}, compile_s


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def optional(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        NOTES.append(f"{module} is not installed: its rows are skipped")
        return None


# ------------------------------------------------------------------------------------ machine


def machine_lines() -> list[str]:
    m = host()
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import llvmlite

    versions = [
        f"Python {platform.python_version()}",
        f"NumPy {np.__version__}",
        f"llvmlite {llvmlite.__version__}",
    ]
    for name in ("scipy", "numba", "cv2"):
        try:
            mod = __import__(name)
            versions.append(f"{name} {mod.__version__}")
        except ImportError:
            pass
    return [
        f"- CPU: {model}, {os.cpu_count()} logical cores ({m.cores} usable), LLVM host CPU "
        f"`{m.cpu}`, {m.vector_bits}-bit vectors",
        f"- kernelc threads: {m.cores} (all cores, the default)",
        f"- {', '.join(versions)}",
        f"- OpenBLAS overrides: {_openblas_overrides()}",
        f"- command: `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`".rstrip(),
    ]


def _openblas_overrides() -> str:
    """OPENBLAS_CORETYPE pins NumPy's BLAS to older kernels: a comparison must say if it was set."""
    names = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    found = [f"{n}={os.environ[n]}" for n in names if n in os.environ]
    if not found:
        return "none (NumPy's BLAS picks its kernels for this CPU)"
    return ", ".join(found) + " (NumPy's BLAS runs older kernels; unset both for its best)"


# ---------------------------------------------------------------------------------- compile


def bench_compile(runs: int) -> None:
    exe = shutil.which("kernelc")
    if exe is None:
        NOTES.append("the kernelc command is not on PATH: the build wall time is skipped")
        return
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(max(runs, 5)):
            start = time.perf_counter()
            subprocess.run(
                [exe, "build", str(EXAMPLES / "sobel.k"), "--target", "cpu", "-o", f"{tmp}/out{n}"],
                check=True,
                capture_output=True,
            )
            seconds.append(time.perf_counter() - start)
    t = Timing(seconds)
    table(
        "Compile",
        ["what", "wall s, median (min-max)"],
        [
            [
                "`kernelc build examples/sobel.k --target cpu` (new process each time)",
                f"{t.median:.3f} ({t.low:.3f}-{t.high:.3f})",
            ]
        ],
    )


# -------------------------------------------------------------------------------------- Sobel


def bench_sobel(runs: int) -> None:
    rng = np.random.default_rng(0)
    img = rng.standard_normal((800, 800)).astype(np.float32)
    prog = kc.load(EXAMPLES / "sobel.k")
    cases, compile_s = kernelc_cases(prog, {"img": img})
    ndimage = optional("scipy.ndimage")
    if ndimage is not None:
        cases["scipy.ndimage.sobel x2 + np.hypot"] = lambda: np.hypot(
            ndimage.sobel(img, 0), ndimage.sobel(img, 1)
        )
    cv2 = optional("cv2")
    if cv2 is not None:
        cases["cv2.Sobel x2 + cv2.magnitude"] = lambda: cv2.magnitude(
            cv2.Sobel(img, cv2.CV_32F, 1, 0), cv2.Sobel(img, cv2.CV_32F, 0, 1)
        )
    numba = optional("numba")
    if numba is not None:
        fn = _numba_sobel(numba)
        cases["Numba @njit(parallel=True)"] = lambda: fn(img)
    times = race(cases, runs)
    base = times["kernelc cpu (kernel)"].median
    rows = [[name, t.ms(), f"{t.median / base:.2f}"] for name, t in times.items()]
    table(
        f"Sobel 800x800 f32 (kernelc compile {compile_s:.3f} s)",
        ["implementation", "ms, median (min-max)", "time / kernelc kernel time"],
        rows,
    )


def _numba_sobel(numba):
    @numba.njit(parallel=True, fastmath=False, cache=False)
    def sobel(img):
        h, w = img.shape
        out = np.zeros((h, w), np.float32)
        for i in numba.prange(1, h - 1):
            for j in range(1, w - 1):
                gx = (img[i - 1, j + 1] + 2 * img[i, j + 1] + img[i + 1, j + 1]) - (
                    img[i - 1, j - 1] + 2 * img[i, j - 1] + img[i + 1, j - 1]
                )
                gy = (img[i + 1, j - 1] + 2 * img[i + 1, j] + img[i + 1, j + 1]) - (
                    img[i - 1, j - 1] + 2 * img[i - 1, j] + img[i - 1, j + 1]
                )
                out[i, j] = np.sqrt(gx * gx + gy * gy)
        return out

    return sobel


# --------------------------------------------------------------------------------------- GEMM


def bench_gemm(runs: int, quick: bool) -> None:
    rng = np.random.default_rng(1)
    prog = kc.load(EXAMPLES / "gemm.k")
    sizes = [(64, 1760, 1760), (1760, 128, 1760), (2560, 2560, 2560), (512, 512, 512)]
    if quick:
        sizes = [s for s in sizes if s[0] != 2560]
    rows = []
    for m, n, k in sizes:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        cases, compile_s = kernelc_cases(prog, {"a": a, "b": b}, M=m, N=n, K=k)
        del cases["kernelc cpu (kc.run)"]
        cases["numpy"] = lambda a=a, b=b: np.matmul(a, b)
        times = race(cases, runs)
        kernel, ref = times["kernelc cpu (kernel)"], times["numpy"]
        flops = 2.0 * m * n * k
        got = kc.run(prog, "cpu", {"a": a, "b": b}, params={"M": m, "N": n, "K": k})["c"]
        err = np.abs(got - a.astype(np.float64) @ b.astype(np.float64)).max()
        rows.append(
            [
                f"({m}, {n}, {k})",
                kernel.ms(),
                f"{flops / kernel.median / 1e9:.1f}",
                ref.ms(),
                f"{flops / ref.median / 1e9:.1f}",
                f"{ref.median / kernel.median:.2f}",
                f"{compile_s:.3f}",
                f"{err:.1e}",
            ]
        )
    table(
        "GEMM f32, C = A @ B",
        [
            "(M, N, K)",
            "kernelc ms (min-max)",
            "kernelc GFLOP/s",
            "numpy.matmul ms (min-max)",
            "numpy GFLOP/s",
            "kernelc / numpy GFLOP/s",
            "compile s",
            "max abs err vs f64",
        ],
        rows,
    )


# ---------------------------------------------------------------------------------------- PCA


def bench_pca(runs: int) -> None:
    rng = np.random.default_rng(2)
    prog = kc.load(EXAMPLES / "pca.k")
    d = 128 * 128
    rows = []
    for k in (1, 64, 256):
        basis = np.linalg.qr(rng.standard_normal((d, k)))[0].astype(np.float32)
        for batch in (1, 256):
            frames = rng.standard_normal((batch, d)).astype(np.float32) + 10
            mean = np.full(d, 10, np.float32)
            inputs = {"frames": frames, "mean": mean, "basis": basis}
            cases, compile_s = kernelc_cases(prog, inputs, B=batch, P=d, K=k)
            del cases["kernelc cpu (kc.run)"]
            cases["numpy"] = lambda f=frames, m=mean, w=basis: (f - m) @ w
            times = race(cases, runs)
            kernel, ref = times["kernelc cpu (kernel)"], times["numpy"]
            rows.append(
                [
                    f"k={k}, B={batch}",
                    kernel.ms(),
                    ref.ms(),
                    f"{ref.median / kernel.median:.2f}",
                    f"{compile_s:.3f}",
                ]
            )
    table(
        "PCA projection of 128x128 frames, codes = (frames - mean) @ basis",
        ["case", "kernelc ms (min-max)", "NumPy ms (min-max)", "speed-up vs NumPy", "compile s"],
        rows,
    )


# ----------------------------------------------------------------------------------- XS lookup


def xs_numpy(egrid, xs, mat_nucs, mat_conc, mat_count, energy, material):
    """Vectorised NumPy, float32 arithmetic: one pass per material slot over all lookups.

    The per-nuclide grids are searched at once in one sorted array of (nuclide + energy) keys,
    which works because every energy lies in [0, 1).
    """
    ni, ng = egrid.shape
    keys = (np.arange(ni)[:, None] + egrid.astype(np.float64)).ravel()
    macro = np.zeros((energy.shape[0], 5), np.float32)
    counts = mat_count[material]
    e64 = energy.astype(np.float64)
    for j in range(mat_nucs.shape[1]):
        active = np.flatnonzero(counts > j)
        if active.size == 0:
            break
        m = material[active]
        n = mat_nucs[m, j]
        pos = np.searchsorted(keys, n + e64[active], side="right") - 1 - n * ng
        lo = np.clip(pos, 0, ng - 2)
        e = energy[active]
        e_lo, e_hi = egrid[n, lo], egrid[n, lo + 1]
        f = (e_hi - e) / (e_hi - e_lo)
        x_lo, x_hi = xs[n, lo], xs[n, lo + 1]
        macro[active] += mat_conc[m, j][:, None] * (x_hi - f[:, None] * (x_hi - x_lo))
    return macro


def _numba_xs(numba):
    @numba.njit(parallel=True, cache=False)
    def lookup(egrid, xs, mat_nucs, mat_conc, mat_count, energy, material):
        count_l = energy.shape[0]
        ng = egrid.shape[1]
        macro = np.zeros((count_l, 5), np.float32)
        for lk in numba.prange(count_l):
            e = energy[lk]
            m = material[lk]
            for j in range(mat_count[m]):
                n = mat_nucs[m, j]
                conc = mat_conc[m, j]
                lo, hi = 0, ng
                while lo < hi:
                    mid = (lo + hi) // 2
                    if egrid[n, mid] <= e:
                        lo = mid + 1
                    else:
                        hi = mid
                lo = min(max(lo - 1, 0), ng - 2)
                f = (egrid[n, lo + 1] - e) / (egrid[n, lo + 1] - egrid[n, lo])
                for c in range(5):
                    macro[lk, c] += conc * (
                        xs[n, lo + 1, c] - f * (xs[n, lo + 1, c] - xs[n, lo, c])
                    )
        return macro

    return lookup


def bench_xs(runs: int, lookups: int) -> None:
    problem = xsbench.generate("small", lookups)
    inputs = problem.kernel_inputs()
    prog = kc.load(EXAMPLES / "xs_lookup.k")
    cases, compile_s = kernelc_cases(prog, inputs)
    got = kc.run(prog, "cpu", inputs)["macro"]
    np.testing.assert_allclose(xs_numpy(**inputs), got, rtol=1e-4, atol=1e-4)
    cases["NumPy, vectorised"] = lambda: xs_numpy(**inputs)
    numba = optional("numba")
    if numba is not None:
        fn = _numba_xs(numba)
        np.testing.assert_allclose(fn(**inputs), got, rtol=1e-4, atol=1e-4)
        cases["Numba @njit(parallel=True)"] = lambda: fn(**inputs)
    times = race(cases, runs)
    base = times["kernelc cpu (kernel)"].median
    rows = [
        [name, t.ms(), f"{lookups / t.median / 1e6:.2f}", f"{base / t.median:.2f}"]
        for name, t in times.items()
    ]
    xsbench_exe = os.environ.get("XSBENCH")
    if xsbench_exe and Path(xsbench_exe).exists():
        rows.append(_xsbench_c(xsbench_exe, lookups))
    else:
        NOTES.append(
            "XSBench C is not present (set XSBENCH=/path/to/XSBench built with "
            "gcc -O3 -fopenmp -march=native to add it): its row is skipped"
        )
    table(
        f"XS lookup, small problem (68 nuclides x 11303 points), {lookups} lookups "
        f"(kernelc compile {compile_s:.3f} s)",
        ["implementation", "ms, median (min-max)", "M lookups/s", "its lookups/s / kernelc's"],
        rows,
    )


def _xsbench_c(exe: str, lookups: int) -> list[str]:
    """XSBench's own event-based run on the nuclide grid (the algorithm of examples/xs_lookup.k,
    binary search per nuclide) with all cores; it reports its lookups/s itself."""
    threads = str(os.cpu_count() or 1)
    out = subprocess.run(
        [exe, "-s", "small", "-m", "event", "-G", "nuclide", "-t", threads, "-l", str(lookups)],
        capture_output=True,
        text=True,
        check=False,  # XSBench exits 1 whenever the lookup count is not its default one
    ).stdout
    rate = next(line for line in out.splitlines() if "Lookups/s" in line).split()[-1]
    value = float(rate.replace(",", ""))
    return ["XSBench C, -G nuclide (-O3 -fopenmp -march=native)", "-", f"{value / 1e6:.2f}", "-"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per case (>= 5)")
    parser.add_argument("--quick", action="store_true", help="skip the 2560^3 GEMM")
    parser.add_argument("--lookups", type=int, default=1_000_000, help="XS lookups")
    args = parser.parse_args()
    runs = max(5, args.runs)
    print("## CPU backend benchmark\n")
    print("\n".join(machine_lines()))
    bench_compile(runs)
    bench_sobel(runs)
    bench_gemm(runs, args.quick)
    bench_pca(runs)
    bench_xs(runs, args.lookups)
    if NOTES:
        print("\nNotes:\n")
        for note in dict.fromkeys(NOTES):
            print(f"- {note}")


if __name__ == "__main__":
    main()
