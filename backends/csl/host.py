"""The host side of a CSL artifact: run.py, commands.sh and README.md.

run.py follows the SdkRuntime examples (get_id, load, run, memcpy_h2d the inputs, launch each
task, memcpy_d2h the outputs, stop). Every PE holds an equally long piece of each tensor (its
block, padded to the largest block, with room for the halo), so each transfer is one memcpy of
the whole rectangle in ROW_MAJOR order; the NumPy helpers in run.py build and take apart those
pieces from the block bounds listed at its top.
"""

from __future__ import annotations

import json

import numpy as np

from kernelc import tolerance
from kernelc.backends.csl.lowered import Lowered, Transfer
from kernelc.backends.csl.tasks import StepCode
from kernelc.csl import machine
from kernelc.diagnostics import Unsupported
from kernelc.embed import definitions
from kernelc.graph import TaskGraph
from kernelc.reference import HELPERS, reference_source
from kernelc.version import VERSION

NUMPY = {"f32": "float32", "i32": "int32", "u32": "uint32", "f16": "float16"}


def _spec(t: Transfer, graph: TaskGraph) -> dict:
    decl = graph.tensor(t.tensor)
    if str(decl.dtype) not in NUMPY:
        raise Unsupported(
            f"'{t.tensor}' is {decl.dtype}; the csl backend moves f32, i32, u32 and f16 "
            "tensors between host and device",
            decl.span,
        )
    dims = []
    for dm in t.layout.dims:
        bounds = list(dm.split.bounds) if dm.split is not None else [0, dm.extent]
        dims.append(
            {
                "axis": dm.axis,
                "bounds": bounds,
                "halo": list(dm.halo),
                "local": dm.local,
                "slots": dm.slots,
                "largest": dm.split.largest if dm.split is not None else dm.extent,
            }
        )
        if dm.div != 1:
            dims[-1]["div"] = dm.div
        if dm.bands is not None:
            dims[-1]["tree"] = list(dm.bands.tree)
            dims[-1]["stored"] = [list(band) for band in dm.bands.stored]
    return {
        "symbol": t.symbol,
        "dtype": NUMPY[str(decl.dtype)],
        "shape": list(decl.shape),
        "rect": list(t.rect),
        "dims": dims,
    }


def _table(name: str, value: object) -> str:
    return f"{name} = {_literal(value)}\n"


