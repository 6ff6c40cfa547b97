"""The cpu target from the command line: check, run, build, --emit llvm and input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("example", ["sobel", "gemm", "pca", "xs_lookup"])
def test_check_passes_for_every_example(example, capsys) -> None:
    code = main(["check", str(EXAMPLES / f"{example}.k"), "--target", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("ok:") and "on cpu matches the reference interpreter" in out


def test_run_with_threads_and_saved_output(tmp_path, capsys) -> None:
    img = np.random.default_rng(3).standard_normal((9, 7)).astype(np.float32)
    np.save(tmp_path / "img.npy", img)
    out_path = tmp_path / "mag.npy"
    args = ["run", str(EXAMPLES / "sobel.k"), "--target", "cpu", "--threads", "2"]
    code = main([*args, "--in", f"img={tmp_path / 'img.npy'}", "--out", f"mag={out_path}"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "sobel on cpu: 1 task(s)" in text and "threads 2" in text
    mag = np.load(out_path)
    want = kc.interpret(kc.load(EXAMPLES / "sobel.k"), {"img": img})["mag"]
    np.testing.assert_array_equal(mag, want)


def test_xs_example_runs_from_xsdata(tmp_path, capsys) -> None:
    data = tmp_path / "xs"
    assert main(["xsdata", "-o", str(data), "--lookups", "500"]) == 0
    assert "--target cpu" in capsys.readouterr().out
    code = main(["run", str(EXAMPLES / "xs_lookup.k"), "--target", "cpu", "--in-dir", str(data)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "macro" in text and "(500, 5)" in text


def test_build_writes_ll_object_and_manifest(tmp_path, capsys) -> None:
    out = tmp_path / "sobel.cpu"
    args = ["build", str(EXAMPLES / "sobel.k"), "--target", "cpu", "-D", "H=64", "-D", "W=48"]
    assert main([*args, "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["kernelc.json", "sobel.ll", "sobel.o"]
    ll = (out / "sobel.ll").read_text()
    assert "define void @kernelc_task_sobel(ptr" in ll and "llvm.sqrt" in ll
    assert (out / "sobel.o").read_bytes()[:4] == b"\x7fELF"
    manifest = json.loads((out / "kernelc.json").read_text())
    assert manifest["target"] == "cpu" and manifest["params"] == {"H": 64, "W": 48}
    assert manifest["symbols"] == [
        {"task": "sobel", "symbol": "kernelc_task_sobel", "split": [1, 63], "gemm": False}
    ]
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([*args, "-o", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # deterministic


def test_emit_llvm_prints_the_optimised_module(capsys) -> None:
    code = main(["build", str(EXAMPLES / "gemm.k"), "--target", "cpu", "--emit", "llvm"])
    text = capsys.readouterr().out
    assert code == 0
    assert "define void @kernelc_task_gemm(" in text
    assert "@llvm.fma.v" in text  # the GEMM micro-kernel's vector FMAs


def _run_with(tmp_path, array: np.ndarray, extra: list[str]) -> int:
    path = tmp_path / "img.npy"
    np.save(path, array)
    args = ["run", str(EXAMPLES / "sobel.k"), "--target", "cpu", "--in", f"img={path}"]
    return main([*args, *extra])


@pytest.mark.parametrize(
    "array, extra, message",
    [
        (np.zeros((8, 8), np.float64), [], "has dtype float64"),
        (np.zeros((8, 9), np.float32), ["-D", "H=8", "-D", "W=8"], "has W = 9"),
        (np.asfortranarray(np.zeros((8, 9), np.float32)), [], "not C-contiguous"),
    ],
    ids=["dtype", "shape", "contiguity"],
)
def test_bad_inputs_exit_2_with_a_clear_error(tmp_path, capsys, array, extra, message) -> None:
    code = _run_with(tmp_path, array, extra)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "error:" in err and "Traceback" not in err


def test_bad_thread_count_exits_2(capsys) -> None:
    code = main(
        [
            "run",
            str(EXAMPLES / "sobel.k"),
            "--target",
            "cpu",
            "--threads",
            "0",
            "--random-inputs",
            "1",
            "-D",
            "H=4",
            "-D",
            "W=4",
        ]
    )
    assert code == 2
    assert "--threads must be a positive integer" in capsys.readouterr().err
