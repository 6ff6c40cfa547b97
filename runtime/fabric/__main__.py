"""Command line of the fabric simulator, spelled like the SDK tools it stands in for.

    python -m kernelc.runtime.fabric cslc --arch=wse2 ./layout.csl --fabric-dims=W,H \\
        --fabric-offsets=4,1 --params=width:8,height:8 --memcpy --channels=1 \\
        [--width-west-buf=N --width-east-buf=N] -o out
    python -m kernelc.runtime.fabric run run.py --name out [run.py's own options]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kernelc import progress
from kernelc.diagnostics import KernelcError
from kernelc.runtime.fabric.runner import compile_program, run_host_script
from kernelc.runtime.fabric.sdk import STATS_FILE


def _pair(text: str) -> tuple[int, int]:
    a, _, b = text.partition(",")
    return int(a), int(b)


def _params(items: list[str]) -> dict[str, int]:
    params: dict[str, int] = {}
    for item in items:
        for part in item.split(","):
            key, sep, value = part.partition(":")
            if not sep:
                raise KernelcError(f"--params takes name:value pairs, got '{part}'")
            params[key] = int(value, 0)
    return params


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m kernelc.runtime.fabric")
    sub = parser.add_subparsers(dest="command", required=True)
    cslc = sub.add_parser("cslc", help="check and 'compile' a program for the simulator")
    cslc.add_argument("layout")
    cslc.add_argument("--arch", default="wse2")
    cslc.add_argument("--fabric-dims", required=True, type=_pair)
    cslc.add_argument("--fabric-offsets", required=True, type=_pair)
    cslc.add_argument("--params", action="append", default=[])
    cslc.add_argument("--memcpy", action="store_true")
    cslc.add_argument("--channels", type=int, default=1)
    cslc.add_argument("--width-west-buf", type=int, default=0)
    cslc.add_argument("--width-east-buf", type=int, default=0)
    cslc.add_argument("-o", dest="out", required=True)
    run = sub.add_parser("run", help="run a host script (run.py) against the simulator")
    run.add_argument("script")
    args, rest = parser.parse_known_args(argv)
    with progress.reporting():
        return _command(parser, args, rest)


def _command(parser: argparse.ArgumentParser, args: argparse.Namespace, rest: list[str]) -> int:
    try:
        if args.command == "cslc":
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            config = compile_program(
                args.layout,
                arch=args.arch,
                fabric_dims=args.fabric_dims,
                fabric_offsets=args.fabric_offsets,
                params=_params(args.params),
                channels=args.channels,
                memcpy=args.memcpy,
                out_dir=args.out,
                west_buf=args.width_west_buf,
                east_buf=args.width_east_buf,
            )
            programs = config["kernelc_fabric"]["distinct_pe_programs"]
            print(
                f"fabric simulator: {args.layout} checked ({programs:,} distinct PE programs); "
                f"wrote {args.out}/out.json"
            )
            return 0
        run_host_script(args.script, rest)
        name = rest[rest.index("--name") + 1] if "--name" in rest else None
        stats_path = Path(name) / STATS_FILE if name else None
        if stats_path is not None and stats_path.exists():
            stats = json.loads(stats_path.read_text())
            print(
                f"simulated: {stats['simulated_kernel_cycles']} kernel cycles in launches, "
                f"{stats['simulated_total_cycles']} with memcpy, on "
                f"{stats['grid'][0]} x {stats['grid'][1]} PEs, busiest PE "
                f"{stats['max_busy_cycles']} busy cycles, largest PE memory "
                f"{stats['max_memory_bytes']} bytes ({stats['wall_seconds']:.2f} s wall)"
            )
        return 0
    except KernelcError as err:
        print(err.render(), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
