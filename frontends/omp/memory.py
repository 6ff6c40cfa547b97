"""The graph's tensors: which tensor holds each C array on the host and in each target region.

A parameter starts as an input tensor named after it. Inside a target region an array that is
only read is used where it is; one that is written lives in a device tensor: its output (named
after the array, or ``NAME_out`` when the array is also an input) for ``from``/``tofrom``, a
temporary for ``to``/``alloc``. ``to``/``tofrom`` copy the host version in first (the map's
host-to-device stream); after the region, ``from``/``tofrom`` make the device version the host's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kernelc import ir
from kernelc.diagnostics import Span
from kernelc.frontends.omp.state import ArrayVar, Names, Tensor
from kernelc.types import DType


@dataclass
class Memory:
    names: Names
    params: dict[str, ArrayVar] = field(default_factory=dict)  # array parameters, in order
    tensors: dict[str, Tensor] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    host: dict[str, str | None] = field(default_factory=dict)  # C array -> host version
    extents: dict[tuple[str, int], str] = field(default_factory=dict)

    def parameter(self, var: ArrayVar) -> None:
        self.params[var.name] = var
        self.host[var.name] = var.name

    def local(self, var: ArrayVar) -> None:
        self.host[var.name] = None

    def device_tensor(self, var: ArrayVar, kind: str, written: bool) -> tuple[str, str | None]:
        """The tensor a mapped array lives in during one target region, and the tensor to copy
        into it first (None when the map needs no copy)."""
        host = self.host.get(var.name)
        from_host = kind in ("to", "tofrom") and host is not None
        if not written and from_host:
            self.use_input(host)
            return host, None
        is_input = (
            host == var.name
            and var.name in self.params
            and (var.name in self.inputs or var.name not in self.tensors)
        )
        if kind in ("from", "tofrom") and host is not None and not is_input:
            return host, None  # the device already holds this array's latest version
        if kind in ("from", "tofrom"):
            tensor = self.owned(var, from_host)
        else:
            tensor = self.new(var, None if var.pointer else var.name)
        if not from_host:
            return tensor, None
        self.use_input(host)
        return tensor, host

    def owned(self, var: ArrayVar, copies_input: bool) -> str:
        """The tensor that will hold an array's results."""
        if var.pointer and (copies_input or var.name in self.inputs):
            return self.new(var, f"{var.name}_out")
        return self.new(var, var.name)

    def use_input(self, tensor: str) -> None:
        """Read a parameter's host version: the caller's data, unless a target region has
        already produced a tensor of that name (a ``from`` map of an earlier region)."""
        var = self.params.get(tensor)
        if var is not None and tensor not in self.inputs and tensor not in self.tensors:
            self.inputs.append(tensor)
            self.tensors[tensor] = Tensor(tensor, var.dtype, var.dims, var.name, var.span)

    def new(self, var: ArrayVar, base: str | None) -> str:
        """A new tensor for ``var``, named ``base`` if that is free, else a fresh name."""
        if base is not None and base not in self.tensors:
            name = base
            self.names.taken.add(name)
        else:
            name = self.names.fresh(base or f"{var.name}_dev")
        self.tensors[name] = Tensor(name, var.dtype, var.dims, var.name, var.span)
        return name

    def scalar(self, name: str, dtype: DType, span: Span) -> str:
        """The tensor of shape [1] that holds a device scalar."""
        tensor = name if name not in self.tensors else self.names.fresh(name)
        one = ir.Const(value=1, span=span, dtype=DType.I32)
        self.tensors[tensor] = Tensor(tensor, dtype, (one,), name, span)
        return tensor

    def extent(self, array: str, dim: int) -> str:
        """The kernel size naming an extent of a bound region (one per array and dimension)."""
        key = (array, dim)
        if key not in self.extents:
            self.extents[key] = self.names.fresh(f"{array}_n{dim}")
        return self.extents[key]

    def param_shape(self, array: str, dims: tuple[ir.Expr, ...]) -> tuple[ir.Expr, ...]:
        """A kernel parameter's shape: sizes and literals as written, other extents by name
        (bind fixes a kernel's sizes by unifying plain names with the bound regions)."""
        return tuple(
            d
            if isinstance(d, ir.Name | ir.Const)
            else ir.Name(name=self.extent(array, dim), span=d.span, dtype=DType.I32)
            for dim, d in enumerate(dims)
        )

    def param(self, name: str) -> ir.Param:
        t = self.tensors[name]
        return ir.Param(name=name, dtype=t.dtype, shape=t.shape, span=t.span)

    def interface(self, used: set[str]) -> tuple[list[ir.Param], list[ir.Param], list[ir.Param]]:
        """(inputs, outputs, temporaries) of the graph: outputs are the final host versions of
        array parameters that a target region changed."""
        outputs = []
        for name in self.params:
            final = self.host[name]
            if final is None or final not in self.tensors:
                continue  # never mapped back
            if final == name and name in self.inputs:
                continue  # still the input: no target region changed it
            outputs.append(replace(self.param(final), is_output=True))
        inputs = [self.param(n) for n in self.params if n in self.inputs]
        interface = {p.name for p in (*inputs, *outputs)}
        temps = [self.param(n) for n in self.tensors if n in used and n not in interface]
        return inputs, outputs, temps
