"""Command line of the tsp emulator.

python -m kernelc.runtime.tsp program.py         # "compile": writes <name>.iop
python -m kernelc.runtime.tsp run.py [ARGS]      # run the host program against the emulator
python -m kernelc.runtime.tsp stats NAME.iop     # like iop-utils stats: the program length
"""

from __future__ import annotations

import sys

from .errors import TspError
from .iop import read_iop
from .loader import run_file


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if argv[0] == "stats":
            doc, _ = read_iop(argv[1])
            print(f"Program is {doc['cycles']} cycles (modelled by kernelc's tsp emulator)")
            for unit, cycles in doc["units"].items():
                print(f"  {unit}: {cycles} busy cycles")
            return 0
        run_file(argv[0], argv[1:])
    except (TspError, RuntimeError, ValueError) as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
