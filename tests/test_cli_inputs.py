"""Malformed command lines and malformed inputs (issue 14): each gives a located error and
exit status 2 (or a result), never a traceback; through kernelc.cli.main and a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelc.cli import main

SOBEL = "examples/sobel.k"
LOCATED = re.compile(r"^\S[^\n]*:\d+:\d+: error: ", re.MULTILINE)


def _files(tmp: Path) -> dict[str, str]:
    """Input files of every kind of wrong, by role."""
    good = tmp / "good.npy"
    np.save(good, np.zeros((8, 6), np.float32))
    np.save(tmp / "f64.npy", np.zeros((8, 6), np.float64))
    np.save(tmp / "rank1.npy", np.zeros((3,), np.float32))
    np.save(tmp / "fortran.npy", np.asfortranarray(np.zeros((8, 6), np.float32)))
    np.save(tmp / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    data = good.read_bytes()
    (tmp / "truncated.npy").write_bytes(data[:100])
    (tmp / "header.npy").write_bytes(data[:20])
    (tmp / "empty.npy").write_bytes(b"")
    (tmp / "text.npy").write_text("not an array\n")
    (tmp / "dir").mkdir()
    (tmp / "dir" / "img.npy").write_bytes(data[:100])
    (tmp / "afile").write_text("x")
    (tmp / "binary.k").write_bytes(b"\xff\xfe\x00kernel")
    return {"tmp": str(tmp)}


CASES = {
    "truncated": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/truncated.npy"],
    "header only": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/header.npy"],
    "empty file": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/empty.npy"],
    "not npy": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/text.npy"],
    "objects": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/objects.npy"],
    "wrong dtype": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/f64.npy"],
    "wrong rank": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/rank1.npy"],
    "fortran order": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/fortran.npy"],
    "in at nothing": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}/nothing.npy"],
    "in without path": ["run", SOBEL, "-t", "interp", "--in", "img="],
    "in without name": ["run", SOBEL, "-t", "interp", "--in", "={tmp}/good.npy"],
    "in at a directory": ["run", SOBEL, "-t", "interp", "--in", "img={tmp}"],
    "unknown input": ["run", SOBEL, "-t", "interp", "--in", "imgx={tmp}/good.npy"],
    "in-dir truncated": ["run", SOBEL, "-t", "interp", "--in-dir", "{tmp}/dir"],
    "in-dir missing": ["run", SOBEL, "-t", "interp", "--in-dir", "{tmp}/nodir"],
    "in-dir a file": ["run", SOBEL, "-t", "interp", "--in-dir", "{tmp}/afile"],
    "out in a missing directory": [
        "run", SOBEL, "-t", "interp", "--in", "img={tmp}/good.npy", "--out", "mag={tmp}/no/x.npy"
    ],
    "out under a file": [
        "run", SOBEL, "-t", "interp", "--in", "img={tmp}/good.npy", "--out", "mag={tmp}/afile/x"
    ],
    "out unknown": ["run", SOBEL, "-t", "interp", "--random-inputs", "1", "--out", "x=y.npy"],
    "negative seed": ["run", SOBEL, "-t", "interp", "--random-inputs", "-1"],
    "seed not a number": ["check", SOBEL, "-t", "interp", "--seed", "x"],
    "nan rtol": ["check", SOBEL, "-t", "interp", "--rtol", "nan"],
    "negative rtol": ["check", SOBEL, "-t", "interp", "--rtol", "-1"],
    "build over a file": ["build", SOBEL, "-t", "interp", "-o", "{tmp}/afile"],
    "build under a file": ["build", SOBEL, "-t", "interp", "-o", "{tmp}/afile/out"],
    "size too big for i32": ["build", SOBEL, "-t", "interp", "-D", "H=3000000000"],
    "size beyond int64": ["build", SOBEL, "-t", "interp", "-D", "H=99999999999999999999"],
    "size infinite": ["build", SOBEL, "-t", "interp", "-D", "H=1e400"],
    "size negative": ["build", SOBEL, "-t", "interp", "-D", "H=-5"],
    "define without value": ["build", SOBEL, "-t", "interp", "-D", "H"],
    "define not a name": ["build", SOBEL, "-t", "interp", "-D", "1H=3"],
    "inputs too big": [
        "run", SOBEL, "-t", "interp", "-D", "H=2000000000", "-D", "W=2000000000",
        "--random-inputs", "1",
    ],
    "source not utf-8": ["build", "{tmp}/binary.k", "-t", "interp"],
    "source a directory": ["build", "{tmp}", "-t", "interp"],
    "source missing": ["build", "{tmp}/none.k", "-t", "interp"],
    "unknown target": ["build", SOBEL, "-t", "gpu"],
    "bad grid": ["build", SOBEL, "-t", "csl", "--grid", "axb"],
    "zero threads": ["run", SOBEL, "-t", "cpu", "--threads", "0", "--random-inputs", "1"],
    "threads not a number": ["run", SOBEL, "-t", "cpu", "--threads", "x"],
    "option of another target": ["build", SOBEL, "-t", "interp", "--grid", "2x2"],
    "no nuclides": ["xsdata", "-o", "{tmp}/xs", "--lookups", "3", "--nuclides", "0"],
    "one grid point": ["xsdata", "-o", "{tmp}/xs", "--lookups", "3", "--gridpoints", "1"],
    "xsdata under a file": ["xsdata", "-o", "{tmp}/afile/xs", "--lookups", "3", "--nuclides", "2"],
    "graph under a file": ["graph", SOBEL, "-o", "{tmp}/afile/g.dot"],
    "no command": [],
    "unknown command": ["bogus"],
    "run without target": ["run", SOBEL],
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_argument_or_input_is_a_located_error(case, tmp_path, capsys) -> None:
    where = _files(tmp_path)
    argv = [a.format(**where) for a in CASES[case]]
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, f"{case}: exit {status}\n{err}"
    assert LOCATED.search(err), f"{case}: not a located error:\n{err}"
    assert "Traceback" not in err


def test_the_wrong_file_is_kept(tmp_path, capsys) -> None:
    """`build -o FILE` refuses rather than replacing the user's file with a directory."""
    _files(tmp_path)
    assert main(["build", SOBEL, "-t", "interp", "-o", str(tmp_path / "afile")]) == 2
    assert (tmp_path / "afile").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("case", ["truncated", "in-dir truncated", "out in a missing directory"])
def test_no_traceback_from_the_command(case, tmp_path) -> None:
    where = _files(tmp_path)
    argv = [a.format(**where) for a in CASES[case]]
    done = subprocess.run(
        [sys.executable, "-P", "-m", "kernelc", *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert LOCATED.search(done.stderr) and "Traceback" not in done.stderr
