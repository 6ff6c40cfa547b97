"""The language's scalar operations as LLVM instructions, with the interpreter's semantics.

Each function mirrors one rule of kernelc/interpreter.py: f16 arithmetic is done in f32 and
rounded to half after every operation (as NumPy's float16 loops do), integer division truncates
and gives 0 for a zero divisor, shifts are masked to the bit width, float-to-int conversions
saturate with NaN giving 0, ``min``/``max`` on floats ignore NaN like ``np.fmin``/``np.fmax``,
``fma`` rounds once, and ``rand``/``randbits`` are the lowbias32 hash.
"""

from __future__ import annotations

from llvmlite import ir

from kernelc.types import DType

I1, I8, I16, I32, I64 = (ir.IntType(n) for n in (1, 8, 16, 32, 64))
HALF, FLOAT, DOUBLE = ir.HalfType(), ir.FloatType(), ir.DoubleType()


def value_type(dtype: DType) -> ir.Type:
    """The LLVM type a value of ``dtype`` has in registers."""
    return {
        DType.F16: HALF,
        DType.F32: FLOAT,
        DType.I32: I32,
        DType.U32: I32,
        DType.U16: I16,
        DType.BOOL: I1,
    }[dtype]


def storage_type(dtype: DType) -> ir.Type:
    """The LLVM type of one array element (NumPy stores bool as a byte)."""
    return I8 if dtype == DType.BOOL else value_type(dtype)


def const(dtype: DType, value: int | float | bool) -> ir.Constant:
    if dtype == DType.BOOL:
        return ir.Constant(I1, int(bool(value)))
    if dtype.is_float:
        return ir.Constant(value_type(dtype), float(dtype.numpy.type(value)))
    bits = dtype.bits
    return ir.Constant(value_type(dtype), int(value) & ((1 << bits) - 1))


def _type_suffix(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_type_suffix(t.element)}"
    if isinstance(t, ir.IntType):
        return f"i{t.width}"
    if isinstance(t, ir.PointerType):
        return "p0"
    return {HALF: "f16", FLOAT: "f32", DOUBLE: "f64"}[t]


def intrinsic(
    module: ir.Module, base: str, ret: ir.Type, args: list[ir.Type], overloads: list[ir.Type]
) -> ir.Function:
    """Get or declare an overloaded LLVM intrinsic such as ``llvm.sqrt.f32``."""
    name = ".".join([base, *(_type_suffix(t) for t in overloads)])
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name)


def call(b: ir.IRBuilder, base: str, args: list[ir.Value], ret: ir.Type | None = None):
    """Call an intrinsic overloaded on its result type (the first argument's type by default)."""
    ret = ret or args[0].type
    fn = intrinsic(b.module, base, ret, [a.type for a in args], [ret])
    return b.call(fn, args)


# ----------------------------------------------------------------------------------- floats


