"""Tests of the XSBench problem generator (kernelc.xsbench) and of the NumPy lookup reference.

The expected checksums and data values below were produced by XSBench's own C code
(ANL-CESAR/XSBench, openmp-threading; built with `gcc -std=gnu99 -O2 -fopenmp`), see the comment
at each constant.
"""

from __future__ import annotations

import bisect

import numpy as np
import pytest
from xs_reference import float32_tolerance, macro_xs_reference

from kernelc import xsbench

A = 2806196910506780709
MOD63 = 1 << 63

# Verification checksums printed by XSBench C (openmp-threading), default unionized grid unless a
# -G is shown, with exactly these command lines:
#   ./XSBench -s small -m event -l 100000             -> 299541
#   ./XSBench -s small -m event -l 1000000            -> 999388
#   ./XSBench -s small -m event -g 1000 -l 100000 -G nuclide -> 302880
#   ./XSBench -s large -m event -l 100000 -G nuclide  -> 298914
#   ./XSBench -s small -m event                       -> 945990 (Valid; 17,000,000 lookups)
# (-G nuclide / hash give the same values as unionized, e.g. 299541 for the first line.)
XSBENCH_SMALL_100K = 299541
XSBENCH_SMALL_1M = 999388
XSBENCH_SMALL_G1000_100K = 302880
XSBENCH_LARGE_100K = 298914
XSBENCH_SMALL_FULL = 945990

# Printed (%.17g) by a harness around XSBench's grid_init_do_not_profile / load_concs /
# fast_forward_LCG + pick_mat for the small problem: (nuclide, point) -> the six fields after
# the per-nuclide sort, concentrations, and lookup 123456's energy and material.
XSBENCH_GRID_POINTS = {
    (0, 0): (
        1.5981154276845078e-05,
        0.88349575044703832,
        0.53102424384572577,
        0.1046068047585668,
        0.67782224177225425,
        0.39200432823412373,
    ),
    (0, 11302): (
        0.99998285472510218,
        0.98960429729642274,
        0.22693890192155208,
        0.40783065048728712,
        0.32523472647259333,
        0.2412694204643297,
    ),
    (5, 100): (
        0.0081360092829266348,
        0.71411628753221568,
        0.57532090218940302,
        0.23101458240533043,
        0.88074523939507121,
        0.59288014288145674,
    ),
    (41, 5000): (
        0.4450394871807889,
        0.38478040533508345,
        0.64357560856686014,
        0.7601597033301426,
        0.90853330458953363,
        0.96102272465566885,
    ),
    (67, 11302): (
        0.99998210820951505,
        0.65215016027668316,
        0.47398029871771141,
        0.54449530317653749,
        0.198415922481395,
        0.82846251525847026,
    ),
}
XSBENCH_CONCS = {
    (0, 0): 0.08323999494866291,
    (0, 33): 0.064919974634902081,
    (11, 8): 0.68700053868156574,
}
XSBENCH_LOOKUP_123456 = (0.22646410071709866, 4)

FUEL_SMALL = [
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
]
WATER = [24, 41, 4, 5]
CLADDING = [63, 64, 65, 66, 67]
RPV = [
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
]
REFLECTOR = WATER + [19, 20, 21, 22, 35, 36, 37, 38, 39, 25, 49, 50, 51, 11, 12, 13, 14]
NON_FUEL = [CLADDING, WATER, WATER, RPV] + [REFLECTOR] * 5 + [WATER + CLADDING] * 2
WEIGHTS = [0.140, 0.052, 0.275, 0.134, 0.154, 0.064, 0.066, 0.055, 0.008, 0.015, 0.025, 0.013]


def lcg_sequence(seed: int, count: int) -> list[int]:
    """States after 1..count steps, by plain Python integer arithmetic."""
    states = []
    for _ in range(count):
        seed = (A * seed + 1) % MOD63
        states.append(seed)
    return states


def pick_scalar(roll: float) -> int:
    """Section 4.3 material pick, literally: thresholds summed in double from w_i down to w_1."""
    for i in range(1, 12):
        running = 0.0
        for j in range(i, 0, -1):
            running += WEIGHTS[j]
        if roll < running:
            return i
    return 0


