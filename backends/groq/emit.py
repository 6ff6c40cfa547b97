"""The printer: a ``GroqProgram`` as program.py (the Groq API program), run.py (the runtime host
program), commands.sh and README.md, in the style of the public GroqAPI examples."""

from __future__ import annotations

import textwrap

from kernelc import tolerance
from kernelc.backends.groq.machine import LANES
from kernelc.backends.groq.model import SHIFT_LANES, TINY, GroqProgram
from kernelc.embed import definitions
from kernelc.graph import TaskGraph
from kernelc.reference import HELPERS, reference_source
from kernelc.version import VERSION

CHECK_RTOL = {"f32": None, "fp16": 1e-2, "int8": 1e-1}
"""run.py --check's tolerance per precision (None: the project's default rule for f32)."""


def wrap(line: str, indent: str, limit: int = 99) -> list[str]:
    """A statement over the line limit, broken after the outermost call's opening bracket and
    at its top-level commas (how ruff would format it); a trailing comment stays on top."""
    code, sep, comment = line.partition("  # ")
    if len(indent) + len(line) <= limit:
        return [indent + line]
    head = [f"{indent}# {comment}"] if sep else []
    open_at = code.find("(")
    if open_at < 0 or not code.endswith(")"):
        return [*head, indent + code]
    args, depth, start, quote = [], 0, open_at + 1, ""
    for k in range(open_at + 1, len(code) - 1):
        ch = code[k]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(code[start:k].strip())
            start = k + 1
    args.append(code[start:-1].strip())
    if depth != 0 or any(a.count("(") != a.count(")") for a in args):
        return [*head, indent + code]  # the first bracket closes before the end: leave it
    inner = indent + "    "
    body = [line for a in args if a for line in wrap(a + ",", inner, limit)]
    return [*head, indent + code[: open_at + 1], *body, indent + ")"]


def _row(row: tuple, width: int, dtype: str) -> str:
    if dtype in ("int32", "int16"):  # bit masks: -1 sets all the bits
        if row[0] == "fill":
            return f"np.full({width}, {row[1]})"
        if row[0] == "lanes":
            ends = zip(row[1::2], row[2::2], strict=True)
            spans = [f"lanes({width}, {lo}, {hi})" for lo, hi in ends]
            return f"-{spans[0]}" if len(spans) == 1 else f"-({' + '.join(spans)})"
        return f"lanes({width}, {row[1]}, {row[2]}) - 1.0"
    value = "2.0**-126" if row[1] == TINY else repr(row[1])
    return f"np.full({width}, {value})"


SHIFT_LANES_HELPER = f"""def shift_lanes(t, n, permutor):
    \"\"\"Shift the rows of t by n lanes across its {LANES}-lane inner splits: each split shifts
    within its vector and takes the lanes that cross its edge from its neighbour, shifted by
    n +/- {LANES}; the two are joined through their bits (one of them is 0 in every lane).\"\"\"
    width = t.shape[1]
    splits = g.split_inner_splits(t)
    out = []
    for k, piece in enumerate(splits):
        moved = g.shift(piece, n, permutor_id=permutor)
        near = k + 1 if n < 0 else k - 1
        if 0 <= near < len(splits):
            across = n + {LANES} if n < 0 else n - {LANES}
            edge = g.shift(splits[near], across, permutor_id=1 - permutor)
            bits = g.int16 if t.dtype == g.float16 else g.int32
            joined = g.add(g.reinterpret(moved, bits), g.reinterpret(edge, bits))
            moved = g.reinterpret(joined, t.dtype)
        out.append(moved)
    whole = g.concat_inner_splits(out)
    if width % {LANES}:
        whole = g.split(whole, dim=1, splits=[width, {LANES} * len(out) - width])[0]
    return whole


"""


