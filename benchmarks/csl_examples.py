"""kernelc's CSL front end on the SDK's public examples: one row per .csl file.

Takes a checkout (or extract) of Cerebras/csl-examples and, for every .csl file under
tutorials/ and benchmarks/, reports whether kernelc's parser reads it and whether the type
checker accepts it. A program named by a ``cslc`` line of an example's commands_wse2.sh is checked
from its layout with that line's ``--params`` / ``--colors`` (which reaches its tile files and
the modules they import); a file no such program reaches (SdkLayout tutorials, library modules)
is checked on its own, its params of unknown value. Then each such program (and each of
commands_wse3.sh) is set up on the fabric simulator, which evaluates the layout and every PE's
module scope under the machine rules that apply there (color configurations, queues memcpy
holds, collectives' queues and DSRs); a program that stops on a construct the simulator does
not run yet says which. With ``--run``, each tutorial is copied to a scratch directory and its
commands_wse2.sh (``--wse3``: commands_wse3.sh; the other where it has only one) is run with
the simulator's stand-ins for ``cslc`` and ``cs_python``: one row per tutorial with whether
it ran, whether its own check passed (run.py exits 0), its simulated cycles (modelled, never
a measurement) and the wall time.
Not CI: the examples are not part of this repository.

    python benchmarks/csl_examples.py /path/to/csl-examples [--run]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kernelc.diagnostics import KernelcError
from kernelc.runtime.fabric.fabric import Simulator
from kernelc.runtime.fabric.parser import parse_file, parse_program
from kernelc.runtime.fabric.typecheck import Checker, check_program


def cslc_lines(script: Path) -> list[list[str]]:
    """The argument lists of the cslc commands of a commands_wse2.sh (continuations joined)."""
    text = script.read_text().replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in text.splitlines() if line.strip().startswith("cslc")]


def options(argv: list[str]) -> tuple[str, str, dict[str, int]]:
    """Layout file, arch and the params/colors of one cslc command line."""
    layout, arch, params = "", "wse2", {}
    pending = None
    for arg in argv:
        if pending:
            arg, pending = f"{pending}={arg}", None
        if arg in ("--arch", "--params", "--colors"):
            pending = arg
            continue
        if arg.endswith(".csl") and not arg.startswith("-"):
            layout = arg
        elif arg.startswith("--arch="):
            arch = arg.split("=", 1)[1]
        elif arg.startswith(("--params=", "--colors=")):
            for item in arg.split("=", 1)[1].split(","):
                key, value = item.split(":")
                params[key] = int(value, 0)
    return layout, arch, params


def first_line(err: Exception) -> str:
    return str(err).splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", type=Path, help="checkout of Cerebras/csl-examples")
    parser.add_argument("--run", action="store_true", help="run the tutorials with run.py")
    parser.add_argument(
        "--wse3", action="store_true", help="with --run: commands_wse3.sh where there is one"
    )
    args = parser.parse_args()
    root = args.examples.resolve()
    if args.run:
        sys.exit(run_tutorials(root, "wse3" if args.wse3 else "wse2"))
    files = sorted(p for top in ("tutorials", "benchmarks") for p in (root / top).rglob("*.csl"))
    parsed: dict[Path, str] = {}
    for f in files:
        try:
            parse_file(f.read_text(), str(f.relative_to(root)))
            parsed[f] = "yes"
        except KernelcError as err:
            parsed[f] = f"no: {first_line(err)}"
    checked: dict[Path, str] = {}
    for script in sorted(root.glob("*/*/commands_wse2.sh")):
        for argv in cslc_lines(script):
            layout, arch, params = options(argv)
            path = (script.parent / layout).resolve()
            try:
                program = parse_program(path.parent, path.name)
                names = check_program(program, path.parent, arch, params)
                verdict = f"yes ({path.name} {_params_text(params)})"
            except (KernelcError, OSError) as err:
                names = {path.name}
                verdict = f"no ({path.name}): {first_line(err)}"
            for name in names:
                checked.setdefault((path.parent / name).resolve(), verdict)
    for f in files:
        if f in checked or not parsed[f].startswith("yes"):
            continue
        try:
            Checker(f.parent, "wse2").check_file(parse_file(f.read_text(), f.name), {})
            checked[f] = "yes (on its own)"
        except KernelcError as err:
            checked[f] = f"no: {first_line(err)}"
    width = max(len(str(f.relative_to(root))) for f in files)
    print(f"{'file':{width}}  parsed  type-checked  ran")
    for f in files:
        p = "yes" if parsed[f] == "yes" else "NO"
        c = checked.get(f, "-")
        print(f"{str(f.relative_to(root)):{width}}  {p:6}  {c}  -")
        if p == "NO":
            print(f"    {parsed[f]}")
    n_parsed = sum(v == "yes" for v in parsed.values())
    n_checked = sum(v.startswith("yes") for v in checked.values() if v)
    print(f"\nparsed {n_parsed}/{len(files)}, type-checked {n_checked}/{len(files)}")
    set_up = set_up_programs(root)
    print("\nprogram (cslc line)  set up on the simulator")
    for name, verdict in set_up:
        print(f"  {name}: {verdict}")
    print(f"set up {sum(v == 'yes' for _, v in set_up)}/{len(set_up)} programs")
    sys.exit(0 if n_parsed == n_checked == len(files) else 1)


def set_up_programs(root: Path) -> list[tuple[str, str]]:
    """Each program of a commands_wse2.sh / commands_wse3.sh cslc line, set up on the simulator."""
    rows = []
    for script in sorted(root.glob("*/*/commands_wse[23].sh")):
        for argv in cslc_lines(script):
            layout, arch, params = options(argv)
            path = (script.parent / layout).resolve()
            name = f"{script.parent.relative_to(root)} [{arch}] {layout}"
            try:
                program = parse_program(path.parent, path.name)
                check_program(program, path.parent, arch, params)
                Simulator(program, params, arch)
                rows.append((name, "yes"))
            except (KernelcError, OSError) as err:
                rows.append((name, f"no: {first_line(err)}"))
            except Exception as err:  # a construct the simulator's interpreter does not run yet
                rows.append((name, f"no: not run by the simulator yet ({type(err).__name__})"))
    return rows


def run_tutorials(root: Path, arch: str) -> int:
    """Each tutorial's commands script for ``arch`` (else its other one) on the simulator; 0
    when every one's check passed."""
    tools = f"{shlex.quote(sys.executable)} -P -m kernelc.runtime.fabric"
    print(f"{'tutorial':34} ran  check  simulated cycles  wall s  first error")
    passed = total = 0
    for tutorial in sorted((root / "tutorials").iterdir()):
        scripts = sorted(tutorial.glob("commands_wse[23].sh"), key=lambda p: arch not in p.name)
        if tutorial.name.startswith("sdklayout"):
            print(
                f"{tutorial.name:34} -    -      -                 -       SdkLayout: not modelled"
            )
            continue
        if not scripts or not (tutorial / "run.py").exists():
            print(f"{tutorial.name:34} -    -      -                 -       no run.py")
            continue
        total += 1
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch) / tutorial.name
            shutil.copytree(tutorial, work)
            script = scripts[0].read_text()
            script = "\n".join(
                f"{tools} cslc {line.strip()[5:]}"
                if line.strip().startswith("cslc ")
                else f"{tools} run {line.strip()[10:]}"
                if line.strip().startswith("cs_python ")
                else line
                for line in script.replace("\\\n", " ").splitlines()
            )
            start = time.perf_counter()
            done = subprocess.run(
                ["bash", "-c", script], cwd=work, capture_output=True, text=True, check=False
            )
            wall = time.perf_counter() - start
            stats_path = work / "out" / "sim_stats.json"
            cycles = "-"
            if stats_path.exists():
                cycles = str(json.loads(stats_path.read_text())["simulated_total_cycles"])
            ran = "yes" if stats_path.exists() else "no"
            ok = done.returncode == 0
            passed += ok
            errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
            first = "" if ok else (errors or done.stderr.splitlines() or ["?"])[-1][:90]
            check = "yes" if ok else "NO"
            print(f"{tutorial.name:34} {ran:4} {check:6} {cycles:17} {wall:6.1f}  {first}")
    print(f"\n{passed} of {total} tutorials with a run.py pass their own check on the simulator")
    return 0 if passed == total else 1


def _params_text(params: dict[str, int]) -> str:
    return ",".join(f"{k}:{v}" for k, v in params.items())


if __name__ == "__main__":
    main()
