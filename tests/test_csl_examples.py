"""The csl target on the four examples: ``kernelc check`` at two grid shapes each (one that
does not divide the problem), artifacts, determinism, golden files and diagnostics.

Golden files live in tests/golden/csl/<case>/. After an intended change of the emitted code,
regenerate them with ``KERNELC_UPDATE_GOLDEN=1 pytest tests/test_csl_examples.py`` and review
the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kernelc as kc
from kernelc.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "csl"

CHECKS = [
    ("sobel", ["H=24", "W=20"], "4x4"),
    ("sobel", ["H=24", "W=20"], "3x5"),
    ("gemm", ["M=12", "N=10", "K=8"], "2x2"),
    ("gemm", ["M=12", "N=10", "K=8"], "3x5"),
    ("pca", ["B=6", "P=40", "K=5"], "2x2"),
    ("pca", ["B=6", "P=40", "K=5"], "3x3"),
    ("xs_lookup", ["NI=6", "NG=32", "NM=4", "MAXN=5", "L=24"], "2x3"),
    ("xs_lookup", ["NI=6", "NG=32", "NM=4", "MAXN=5", "L=24"], "4x5"),
]


@pytest.mark.parametrize(("example", "sizes", "grid"), CHECKS)
def test_kernelc_check_passes(example: str, sizes: list[str], grid: str, capsys) -> None:
    args = ["check", str(ROOT / "examples" / f"{example}.k"), "--target", "csl", "--grid", grid]
    for s in sizes:
        args += ["-D", s]
    assert main(args) == 0
    assert "matches the reference interpreter" in capsys.readouterr().out


def test_build_prints_grid_memory_and_modelled_cycles(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sobel"
    args = [
        "build",
        str(ROOT / "examples/sobel.k"),
        "--target",
        "csl",
        "-D",
        "H=800",
        "-D",
        "W=800",
        "--grid",
        "min",  # the smallest grid that fits: 15 x 9
        "-o",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "csl: wse2 grid 15 x 9 PEs" in text
    assert "per-PE memory" in text and "of 49,152 bytes" in text
    assert "modelled" in text and "cycles" in text
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "README.md",
        "commands.sh",
        "kernelc.json",
        "layout.csl",
        "pe_sobel.csl",
        "run.py",
    ]
    commands = (out / "commands.sh").read_text()
    assert (
        "cslc --arch=wse2 ./layout.csl --fabric-dims=22,11 --fabric-offsets=4,1 "
        "--params=width:15,height:9 --memcpy --channels=1 -o out"
    ) in commands
    assert "python -m kernelc.runtime.fabric run run.py --name out" in commands


def _files(example: str, params: dict, grid: tuple[int, int], arch: str = "wse2") -> dict:
    program = kc.load(ROOT / "examples" / (example if "." in example else f"{example}.k"))
    return dict(kc.build(program, "csl", params=params, grid=grid, arch=arch).files)


def test_emitted_files_are_byte_identical_across_builds() -> None:
    for example, params, grid in (
        ("sobel", {"H": 30, "W": 17}, (3, 2)),
        ("pca", {"B": 4, "P": 33, "K": 3}, (2, 2)),
        ("xs_lookup", {"NI": 5, "NG": 20, "NM": 3, "MAXN": 4, "L": 9}, (2, 2)),
    ):
        assert _files(example, params, grid) == _files(example, params, grid)


GOLDEN_CASES = {
    "sobel": ("sobel", {"H": 20, "W": 18}, (3, 2)),
    "gemm": ("gemm", {"M": 64, "N": 64, "K": 64}, (2, 2)),
    "pipeline": ("omp/pipeline.c", {"CH": 16}, (8, 1)),
}


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_files(case: str) -> None:
    example, params, grid = GOLDEN_CASES[case]
    files = _files(example, params, grid)
    folder = GOLDEN / case
    if os.environ.get("KERNELC_UPDATE_GOLDEN") == "1":
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        for name, text in files.items():
            (folder / name).write_text(text)
    expected = {p.name: p.read_text() for p in folder.iterdir()}
    assert sorted(expected) == sorted(files)
    for name, text in files.items():
        assert text == expected[name], f"{case}/{name} differs from its golden file"


def test_oversized_problem_exits_2_with_the_memory_diagnostic(tmp_path: Path, capsys) -> None:
    args = [
        "build",
        str(ROOT / "examples/sobel.k"),
        "--target",
        "csl",
        "-D",
        "H=800",
        "-D",
        "W=800",
        "--grid",
        "2x2",
        "-o",
        str(tmp_path / "out"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "sobel.k:10:14: error: the csl plan for a 2 x 2 grid needs 1,299,568 bytes" in err
    assert "more than the 49,152 bytes of a WSE2 PE" in err
    assert "the largest piece is 'img' (input f32[800, 800]): a 402 x 402 block" in err
    assert "^" in err


def test_table_rows_too_long_for_a_pe_are_reported() -> None:
    with pytest.raises(kc.KernelcError, match="even cut into energy bands, more than the"):
        kc.build(ROOT / "examples/xs_lookup.k", "csl", params={"NG": 2_000_000})


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--grid", "8by8", "--grid takes auto, min or WxH"),
        ("--grid", "0x3", "outside 1x1"),
        ("--arch", "wse9", "unknown CSL architecture 'wse9'"),
    ],
)
def test_bad_options_exit_2(option: str, value: str, message: str, tmp_path, capsys) -> None:
    args = [
        "build",
        str(ROOT / "examples/sobel.k"),
        "--target",
        "csl",
        option,
        value,
        "-o",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_wse3_programs_initialise_their_queues() -> None:
    files = _files("sobel", {"H": 12, "W": 12}, (2, 2), arch="wse3")
    pe = files["pe_sobel.csl"]
    assert '@is_arch("wse3")' in pe and "@initialize_queue(tx_east_oq" in pe
    assert "--arch=wse3" in files["commands.sh"]


def test_emitted_program_follows_the_sdk_rules() -> None:
    files = _files("sobel", {"H": 20, "W": 18}, (3, 2))
    pe, layout = files["pe_sobel.csl"], files["layout.csl"]
    assert 'const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);' in pe
    assert '@export_symbol(img_ptr, "img");' in pe and "var img_ptr: [*]f32 = &img;" in pe
    assert "sys_mod.unblock_cmd_stream();" in pe
    assert ".async = true" in pe and "@fmacs(" in pe and "@map(math.sqrt_f32" in pe
    assert "memcpy.get_params(x)" in layout and '@export_name("img", [*]f32, true);' in layout
    for reserved in ("@get_color(21)", "@get_color(22)", "@get_color(23)"):
        assert reserved not in layout
    gemm = _files("gemm", {"M": 64, "N": 64, "K": 64}, (2, 2))["pe_gemm.csl"]
    assert "mpi_x.broadcast(" in gemm and "mpi_y.broadcast(" in gemm


@pytest.mark.parametrize(
    ("example", "params", "grid"),
    [
        ("sobel", {"H": 13, "W": 10}, (2, 3)),
        ("gemm", {"M": 20, "N": 20, "K": 20}, (2, 2)),
        ("pca", {"B": 3, "P": 30, "K": 4}, (3, 2)),
        ("xs_lookup", {"NI": 5, "NG": 20, "NM": 3, "MAXN": 4, "L": 9}, (2, 2)),
    ],
)
def test_run_py_check_passes_against_its_numpy_version(example, params, grid, tmp_path, capsys):
    from kernelc.runtime.fabric.runner import compile_program, run_host_script

    art = kc.build(ROOT / "examples" / f"{example}.k", "csl", params=params, grid=grid)
    src = art.write(tmp_path / "artifact")
    mf = art.manifest
    compile_program(
        src / "layout.csl",
        arch=mf["arch"],
        fabric_dims=tuple(mf["fabric_dims"]),
        fabric_offsets=tuple(mf["fabric_offsets"]),
        params=mf["cslc_params"],
        channels=1,
        memcpy=True,
        out_dir=tmp_path / "out",
    )
    run_host_script(src / "run.py", ["--name", str(tmp_path / "out"), "--check"])
    assert "SUCCESS: outputs match the NumPy reference" in capsys.readouterr().out


def test_commands_sh_runs_the_simulator(tmp_path: Path) -> None:
    import subprocess
    import sys

    art = kc.build(ROOT / "examples/sobel.k", "csl", params={"H": 9, "W": 9}, grid=(2, 2))
    folder = art.write(tmp_path / "sobel.csl")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["bash", str(folder / "commands.sh")], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout and "simulated:" in done.stdout


def test_emit_csl_prints_the_program(capsys) -> None:
    args = [
        "build",
        str(ROOT / "examples/sobel.k"),
        "--target",
        "csl",
        "-D",
        "H=8",
        "-D",
        "W=8",
        "--grid",
        "2x2",
        "--emit",
        "csl",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "// ===== layout.csl" in text and "// ===== pe_sobel.csl" in text


def test_run_py_is_exercised_against_the_simulator() -> None:
    import numpy as np

    program = kc.load(ROOT / "examples/sobel.k", params={"H": 9, "W": 11})
    img = np.random.default_rng(3).uniform(-1, 1, (9, 11)).astype(np.float32)
    result = kc.run_with_stats(program, "csl", {"img": img}, grid=(2, 3))
    assert result.stats["grid"] == "2x3"
    assert result.stats["simulated_kernel_cycles"] > 0
    want = kc.interpret(program, {"img": img})["mag"]
    np.testing.assert_array_equal(result.outputs["mag"], want)