ITEMS_HELPER = '''class Items:
    """Lookup items on the VXM: item k of a vector sits in superlane k (its 16 lanes), 20 items
    per vector, `rows` vectors. Values known when the program is built stay Python ints (loop
    counters, sizes); the others are streams. Nothing branches: a condition is an int32 mask,
    -1 where it holds and 0 elsewhere."""

    def __init__(self, rows, ints, int_values, floats, float_values):
        self.rows = rows
        self.ints = dict(zip(int_values, g.split_vectors(ints, [1] * len(int_values))))
        self.floats = dict(zip(float_values, g.split_vectors(floats, [1] * len(float_values))))
        self.made = {}  # int -> its stream, read once

    def i(self, x):
        """An int as an int32 stream (a stream is returned as it is)."""
        if not isinstance(x, int):
            return x
        if x not in self.made:
            rows = g.concat_vectors([self.ints[x]] * self.rows, (self.rows, 320))
            self.made[x] = rows.read(streams=g.SG4)
        return self.made[x]

    def f(self, x):
        """A float constant as a float32 stream."""
        return g.concat_vectors([self.floats[x]] * self.rows, (self.rows, 320)).read(streams=g.SG4)

    def add(self, a, b):
        if isinstance(a, int) and isinstance(b, int):
            return a + b
        return g.add(self.i(a), self.i(b))

    def sub(self, a, b):
        if isinstance(a, int) and isinstance(b, int):
            return a - b
        return g.sub(self.i(a), self.i(b))

    def mul(self, a, b):
        if isinstance(a, int) and isinstance(b, int):
            return a * b
        return g.mul(self.i(a), self.i(b))

    def clamp(self, x, n):
        """An index clamped into 0 .. n - 1, as the language's gathers clamp."""
        if isinstance(x, int):
            return min(max(x, 0), n - 1)
        return g.maximum(g.minimum(x, self.i(n - 1)), self.i(0))

    def lt(self, a, b):
        """-1 where a < b (int32: the VXM's subtraction saturates, so its sign is right)."""
        return g.right_shift(g.sub(self.i(a), self.i(b)), 31)

    def both(self, a, b):
        return g.bitwise_and(a, b)

    def invert(self, mask):
        return g.sub(self.i(-1), mask)

    def select(self, mask, a, b):
        """a where mask is -1, b where it is 0 (one of the two terms is 0 in every lane)."""
        return g.add(g.bitwise_and(self.i(a), mask), g.bitwise_and(self.i(b), self.invert(mask)))

    def keep(self, x, mask):
        """A float stream where mask is -1 and +0 elsewhere, through its bits."""
        return g.reinterpret(g.bitwise_and(g.reinterpret(x, g.int32), mask), g.float32)

    def order(self, x):
        """Int keys in the order of the floats (-0 = +0), and whether x is NaN."""
        bits = g.reinterpret(x, g.int32)
        size = g.bitwise_and(bits, self.i(0x7FFFFFFF))
        key = self.select(g.right_shift(bits, 31), g.sub(self.i(0), size), size)
        return key, self.lt(0x7F800000, size)

    def le(self, s, v):
        """-1 where s <= v; false where either is NaN, as IEEE compares."""
        ks, nan_s = self.order(s)
        kv, nan_v = self.order(v)
        number = self.both(self.invert(nan_s), self.invert(nan_v))
        return self.both(self.invert(self.lt(kv, ks)), number)

    def div(self, a, b):
        """a / b as a * rsqrt(|b|)^2 with b's sign bit added back (the VXM has no divide)."""
        bits = g.reinterpret(b, g.int32)
        r = g.rsqrt(g.reinterpret(g.bitwise_and(bits, self.i(0x7FFFFFFF)), g.float32))
        sign = g.bitwise_and(bits, self.i(-(2**31)))
        inverse = g.reinterpret(g.add(g.reinterpret(g.mul(r, r), g.int32), sign), g.float32)
        return g.mul(a, inverse)

    def gather(self, table, index, dims):
        """table[index] with every index clamped into its dimension: per superlane, the row at
        the flat address (the table holds one element per 320-lane row)."""
        address, stride = 0, 1
        for d in dims:
            stride *= d
        for x, d in zip(index, dims):
            stride //= d
            term = self.clamp(x, d)
            if stride != 1:
                term = self.mul(term, stride)
            address = term if isinstance(address, int) and address == 0 else self.add(address, term)
        return g.mem_gather(table, self.i(address))

    def bracket(self, table, base, n, v):
        """search(): the language's exact binary search as floor(log2 n) + 1 rounds of one
        gather each; a round whose range is already empty changes nothing."""
        lo, hi = self.i(0), self.i(n)
        for _ in range(n.bit_length()):
            live = self.lt(lo, hi)
            mid = g.add(lo, g.right_shift(g.sub(hi, lo), 1))
            at = g.minimum(mid, self.i(n - 1))
            if not (isinstance(base, int) and base == 0):
                at = self.add(base, at)
            s = g.mem_gather(table, at)
            up = self.both(live, self.le(s, v))
            down = self.both(live, self.invert(up))
            lo = self.select(up, g.add(mid, self.i(1)), lo)
            hi = self.select(down, mid, hi)
        return self.clamp(g.sub(lo, self.i(1)), max(n - 1, 1))


'''


