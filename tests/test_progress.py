"""The progress line of long simulations and builds (kernelc/progress.py): on a terminal only,
throttled, width-limited, erased at the end; silent in a pipe, with --quiet, and in the Python
API unless KERNELC_PROGRESS=1."""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest

import kernelc as kc
from kernelc import progress

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# a csl simulation whose launch runs long enough (~0.5 s) for several updates of the line
SOBEL = ["examples/sobel.k", "--target", "csl", "-D", "H=48", "-D", "W=48", "--grid", "24x24"]
COLUMNS = 100
needs_gxx = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None,
    reason="the IPU model compiles the emitted C++ with g++, which is not installed",
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    """Text written to a stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def reporter(delay: float = 2.0, columns: int = 80) -> tuple[progress.Reporter, Terminal, Clock]:
    out, clock = Terminal(), Clock()
    return progress.Reporter(out, delay=delay, clock=clock, columns=lambda: columns), out, clock


def segments(text: str) -> list[str]:
    """The successive states of the line: what each carriage return started."""
    return [s.rstrip(" ") for s in text.split("\r") if s.strip(" ")]


# ------------------------------------------------------------------------- the reporter


def test_nothing_before_the_delay_then_the_line_with_the_elapsed_time() -> None:
    rep, out, clock = reporter(delay=2.0)
    clock.now += 1.9
    rep.show("fabric simulator, launch 'f'", "simulated cycle 10")
    assert out.getvalue() == ""
    clock.now += 0.1
    rep.show("fabric simulator, launch 'f'", "simulated cycle 20")
    assert out.getvalue() == "\rfabric simulator, launch 'f': simulated cycle 20  2.0 s\r"


def test_updates_are_throttled_to_ten_a_second() -> None:
    rep, out, clock = reporter(delay=0.0)
    for k in range(5000):  # 5 s of updates, one a millisecond
        rep.show("work", f"step {k}")
        clock.now += 0.001
    written = segments(out.getvalue())
    assert 49 <= len(written) <= 51
    assert written[0] == "work: step 0  0.0 s" and written[1] == "work: step 100  0.1 s"


def test_a_new_step_is_shown_at_once_after_the_delay() -> None:
    """A step shorter than the interval still appears (the user sees every phase go by)."""
    rep, out, clock = reporter(delay=1.0)
    rep.show("building", "")
    clock.now += 1.0
    rep.show("building", "")
    clock.now += 0.01
    rep.show("building", "more")  # throttled: the same step within the interval
    rep.show("setting up 4 PEs", "")
    clock.now += 0.01
    rep.show("setting up 4 PEs", "half")  # throttled again
    assert segments(out.getvalue()) == ["building  1.0 s", "setting up 4 PEs  1.0 s"]


def test_a_detail_function_is_called_only_when_the_line_is_written() -> None:
    rep, out, clock = reporter(delay=0.0)
    calls = []

    def detail() -> str:
        calls.append(clock.now)
        return "busy"

    for _ in range(100):
        rep.show("work", detail)
        clock.now += 0.01
    assert len(calls) == len(segments(out.getvalue())) == 10


def test_the_line_is_cut_to_the_terminal_width_and_a_shorter_one_covers_a_longer() -> None:
    rep, out, clock = reporter(delay=0.0, columns=30)
    rep.show("fabric simulator, launch 'f_sobel'", "simulated cycle 1,234")
    first = out.getvalue()
    assert first == "\rfabric simulator, launch '...\r" and len(first) - 2 == 29
    clock.now += 0.5
    rep.show("short", "")
    line = "short  0.5 s"
    assert out.getvalue()[len(first) :] == "\r" + line + " " * (29 - len(line)) + "\r"


def test_clear_erases_the_line_once() -> None:
    rep, out, clock = reporter(delay=0.0)
    rep.clear()
    assert out.getvalue() == ""
    rep.show("work", "half done")
    shown = len("work: half done  0.0 s")
    rep.clear()
    rep.clear()
    assert out.getvalue().endswith("\r" + " " * shown + "\r")
    assert out.getvalue().count("\r") == 4


@pytest.mark.parametrize(
    "seconds, text",
    [(0.04, "0.0 s"), (59.94, "59.9 s"), (75.2, "1 min 15 s"), (3725, "62 min 05 s")],
)
def test_elapsed_time(seconds: float, text: str) -> None:
    assert progress.elapsed(seconds) == text


# ------------------------------------------------------------- who reports, and where


def test_phases_report_only_on_a_terminal(monkeypatch) -> None:
    monkeypatch.delenv("KERNELC_PROGRESS", raising=False)
    monkeypatch.setenv("KERNELC_PROGRESS_DELAY", "0")
    with progress.reporting(stream=io.StringIO()), progress.phase("work") as shown:
        assert shown is progress.SILENT
    terminal = Terminal()
    with progress.reporting(stream=terminal):
        with progress.phase("work") as shown:
            shown.update("half done")
            assert segments(terminal.getvalue())[-1].startswith("work: half done  ")
        assert terminal.getvalue().endswith(
            "\r" + " " * len(segments(terminal.getvalue())[0]) + "\r"
        )
    monkeypatch.setenv("KERNELC_PROGRESS", "0")
    with progress.reporting(stream=Terminal()), progress.phase("work") as shown:
        assert shown is progress.SILENT


def test_the_python_api_is_silent_unless_asked(monkeypatch) -> None:
    monkeypatch.setenv("KERNELC_PROGRESS_DELAY", "0")
    program = kc.load(EXAMPLES / "sobel.k", params={"H": 32, "W": 32})
    monkeypatch.delenv("KERNELC_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", Terminal())
    kc.build(program, "csl")
    assert sys.stderr.getvalue() == ""
    monkeypatch.setenv("KERNELC_PROGRESS", "1")
    kc.build(program, "csl")
    assert "csl: choosing the PE grid: " in sys.stderr.getvalue()
    assert " grids tried, " in sys.stderr.getvalue()
    assert sys.stderr.getvalue().endswith(" \r")  # erased at the end
    decided = Terminal()  # a caller that decided (the kernelc command) wins over the variable
    monkeypatch.setattr(sys, "stderr", decided)
    with progress.reporting(False):
        kc.build(program, "csl")
    assert decided.getvalue() == ""


def test_the_tsp_emulator_reports_its_instructions(monkeypatch) -> None:
    monkeypatch.setenv("KERNELC_PROGRESS_DELAY", "0")
    a = np.ones((8, 16), np.float32)
    b = np.ones((16, 4), np.float32)
    terminal = Terminal()
    with progress.reporting(stream=terminal):
        out = kc.run(EXAMPLES / "gemm.k", "groq", {"a": a, "b": b})
    assert np.array_equal(out["c"], a @ b)
    first = segments(terminal.getvalue())[0]
    assert first.startswith("tsp emulator, run.py: instruction 1 of ")


def test_the_tsp_watch_sees_every_instruction(tmp_path: Path) -> None:
    from kernelc.runtime.tsp.loader import run_file

    artifact = kc.build(EXAMPLES / "gemm.k", "groq", params={"M": 8, "N": 4, "K": 16})
    src = artifact.write(tmp_path / "artifact")
    run_file(src / "program.py")
    ins = tmp_path / "inputs"
    ins.mkdir()
    np.save(ins / "a.npy", np.ones((8, 16), np.float32))
    np.save(ins / "b.npy", np.ones((16, 4), np.float32))
    seen: list[tuple[int, int]] = []
    argv = ["--inputs", str(ins), "--outputs", str(tmp_path / "outputs")]
    run_file(src / "run.py", argv, lambda done, total: seen.append((done, total)))
    total = seen[0][1]
    assert seen == [(k, total) for k in range(total)] and total > 1
    run_file(src / "run.py", argv)  # no watch: nothing left behind from the last run
    assert len(seen) == total


def test_the_ipu_model_progress_file_in_words(tmp_path: Path) -> None:
    from kernelc.runtime.ipu.runner import progress_reader

    path = tmp_path / "ipu-progress"
    describe = progress_reader(path)
    assert describe() == "building the graph (main.cpp)"  # the engine does not exist yet
    path.write_text("check 0 3 0 0 0\n")
    assert describe() == "checking the graph (tile mapping, connections, races, memory)"
    path.write_text("run 1 3 64 512 12345\n")
    assert describe() == "superstep 2 of 3, vertex 64 of 512, simulated cycle 12,345"
    path.write_text("run 1 3 0 0 12345\n")
    assert describe() == "superstep 2 of 3, simulated cycle 12,345"
    path.write_text("run 3 3 0 0 20000\n")
    assert describe() == "3 supersteps run, simulated cycle 20,000"


@needs_gxx
def test_the_ipu_model_writes_its_progress_file(tmp_path: Path, monkeypatch) -> None:
    from kernelc.runtime.ipu import runner

    monkeypatch.setenv("KERNELC_PROGRESS_DELAY", "0")
    artifact = kc.build(EXAMPLES / "sobel.k", "poplar", params={"H": 9, "W": 7}, tiles=4)
    src = artifact.write(tmp_path / "artifact")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "outputs").mkdir()
    img = np.random.default_rng(0).random((9, 7), dtype=np.float32)
    (tmp_path / "inputs" / "img.bin").write_bytes(img.tobytes())
    binary = runner.build(src)
    args = ["--inputs", "inputs", "--outputs", "outputs"]
    stats = runner.run(binary, args, tmp_path)
    assert not (tmp_path / "ipu-progress").exists()  # nothing asked for it
    with progress.reporting(stream=Terminal()):
        assert runner.run(binary, args, tmp_path) == stats
    phase, done, supersteps, *_ = (tmp_path / "ipu-progress").read_text().split()
    assert phase in ("check", "run") and int(supersteps) == stats["supersteps"] == 1


# --------------------------------------------------------- the command on a terminal


def on_terminal(argv: list[str], columns: int = COLUMNS) -> tuple[str, str, int]:
    """Run ``python -P -m kernelc ARGV`` with standard error on a pseudo-terminal of
    ``columns`` columns and standard output on a pipe: (terminal text, stdout, exit code)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "KERNELC_PROGRESS"}
    env["KERNELC_PROGRESS_DELAY"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "kernelc", *argv],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        cwd=ROOT,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every copy of the slave side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return b"".join(chunks).decode(), out, proc.wait(timeout=60)


