"""The run environment (issue 14): concurrent builds and runs, interrupted writes, and user
names that are keywords of the emitted languages."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import targets

ROOT = Path(__file__).resolve().parent.parent
SOBEL = ROOT / "examples" / "sobel.k"


def _build(out: Path, *defines: str) -> subprocess.Popen:
    args = [sys.executable, "-P", "-m", "kernelc", "build", str(SOBEL), "-t", "csl", "-o", str(out)]
    for d in defines:
        args += ["-D", d]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _manifest(out: Path) -> dict:
    return json.loads((out / "kernelc.json").read_text())


def _complete(out: Path) -> dict:
    """The manifest of a complete artifact directory (every file it lists is there)."""
    manifest = _manifest(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"])
    return manifest


# ------------------------------------------------------------------------ artifact directories


def test_concurrent_builds_of_one_directory_all_succeed(tmp_path) -> None:
    out = tmp_path / "art"
    procs = [_build(out, f"H={h}", "W=8") for h in (8, 9, 10, 11)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert _complete(out)["params"]["H"] in (8, 9, 10, 11)
    assert [p.name for p in tmp_path.iterdir()] == ["art"], "staging or old directories left"


KILLER = """
import os, signal, sys
from pathlib import Path
import kernelc.artifact as artifact
from kernelc.cli import main

sig, when, what = getattr(signal, sys.argv[1]), int(sys.argv[2]), sys.argv[3]
calls = [0]
# Ctrl-C at a terminal: a run started as a background job inherits SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)

def hit():
    calls[0] += 1
    if calls[0] == when:
        os.kill(os.getpid(), sig)

if what == "write":
    real = Path.write_text
    def write_text(self, *args, **kwargs):
        hit()
        return real(self, *args, **kwargs)
    Path.write_text = write_text
else:
    real_rename = artifact.os.rename
    def rename(a, b):
        result = real_rename(a, b)
        hit()
        return result
    artifact.os.rename = rename
sys.exit(main(sys.argv[4:]))
"""


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
@pytest.mark.parametrize(("what", "when"), [("write", 3), ("rename", 1)])
def test_an_interrupted_build_leaves_the_old_directory_or_none(tmp_path, sig, what, when) -> None:
    """Killed (or interrupted) while writing a file, or between moving the old directory aside
    and renaming the new one in: the directory is the old one, complete, or absent."""
    out = tmp_path / "art"
    assert _build(out, "H=8", "W=8").wait(timeout=120) == 0
    old = _complete(out)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    argv = ["build", str(SOBEL), "-t", "csl", "-o", str(out), "-D", "H=9", "-D", "W=8"]
    done = subprocess.run(
        [sys.executable, str(script), sig, str(when), what, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    if out.exists():
        assert _complete(out) == old
    else:
        assert what == "rename" and sig == "SIGKILL"
    if sig == "SIGINT":
        assert done.returncode == 130 and out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_build_killed_at_any_moment_leaves_a_complete_directory_or_none(tmp_path) -> None:
    out = tmp_path / "art"
    assert _build(out, "H=8", "W=8").wait(timeout=120) == 0
    old = _complete(out)
    for delay in np.linspace(0.3, 2.4, 4):
        proc = _build(out, "H=9", "W=8")
        time.sleep(float(delay))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if out.exists():
            assert _complete(out)["params"]["H"] in (old["params"]["H"], 9)


# ----------------------------------------------------------------------------- compile caches


@pytest.mark.slow
def test_two_processes_share_the_ipu_compile_cache(tmp_path) -> None:
    """Two processes compile one poplar program into a fresh cache at once: both get the right
    answer, and a third process finds the binary in the cache. (Slow: a fresh cache compiles
    the IPU model's runtime, about 30 s. The cpu target's compile cache is per process.)"""
    if "poplar" not in targets.names():
        pytest.skip("no poplar target")
    from kernelc.runtime.ipu.runner import compiler

    if compiler() is None:
        pytest.skip("no C++ compiler")
    script = textwrap.dedent(
        f"""
        import json, sys, numpy as np, kernelc as kc
        prog = kc.load({str(SOBEL)!r})
        img = np.random.default_rng(1).random((6, 5), dtype=np.float32)
        got = kc.run(prog, "poplar", {{"img": img}})["mag"]
        want = kc.run(prog, "interp", {{"img": img}})["mag"]
        print(json.dumps(bool(np.array_equal(got, want))))
        """
    )
    env = {**os.environ, "KERNELC_CACHE_DIR": str(tmp_path / "cache")}
    run = [sys.executable, "-P", "-c", script]
    procs = [subprocess.Popen(run, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    assert [json.loads(p.communicate(timeout=300)[0]) for p in procs] == [True, True]
    programs = list((tmp_path / "cache" / "ipu" / "programs").glob("*/program"))
    assert len(programs) == 1
    stamp = programs[0].stat().st_mtime_ns
    third = subprocess.run(run, capture_output=True, text=True, env=env, timeout=300)
    assert json.loads(third.stdout) is True
    assert programs[0].stat().st_mtime_ns == stamp, "the cached binary was rebuilt"


def test_two_threads_calling_run_at_once_get_correct_results() -> None:
    prog = kc.load(ROOT / "examples" / "gemm.k")
    rng = np.random.default_rng(0)
    jobs = []
    for m, n, k in [(5, 7, 3), (8, 8, 8), (5, 7, 3), (16, 3, 9)] * 3:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        jobs.append(({"a": a, "b": b}, a.astype(np.float64) @ b.astype(np.float64)))

    def run(job, target):
        inputs, want = job
        got = kc.run(prog, target, inputs)["c"]
        return np.allclose(got, want, rtol=1e-5, atol=1e-5)

    for target in ("interp", "cpu"):
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert all(pool.map(lambda job, t=target: run(job, t), jobs))


# ------------------------------------------------------------------------------ keyword names

KEYWORDS = """
size N = 5;

kernel fn(const: f32[N], class: f32 = 2.0) -> task: f32[N] {
  for lambda in 0 .. N {
    let def = const[lambda] * class;
    let self = def + 1.0;
    task[lambda] = self;
  }
}

kernel struct(task: f32[N], comptime: f32[N]) -> return: f32[N] {
  for int in 0 .. N {
    let import = comptime[int];
    return[int] = task[int] + import;
  }
}

graph main(const: f32[N], export: f32[N]) -> out: f32[N] {
  None = fn(const, 2.0);
  out = struct(None, export);
}
"""


@pytest.mark.parametrize("target", targets.names())
def test_names_that_are_keywords_reach_every_emitted_file_safely(target: str) -> None:
    """const, fn, task, class, lambda, ... as kernel, graph, parameter, local and loop names:
    every target builds and runs the program (csl's files are parsed by the fabric simulator,
    poplar's compiled by g++, groq's run by its emulator), and emitted Python parses. Element-wise
    f32 work only, so that every target's data-parallel lowering takes it."""
    prog = kc.loads(KEYWORDS, "keywords.k")
    inputs = {
        "const": np.arange(5, dtype=np.float32),
        "export": np.arange(5, dtype=np.float32) * 3,
    }
    artifact = kc.build(prog, target)
    for name, text in artifact.files.items():
        if name.endswith(".py"):
            ast.parse(text, name)
    got = kc.run(prog, target, inputs)["out"]
    np.testing.assert_array_equal(got, np.arange(5, dtype=np.float32) * 2 + 1 + np.arange(5) * 3)