def program_py(prog: GroqProgram) -> str:
    declared = prog.declared
    constants = [d for d in declared if d.host == "constant"]
    masks = any(r[0] != "fill" for d in constants for r in d.rows)
    out: list[str] = [
        f'"""Groq API program for \'{prog.name}\' ({prog.source}), generated by kernelc {VERSION}.',
        "",
        f"The task graph is one component, {prog.class_name}, with one buffered resource scope",
        "per task:",
    ]
    for st in prog.stages:
        out += textwrap.wrap(st.comment, 99, initial_indent="- ", subsequent_indent="  ")
    out += [
        "",
        f"Compile with the GroqWare SDK: `python program.py` writes {prog.name}.iop next to this",
        "file; run.py runs it. kernelc's tsp emulator runs both files unchanged (commands.sh).",
        '"""',
        "",
        "import os",
        "",
        "import groq.api as g",
    ]
    if prog.matmuls:
        out.append("import groq.api.nn as nn")
    if constants:
        out.append("import numpy as np")
    out += ["", "HERE = os.path.dirname(os.path.abspath(__file__))", ""]
    if masks:
        out += [
            "",
            "def lanes(width, lo, hi):",
            '    """A row of 1.0 on lanes lo..hi-1 and 0.0 elsewhere: the lanes a loop writes."""',
            "    row = np.zeros(width)",
            "    row[lo:hi] = 1.0",
            "    return row",
            "",
            "",
        ]
    if any(SHIFT_LANES in line for st in prog.stages for line in st.lines):
        out += SHIFT_LANES_HELPER.splitlines()
    if any(line.startswith("items = Items(") for st in prog.stages for line in st.lines):
        out += ITEMS_HELPER.splitlines()
    out.append("# Inputs: the host sends them by name (run.py prepares them from the kernel's).")
    for d in declared:
        if d.host == "constant":
            continue
        note = {
            "plain": "",
            "high": "  # fp16 high part",
            "low": "  # fp16 low part",
            "fp16": "  # rounded to fp16",
            "int8_rows": "  # int8, one scale per row",
            "int8_cols": "  # int8, one scale per column",
            "scale": "  # the int8 product's scales",
            "superlanes": "  # lookup items, 20 per vector (one per superlane)",
            "table": "  # one element per 320-lane row (g.mem_gather reads a row per superlane)",
        }[d.host]
        if d.transposed:
            note = (note + "," if note else "  #") + " transposed (the MXM takes B as M x K)"
        if note:
            out.append(note.strip())
        out += wrap(
            f'{d.var} = g.input_tensor({d.shape!r}, g.{d.dtype}, name="{d.name}", '
            f'layout="{d.layout}")',
            "",
        )
    if constants:
        out += ["", "# Constant tables: one row per constant or lane mask, read once per row."]
        for d in constants:
            width = d.shape[1]
            if d.listed:
                values = ", ".join(repr(r[1]) for r in d.rows)
                out += [f"{d.name.upper()} = ["]
                out += textwrap.wrap(values, 95, initial_indent="    ", subsequent_indent="    ")
                out += [
                    "]",
                    f"{d.var} = g.from_data(",
                    f"    data=np.stack([np.full({width}, v) for v in {d.name.upper()}])"
                    f".astype(np.{d.dtype}),",
                    f'    name="{d.name}",',
                    f'    layout="{d.layout}",',
                    ")",
                ]
                continue
            out += [f"{d.var} = g.from_data(", "    data=np.stack(", "        ["]
            out += [f"            {_row(r, width, d.dtype)}," for r in d.rows]
            out += [
                "        ]",
                f"    ).astype(np.{d.dtype}),",
                f'    name="{d.name}",',
                f'    layout="{d.layout}",',
                ")",
            ]
    params = ", ".join(d.var for d in declared)
    out += [
        "",
        "",
        f"class {prog.class_name}(g.Component):",
        f'    """\'{prog.name}\': one buffered resource scope per task, in dependence order."""',
        "",
    ]
    if prog.matmuls:
        out += ["    def __init__(self, **kwargs):", "        super().__init__(**kwargs)"]
        for m in prog.matmuls:
            out += [
                f"        self.{m.attr} = nn.MatMul(",
                f'            name="{m.name}",',
                f"            planes={list(m.planes)},",
                "            use_vxm_accum=True,",
                "            buffer_output=True,",
                "            arith_mode_warmup=True,",
                "        )",
            ]
        out.append("")
    out += wrap(f"def build(self, {params}, time=0):"[:-1], "    ")
    out[-1] += ":"
    named = {p for st in prog.stages for p in st.predecessors}
    for st in prog.stages:
        if st.predecessors:
            preds = ", ".join(f"{p}_scope" for p in st.predecessors)
            head = f'name="{st.name}", is_buffered=True, time=None, predecessors=[{preds}]'
        else:
            head = f'name="{st.name}", is_buffered=True, time=time'
        scope = f" as {st.name}_scope" if st.name in named else ""
        opening = f"with g.ResourceScope({head}){scope}:"
        if len(opening) + 8 > 99:
            opening = f"with g.ResourceScope(\n            {head}\n        ){scope}:"
        out.append(f"        {opening}")
        for line in st.lines:
            code = line.lstrip(" ")
            out += wrap(code, " " * (12 + len(line) - len(code)))
    results = ", ".join(o.var for o in prog.outputs)
    out += [
        f"        return {results}",
        "",
        "",
        f'top = {prog.class_name}(name="{prog.name}")',
        *wrap(f"{results} = top({params}, time=0)", ""),
        *wrap(
            f'iop = g.compile(base_name="{prog.name}", result_tensor=[{results}], output_dir=HERE)',
            "",
        ),
        "",
    ]
    return "\n".join(out)