def in_a_pipe(argv: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KERNELC_PROGRESS"}
    env["KERNELC_PROGRESS_DELAY"] = "0"
    return subprocess.run(
        [sys.executable, "-P", "-m", "kernelc", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def untimed(stdout: str) -> list[str]:
    """The output without its wall-clock figures (they differ from run to run)."""
    return [
        line.split(", run ")[0]
        for line in stdout.splitlines()
        if not line.strip().startswith("simulator_launch_seconds")
    ]


def test_a_simulation_on_a_terminal_shows_progress_and_nothing_in_a_pipe() -> None:
    argv = ["run", *SOBEL, "--random-inputs", "1"]
    shown, out, code = on_terminal(argv)
    assert code == 0
    lines = segments(shown)
    assert any(s.startswith("fabric simulator, setting up 576 PEs: ") for s in lines), lines
    launch = [s for s in lines if s.startswith("fabric simulator, launch 'f_sobel': ")]
    assert launch, lines
    kernel = int(out.split("simulated_kernel_cycles ")[1].split()[0])
    for line in launch:
        detail = line.split(": ", 1)[1].rsplit("  ", 1)[0]
        cycle, busy = detail.removeprefix("simulated cycle ").split(", ")
        assert 0 <= int(cycle.replace(",", "")) <= kernel
        running = int(busy.removesuffix("/576 PEs busy").replace(",", ""))
        assert 0 <= running <= 576
    widths = [len(s) for s in shown.split("\r")]
    assert 80 <= max(widths) <= COLUMNS - 1  # the terminal's width, not the default 80
    assert shown.endswith(" \r")  # the last state of the line is blank: erased
    piped = in_a_pipe(argv)
    assert piped.returncode == 0 and piped.stderr == ""
    assert untimed(out) == untimed(piped.stdout)  # the output is intact
    assert "mag     (48, 48)  f32" in out


def test_quiet_silences_the_line_on_a_terminal() -> None:
    # without --quiet, a delay of 0 shows the first row of PEs set up (the test above)
    tiny = ["examples/sobel.k", "--target", "csl", "-D", "H=8", "-D", "W=8", "--grid", "2x2"]
    shown, out, code = on_terminal(["check", *tiny, "--quiet"])
    assert code == 0 and shown == ""
    assert out.startswith("ok: sobel on csl matches the reference interpreter")
