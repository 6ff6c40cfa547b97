"""XSBench-style problem generator for the macroscopic cross-section lookup kernel.

Reproduces the synthetic data and event-based lookup sampling of ANL-CESAR/XSBench
(openmp-threading; reference kernels section 4) bit for bit, so that a float64
lookup over a generated problem yields XSBench's own verification checksum. Everything is
vectorised NumPy: the LCG stream is produced by fast-forwarding whole arrays of states.

The kernel fed by this module is::

    xs_lookup(egrid: f32[NI, NG], xs: f32[NI, NG, 5], mat_nucs: i32[NM, MAXN],
              mat_conc: f32[NM, MAXN], mat_count: i32[NM], energy: f32[L],
              material: i32[L]) -> macro: f32[L, 5]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

LCG_MULTIPLIER = 2806196910506780709
"""XSBench's LCG: s <- (a*s + 1) mod 2**63; a draw is the new state / 2**63."""

GRID_SEED = 42
CONC_SEED = 1070 * 1070
LOOKUP_SEED = 1070
CHECKSUM_MODULUS = 999983
N_MATERIALS = 12

SIZES: dict[str, tuple[int, int]] = {
    "small": (68, 11303),
    "large": (355, 11303),
    "XL": (355, 238847),
    "XXL": (355, 501578),
}
"""(nuclides, gridpoints per nuclide) of the Hoogenboom-Martin benchmark sizes."""

_FUEL_SMALL = (
    58,
    59,
    60,
    61,
    40,
    42,
    43,
    44,
    45,
    46,
    1,
    2,
    3,
    7,
    8,
    9,
    10,
    29,
    57,
    47,
    48,
    0,
    62,
    15,
    33,
    34,
    52,
    53,
    54,
    55,
    56,
    18,
    23,
    41,
)
_WATER = (24, 41, 4, 5)
_CLADDING = (63, 64, 65, 66, 67)
_RPV = (
    19,
    20,
    21,
    22,
    35,
    36,
    37,
    38,
    39,
    25,
    27,
    28,
    29,
    30,
    31,
    32,
    26,
    49,
    50,
    51,
    11,
    12,
    13,
    14,
    6,
    16,
    17,
)
_REFLECTOR = _WATER + (19, 20, 21, 22, 35, 36, 37, 38, 39, 25, 49, 50, 51, 11, 12, 13, 14)
_ASSEMBLY_END = _WATER + _CLADDING
_NON_FUEL: tuple[tuple[int, ...], ...] = (
    _CLADDING,
    _WATER,
    _WATER,
    _RPV,
    _REFLECTOR,
    _REFLECTOR,
    _REFLECTOR,
    _REFLECTOR,
    _REFLECTOR,
    _ASSEMBLY_END,
    _ASSEMBLY_END,
)

MATERIAL_WEIGHTS = (
    0.140,
    0.052,
    0.275,
    0.134,
    0.154,
    0.064,
    0.066,
    0.055,
    0.008,
    0.015,
    0.025,
    0.013,
)
"""Volume fractions of the 12 materials, as XSBench's pick_mat lists them."""

_U64_MASK = (1 << 64) - 1
_MOD63_MASK = np.uint64((1 << 63) - 1)
_TWO_POW_63 = float(2**63)
_FF_BITS = 64
_BLOCK = 4096


def _step_pairs() -> tuple[np.ndarray, np.ndarray]:
    """The affine maps of 2**k LCG steps, (a_k, c_k) for k = 0..63, as uint64.

    Computed once with Python integers (mod 2**64) so no NumPy scalar arithmetic can overflow.
    """
    a_k, c_k = LCG_MULTIPLIER, 1
    mults, incs = [], []
    for _ in range(_FF_BITS):
        mults.append(a_k)
        incs.append(c_k)
        c_k = (c_k * (a_k + 1)) & _U64_MASK
        a_k = (a_k * a_k) & _U64_MASK
    return np.array(mults, dtype=np.uint64), np.array(incs, dtype=np.uint64)


_STEP_MULT, _STEP_INC = _step_pairs()


