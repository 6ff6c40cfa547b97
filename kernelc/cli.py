"""The ``kernelc`` command: a thin shell over the Python API.

User errors print ``file:line:col: error: message`` with the line and a caret and exit 2;
``check`` exits 1 when a target disagrees with the reference interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kernelc import api, progress, targets
from kernelc import inputs as inputs_mod
from kernelc.artifact import Artifact
from kernelc.diagnostics import KernelcError, Span, register_source
from kernelc.dot import graph_dot, steps
from kernelc.printer import graph_text
from kernelc.report import REPORT_FILE
from kernelc.report.artifacts import rewrite, with_report
from kernelc.report.graph import standalone
from kernelc.tolerance import excess
from kernelc.version import VERSION

CMDLINE = "<command line>"


class _CommandLine:
    """The invocation as one line of text, so argument errors can point at their argument."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.text = " ".join(["kernelc", *(shlex.quote(a) for a in self.argv)])
        register_source(CMDLINE, self.text)

    def span_of(self, token: str) -> Span:
        col = 1 + len("kernelc ")
        for arg in self.argv:
            quoted = shlex.quote(arg)
            if arg == token or token in arg:
                offset = quoted.find(token)
                start = col + max(offset, 0)
                return Span(CMDLINE, 1, start, 1, start + len(token))
            col += len(quoted) + 1
        return Span(CMDLINE, 1, 1)


class _Parser(argparse.ArgumentParser):
    cmdline: _CommandLine | None = None

    def error(self, message: str) -> None:  # argparse's own usage errors, in our format
        token = ""
        for marker in ("invalid choice: '", "argument ", "unrecognized arguments: "):
            if marker in message:
                token = message.split(marker, 1)[1].split()[0].strip("':,")
                break
        for part in token.split("/"):
            if part:
                token = part
                break
        span = self.cmdline.span_of(token) if self.cmdline and token else Span(CMDLINE, 1, 1)
        raise KernelcError(f"{message} (see {self.prog} --help)", span)


def _parser(cmdline: _CommandLine) -> argparse.ArgumentParser:

    _Parser.cmdline = cmdline
    top = _Parser(
        prog="kernelc",
        description="Compile kernels written in the kernelc DSL for CPUs and AI accelerators, "
        "and run the emitted programs in simulators.",
    )
    top.add_argument("--version", action="version", version=f"kernelc {VERSION}")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", help="kernel source (.k, or .c with OpenMP pragmas)")
        p.add_argument(
            "-D",
            dest="defines",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="set a size or scalar parameter, e.g. -D H=800",
        )
        p.add_argument("--entry", help="kernel or graph to compile (default: the only one)")
        p.add_argument("--lang", choices=["k", "c"], help="source language (default: by extension)")

    def common(p: argparse.ArgumentParser) -> None:
        source(p)
        p.add_argument("--target", "-t", required=True, help="target name (see kernelc targets)")
        p.add_argument("--threads", type=int, help="worker threads (targets that run threads)")
        p.add_argument("--grid", help="PE or tile grid WxH (accelerator targets)")
        p.add_argument("--arch", help="target architecture (accelerator targets)")
        p.add_argument("--precision", help="matrix products on groq: f32 (default), fp16 or int8")
        p.add_argument(
            "--tiles", type=int, help="IPU tiles (poplar; default: the fewest modelled cycles)"
        )
        p.add_argument(
            "--quiet",
            "-q",
            action="store_true",
            help="no progress line on a terminal during long simulations and builds",
        )

    build = sub.add_parser("build", help="compile and write the artifact directory")
    common(build)
    build.add_argument("-o", "--output", help="artifact directory (default: STEM.TARGET)")
    build.add_argument(
        "--report",
        action="store_true",
        help="also write report.html: graph, placement, memory and modelled cycles",
    )
    build.add_argument(
        "--emit",
        help="print one form instead of writing files: ir, dot (the task graph), or a "
        "target-specific form (e.g. llvm)",
    )

    run = sub.add_parser("run", help="build, run, and summarise the outputs")
    common(run)
    run.add_argument(
        "--in",
        dest="ins",
        action="append",
        default=[],
        metavar="NAME=PATH.npy",
        help="an input array",
    )
    run.add_argument("--in-dir", help="a directory of NAME.npy inputs (e.g. from kernelc xsdata)")
    run.add_argument(
        "--out",
        dest="outs",
        action="append",
        default=[],
        metavar="NAME=PATH.npy",
        help="save an output array",
    )
    run.add_argument(
        "--report",
        action="store_true",
        help="write the artifact with report.html, simulated cycles beside the modelled ones",
    )
    run.add_argument(
        "-o", "--output", help="artifact directory for --report (default: STEM.TARGET)"
    )
    run.add_argument(
        "--random-inputs",
        type=_seed,
        metavar="SEED",
        help="draw missing inputs: floats in [-1, 1), integers in [0, 16)",
    )

    check = sub.add_parser("check", help="compare a target with the reference interpreter")
    common(check)
    check.add_argument("--seed", type=_seed, default=0, help="seed of the random inputs")
    check.add_argument("--rtol", type=_rtol, help="relative tolerance for float outputs")

    sub.add_parser("targets", help="list the available targets")

    graph = sub.add_parser("graph", help="write the task graph as Graphviz DOT or SVG")
    source(graph)
    graph.add_argument("-o", "--output", help="file to write (default: standard output)")
    graph.add_argument(
        "--format", choices=["dot", "svg"], default="dot", help="dot (default) or svg"
    )

    report = sub.add_parser("report", help="(re)write report.html of an artifact directory")
    report.add_argument("directory", help="an artifact directory written by kernelc build")

    xs = sub.add_parser("xsdata", help="write XSBench-style inputs for examples/xs_lookup.k")
    xs.add_argument("-o", "--output", required=True, help="directory for the NAME.npy files")
    xs.add_argument("--size", default="small", choices=["small", "large", "XL", "XXL"])
    xs.add_argument("--lookups", type=int, default=100_000)
    xs.add_argument("--nuclides", type=int, help="fewer nuclides than the size has")
    xs.add_argument("--gridpoints", type=int, help="grid points per nuclide")
    return top


