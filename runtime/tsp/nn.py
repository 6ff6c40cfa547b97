"""``groq.api.nn`` as the emulator answers it: ``MatMul`` on the MXM.

``mm(A, B)`` is ``A @ B.T`` (the second operand arrives transposed, as the stationary weights):
fp16 x fp16 gives fp32, int8 x int8 gives int32. The rules the real component enforces are
checked: both operands rank 2 with equal inner sizes, one MXM dtype, the weights in the planes'
hemisphere, a plane pair for fp16 and one plane for int8, VXM accumulation when K > 320, and the
MXM warm-up that SDK 0.11 needs.
"""

from __future__ import annotations

import math

from . import api, chip
from .errors import caller, fail


class MatMul:
    def __init__(
        self,
        name: str = "MatMul",
        planes: list[int] | None = None,
        use_vxm_accum: bool = False,
        buffer_output: bool = False,
        arith_mode_warmup: bool = False,
        is_buffered: bool = True,
        is_resource_scope: bool = False,
        **kwargs,
    ) -> None:
        self.where = caller()
        self.name = name
        self.planes = tuple(planes or (0, 1))
        self.use_vxm_accum = use_vxm_accum
        self.buffer_output = buffer_output
        self.arith_mode_warmup = arith_mode_warmup
        if any(p not in chip.MXM_PLANES for p in self.planes):
            raise fail(
                f"nn.MatMul '{name}': planes {list(self.planes)}; the MXM has 0..3", self.where
            )

    def __call__(self, a: api.Tensor, b: api.Tensor, time: int = 0, predecessors=None):
        where = caller()
        name = self.name
        if not self.arith_mode_warmup:
            raise fail(f"nn.MatMul '{name}' needs arith_mode_warmup=True (SDK 0.11)", where)
        for t in (a, b):
            if len(t.shape) != 2:
                raise fail(
                    f"nn.MatMul '{name}': {t.describe()} has shape {t.shape}, not rank 2", where
                )
            if t.dtype.name not in chip.MXM_DTYPES:
                raise fail(
                    f"nn.MatMul '{name}': the MXM multiplies float16 or int8, not {t.dtype.name} "
                    f"({t.describe()})",
                    where,
                )
        if a.dtype != b.dtype:
            raise fail(f"nn.MatMul '{name}': operands {a.dtype.name} and {b.dtype.name}", where)
        if a.shape[1] != b.shape[1]:
            raise fail(
                f"nn.MatMul '{name}': A is {a.shape} and B is {b.shape}; B is given transposed "
                f"(M x K), so both need K columns",
                where,
            )
        hemis = {chip.MXM_PLANES[p] for p in self.planes}
        want = 2 if a.dtype.name == "float16" else 1
        if len(self.planes) != want or len(hemis) != 1:
            raise fail(
                f"nn.MatMul '{name}': {a.dtype.name} uses {want} plane(s) of one hemisphere, "
                f"not planes {list(self.planes)}",
                where,
            )
        if not isinstance(b, api.MemoryTensor) or b.kind == "view" or b.layout is None:
            raise fail(
                f"nn.MatMul '{name}': the weights (B) are installed from a memory tensor", where
            )
        (hemi,) = hemis
        if b.layout.hemisphere != hemi:
            raise fail(
                f"nn.MatMul '{name}': weights '{b.name}' are in {b.layout.hemisphere or 'H2'} and "
                f"planes {list(self.planes)} are in hemisphere {hemi}",
                where,
            )
        n, k = a.shape
        m = b.shape[0]
        if k > chip.MXM_BLOCK and not self.use_vxm_accum:
            raise fail(f"nn.MatMul '{name}': K = {k} > 320 needs use_vxm_accum=True", where)
        passes = math.ceil(k / chip.MXM_BLOCK)
        blocks = passes * math.ceil(m / chip.MXM_BLOCK)
        install = chip.MXM_INSTALL_FP16 if a.dtype.name == "float16" else chip.MXM_INSTALL_INT8
        vectors = chip.MXM_WARMUP + blocks * (install + n * chip.MXM_ROW_CYCLES[a.dtype.name])
        latency = chip.MXM_LATENCY + (chip.MXM_ACCUMULATE_LATENCY if passes > 1 else 0)
        out_dtype = api.float32 if a.dtype.name == "float16" else api.int32
        shape = (n, m)
        if self.buffer_output:
            out: api.Tensor = api.MemoryTensor(
                shape,
                out_dtype,
                name,
                api.parse_layout(f"H1({hemi}), -1, S4", where),
                "write",
                where,
            )
            api.check_fits(name, shape, out_dtype.name, out.layout, where)
        else:
            out = api.StreamTensor(shape, out_dtype, where)
        unit = "mxm:" + ",".join(str(p) for p in self.planes)
        api.record("matmul", (a, b), (out,), {}, where, unit, vectors, latency)
        return out