HOST_HELPERS = '''
def fp16_high(x):
    """The fp16 value nearest each element."""
    return x.astype(np.float16)


def fp16_low(x):
    """What the high part misses, rounded to fp16: high + low carries 22 bits of x."""
    return (x - x.astype(np.float16).astype(np.float32)).astype(np.float16)


def int8_scaled(x, axis):
    """Symmetric int8 quantisation with one scale per slice along ``axis`` (max |x| / 127)."""
    scale = np.max(np.abs(x), axis=axis, keepdims=True).astype(np.float32) / np.float32(127)
    scale[scale == 0] = 1
    q = np.clip(np.rint(x / scale), -127, 127).astype(np.int8)
    return q, scale.reshape(-1)
'''


LOOKUP_HOST = """

def by_superlane(x, first, end, rows):
    \"\"\"Items first .. end - 1, item k of a vector in superlane k (all its 16 lanes).\"\"\"
    items = np.zeros(rows * 20, x.dtype)
    items[: end - first] = x[first:end]
    return np.ascontiguousarray(np.repeat(items, 16).reshape(rows, 320))


def one_per_row(x):
    \"\"\"A table as g.mem_gather reads it: element k (flat) on every lane of row k.\"\"\"
    return np.ascontiguousarray(np.repeat(x.reshape(-1, 1), 320, axis=1))


def from_superlanes(x, first, end, shape):
    \"\"\"A lookup's output: column c is vectors c * rows .. of the result, item k of a vector
    in superlane k; items outside first .. end - 1 are 0.\"\"\"
    columns = shape[1] if len(shape) == 2 else 1
    values = np.asarray(x).reshape(columns, -1, 20, 16)[:, :, :, 0].reshape(columns, -1)
    out = np.zeros((shape[0], columns), np.float32)
    out[first:end] = values[:, : end - first].T
    return out.reshape(shape)
"""