def _seed(text: str) -> int:
    """A seed for NumPy's default_rng: a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is an integer, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must not be negative, got {value}")
    return value


def _rtol(text: str) -> float:
    """A tolerance: a finite non-negative number (NaN would accept everything)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rtol takes a number, got '{text}'") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"--rtol must be finite and >= 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmdline = _CommandLine(argv)
    try:
        args = _parser(cmdline).parse_args(argv)
        with progress.reporting(not getattr(args, "quiet", False)):
            return _COMMANDS[args.command](args, cmdline)
    except KernelcError as err:
        print(_at_argument(err, cmdline).render(), file=sys.stderr)
        return 2
    except MemoryError:
        print("kernelc: error: out of memory (are the sizes what you meant?)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kernelc: interrupted", file=sys.stderr)
        return 130


# ------------------------------------------------------------------------------ arguments


def _at_argument(err: KernelcError, cmdline: _CommandLine) -> KernelcError:
    """An error about a parameter value given with -D, pointed at that argument, with a note
    at the declaration it was checked against."""
    name = err.parameter
    given = [a for a in cmdline.argv if name is not None and a.startswith(f"{name}=")]
    if not given:
        return err
    notes = [(err.span, "checked against this declaration"), *err.notes]
    return KernelcError(f"-D {given[0]}: {err.message}", cmdline.span_of(given[0]), notes)


def _defines(args, cmdline: _CommandLine) -> dict[str, int | float | bool]:
    result: dict[str, int | float | bool] = {}
    for item in args.defines:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise KernelcError(f"-D needs NAME=VALUE, got '{item}'", cmdline.span_of(item))
        result[name] = _number(text, cmdline.span_of(item))
    return result


def _number(text: str, span: Span) -> int | float | bool:
    if text in ("true", "false"):
        return text == "true"
    for parse in (lambda t: int(t, 0), float):
        try:
            return parse(text)
        except ValueError:
            continue
    raise KernelcError(f"'{text}' is not a number; -D takes integers, floats, true or false", span)


def _options(args) -> dict:
    return {
        "threads": args.threads,
        "grid": args.grid,
        "arch": args.arch,
        "precision": args.precision,
        "tiles": args.tiles,
    }


def _target(args, cmdline: _CommandLine):
    return targets.get(args.target, cmdline.span_of(args.target))


def _program(args, cmdline: _CommandLine) -> api.Program:
    return api.load(args.file, _defines(args, cmdline), args.lang)


# ------------------------------------------------------------------------------- commands


def _cmd_targets(args, cmdline) -> int:
    width = max(len(n) for n in targets.names())
    for name in targets.names():
        print(f"{name:<{width}}  {targets.get(name).description}")
    return 0


