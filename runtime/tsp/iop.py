"""The emulator's IOP file: the recorded program, its constants and its schedule, and the NumPy
execution of it in the chip's precisions.

The file is a zip (NumPy ``.npz`` layout): ``program`` holds the program as JSON, ``c<id>`` each
constant. Execution semantics: fp32 VXM arithmetic is IEEE single precision; fp16 VXM arithmetic
rounds every result to fp16; integer VXM arithmetic saturates at its type's range; a cast to
fp16 rounds to nearest (overflow gives inf), a cast to an integer type rounds to nearest even
and saturates (NaN gives 0); the MXM multiplies fp16 operands exactly and accumulates in fp32
(int8 in int32); ``rsqrt`` is 1/sqrt rounded to the operand's precision, ``exp2`` NumPy's
exp2 in the operand's precision, ``maximum``/``minimum`` return the other operand for a NaN.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

SUPERLANE = 16  # lanes of a superlane: a gather addresses each superlane on its own


def write_iop(path: Path, program, timing: dict) -> None:
    tensors = []
    constants: dict[str, np.ndarray] = {}
    for t in program.tensors:
        entry = {"id": t.id, "shape": list(t.shape), "dtype": t.dtype.name}
        if t.is_memory_tensor():
            entry.update(name=t.name, kind=t.kind, output=t.is_output)
            if t.layout is not None:
                entry["layout"] = t.layout.text
            if t.kind == "constant":
                constants[f"c{t.id}"] = t.data
        tensors.append(entry)
    nodes = [
        {
            "op": n.op,
            "in": [t.id for t in n.inputs],
            "out": [t.id for t in n.outputs],
            "attrs": n.attrs,
            "where": n.where,
        }
        for n in program.nodes
    ]
    doc = {"name": path.stem, "tensors": tensors, "nodes": nodes, **timing}
    buffer = io.BytesIO()
    np.savez(
        buffer,
        program=np.frombuffer(json.dumps(doc, sort_keys=True).encode(), np.uint8),
        **constants,
    )
    path.write_bytes(buffer.getvalue())


def read_iop(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            doc = json.loads(bytes(data["program"]).decode())
            constants = {k: data[k] for k in data.files if k != "program"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is no IOP written by this emulator: {exc}") from None
    return doc, constants


def _saturate(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def _arith(op: str, args: list[np.ndarray]) -> np.ndarray:
    dtype = args[0].dtype
    if dtype.kind == "f":
        xs = [a.astype(np.float32) for a in args]
        with np.errstate(all="ignore"):
            if op == "add":
                r = xs[0] + xs[1]
            elif op == "sub":
                r = xs[0] - xs[1]
            elif op == "mul":
                r = xs[0] * xs[1]
            elif op == "neg":
                r = -xs[0]
            elif op == "exp2":
                r = np.exp2(xs[0])
            elif op == "maximum":
                r = np.fmax(xs[0], xs[1])
            elif op == "minimum":
                r = np.fmin(xs[0], xs[1])
            else:  # rsqrt
                r = np.float32(1.0) / np.sqrt(xs[0])
        return r.astype(dtype)
    xs = [a.astype(np.int64) for a in args]
    r = {
        "add": lambda: xs[0] + xs[1],
        "sub": lambda: xs[0] - xs[1],
        "mul": lambda: xs[0] * xs[1],
        "neg": lambda: -xs[0],
        "maximum": lambda: np.maximum(xs[0], xs[1]),
        "minimum": lambda: np.minimum(xs[0], xs[1]),
    }[op]()
    return _saturate(r, dtype)


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        with np.errstate(all="ignore"):
            return x.astype(dtype)
    if x.dtype.kind == "f":
        r = np.rint(np.nan_to_num(x.astype(np.float64), nan=0.0))
        return _saturate(r, dtype)
    return _saturate(x.astype(np.int64), dtype)


def _shift(x: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros_like(x)
    if n > 0:
        out[..., n:] = x[..., :-n]
    elif n < 0:
        out[..., :n] = x[..., -n:]
    else:
        out[...] = x
    return out


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == np.float16:
        return np.matmul(a.astype(np.float32), b.astype(np.float32).T)
    wide = a.astype(np.int64) @ b.astype(np.int64).T
    return wide.astype(np.int32)  # the MXM's int32 accumulators wrap


def _gather(table: np.ndarray, index: np.ndarray, where: str) -> np.ndarray:
    rows = table.shape[0]
    lanes = index.shape[1] // SUPERLANE
    address = index[:, ::SUPERLANE].astype(np.int64)  # the first lane of each superlane
    if address.size and (address.min() < 0 or address.max() >= rows):
        raise ValueError(f"{where}: g.mem_gather address outside the table's {rows} rows")
    segments = table.reshape(rows, lanes, SUPERLANE)[address, np.arange(lanes)]
    return segments.reshape(index.shape)


def execute(
    doc: dict,
    constants: dict,
    inputs: dict[str, np.ndarray],
    watch: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Run the program on the given inputs (already checked); the outputs by name. ``watch``
    is told (instructions executed, instructions) before each instruction."""
    tensors = {t["id"]: t for t in doc["tensors"]}
    value: dict[int, np.ndarray] = {}
    for t in doc["tensors"]:
        if t.get("kind") == "input":
            value[t["id"]] = inputs[t["name"]]
        elif t.get("kind") == "constant":
            value[t["id"]] = constants[f"c{t['id']}"]
    nodes = doc["nodes"]
    for index, node in enumerate(nodes):
        if watch is not None:
            watch(index, len(nodes))
        op, args = node["op"], [value[i] for i in node["in"]]
        out = node["out"]
        if op in ("read", "write"):
            value[out[0]] = args[0]
        elif op == "rows":
            n = tensors[out[0]]["shape"][0]
            start = node["attrs"]["start"]
            value[out[0]] = args[0][start : start + n]
        elif op == "split":
            n = tensors[out[0]]["shape"][node["attrs"]["dim"]]
            start = node["attrs"]["start"]
            value[out[0]] = np.take(args[0], range(start, start + n), axis=node["attrs"]["dim"])
        elif op == "inner_split":
            lanes = tensors[out[0]]["shape"][1]
            piece = args[0][:, node["attrs"]["k"] * lanes : (node["attrs"]["k"] + 1) * lanes]
            value[out[0]] = np.pad(piece, ((0, 0), (0, lanes - piece.shape[1])))
        elif op == "inner_concat":
            value[out[0]] = np.concatenate(args, axis=1)
        elif op == "concat":
            value[out[0]] = np.concatenate(args, axis=0)
        elif op in ("add", "sub", "mul", "neg", "rsqrt", "exp2", "maximum", "minimum"):
            value[out[0]] = _arith(op, args)
        elif op == "right_shift":
            value[out[0]] = np.right_shift(args[0], node["attrs"]["n"])
        elif op == "mem_gather":
            value[out[0]] = _gather(args[0], args[1], node["where"])
        elif op == "bitwise_and":
            value[out[0]] = np.bitwise_and(args[0], args[1])
        elif op == "reinterpret":
            value[out[0]] = args[0].view(np.dtype(tensors[out[0]]["dtype"]))
        elif op == "broadcast_lane_0":
            value[out[0]] = np.repeat(args[0][..., :1], args[0].shape[-1], axis=-1)
        elif op == "cast":
            value[out[0]] = _cast(args[0], np.dtype(tensors[out[0]]["dtype"]))
        elif op == "shift":
            value[out[0]] = _shift(args[0], node["attrs"]["n"])
        elif op == "matmul":
            value[out[0]] = _matmul(args[0], args[1])
        else:
            raise ValueError(f"{node['where']}: the emulator cannot execute '{op}'")
    return {t["name"]: np.array(value[t["id"]]) for t in doc["tensors"] if t.get("output")}