def _prepare(prog: GroqProgram) -> list[str]:
    lines = ["def program_inputs(inputs):", '    """What the program takes, by name."""']
    for name, most in prog.limits:
        lines += [
            f'    if np.any(inputs["{name}"] > {most}):',
            f'        raise SystemExit("{name}: a value above {most}, the padded loop\'s extent "',
            '                         "(the program runs that many iterations)")',
        ]
    for d in prog.declared:
        if d.host == "int8_rows":
            lines.append(f'    q_{d.source}, s_{d.source} = int8_scaled(inputs["{d.source}"], 1)')
        elif d.host == "int8_cols":
            lines.append(f'    q_{d.source}, s_{d.source} = int8_scaled(inputs["{d.source}"], 0)')
    lines.append("    return {")
    rows_src = next((d.source for d in prog.declared if d.host == "int8_rows"), "")
    cols_src = next((d.source for d in prog.declared if d.host == "int8_cols"), "")
    for d in prog.declared:
        src = f'inputs["{d.source}"]'
        expr = {
            "plain": src,
            "high": f"fp16_high({src})",
            "low": f"fp16_low({src})",
            "fp16": f"fp16_high({src})",
            "int8_rows": f"q_{d.source}",
            "int8_cols": f"q_{d.source}",
            "scale": f"np.outer(s_{rows_src}, s_{cols_src}).astype(np.float32)",
            "superlanes": f"by_superlane({src}, {d.items[0]}, {d.items[1]}, {d.shape[0]})",
            "table": f"one_per_row({src})",
        }.get(d.host)
        if expr is None:
            continue
        if d.transposed:
            expr = f"np.ascontiguousarray({expr}.T)"
        elif d.host == "plain":
            expr = f"{expr}.reshape{d.shape!r}"
        lines.append(f'        "{d.name}": {expr},')
    lines.append("    }")
    return lines


def _unpack(prog: GroqProgram) -> list[str]:
    lines = [
        "def program_outputs(results):",
        '    """The kernel\'s outputs from the program\'s, by name."""',
        "    return {",
    ]
    for o in prog.outputs:
        value = f'results["{o.name}"]'
        if o.items:
            expr = f"from_superlanes({value}, {o.items[0]}, {o.items[1]}, {o.shape!r})"
        else:
            expr = f"np.asarray({value}).reshape({o.shape!r})"
        lines.append(f'        "{o.name}": {expr},')
    return [*lines, "    }"]


