"""C scalar types of the subset and C's conversion rules, expressed as explicit IR casts.

The IR has no implicit conversions, so every conversion C performs silently (usual arithmetic
conversions, integer promotion, assignment conversion, truth values) becomes an ``ir.Cast`` or a
comparison here. ``bool`` stands for both C's ``_Bool`` and the int-valued results of comparisons
and logical operators: IR comparisons produce bool, and C's 0/1 appears when one is used as an int.
"""

from __future__ import annotations

from kernelc import ir
from kernelc.diagnostics import KernelcError, Span
from kernelc.types import DType

# Type words of the subset and the IR type each one means.
_SCALARS: dict[tuple[str, ...], DType] = {
    ("float",): DType.F32,
    ("int",): DType.I32,
    ("signed",): DType.I32,
    ("signed", "int"): DType.I32,
    ("int32_t",): DType.I32,
    ("unsigned",): DType.U32,
    ("unsigned", "int"): DType.U32,
    ("uint32_t",): DType.U32,
    ("uint16_t",): DType.U16,
    ("unsigned", "short"): DType.U16,
    ("unsigned", "short", "int"): DType.U16,
    ("_Bool",): DType.BOOL,
    ("bool",): DType.BOOL,
}

_WHY_NOT = {
    "double": "double precision is not supported (the accelerators compute in float); use float "
    "and float constants such as 1.0f",
    "long": "64-bit integers are not supported; use int",
    "size_t": "size_t is a 64-bit type, which is not supported; use int",
    "ptrdiff_t": "ptrdiff_t is a 64-bit type, which is not supported; use int",
    "char": "char is not supported; use int",
    "short": "signed short is not supported; use int or uint16_t",
    "_Float16": "_Float16 is not supported by the C frontend; use float",
    "int64_t": "64-bit integers are not supported; use int",
    "uint64_t": "64-bit integers are not supported; use unsigned",
    "int8_t": "8-bit integers are not supported; use int",
    "uint8_t": "8-bit integers are not supported; use int",
    "int16_t": "signed 16-bit integers are not supported; use int or uint16_t",
}

QUALIFIERS = {
    "const",
    "static",
    "inline",
    "extern",
    "restrict",
    "__restrict__",
    "__restrict",
    "volatile",
    "register",
    "__inline__",
    "__inline",
}


def scalar_type(words: tuple[str, ...], span: Span, *, allow_void: bool = False) -> DType | None:
    """The IR type named by a declaration's type words (None for ``void`` where allowed)."""
    core = tuple(w for w in words if w not in QUALIFIERS)
    if core == ("void",):
        if allow_void:
            return None
        raise KernelcError("a variable cannot have type void", span)
    dtype = _SCALARS.get(core)
    if dtype is not None:
        return dtype
    for word in core:
        if word in _WHY_NOT:
            raise KernelcError(f"type '{' '.join(core)}': {_WHY_NOT[word]}", span)
    raise KernelcError(
        f"type '{' '.join(core)}' is not supported; use float, int, unsigned, uint16_t or bool",
        span,
    )


def is_const(words: tuple[str, ...]) -> bool:
    return "const" in words


def promoted(dtype: DType) -> DType:
    """C's integer promotion: small integer types and bool compute as int."""
    return DType.I32 if dtype in (DType.U16, DType.BOOL) else dtype


def common(a: DType, b: DType) -> DType:
    """C's usual arithmetic conversions on the types of the subset."""
    a, b = promoted(a), promoted(b)
    if DType.F32 in (a, b):
        return DType.F32
    if DType.U32 in (a, b):
        return DType.U32
    return DType.I32


def convert(expr: ir.Expr, to: DType) -> ir.Expr:
    """C's conversion of a value to ``to``, as IR (a comparison for conversions to bool)."""
    source = expr.dtype
    if source == to:
        return expr
    if to == DType.BOOL:
        return truth(expr)
    if isinstance(expr, ir.Const) and source != DType.BOOL:
        folded = _fold_cast(expr.value, to)
        if folded is not None:
            return ir.Const(value=folded, span=expr.span, dtype=to)
    return ir.Cast(to=to, operand=expr, span=expr.span, dtype=to)


def truth(expr: ir.Expr) -> ir.Expr:
    """A scalar used as a condition: ``x != 0``."""
    if expr.dtype == DType.BOOL:
        return expr
    zero = ir.Const(value=0.0 if expr.dtype.is_float else 0, span=expr.span, dtype=expr.dtype)
    return ir.Binary(op="!=", lhs=expr, rhs=zero, span=expr.span, dtype=DType.BOOL)


def _fold_cast(value: int | float, to: DType) -> int | float | None:
    """Fold a conversion of a literal when it is exact, so constants stay readable."""
    if to == DType.F32:
        return float(value) if float(value) == value and abs(value) < 2**24 else None
    if isinstance(value, int):
        lo, hi = {DType.I32: (-(2**31), 2**31 - 1), DType.U32: (0, 2**32 - 1)}.get(to, (0, 0))
        return value if lo <= value <= hi and (lo, hi) != (0, 0) else None
    return None


def const(value: int | float | bool, dtype: DType, span: Span) -> ir.Const:
    return ir.Const(value=value, span=span, dtype=dtype)


def c_name(dtype: DType) -> str:
    """The C spelling of an IR type (for messages and generated drivers)."""
    return {
        DType.F32: "float",
        DType.I32: "int",
        DType.U32: "unsigned",
        DType.U16: "uint16_t",
        DType.BOOL: "bool",
        DType.F16: "_Float16",
    }[dtype]