def lookup_scalar(egrid, xs, nucs, conc, count, energy, mat) -> list[float]:
    """One lookup, straight from section 4.1 with bisect, for checking the vectorised reference."""
    sigma = [0.0] * 5
    for j in range(int(count[mat])):
        n = int(nucs[mat, j])
        grid = [float(e) for e in egrid[n]]
        lo = min(max(bisect.bisect_right(grid, float(energy)) - 1, 0), len(grid) - 2)
        f = (grid[lo + 1] - float(energy)) / (grid[lo + 1] - grid[lo])
        for c in range(5):
            hi, low = float(xs[n, lo + 1, c]), float(xs[n, lo, c])
            sigma[c] += (hi - f * (hi - low)) * float(conc[mat, j])
    return sigma


def float32_lookup(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """A float32 NumPy implementation of the kernel, standing in for a float32 backend."""
    egrid, xs, energy, material = (inputs[k] for k in ("egrid", "xs", "energy", "material"))
    macro = np.zeros((energy.shape[0], 5), dtype=np.float32)
    for m in range(12):
        rows = np.flatnonzero(material == m)
        e = energy[rows]
        for j in range(inputs["mat_count"][m]):
            n = inputs["mat_nucs"][m, j]
            lo = np.clip(np.searchsorted(egrid[n], e, side="right") - 1, 0, egrid.shape[1] - 2)
            f = (egrid[n, lo + 1] - e) / (egrid[n, lo + 1] - egrid[n, lo])
            micro = xs[n, lo + 1] - f[:, None] * (xs[n, lo + 1] - xs[n, lo])
            macro[rows] += micro * inputs["mat_conc"][m, j]
    return macro


@pytest.fixture(scope="module")
def small() -> xsbench.XSProblem:
    return xsbench.generate("small", lookups=1_000_000)


@pytest.fixture(scope="module")
def small_macro(small: xsbench.XSProblem) -> np.ndarray:
    return macro_xs_reference(**small.kernel_inputs(np.float64))


# --- random numbers -------------------------------------------------------------------------


def test_lcg_step_and_stream_match_integer_arithmetic() -> None:
    expected = lcg_sequence(1070, 10_000)
    assert xsbench.lcg_states(1070, 10_000).tolist() == expected
    assert xsbench.lcg_draws(1070, 10_000).tolist() == [s / 2**63 for s in expected]
    state = np.uint64(1070)
    for s in expected[:50]:
        state, draw = xsbench.lcg_step(state)
        assert int(state) == s and float(draw) == s / 2**63


def test_fast_forward_matches_sequential_stepping() -> None:
    expected = [1070, *lcg_sequence(1070, 999)]
    assert xsbench.fast_forward(1070, np.arange(1000)).tolist() == expected
    starts = np.array(expected[:100], dtype=np.uint64)
    assert xsbench.fast_forward(starts, 7).tolist() == expected[7:107]
    assert xsbench.fast_forward(starts, 0).tolist() == expected[:100]


def test_fast_forward_composes_for_large_n() -> None:
    rng = np.random.default_rng(0)
    n1 = rng.integers(0, 2**61, size=200, dtype=np.uint64)
    n2 = rng.integers(0, 2**61, size=200, dtype=np.uint64)
    seeds = rng.integers(0, 2**63, size=200, dtype=np.uint64)
    twice = xsbench.fast_forward(xsbench.fast_forward(seeds, n1), n2)
    once = xsbench.fast_forward(seeds, n1 + n2)
    assert np.array_equal(twice, once)
    assert int(once.max()) < MOD63


def test_fast_forward_emits_no_overflow_warnings() -> None:
    with np.errstate(all="raise"):
        xsbench.fast_forward(np.uint64(2**63 - 1), np.uint64(2**62 + 12345))
        xsbench.lcg_step(2**63 - 1)
        xsbench.lcg_states(42, 5000)


# --- the data ------------------------------------------------------------------------------


def test_grid_and_concentrations_match_xsbench_c(small: xsbench.XSProblem) -> None:
    for (nuc, point), fields in XSBENCH_GRID_POINTS.items():
        assert small.energy_grid[nuc, point] == fields[0]
        assert small.xs[nuc, point].tolist() == list(fields[1:])
    for (mat, slot), value in XSBENCH_CONCS.items():
        assert small.mat_conc[mat, slot] == value
    energy, mat = XSBENCH_LOOKUP_123456
    assert small.energy[123456] == energy and small.material[123456] == mat


def test_reduced_grid_is_the_sorted_sequential_stream() -> None:
    problem = xsbench.generate("small", lookups=0, nuclides=3, gridpoints=50)
    draws = np.array(lcg_sequence(42, 3 * 50 * 6), dtype=np.float64).reshape(3, 50, 6) / 2**63
    for n in range(3):
        rows = draws[n][np.argsort(draws[n, :, 0])]
        assert np.array_equal(problem.energy_grid[n], rows[:, 0])
        assert np.array_equal(problem.xs[n], rows[:, 1:])


def test_grids_sorted_and_in_unit_interval(small: xsbench.XSProblem) -> None:
    assert small.energy_grid.shape == (68, 11303) and small.xs.shape == (68, 11303, 5)
    assert np.all(np.diff(small.energy_grid, axis=1) > 0)
    for values in (small.energy_grid, small.xs):
        assert values.dtype == np.float64 and values.min() >= 0.0 and values.max() < 1.0


def test_materials_small(small: xsbench.XSProblem) -> None:
    counts = [34, 5, 4, 4, 27, 21, 21, 21, 21, 21, 9, 9]
    assert small.mat_count.dtype == np.int32 and small.mat_count.tolist() == counts
    assert small.mat_nucs.shape == (12, 34) and small.mat_nucs.dtype == np.int32
    for m, expected in enumerate([FUEL_SMALL, *NON_FUEL]):
        assert small.mat_nucs[m, : counts[m]].tolist() == expected
        assert not small.mat_nucs[m, counts[m] :].any()
        assert not small.mat_conc[m, counts[m] :].any()
    valid = np.arange(34)[None, :] < small.mat_count[:, None]
    conc = xsbench.lcg_draws(1070 * 1070, sum(counts))
    assert np.array_equal(small.mat_conc[valid], conc)


def test_materials_large() -> None:
    large = xsbench.generate("large", lookups=0, gridpoints=2)
    assert large.energy_grid.shape == (355, 2)
    assert large.mat_count.tolist() == [321, 5, 4, 4, 27, 21, 21, 21, 21, 21, 9, 9]
    assert large.mat_nucs.shape == (12, 321)
    assert large.mat_nucs[0].tolist() == FUEL_SMALL + list(range(68, 355))
    for m, expected in enumerate(NON_FUEL, start=1):
        assert large.mat_nucs[m, : len(expected)].tolist() == expected


def test_reduced_nuclides_wrap_indices_and_keep_lists() -> None:
    reduced = xsbench.generate("small", lookups=10, nuclides=10, gridpoints=16)
    full = xsbench.generate("small", lookups=10, gridpoints=16)
    assert reduced.energy_grid.shape == (10, 16) and reduced.xs.shape == (10, 16, 5)
    assert np.array_equal(reduced.mat_count, full.mat_count)
    assert np.array_equal(reduced.mat_conc, full.mat_conc)
    valid = np.arange(34)[None, :] < full.mat_count[:, None]
    assert np.array_equal(reduced.mat_nucs[valid], full.mat_nucs[valid] % 10)
    assert reduced.mat_nucs.max() < 10
    assert np.array_equal(reduced.energy_grid, full.energy_grid[:10])


def test_generate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown XSBench size"):
        xsbench.generate("medium", lookups=1)
    with pytest.raises(ValueError):
        xsbench.generate("small", lookups=1, gridpoints=1)


# --- lookup sampling -----------------------------------------------------------------------


def test_lookups_start_from_fast_forwarded_seed(small: xsbench.XSProblem) -> None:
    ids = np.array([0, 1, 2, 4095, 4096, 65537, 999_999])
    state, energy = xsbench.lcg_step(xsbench.fast_forward(1070, 2 * ids))
    _, roll = xsbench.lcg_step(state)
    assert np.array_equal(small.energy[ids], energy)
    assert small.material[ids].tolist() == [pick_scalar(float(r)) for r in roll]


def test_pick_material_at_threshold_edges() -> None:
    thresholds = xsbench.material_thresholds()
    assert all(b > a for a, b in zip(thresholds, thresholds[1:], strict=False))
    rolls = [0.0, np.nextafter(1.0, 0.0)]
    for t in thresholds:
        rolls += [np.nextafter(t, 0.0), t, np.nextafter(t, 1.0)]
    assert xsbench.pick_material(np.array(rolls)).tolist() == [pick_scalar(r) for r in rolls]


def test_sampling_distribution(small: xsbench.XSProblem) -> None:
    lookups = small.energy.shape[0]
    p = np.array([1.0 - sum(WEIGHTS[1:]), *WEIGHTS[1:]])  # fuel takes what 1..11 leave
    assert p[0] == pytest.approx(0.139)
    frequencies = np.bincount(small.material, minlength=12) / lookups
    sigma = np.sqrt(p * (1 - p) / lookups)
    assert np.all(np.abs(frequencies - p) < 5 * sigma)
    assert small.material.dtype == np.int32 and small.energy.dtype == np.float64
    assert abs(small.energy.mean() - 0.5) < 5 * np.sqrt(1 / 12 / lookups)
    histogram = np.histogram(small.energy, bins=10, range=(0, 1))[0] / lookups
    assert np.all(np.abs(histogram - 0.1) < 5 * np.sqrt(0.09 / lookups))
    mean_nuclides = small.mat_count[small.material].mean()
    assert mean_nuclides == pytest.approx(15.49, abs=0.05)


def test_lookup_prefix_independent_of_count(small: xsbench.XSProblem) -> None:
    few = xsbench.generate("small", lookups=1000, gridpoints=2)
    assert np.array_equal(few.energy, small.energy[:1000])
    assert np.array_equal(few.material, small.material[:1000])


# --- kernel inputs -------------------------------------------------------------------------


def test_kernel_inputs_names_dtypes_shapes(small: xsbench.XSProblem) -> None:
    inputs = small.kernel_inputs()
    assert list(inputs) == [
        "egrid",
        "xs",
        "mat_nucs",
        "mat_conc",
        "mat_count",
        "energy",
        "material",
    ]
    shapes = {
        "egrid": (68, 11303),
        "xs": (68, 11303, 5),
        "mat_nucs": (12, 34),
        "mat_conc": (12, 34),
        "mat_count": (12,),
        "energy": (1_000_000,),
        "material": (1_000_000,),
    }
    for name, array in inputs.items():
        assert array.shape == shapes[name], name
        assert array.flags.c_contiguous and array.flags.writeable, name
        expected = np.int32 if name in ("mat_nucs", "mat_count", "material") else np.float32
        assert array.dtype == expected, name
    assert np.array_equal(inputs["xs"], small.xs.astype(np.float32))
    wide = small.kernel_inputs(np.float64)
    assert wide["egrid"].dtype == np.float64 and np.array_equal(wide["egrid"], small.energy_grid)
    assert not np.shares_memory(wide["egrid"], small.energy_grid)


def test_problem_arrays_are_read_only(small: xsbench.XSProblem) -> None:
    with pytest.raises(ValueError):
        small.energy[0] = 0.5


def test_write_npy_dir_round_trip(tmp_path) -> None:
    problem = xsbench.generate("small", lookups=100, nuclides=4, gridpoints=32)
    paths = xsbench.write_npy_dir(problem, tmp_path / "inputs")
    assert sorted(p.name for p in paths) == sorted(f"{n}.npy" for n in problem.kernel_inputs())
    for name, array in problem.kernel_inputs().items():
        loaded = np.load(tmp_path / "inputs" / f"{name}.npy")
        assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


# --- checksum and the reference ------------------------------------------------------------


def test_checksum_scan_semantics() -> None:
    macro = np.array(
        [
            [0.1, 0.5, 0.5, 0.2, 0.0],  # tie: first max (index 1) -> 2
            [-2.0, -3.0, -1.5, -1.0, -4.0],  # nothing exceeds -1.0 -> index 0 -> 1
            [np.nan, 0.3, np.nan, 0.9, 0.9],  # NaN never wins, tie -> index 3 -> 4
            [0.0, 0.0, 0.0, 0.0, 7.0],  # -> 5
        ]
    )
    assert xsbench.checksum(macro) == 2 + 1 + 4 + 5
    big = np.zeros((400_000, 5))
    big[:, 4] = 1.0
    assert xsbench.checksum(big) == (5 * 400_000) % 999983
    assert xsbench.checksum(big.astype(np.float32)) == (5 * 400_000) % 999983


def test_reference_matches_scalar_lookup_with_extrapolation() -> None:
    rng = np.random.default_rng(1)
    problem = xsbench.generate("small", lookups=0, nuclides=6, gridpoints=40)
    energy = np.concatenate([rng.uniform(-0.2, 1.2, 300), problem.energy_grid[:, [0, -1]].ravel()])
    material = rng.integers(0, 12, energy.shape[0]).astype(np.int32)
    inputs = problem.kernel_inputs(np.float32) | {
        "energy": energy.astype(np.float32),
        "material": material,
    }
    macro = macro_xs_reference(**inputs)
    assert macro.dtype == np.float64 and macro.shape == (energy.shape[0], 5)
    for i in range(energy.shape[0]):
        expected = lookup_scalar(
            inputs["egrid"],
            inputs["xs"],
            inputs["mat_nucs"],
            inputs["mat_conc"],
            inputs["mat_count"],
            inputs["energy"][i],
            material[i],
        )
        assert macro[i].tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_reference_reproduces_xsbench_small_checksums(small_macro: np.ndarray) -> None:
    assert xsbench.checksum(small_macro[:100_000]) == XSBENCH_SMALL_100K
    assert xsbench.checksum(small_macro) == XSBENCH_SMALL_1M


def test_reference_reproduces_xsbench_with_fewer_gridpoints() -> None:
    problem = xsbench.generate("small", lookups=100_000, gridpoints=1000)
    macro = macro_xs_reference(**problem.kernel_inputs(np.float64))
    assert xsbench.checksum(macro) == XSBENCH_SMALL_G1000_100K


def test_reference_reproduces_xsbench_large_checksum() -> None:
    problem = xsbench.generate("large", lookups=100_000)
    macro = macro_xs_reference(**problem.kernel_inputs(np.float64))
    assert xsbench.checksum(macro) == XSBENCH_LARGE_100K


def test_float32_kernel_within_tolerance(small: xsbench.XSProblem) -> None:
    inputs = small.kernel_inputs(np.float32)
    inputs["energy"] = inputs["energy"][:200_000]
    inputs["material"] = inputs["material"][:200_000]
    reference = macro_xs_reference(**inputs)
    tolerance = float32_tolerance(inputs["mat_conc"], inputs["mat_count"], inputs["material"])
    assert tolerance.shape == (200_000, 1)
    macro = float32_lookup(inputs)
    assert macro.dtype == np.float32
    ratio = np.abs(macro - reference) / tolerance
    assert ratio.max() <= 1.0
    assert ratio.max() > 0.01  # the bound is exercised, not vacuous


def test_float32_tolerance_formula() -> None:
    conc = np.array([[0.5, 0.25, 9.0], [1.0, 0.0, 0.0]])
    tolerance = float32_tolerance(conc, np.array([2, 1]), np.array([0, 1, 0]))
    unit = 2.0**-24
    assert tolerance[:, 0].tolist() == [
        8 * 2 * unit * 0.75,
        8 * 1 * unit * 1.0,
        8 * 2 * unit * 0.75,
    ]


@pytest.mark.slow
def test_reference_reproduces_full_xsbench_small_event_checksum() -> None:
    problem = xsbench.generate("small")
    macro = macro_xs_reference(
        problem.energy_grid,
        problem.xs,
        problem.mat_nucs,
        problem.mat_conc,
        problem.mat_count,
        problem.energy,
        problem.material,
    )
    assert xsbench.checksum(macro) == XSBENCH_SMALL_FULL