def run_py(graph: TaskGraph, prog: GroqProgram) -> str:
    reference = reference_source(graph)
    ref_text = (
        HELPERS + "\n\n" + reference
        if reference is not None
        else "def reference(inputs):\n    return None\n"
    )
    inputs = "\n".join(
        f'    "{t.name}": {{"shape": {list(t.shape)}, "dtype": "{t.dtype.numpy}"}},'
        for t in graph.inputs
    )
    outputs = "\n".join(f'    "{o.name}": {list(o.shape)},' for o in prog.outputs)
    rtol = CHECK_RTOL[prog.precision]
    prepare = "\n".join(_prepare(prog) + ["", ""] + _unpack(prog))
    host = HOST_HELPERS + (LOOKUP_HOST if any(o.items for o in prog.outputs) else "")
    return f'''#!/usr/bin/env python
"""Host program for '{prog.name}' ({prog.source}), generated by kernelc {VERSION}.

Loads {prog.name}.iop (written by program.py) with the Groq runtime, sends the inputs, reads the
outputs and, with --check, compares them with a NumPy version of the kernel. On a GroqNode:
    python run.py [--inputs DIR] [--outputs DIR] [--check]
kernelc runs this same file against its tsp emulator (see commands.sh).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from groq.runner import tsp

HERE = os.path.dirname(os.path.abspath(__file__))
IOP = os.path.join(HERE, "{prog.name}.iop")
INPUTS = {{
{inputs}
}}
OUTPUTS = {{
{outputs}
}}
PRECISION = "{prog.precision}"
CHECK_RTOL = {rtol!r}  # None: kernelc's f32 rule; fp16 and int8 are coarser (docs/GROQ.md)
{host}

{prepare}


{ref_text}

# When an output matches the reference (kernelc/tolerance.py, copied verbatim by kernelc).
{definitions(tolerance)}

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", help="directory of NAME.npy inputs (default: random, seed 7)")
    parser.add_argument("--outputs", help="directory to save NAME.npy outputs")
    parser.add_argument("--check", action="store_true", help="compare with the NumPy version")
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    inputs = {{}}
    for name, spec in INPUTS.items():
        if args.inputs:
            inputs[name] = np.load(Path(args.inputs) / f"{{name}}.npy")
        else:
            inputs[name] = rng.uniform(-1.0, 1.0, spec["shape"]).astype(spec["dtype"])

    runner = tsp.create_tsp_runner(IOP)
    results = runner(**program_inputs(inputs))
    outputs = program_outputs(results)

    if args.outputs:
        Path(args.outputs).mkdir(parents=True, exist_ok=True)
        for name, value in outputs.items():
            np.save(Path(args.outputs) / f"{{name}}.npy", value)
    if args.check:
        want = reference(inputs)
        if want is None:
            print("no NumPy reference for this kernel; outputs not checked")
        elif all(close_enough(outputs[n], want[n], CHECK_RTOL) for n in outputs):
            print(f"SUCCESS: outputs match the NumPy reference ({{PRECISION}})")
        else:
            bad = [n for n in outputs if not close_enough(outputs[n], want[n], CHECK_RTOL)]
            print(f"FAIL: {{', '.join(bad)}} differ from the NumPy reference")
            raise SystemExit(1)


if __name__ == "__main__":
    main()
'''


def commands_sh(prog: GroqProgram) -> str:
    return f"""#!/bin/sh
# Build and run '{prog.name}' for the GroqChip (generated by kernelc {VERSION}).
#   ./commands.sh       kernelc's tsp emulator runs program.py and run.py
#   ./commands.sh sdk   the GroqWare SDK on a GroqNode (groq-devtools, groq-runtime)
set -e
cd "$(dirname "$0")"
if [ "$1" = "sdk" ]; then
    export PYTHONPATH=/opt/groq/runtime/site-packages:$PYTHONPATH
    python program.py
    iop-utils stats {prog.name}.iop
    python run.py --check
else
    python -m kernelc.runtime.tsp program.py
    python -m kernelc.runtime.tsp stats {prog.name}.iop
    python -m kernelc.runtime.tsp run.py --check
fi
"""


def readme(prog: GroqProgram, report: list[str]) -> str:
    lines = [
        f"# {prog.name} for the GroqChip",
        "",
        f"Generated by kernelc {VERSION} from `{prog.source}` with precision `{prog.precision}`.",
        "",
        "- `program.py`: the Groq API program (inputs with layouts, one component, a buffered",
        "  resource scope per task, `nn.MatMul` on the MXM, element-wise work on the VXM, lane",
        f"  shifts on the SXM); `python program.py` compiles it to `{prog.name}.iop`.",
        "- `run.py`: the host program (Groq runtime runner, inputs by name, `--check` against",
        "  NumPy).",
        "- `commands.sh`: both steps, on kernelc's emulator or (`sdk`) with the GroqWare SDK.",
        "- `kernelc.json`: the manifest (layouts, precision, modelled cycles).",
        "",
        "Tasks:",
        "",
    ]
    lines += [f"- {st.comment}" for st in prog.stages]
    lines += ["", "Build report (modelled figures, not measurements):", "", "```"]
    lines += report
    lines += [
        "```",
        "",
        "See docs/GROQ.md in kernelc for the mapping and the precisions' error bounds.",
        "",
    ]
    return "\n".join(lines)