def _cmd_build(args, cmdline) -> int:
    backend = _target(args, cmdline)
    options = targets.check_options(backend, _options(args), cmdline.span_of(args.target))
    program = _program(args, cmdline)
    start = time.perf_counter()
    graph = program.graph(args.entry)
    if args.emit == "ir":
        print(graph_text(graph))
        return 0
    if args.emit == "dot":
        print(graph_dot(graph), end="")
        return 0
    if args.emit is not None:
        emitters = getattr(backend, "emitters", {})
        if args.emit not in emitters:
            kinds = ", ".join(["ir", "dot", *emitters])
            raise KernelcError(
                f"target '{backend.name}' cannot emit '{args.emit}' (it can emit: {kinds})",
                cmdline.span_of(args.emit),
            )
        print(emitters[args.emit](graph, options), end="")
        return 0
    artifact = backend.build(graph, options)
    if args.report:
        artifact = with_report(artifact)
    out = _write_artifact(artifact, args, cmdline)
    seconds = time.perf_counter() - start
    for line in artifact.summary:
        print(line)
    print(f"wrote {out}/ ({len(artifact.files)} files) in {seconds:.3f} s")
    return 0


def _write_artifact(artifact: Artifact, args, cmdline: _CommandLine) -> Path:
    out = Path(args.output or f"{Path(args.file).stem}.{artifact.target}")
    where = cmdline.span_of(args.output) if args.output else Span(CMDLINE, 1, 1)
    if out.exists() and not out.is_dir():
        raise KernelcError(f"'{out}' is a file, not an artifact directory", where)
    try:
        artifact.write(out)
    except OSError as exc:
        raise KernelcError(f"cannot write '{out}': {exc.strerror or exc}", where) from None
    return out


def _cmd_report(args, cmdline) -> int:
    path = rewrite(Path(args.directory), cmdline.span_of(args.directory))
    print(f"wrote {path}")
    return 0


def _load_npy(spec: str, cmdline: _CommandLine) -> tuple[str, np.ndarray]:
    name, sep, path = spec.partition("=")
    if not sep or not name:
        raise KernelcError(f"expected NAME=PATH.npy, got '{spec}'", cmdline.span_of(spec))
    return name, _read_npy(Path(path), cmdline.span_of(spec))


def _read_npy(path: Path, span: Span) -> np.ndarray:
    """An array from a .npy file; a missing, unreadable, truncated or non-.npy file (or one
    holding Python objects) is a user error at the argument that named it."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or "empty or truncated file"
        raise KernelcError(f"cannot load '{path}': {reason}", span) from None


def _gather_inputs(args, cmdline, program: api.Program) -> dict:
    given: dict[str, np.ndarray] = {}
    if args.in_dir:
        directory = Path(args.in_dir)
        if not directory.is_dir():
            raise KernelcError(f"'{directory}' is not a directory", cmdline.span_of(args.in_dir))
        for path in sorted(directory.glob("*.npy")):
            given[path.stem] = _read_npy(path, cmdline.span_of(args.in_dir))
    for spec in args.ins:
        name, array = _load_npy(spec, cmdline)
        given[name] = array
    graph = program.graph(args.entry, None, given)
    if args.random_inputs is not None:
        drawn = inputs_mod.random_inputs(graph, args.random_inputs)
        given = {**drawn, **given}
    return given


def _cmd_run(args, cmdline) -> int:
    backend = _target(args, cmdline)
    options = _options(args)
    targets.check_options(backend, options, cmdline.span_of(args.target))
    if args.output and not args.report:
        raise KernelcError(
            "-o names the artifact directory of --report; without --report run writes none",
            cmdline.span_of(args.output),
        )
    program = _program(args, cmdline)
    given = _gather_inputs(args, cmdline, program)
    graph = program.graph(args.entry, None, given)
    saves = []
    for spec in args.outs:
        name, sep, path = spec.partition("=")
        if not sep or name not in {t.name for t in graph.outputs}:
            outs = ", ".join(t.name for t in graph.outputs)
            raise KernelcError(
                f"--out needs NAME=PATH.npy with NAME one of: {outs}", cmdline.span_of(spec)
            )
        saves.append((name, path))
    result = api.run_with_stats(program, backend.name, given, entry=args.entry, **options)
    seconds = result.stats.get("run_seconds")
    timing = f", run {seconds:.4f} s" if seconds is not None else ""
    extras = [f"{k} {v}" for k, v in sorted(result.stats.items()) if k != "run_seconds"]
    print(f"{graph.name} on {backend.name}: {len(graph.tasks)} task(s){timing}")
    for line in extras:
        print(f"  {line}")
    rows = [("output", "shape", "dtype", "sum", "min", "max", "sha256")]
    for t in graph.outputs:
        value = result.outputs[t.name]
        finite = value[np.isfinite(value)] if value.dtype.kind == "f" else value
        rows.append(
            (
                t.name,
                str(tuple(value.shape)),
                str(t.dtype),
                f"{float(np.sum(value, dtype=np.float64)):.6g}",
                f"{float(finite.min()):.6g}" if finite.size else "-",
                f"{float(finite.max()):.6g}" if finite.size else "-",
                hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for name, path in saves:
        try:
            np.save(path, result.outputs[name])
        except OSError as exc:
            spec = f"{name}={path}"
            raise KernelcError(
                f"cannot write '{path}': {exc.strerror}", cmdline.span_of(spec)
            ) from None
        print(f"saved {name} to {path}")
    if args.report:
        artifact = result.artifact or backend.build(graph, targets.check_options(backend, options))
        simulated = getattr(backend, "simulated", None)
        figures = None if simulated is None else simulated(artifact.manifest, result.stats)
        out = _write_artifact(with_report(artifact, figures), args, cmdline)
        print(f"wrote {out}/{REPORT_FILE}")
    return 0


def _cmd_check(args, cmdline) -> int:
    backend = _target(args, cmdline)
    options = _options(args)
    targets.check_options(backend, options, cmdline.span_of(args.target))
    program = _program(args, cmdline)
    graph = program.graph(args.entry)
    given = inputs_mod.random_inputs(graph, args.seed)
    got = api.run(program, backend.name, given, entry=args.entry, **options)
    want = api.interpret(program, given, entry=args.entry)
    worst_ok = 0.0
    for t in graph.outputs:
        verdict = compare(got[t.name], want[t.name], args.rtol)
        if verdict.bad is not None:
            index, g, w, allowed = verdict.bad
            at = [int(i) for i in index]
            print(
                f"MISMATCH {graph.name} on {backend.name}: '{t.name}'{at} is {g!r}, "
                f"the reference interpreter gives {w!r} (allowed difference {allowed:.3g}); "
                f"{verdict.count} of {want[t.name].size} elements differ"
            )
            return 1
        worst_ok = max(worst_ok, verdict.worst)
    print(
        f"ok: {graph.name} on {backend.name} matches the reference interpreter "
        f"({len(graph.outputs)} output(s), seed {args.seed}, worst error "
        f"{worst_ok:.3g} of the allowed difference)"
    )
    return 0


class Verdict:
    def __init__(self, bad, count: int, worst: float) -> None:
        self.bad, self.count, self.worst = bad, count, worst


def compare(got: np.ndarray, want: np.ndarray, rtol: float | None = None) -> Verdict:
    """Element-wise comparison under kernelc.tolerance's rule, with the worst element."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return Verdict(((), f"{got.dtype}{got.shape}", f"{want.dtype}{want.shape}", 0.0), 1, 0.0)
    ratio, allowed = excess(got, want, rtol)
    if not np.any(ratio > 1):
        return Verdict(None, 0, float(ratio.max(initial=0.0)))
    index = np.unravel_index(int(np.argmax(ratio)), got.shape)
    return Verdict(
        (index, got[index].item(), want[index].item(), float(allowed[index])),
        int(np.sum(ratio > 1)),
        float(ratio.max()),
    )


