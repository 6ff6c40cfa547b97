"""Extra option sets under which a registered target also runs every conformance case.

Every registered target runs each case with its default options (for csl that is ``--grid
auto``, the grid with the fewest modelled cycles). A target whose options change how work is
placed can list more configurations here, each under its own label; the expectation tables in
unsupported.py are keyed by these labels (a plain target name is its default configuration).
"""

from __future__ import annotations

from typing import Any

VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    # multi-PE placements: blocks, halos, SUMMA / split-K and lookup bands over the grid
    "csl": {"csl@2x2": {"grid": (2, 2)}, "csl@3x5": {"grid": (3, 5)}},
    # Map blocks with halos and blocked products over a tile count that divides nothing
    "poplar": {"poplar@7": {"tiles": 7}},
}