def _literal(value: object, depth: int = 0) -> str:
    """A Python literal laid out like ``json.dumps(indent=1, sort_keys=True)``: strings in
    double quotes, None/True/False as Python spells them (never by rewriting the text, which
    would change names such as 'nullity')."""
    inner = " " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{inner}{json.dumps(k)}: {_literal(v, depth + 1)}" for k, v in sorted(value.items())
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [f"{inner}{_literal(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


# Lines of run.py's pieces() for tables cut into energy bands (lookup.py), added only where a
# placement uses them so that other programs' run.py stays as it was.
_BANDED_PIECES = (
    (
        """            per_dim.append([(slice(None), slice(None))])
            continue
""",
        """            per_dim.append([(slice(None), slice(None))])
            continue
        if "stored" in d:
            # energy bands: the search tree's top points, then this PE's band
            first, end = d["stored"][block_index(d["axis"], x, y) % len(d["stored"])]
            top = len(d["tree"])
            options = [(slice(t, t + 1), slice(i, i + 1)) for i, t in enumerate(d["tree"])]
            per_dim.append([*options, (slice(first, end), slice(top, top + end - first))])
            continue
""",
    ),
    (
        """            k = block_index(d["axis"], x, y) + slot * count
""",
        """            k = block_index(d["axis"], x, y) // d.get("div", 1) + slot * count
""",
    ),
)


def _banded(text: str, specs: list[dict]) -> str:
    if not any("div" in d or "stored" in d for spec in specs for d in spec["dims"]):
        return text
    return _spliced(text, _BANDED_PIECES, every=True)


ANCHOR = "\ndef block_index(axis, x, y):"  # where run.py's extra tables go


def _spliced(
    text: str, pieces: tuple[tuple[str, str], ...], tables: str = "", every: bool = False
) -> str:
    """run.py's text with each piece's lines replaced (once, or ``every`` time; each must be
    there) and ``tables`` inserted before the block helpers."""
    if tables:
        pieces = ((ANCHOR, tables + ANCHOR), *pieces)
    for old, new in pieces:
        if old not in text:
            raise AssertionError(old)
        text = text.replace(old, new) if every else text.replace(old, new, 1)
    return text


# run.py's launch loop and output copies for scalar task graphs (tasks.py): after each step the
# host gathers the regions each PE wrote and sends tensors later steps use back to every PE.
_GATHERED_PIECES = (
    (
        """    for task in TASKS:
        runner.launch(task, nonblock=False)
    outputs = {}
    for name, spec in OUTPUTS.items():
""",
        """    held = {}
    for name, spec in HELD.items():
        held[name] = np.zeros(spec["shape"], dtype=spec["dtype"])
        if name in inputs:
            held[name][...] = inputs[name]
    for task in TASKS:
        runner.launch(task, nonblock=False)
        gather(runner, symbols, held, GATHER.get(task, []))
        for name in RESEND.get(task, []):
            spec = HELD[name]
            data = to_pes(held[name], spec)
            x0, y0, w, h = spec["rect"]
            runner.memcpy_h2d(symbols[name], data.reshape(-1), x0, y0, w, h, data.shape[2],
                              streaming=False, data_type=MemcpyDataType.MEMCPY_32BIT,
                              order=MemcpyOrder.ROW_MAJOR, nonblock=False)
    outputs = {name: held[name] for name in OUTPUTS if name in held}
    for name, spec in OUTPUTS.items():
        if name in held:
            continue
""",
    ),
    (
        """    symbols = {name: runner.get_id(spec["symbol"]) for name, spec in specs.items()}
""",
        """    specs.update(HELD)
    symbols = {name: runner.get_id(spec["symbol"]) for name, spec in specs.items()}
""",
    ),
    (
        """

def main():
""",
        """

def gather(runner, symbols, held, writes):
    \"\"\"Copy each region a task wrote from the PE that ran it into the host's tensor (the
    tensor's first length elements: up to the region's last one).\"\"\"
    for name, x, y, box, length in writes:
        spec = HELD[name]
        whole = np.zeros(int(np.prod(spec["shape"])), dtype=spec["dtype"])
        part = np.zeros(length, dtype=spec["dtype"])
        runner.memcpy_d2h(part, symbols[name], x, y, 1, 1, length, streaming=False,
                          data_type=MemcpyDataType.MEMCPY_32BIT, order=MemcpyOrder.ROW_MAJOR,
                          nonblock=False)
        whole[:length] = part
        index = tuple(slice(lo, hi) for lo, hi in box)
        held[name][index] = whole.reshape(spec["shape"])[index]


def main():
""",
    ),
)


# run.py's transfers and launch for lookups whose items go through in batches (lookup.py): the
# resident inputs are sent once; each batch's rows of the item inputs are sent (the last batch
# padded with zeros), the tasks launched with the batch's first item, and the batch's rows of
# the outputs read back (the padding's dropped).
_BATCHED_PIECES = (
    (
        """    for name, spec in INPUTS.items():
        data = to_pes(inputs[name], spec)
        x0, y0, w, h = spec["rect"]
        runner.memcpy_h2d(symbols[name], data.reshape(-1), x0, y0, w, h, data.shape[2],
                          streaming=False, data_type=MemcpyDataType.MEMCPY_32BIT,
                          order=MemcpyOrder.ROW_MAJOR, nonblock=False)
    for task in TASKS:
        runner.launch(task, nonblock=False)
    outputs = {}
    for name, spec in OUTPUTS.items():
        x0, y0, w, h = spec["rect"]
        length = int(np.prod([d["local"] for d in spec["dims"]]))
        data = np.zeros(h * w * length, dtype=spec["dtype"])
        runner.memcpy_d2h(data, symbols[name], x0, y0, w, h, length, streaming=False,
                          data_type=MemcpyDataType.MEMCPY_32BIT, order=MemcpyOrder.ROW_MAJOR,
                          nonblock=False)
        outputs[name] = from_pes(data.reshape(h, w, length), spec)
    runner.stop()
""",
        """    for name, spec in INPUTS.items():
        if name not in BATCHES["items"]:
            send(runner, symbols[name], inputs[name], spec)
    outputs = {name: np.zeros(spec["shape"], spec["dtype"]) for name, spec in OUTPUTS.items()}
    size = BATCHES["size"]
    for first in range(BATCHES["first"], BATCHES["end"], size):
        rows = slice(first, min(first + size, BATCHES["end"]))
        count = rows.stop - rows.start
        for name, spec in INPUTS.items():
            if name in BATCHES["items"]:
                part = np.zeros([size, *spec["shape"][1:]], dtype=spec["dtype"])
                part[:count] = inputs[name][rows]
                send(runner, symbols[name], part, dict(spec, shape=part.shape))
        for task in TASKS:
            runner.launch(task, np.int32(first), nonblock=False)
        for name, spec in OUTPUTS.items():
            x0, y0, w, h = spec["rect"]
            length = int(np.prod([d["local"] for d in spec["dims"]]))
            data = np.zeros(h * w * length, dtype=spec["dtype"])
            runner.memcpy_d2h(data, symbols[name], x0, y0, w, h, length, streaming=False,
                              data_type=MemcpyDataType.MEMCPY_32BIT,
                              order=MemcpyOrder.ROW_MAJOR, nonblock=False)
            batch = dict(spec, shape=[size, *spec["shape"][1:]])
            part = from_pes(data.reshape(h, w, length), batch)
            outputs[name][rows] = part[:count]
    runner.stop()
""",
    ),
    (
        """

def main():
""",
        """

def send(runner, symbol, array, spec):
    \"\"\"Copy a tensor (or a batch of its rows) to the PEs, each its blocks.\"\"\"
    data = to_pes(array, spec)
    x0, y0, w, h = spec["rect"]
    runner.memcpy_h2d(symbol, data.reshape(-1), x0, y0, w, h, data.shape[2], streaming=False,
                      data_type=MemcpyDataType.MEMCPY_32BIT, order=MemcpyOrder.ROW_MAJOR,
                      nonblock=False)


def main():
""",
    ),
)


def run_py(graph: TaskGraph, low: Lowered) -> str:
    inputs = {t.tensor: _spec(t, graph) for t in low.inputs}
    outputs = {t.tensor: _spec(t, graph) for t in low.outputs}
    text = _run_py(graph, low, inputs, outputs)
    steps = [code for code in low.codes if isinstance(code, StepCode)]
    specs = [*inputs.values(), *outputs.values()]
    sixteen = [name for name, spec in {**inputs, **outputs}.items() if _is_16_bit(spec)]
    if steps:
        if sixteen:
            raise Unsupported(
                f"'{sixteen[0]}' is 16-bit and '{graph.name}' runs as scalar tasks, whose "
                "host copies between steps move 32-bit tensors only",
                graph.span,
            )
        text = _gathered(text, graph, low, steps)
    if low.batches is not None:
        if sixteen:
            raise Unsupported(
                f"'{sixteen[0]}' is 16-bit and '{graph.name}' sends its items in batches, "
                "which move 32-bit tensors only",
                graph.span,
            )
        text = _batched(text, low)
    text = _banded(text, specs)
    return _sixteen_bit(text) if sixteen else text


# Lines of run.py that move 16-bit tensors as the SDK does (csl.md 3.1): MEMCPY_16BIT with host
# buffers of 32-bit words, each holding one value in its low half. Added only where a tensor is
# 16-bit, so that other programs' run.py stays as it was.
_SIXTEEN_BIT_PIECES = (
    (
        """        elif spec["dtype"] == "float32":
            inputs[name] = rng.uniform(-1.0, 1.0, spec["shape"]).astype(np.float32)
""",
        """        elif spec["dtype"] in ("float32", "float16"):
            inputs[name] = rng.uniform(-1.0, 1.0, spec["shape"]).astype(spec["dtype"])
""",
    ),
    (
        """        runner.memcpy_h2d(symbols[name], data.reshape(-1), x0, y0, w, h, data.shape[2],
                          streaming=False, data_type=MemcpyDataType.MEMCPY_32BIT,
""",
        """        runner.memcpy_h2d(symbols[name], to_words(data).reshape(-1), x0, y0, w, h,
                          data.shape[2], streaming=False, data_type=data_type(spec),
""",
    ),
    (
        """        data = np.zeros(h * w * length, dtype=spec["dtype"])
        runner.memcpy_d2h(data, symbols[name], x0, y0, w, h, length, streaming=False,
                          data_type=MemcpyDataType.MEMCPY_32BIT, order=MemcpyOrder.ROW_MAJOR,
                          nonblock=False)
        outputs[name] = from_pes(data.reshape(h, w, length), spec)
""",
        """        words = np.zeros(h * w * length, dtype=np.uint32)
        runner.memcpy_d2h(words, symbols[name], x0, y0, w, h, length, streaming=False,
                          data_type=data_type(spec), order=MemcpyOrder.ROW_MAJOR,
                          nonblock=False)
        outputs[name] = from_pes(from_words(words, spec).reshape(h, w, length), spec)
""",
    ),
    (
        """

def main():
""",
        """

def data_type(spec):
    \"\"\"16-bit tensors move with MEMCPY_16BIT, all others with MEMCPY_32BIT.\"\"\"
    if np.dtype(spec["dtype"]).itemsize == 2:
        return MemcpyDataType.MEMCPY_16BIT
    return MemcpyDataType.MEMCPY_32BIT


def to_words(data):
    \"\"\"The 32-bit words memcpy takes: a 16-bit value in the low half of each.\"\"\"
    if data.dtype.itemsize == 2:
        return data.view(np.uint16).astype(np.uint32)
    return data


def from_words(words, spec):
    \"\"\"Values from the 32-bit words memcpy returns (16-bit ones from the low half).\"\"\"
    if np.dtype(spec["dtype"]).itemsize == 2:
        return words.astype(np.uint16).view(spec["dtype"])
    return words.view(spec["dtype"])


def main():
""",
    ),
)


def _is_16_bit(spec: dict) -> bool:
    return np.dtype(spec["dtype"]).itemsize == 2


def _sixteen_bit(text: str) -> str:
    return _spliced(text, _SIXTEEN_BIT_PIECES)


def _batched(text: str, low: Lowered) -> str:
    bt = low.batches
    table = {"size": bt.size, "first": bt.first, "end": bt.end, "items": list(bt.items)}
    tables = (
        f'# Items go through in {bt.count} batches of BATCHES["size"] (the PE program holds one\n'
        "# batch): the tensors cut into batches along their first dimension, and the item range.\n"
        + _table("BATCHES", table)
    )
    return _spliced(text, _BATCHED_PIECES, tables)


def _reach(g, low: Lowered) -> int:
    """Elements from the start of a tensor's array up to the last one of a written box."""
    pitches = low.layouts[g.tensor].pitches
    return 1 + sum((hi - 1) * p for (_lo, hi), p in zip(g.box, pitches, strict=True))


def _gathered(text: str, graph: TaskGraph, low: Lowered, steps: list[StepCode]) -> str:
    held = sorted({g.tensor for code in steps for g in code.gathers})
    rect = (0, 0, low.width, low.height)
    specs = {
        name: _spec(Transfer(name, low.symbols[name], low.layouts[name], rect), graph)
        for name in held
    }
    gathers = {
        code.launch: [
            [g.tensor, g.x, g.y, [list(b) for b in g.box], _reach(g, low)] for g in code.gathers
        ]
        for code in steps
        if code.gathers
    }
    resend = {code.launch: code.resend for code in steps if code.resend}
    tables = (
        "# Scalar task steps: the tensors the host assembles (HELD), the regions each step's\n"
        "# tasks wrote, read back from the PE that ran the task (GATHER: tensor, PE column, PE\n"
        "# row, box, elements to copy), and the tensors a later step uses, sent back to every\n"
        "# PE (RESEND).\n"
        + _table("HELD", specs)
        + _table("GATHER", gathers)
        + _table("RESEND", resend)
    )
    return _spliced(text, _GATHERED_PIECES, tables)


def _run_py(graph: TaskGraph, low: Lowered, inputs: dict, outputs: dict) -> str:

    reference = reference_source(graph)
    ref_text = (
        HELPERS + "\n\n" + reference
        if reference is not None
        else "def reference(inputs):\n    return None\n"
    )
    close_enough = definitions(tolerance)
    source = graph.filename.rsplit("/", 1)[-1]
    return f'''#!/usr/bin/env cs_python
"""Host program for '{graph.name}' ({source}), generated by kernelc {VERSION}.

Copies the inputs to the PEs, launches the tasks in order, copies the outputs back and, with
--check, compares them with a NumPy version of the kernel. On a CS system or the SDK simulator:
    cs_python run.py --name out [--cmaddr IP:PORT] [--inputs DIR] [--outputs DIR] [--check]
kernelc runs this same file against its fabric simulator (see commands.sh).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from cerebras.sdk.runtime.sdkruntimepybind import (  # pylint: disable=no-name-in-module
    MemcpyDataType,
    MemcpyOrder,
    SdkRuntime,
)

WIDTH, HEIGHT = {low.width}, {low.height}
TASKS = {low.launches!r}

# Placement of every tensor that crosses the host link: per dimension the grid axis it is split
# over ("x" columns, "y" rows, "xy" all PEs in row-major order, None = whole on every PE), the
# block bounds, the halo stored around each block and the local extent every PE allocates.
{_table("INPUTS", inputs)}
{_table("OUTPUTS", outputs)}

def block_index(axis, x, y):
    return {{"x": x, "y": y, "xy": y * WIDTH + x}}[axis]


def pieces(spec, x, y):
    """(tensor slices, local slices) of every block PE (x, y) holds (a block per slot)."""
    per_dim = []
    for d in spec["dims"]:
        if d["axis"] is None:
            per_dim.append([(slice(None), slice(None))])
            continue
        count = {{"x": WIDTH, "y": HEIGHT, "xy": WIDTH * HEIGHT}}[d["axis"]]
        options = []
        for slot in range(d["slots"]):
            k = block_index(d["axis"], x, y) + slot * count
            if k + 1 < len(d["bounds"]):
                lo, hi = d["bounds"][k], d["bounds"][k + 1]
                at = slot * d["largest"] + d["halo"][0]
                options.append((slice(lo, hi), slice(at, at + hi - lo)))
        per_dim.append(options)
    return [tuple(zip(*combo)) for combo in itertools.product(*per_dim)]


def to_pes(array, spec):
    """The (h, w, l) host buffer of a tensor: each PE's blocks, padded, in ROW_MAJOR order."""
    x0, y0, w, h = spec["rect"]
    local = [d["local"] for d in spec["dims"]]
    out = np.zeros((h, w, int(np.prod(local))), dtype=array.dtype)
    for j in range(h):
        for i in range(w):
            block = np.zeros(local, dtype=array.dtype)
            for src, dst in pieces(spec, x0 + i, y0 + j):
                block[dst] = array[src]
            out[j, i] = block.reshape(-1)
    return out


def from_pes(data, spec):
    """Reassemble a tensor from the (h, w, l) buffer memcpy_d2h returned."""
    x0, y0, w, h = spec["rect"]
    local = [d["local"] for d in spec["dims"]]
    array = np.zeros(spec["shape"], dtype=spec["dtype"])
    for j in range(h):
        for i in range(w):
            block = data[j, i].reshape(local)
            for src, dst in pieces(spec, x0 + i, y0 + j):
                array[src] = block[dst]
    return array


{ref_text}

# When an output matches the reference (kernelc/tolerance.py, copied verbatim by kernelc).
{close_enough}

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the cslc output directory")
    parser.add_argument("--cmaddr", help="IP:port of a CS system (default: simulator)")
    parser.add_argument("--inputs", help="directory of NAME.npy inputs (default: random, seed 7)")
    parser.add_argument("--outputs", help="directory to save NAME.npy outputs")
    parser.add_argument("--check", action="store_true", help="compare with the NumPy version")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    inputs = {{}}
    for name, spec in INPUTS.items():
        if args.inputs:
            inputs[name] = np.load(Path(args.inputs) / f"{{name}}.npy")
        elif spec["dtype"] == "float32":
            inputs[name] = rng.uniform(-1.0, 1.0, spec["shape"]).astype(np.float32)
        else:
            inputs[name] = rng.integers(0, 16, spec["shape"]).astype(spec["dtype"])

    runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
    specs = {{**INPUTS, **OUTPUTS}}
    symbols = {{name: runner.get_id(spec["symbol"]) for name, spec in specs.items()}}
    runner.load()
    runner.run()
    for name, spec in INPUTS.items():
        data = to_pes(inputs[name], spec)
        x0, y0, w, h = spec["rect"]
        runner.memcpy_h2d(symbols[name], data.reshape(-1), x0, y0, w, h, data.shape[2],
                          streaming=False, data_type=MemcpyDataType.MEMCPY_32BIT,
                          order=MemcpyOrder.ROW_MAJOR, nonblock=False)
    for task in TASKS:
        runner.launch(task, nonblock=False)
    outputs = {{}}
    for name, spec in OUTPUTS.items():
        x0, y0, w, h = spec["rect"]
        length = int(np.prod([d["local"] for d in spec["dims"]]))
        data = np.zeros(h * w * length, dtype=spec["dtype"])
        runner.memcpy_d2h(data, symbols[name], x0, y0, w, h, length, streaming=False,
                          data_type=MemcpyDataType.MEMCPY_32BIT, order=MemcpyOrder.ROW_MAJOR,
                          nonblock=False)
        outputs[name] = from_pes(data.reshape(h, w, length), spec)
    runner.stop()

    if args.outputs:
        Path(args.outputs).mkdir(parents=True, exist_ok=True)
        for name, value in outputs.items():
            np.save(Path(args.outputs) / f"{{name}}.npy", value)
    if args.check:
        want = reference(inputs)
        if want is None:
            print("no NumPy reference for this kernel; outputs not checked")
        elif all(close_enough(outputs[n], want[n]) for n in outputs):
            print("SUCCESS: outputs match the NumPy reference")
        else:
            bad = [n for n in outputs if not close_enough(outputs[n], want[n])]
            print(f"FAIL: {{', '.join(bad)}} differ from the NumPy reference")
            raise SystemExit(1)


if __name__ == "__main__":
    main()
'''


def cslc_flags(low: Lowered, channels: int = 1) -> str:
    dims = machine.fabric_dims(low.width, low.height)
    offs = machine.fabric_offsets()
    params = ",".join(f"{k}:{v}" for k, v in (("width", low.width), ("height", low.height)))
    return (
        f"--arch={low.arch.name} ./layout.csl --fabric-dims={dims[0]},{dims[1]} "
        f"--fabric-offsets={offs[0]},{offs[1]} --params={params} --memcpy --channels={channels} "
        "-o out"
    )


def commands_sh(low: Lowered) -> str:
    flags = cslc_flags(low)
    return f"""#!/usr/bin/env bash
# Build and run this program. Fabric: {low.width} x {low.height} PEs plus memcpy's columns
# (3 west, 2 east) and a 1-PE halo, starting at offsets 4,1.
#   ./commands.sh        kernelc's fabric simulator (no Cerebras SDK needed)
#   ./commands.sh sdk    the Cerebras SDK: cslc, then cs_python on its simulator
#                        (add --cmaddr IP:PORT to the cs_python line for a CS system)
set -e
cd "$(dirname "$0")"
if [ "${{1:-sim}}" = "sdk" ]; then
  cslc {flags}
  cs_python run.py --name out --check
else
  python -m kernelc.runtime.fabric cslc {flags}
  python -m kernelc.runtime.fabric run run.py --name out --check
fi
"""


def readme(graph: TaskGraph, low: Lowered, report: list[str]) -> str:

    lines = [
        f"# {graph.name} for the Cerebras {low.arch.name.upper()} (kernelc {VERSION})",
        "",
        f"Generated from `{graph.filename.rsplit('/', 1)[-1]}` with sizes "
        + ", ".join(f"{k} = {v}" for k, v in graph.sizes)
        + ".",
        "",
        "## Files",
        "",
        "- `layout.csl`: the program rectangle, each PE's parameters (its block of every tensor "
        "and its neighbours), the routes of the halo colors and the exported symbols.",
        f"- `{low.program.pe_files[0].name}`: the program every PE runs (one role: edge PEs "
        "differ only in parameters, e.g. they skip the exchange with missing neighbours).",
        "- `run.py`: the host program (memcpy in, launch, memcpy out, `--check` against NumPy).",
        "- `commands.sh`: the exact `cslc` and `cs_python` lines, and the same with kernelc's "
        "fabric simulator.",
        "- `kernelc.json`: the build manifest (grid, placements, memory, modelled cycles).",
        "",
        "## Tasks",
        "",
    ]
    if any(isinstance(code, StepCode) for code in low.codes):
        labels = [""] * len(low.codes)  # one launch per step, its kernels in the text
    else:
        labels = [f" ({task.kernel.name})" for task in graph.tasks]
    for label, code in zip(labels, low.codes, strict=True):
        lines.append(f"- `{code.launch}`{label}: {code.describe}.")
    lines += ["", "## How the work is placed", ""]
    for t in graph.tensors:
        lay = low.layouts[t.name]
        parts = []
        for d, dm in enumerate(lay.dims):
            if dm.bands is not None:
                bands = dm.bands
                parts.append(
                    f"dim {d} in {bands.count} energy bands over {dm.axis} (band = {dm.axis} % "
                    f"{bands.count}: a subtree of the search tree cut at depth {bands.depth}, "
                    f"plus one point on each side and the {len(bands.tree)} top probe points)"
                )
            elif dm.split is None:
                parts.append(f"dim {d} whole")
            else:
                halo = f", halo {dm.halo[0]}/{dm.halo[1]}" if dm.halo != (0, 0) else ""
                group = f" (block = {dm.axis} / {dm.div})" if dm.div != 1 else ""
                parts.append(f"dim {d} in {dm.split.parts} blocks over {dm.axis}{group}{halo}")
        lines.append(f"- `{t.name}` {t.dtype}{list(t.shape)} ({t.role}): " + "; ".join(parts))
    lines += ["", "## Build report (modelled figures, not measurements)", ""]
    lines += [f"    {line}" for line in report]
    lines += [
        "",
        "## Run",
        "",
        "    ./commands.sh          # kernelc fabric simulator",
        "    ./commands.sh sdk      # Cerebras SDK (cslc + cs_python)",
        "",
    ]
    return "\n".join(lines)