def _affine(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-element (A, C) with FF(s, n) = (A*s + C) mod 2**63, by XSBench's bitwise recurrence.

    The arithmetic is deliberately wrapping uint64 (2**63 divides 2**64, so wrapping is exact).
    """
    n = np.asarray(n, dtype=np.uint64)
    mult = np.ones(n.shape, dtype=np.uint64)
    inc = np.zeros(n.shape, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(int(n.max(initial=0)).bit_length()):
            bit = ((n >> np.uint64(k)) & np.uint64(1)).astype(bool)
            mult = np.where(bit, mult * _STEP_MULT[k], mult)
            inc = np.where(bit, inc * _STEP_MULT[k] + _STEP_INC[k], inc)
    return mult, inc


def lcg_step(states: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """One LCG step on every state: returns (new states, draws in [0, 1) as float64)."""
    s = np.asarray(states, dtype=np.uint64)
    with np.errstate(over="ignore"):
        s = (s * np.uint64(LCG_MULTIPLIER) + np.uint64(1)) & _MOD63_MASK
    return s, s.astype(np.float64) / _TWO_POW_63


def fast_forward(seed_or_states: np.ndarray | int, n: np.ndarray | int) -> np.ndarray:
    """Advance each state by n LCG steps in O(log n) (XSBench's fast_forward_LCG), vectorised.

    `seed_or_states` and `n` broadcast against each other; the result is uint64 states < 2**63.
    """
    s = np.asarray(seed_or_states, dtype=np.uint64)
    mult, inc = _affine(np.asarray(n, dtype=np.uint64))
    with np.errstate(over="ignore"):
        return (mult * s + inc) & _MOD63_MASK


def lcg_states(seed: int, count: int) -> np.ndarray:
    """The states after steps 1..count from `seed` (uint64, shape (count,)).

    Fast-forwards one base state per block of _BLOCK steps and applies the shared affine maps of
    1.._BLOCK steps to all bases at once: a single multiply-add per draw instead of a log-depth
    fast-forward per draw.
    """
    n_blocks = -(-count // _BLOCK)
    bases = fast_forward(seed, np.arange(n_blocks, dtype=np.uint64) * np.uint64(_BLOCK))
    mult, inc = _affine(np.arange(1, _BLOCK + 1, dtype=np.uint64))
    with np.errstate(over="ignore"):
        states = (bases[:, None] * mult[None, :] + inc[None, :]) & _MOD63_MASK
    return states.reshape(-1)[:count]


def lcg_draws(seed: int, count: int) -> np.ndarray:
    """The first `count` float64 draws from `seed`, as LCG_random_double returns them."""
    return lcg_states(seed, count).astype(np.float64) / _TWO_POW_63


def material_thresholds() -> tuple[float, ...]:
    """pick_mat's thresholds T_i = w_i + w_(i-1) + ... + w_1 for i = 1..11, summed in that order.

    The summation order matters: the checksum depends on the exact double value of each T_i.
    """
    thresholds = []
    for i in range(1, N_MATERIALS):
        running = 0.0
        for j in range(i, 0, -1):
            running += MATERIAL_WEIGHTS[j]
        thresholds.append(running)
    return tuple(thresholds)


def pick_material(rolls: np.ndarray) -> np.ndarray:
    """Material for each roll: the first i in 1..11 with roll < T_i, else 0 (fuel); int32.

    The T_i increase strictly (each adds a positive weight), so the first i with roll < T_i is
    one more than the number of T_j <= roll: a single searchsorted instead of 11 passes.
    """
    thresholds = np.array(material_thresholds())
    below = np.searchsorted(thresholds, np.asarray(rolls, dtype=np.float64), side="right")
    return np.where(below == len(thresholds), 0, below + 1).astype(np.int32)


def material_lists(size: str, nuclides: int) -> list[tuple[int, ...]]:
    """The nuclide index list of each of the 12 materials, in accumulation order.

    "small" fuel has 34 nuclides; the other sizes append 68..354 (321 in all). When `nuclides`
    is below the size's own count (a reduced test problem), every index is taken modulo
    `nuclides`; list lengths, order, concentrations and hence the work per lookup are unchanged,
    and every index stays valid.
    """
    fuel = _FUEL_SMALL if size == "small" else _FUEL_SMALL + tuple(range(68, 355))
    return [tuple(n % nuclides for n in mat) for mat in (fuel, *_NON_FUEL)]


KERNEL_INPUTS = (
    ("egrid", "energy_grid"),
    ("xs", "xs"),
    ("mat_nucs", "mat_nucs"),
    ("mat_conc", "mat_conc"),
    ("mat_count", "mat_count"),
    ("energy", "energy"),
    ("material", "material"),
)
"""(xs_lookup parameter, XSProblem field) pairs, in the kernel's parameter order."""


@dataclass(frozen=True, eq=False)
class XSProblem:
    """One generated problem: float64 master data, read-only, plus the sampled lookups.

    Fields: energy_grid (NI, NG); xs (NI, NG, 5) in channel order total, elastic, absorption,
    fission, nu-fission; mat_nucs / mat_conc (12, MAXN) padded with 0; mat_count (12,);
    energy (L,) and material (L,) of the event-based lookups.
    """

    energy_grid: np.ndarray
    xs: np.ndarray
    mat_nucs: np.ndarray
    mat_conc: np.ndarray
    mat_count: np.ndarray
    energy: np.ndarray
    material: np.ndarray

    def __post_init__(self) -> None:
        for value in vars(self).values():
            value.flags.writeable = False

    def kernel_inputs(self, dtype: DTypeLike = np.float32) -> dict[str, np.ndarray]:
        """Fresh C-contiguous arrays named as the xs_lookup parameters, in parameter order.

        Float fields are cast to `dtype`, integer fields to int32.
        """
        arrays = {}
        for name, field in KERNEL_INPUTS:
            value = getattr(self, field)
            arrays[name] = np.array(
                value, dtype=np.int32 if value.dtype.kind == "i" else dtype, order="C"
            )
        return arrays


def _nuclide_grid(nuclides: int, gridpoints: int) -> tuple[np.ndarray, np.ndarray]:
    """Energies (NI, NG) and channels (NI, NG, 5), each nuclide's points sorted by energy.

    Points move whole, as XSBench's qsort of 48-byte structs; energies are distinct, so the
    order does not depend on the sort algorithm.
    """
    draws = lcg_draws(GRID_SEED, nuclides * gridpoints * 6).reshape(nuclides, gridpoints, 6)
    order = np.argsort(draws[:, :, 0], axis=1, kind="stable")
    draws = np.take_along_axis(draws, order[:, :, None], axis=1)
    return np.ascontiguousarray(draws[:, :, 0]), np.ascontiguousarray(draws[:, :, 1:])


def _materials(size: str, nuclides: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mat_nucs, mat_conc (padded (12, MAXN)) and mat_count; concentrations drawn material-major."""
    lists = material_lists(size, nuclides)
    counts = np.array([len(m) for m in lists], dtype=np.int32)
    nucs = np.zeros((N_MATERIALS, counts.max()), dtype=np.int32)
    conc = np.zeros((N_MATERIALS, counts.max()), dtype=np.float64)
    draws = lcg_draws(CONC_SEED, int(counts.sum()))
    start = 0
    for m, mat in enumerate(lists):
        nucs[m, : len(mat)] = mat
        conc[m, : len(mat)] = draws[start : start + len(mat)]
        start += len(mat)
    return nucs, conc, counts


def sample_lookups(lookups: int) -> tuple[np.ndarray, np.ndarray]:
    """Event-based lookups: lookup i starts at FF(1070, 2*i), draws E, then the material roll.

    Those start states are consecutive pairs of one LCG stream, so E and the roll are simply the
    odd and even draws of that stream.
    """
    draws = lcg_draws(LOOKUP_SEED, 2 * lookups).reshape(lookups, 2)
    return np.ascontiguousarray(draws[:, 0]), pick_material(draws[:, 1])


def generate(
    size: str = "small",
    lookups: int = 17_000_000,
    nuclides: int | None = None,
    gridpoints: int | None = None,
) -> XSProblem:
    """Generate an XSBench problem of the given size with `lookups` event-based lookups.

    The default count is XSBench's event-mode default, whose checksum XSBench verifies.
    `nuclides` / `gridpoints` override the size's counts for reduced problems (see
    material_lists for how materials are reduced); overriding only `gridpoints` matches
    XSBench's `-g` option.
    """
    if size not in SIZES:
        raise ValueError(f"unknown XSBench size {size!r}; expected one of {', '.join(SIZES)}")
    default_nuclides, default_gridpoints = SIZES[size]
    nuclides = default_nuclides if nuclides is None else nuclides
    gridpoints = default_gridpoints if gridpoints is None else gridpoints
    if nuclides < 1 or gridpoints < 2 or lookups < 0:
        raise ValueError("need nuclides >= 1, gridpoints >= 2 and lookups >= 0")
    energy_grid, xs = _nuclide_grid(nuclides, gridpoints)
    mat_nucs, mat_conc, mat_count = _materials(size, nuclides)
    energy, material = sample_lookups(lookups)
    return XSProblem(energy_grid, xs, mat_nucs, mat_conc, mat_count, energy, material)


def write_npy_dir(
    problem: XSProblem, directory: str | Path, dtype: DTypeLike = np.float32
) -> list[Path]:
    """Write NAME.npy for every kernel input into `directory` (created); returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, array in problem.kernel_inputs(dtype).items():
        path = directory / f"{name}.npy"
        np.save(path, array)
        paths.append(path)
    return paths


def checksum(macro: np.ndarray) -> int:
    """XSBench's verification value of a (L, 5) macro cross-section array.

    Per lookup, the channel index of the maximum, scanning with a strict `>` against a running
    maximum that starts at -1.0 (first maximum wins; NaN never wins); the sum of index + 1 in
    uint64, mod 999983.
    """
    macro = np.asarray(macro)
    best = np.full(macro.shape[0], -1.0, dtype=np.float64)
    index = np.zeros(macro.shape[0], dtype=np.uint64)
    for channel in range(macro.shape[1]):
        column = macro[:, channel].astype(np.float64)
        larger = column > best
        index[larger] = channel
        best[larger] = column[larger]
    return int((index + np.uint64(1)).sum(dtype=np.uint64) % np.uint64(CHECKSUM_MODULUS))