def _wide(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return b.fpext(x, FLOAT) if x.type == HALF else x


def _narrow(b: ir.IRBuilder, x: ir.Value, dtype: DType) -> ir.Value:
    return b.fptrunc(x, HALF) if dtype == DType.F16 else x


def _float_op(b: ir.IRBuilder, dtype: DType, fn, *args: ir.Value) -> ir.Value:
    """Apply ``fn`` in f32 (exactly what NumPy's float16 loops do) and round to the type."""
    return _narrow(b, fn(*(_wide(b, a) for a in args)), dtype)


_FCMP = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def binary(b: ir.IRBuilder, op: str, x: ir.Value, y: ir.Value, dtype: DType) -> ir.Value:
    """``x op y`` for operands of type ``dtype``."""
    if op in _FCMP:
        if dtype.is_float:
            if op == "!=":
                return b.fcmp_unordered("!=", x, y)
            return b.fcmp_ordered(op, x, y)
        if dtype.is_signed:
            return b.icmp_signed(op, x, y)
        return b.icmp_unsigned(op, x, y)
    if op in ("&&", "&"):
        return b.and_(x, y)
    if op in ("||", "|"):
        return b.or_(x, y)
    if op == "^":
        return b.xor(x, y)
    if dtype.is_float:
        fn = {"+": b.fadd, "-": b.fsub, "*": b.fmul, "/": b.fdiv, "%": b.frem}[op]
        return _float_op(b, dtype, fn, x, y)
    if op in ("+", "-", "*"):
        return {"+": b.add, "-": b.sub, "*": b.mul}[op](x, y)
    if op in ("/", "%"):
        return _int_divide(b, op, x, y, dtype.is_signed)
    if op in ("<<", ">>"):
        amount = b.and_(y, ir.Constant(y.type, x.type.width - 1))
        if op == "<<":
            return b.shl(x, amount)
        return b.ashr(x, amount) if dtype.is_signed else b.lshr(x, amount)
    raise AssertionError(op)


def _int_divide(b: ir.IRBuilder, op: str, x: ir.Value, y: ir.Value, signed: bool) -> ir.Value:
    """C division and remainder (truncating); a zero divisor gives 0; INT_MIN / -1 wraps."""
    zero, one = ir.Constant(x.type, 0), ir.Constant(x.type, 1)
    by_zero = b.icmp_unsigned("==", y, zero)
    if not signed:
        safe = b.select(by_zero, one, y)
        result = b.udiv(x, safe) if op == "/" else b.urem(x, safe)
        return b.select(by_zero, zero, result)
    by_minus_one = b.icmp_signed("==", y, ir.Constant(x.type, -1))
    safe = b.select(b.or_(by_zero, by_minus_one), one, y)
    if op == "/":
        result = b.select(by_minus_one, b.sub(zero, x), b.sdiv(x, safe))
    else:
        result = b.srem(x, safe)  # x % -1 is 0, as x % 1 is
    return b.select(by_zero, zero, result)


def unary(b: ir.IRBuilder, op: str, x: ir.Value, dtype: DType) -> ir.Value:
    if op == "-":
        return b.fneg(x) if dtype.is_float else b.sub(ir.Constant(x.type, 0), x)
    return b.not_(x)  # "!" on bool and "~" on integers are both a complement of every bit


def compound(b: ir.IRBuilder, op: str, old: ir.Value, value: ir.Value, dtype: DType) -> ir.Value:
    """``old op= value``: ``max=`` and ``min=`` are the intrinsics, the rest binary operators."""
    if op in ("max=", "min="):
        return math(b, op[:3], [old, value], dtype)
    return binary(b, op[:-1], old, value, dtype)


# ------------------------------------------------------------------------------------ casts


def cast(b: ir.IRBuilder, x: ir.Value, source: DType, to: DType) -> ir.Value:
    """Conversions as ``interpreter.cast``: float to int truncates and saturates, NaN gives 0."""
    if source == to:
        return x
    target = value_type(to)
    if to == DType.BOOL:
        if source.is_float:
            return b.fcmp_unordered("!=", x, ir.Constant(x.type, 0.0))
        return b.icmp_unsigned("!=", x, ir.Constant(x.type, 0))
    if source.is_float and to.is_float:
        return b.fptrunc(x, target) if to == DType.F16 else b.fpext(x, target)
    if source.is_float:
        name = "llvm.fptosi.sat" if to.is_signed else "llvm.fptoui.sat"
        wide = _wide(b, x)
        fn = intrinsic(b.module, name, target, [wide.type], [target, wide.type])
        return b.call(fn, [wide])
    if to.is_float:
        as_float = b.sitofp(x, FLOAT) if source.is_signed else b.uitofp(x, FLOAT)
        return _narrow(b, as_float, to)  # |x| <= 2**24 is exact in f32; beyond, f16 overflows
    if target.width < x.type.width:
        return b.trunc(x, target)
    if target.width > x.type.width:
        return b.sext(x, target) if source.is_signed else b.zext(x, target)
    return x


# ------------------------------------------------------------------------------- intrinsics


def _float_min_max(b: ir.IRBuilder, fn: str, x: ir.Value, y: ir.Value) -> ir.Value:
    """NaN-ignoring min/max (np.fmin/np.fmax) as compares and a select: x where it wins or y is
    NaN, else y. Not llvm.minnum/maxnum: LLVM 22's loop vectorizer aborts on reductions of those
    at some trip counts (its VPlan and legacy cost models disagree), which kills the process."""
    wins = b.fcmp_ordered("<" if fn == "min" else ">", x, y)
    y_nan = b.fcmp_unordered("uno", y, y)
    return b.select(b.or_(wins, y_nan), x, y)


def math(b: ir.IRBuilder, fn: str, args: list[ir.Value], dtype: DType) -> ir.Value:
    """sqrt, exp, log, abs, floor, min, max and fma with ``interpreter.intrinsic``'s meaning."""
    if fn in ("min", "max"):
        if dtype.is_float:
            return _float_min_max(b, fn, args[0], args[1])
        prefix = "s" if dtype.is_signed else "u"
        return call(b, f"llvm.{prefix}{fn}", args)
    if fn == "abs":
        if dtype.is_float:
            return call(b, "llvm.fabs", args)
        if not dtype.is_signed:
            return args[0]
        fn_abs = intrinsic(b.module, "llvm.abs", args[0].type, [args[0].type, I1], [args[0].type])
        return b.call(fn_abs, [args[0], ir.Constant(I1, 0)])
    if fn == "fma":
        if dtype == DType.F16:
            return _fma_half(b, *args)
        return call(b, "llvm.fma", args)
    name = {"sqrt": "llvm.sqrt", "exp": "llvm.exp", "log": "llvm.log", "floor": "llvm.floor"}[fn]
    return _float_op(b, dtype, lambda v: call(b, name, [v]), args[0])


def _fma_half(b: ir.IRBuilder, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    """Single-rounding f16 fma: exact sum rounded to odd in f64, to odd in f32, then to half.

    The product of two halves is exact in f64; TwoSum gives the f64 sum's exact error. Rounding
    to odd into a format with at least two more bits than the next one keeps the final
    round-to-nearest correct, so the result equals the interpreter's single rounding.
    """
    p = b.fmul(b.fpext(x, DOUBLE), b.fpext(y, DOUBLE))
    c = b.fpext(z, DOUBLE)
    r = b.fadd(p, c)
    t = b.fsub(r, p)
    err = b.fadd(b.fsub(p, b.fsub(r, t)), b.fsub(c, t))
    r_odd = _to_odd(b, r, err, I64)
    f = b.fptrunc(r_odd, FLOAT)
    f_odd = _to_odd(b, f, b.fsub(r_odd, b.fpext(f, DOUBLE)), I32)
    return b.fptrunc(f_odd, HALF)


def _to_odd(b: ir.IRBuilder, rounded: ir.Value, err: ir.Value, int_type: ir.IntType) -> ir.Value:
    """Turn a round-to-nearest result into round-to-odd, given the (signed) rounding error."""
    bits = b.bitcast(rounded, int_type)
    zero = ir.Constant(err.type, 0.0)
    inexact = b.fcmp_ordered("!=", err, zero)
    even = b.icmp_unsigned("==", b.and_(bits, ir.Constant(int_type, 1)), ir.Constant(int_type, 0))
    same_sign = b.icmp_unsigned(
        "==",
        b.fcmp_ordered(">", err, zero),
        b.icmp_signed(">=", bits, ir.Constant(int_type, 0)),
    )
    step = b.select(same_sign, ir.Constant(int_type, 1), ir.Constant(int_type, -1))
    moved = b.add(bits, step)
    return b.bitcast(b.select(b.and_(inexact, even), moved, bits), rounded.type)


# ------------------------------------------------------------------------------------- rand


def _mix(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """lowbias32 (C. Wellons)."""
    x = b.xor(x, b.lshr(x, ir.Constant(I32, 16)))
    x = b.mul(x, ir.Constant(I32, 0x7FEB352D))
    x = b.xor(x, b.lshr(x, ir.Constant(I32, 15)))
    x = b.mul(x, ir.Constant(I32, 0x846CA68B))
    return b.xor(x, b.lshr(x, ir.Constant(I32, 16)))


def randbits(b: ir.IRBuilder, key: ir.Value, counter: ir.Value) -> ir.Value:
    """``mix(counter ^ mix(key ^ 0x9E3779B9))``."""
    k = _mix(b, b.xor(key, ir.Constant(I32, 0x9E3779B9)))
    return _mix(b, b.xor(counter, k))


def unit_float(b: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    """The top 24 bits scaled by 2**-24: an exact f32 in [0, 1)."""
    top = b.uitofp(b.lshr(bits, ir.Constant(I32, 8)), FLOAT)
    return b.fmul(top, ir.Constant(FLOAT, 2.0**-24))