def _cmd_xsdata(args, cmdline) -> int:
    from kernelc import xsbench

    if args.lookups < 1:
        raise KernelcError("--lookups must be at least 1", cmdline.span_of(str(args.lookups)))
    for option, value, least in (
        ("--nuclides", args.nuclides, 1),
        ("--gridpoints", args.gridpoints, 2),
    ):
        if value is not None and value < least:
            raise KernelcError(f"{option} must be at least {least}", cmdline.span_of(option))
    problem = xsbench.generate(args.size, args.lookups, args.nuclides, args.gridpoints)
    try:
        paths = xsbench.write_npy_dir(problem, args.output)
    except OSError as exc:
        raise KernelcError(
            f"cannot write {args.output}: {exc.strerror}", cmdline.span_of(args.output)
        ) from None
    ni, ng = problem.energy_grid.shape
    print(
        f"wrote {len(paths)} arrays to {args.output}/ ({args.size}: {ni} nuclides x {ng} "
        f"grid points, {args.lookups} lookups)"
    )
    print(f"run: kernelc run examples/xs_lookup.k --target cpu --in-dir {args.output}")
    return 0


def _cmd_graph(args, cmdline) -> int:
    graph = _program(args, cmdline).graph(args.entry)
    text = standalone(graph) if args.format == "svg" else graph_dot(graph)
    if args.output is None:
        print(text, end="")
        return 0
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        raise KernelcError(
            f"cannot write {args.output}: {exc.strerror}", cmdline.span_of(args.output)
        ) from None
    print(f"wrote {args.output} ({len(graph.tasks)} task(s) in {len(steps(graph))} step(s))")
    return 0


_COMMANDS = {
    "build": _cmd_build,
    "graph": _cmd_graph,
    "run": _cmd_run,
    "check": _cmd_check,
    "report": _cmd_report,
    "targets": _cmd_targets,
    "xsdata": _cmd_xsdata,
}
