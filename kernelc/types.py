"""Scalar element types of the kernel language and their NumPy equivalents."""

from __future__ import annotations

from enum import Enum

import numpy as np


class DType(Enum):
    """An element type. The value is the spelling used in source and in the IR printer."""

    F16 = "f16"
    F32 = "f32"
    I32 = "i32"
    U16 = "u16"
    U32 = "u32"
    BOOL = "bool"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(_NUMPY[self])

    @property
    def is_float(self) -> bool:
        return self in (DType.F16, DType.F32)

    @property
    def is_int(self) -> bool:
        return self in (DType.I32, DType.U16, DType.U32)

    @property
    def is_signed(self) -> bool:
        return self in (DType.I32, DType.F16, DType.F32)

    @property
    def is_numeric(self) -> bool:
        return self.is_float or self.is_int

    @property
    def bits(self) -> int:
        return {"f16": 16, "f32": 32, "i32": 32, "u16": 16, "u32": 32, "bool": 8}[self.value]

    def __str__(self) -> str:
        return self.value


_NUMPY = {
    DType.F16: "float16",
    DType.F32: "float32",
    DType.I32: "int32",
    DType.U16: "uint16",
    DType.U32: "uint32",
    DType.BOOL: "bool",
}

BY_NAME: dict[str, DType] = {d.value: d for d in DType}


def from_numpy(dtype: np.dtype) -> DType | None:
    """The language type of a NumPy dtype, or None when the language has no such type."""
    for d, name in _NUMPY.items():
        if np.dtype(name) == dtype:
            return d
    return None
