"""Bitwidth as a value: integer ranges, saturation into a storage type, and the packed layout of 4- and
2-bit feature maps (the numpy reference the C code follows).

On Cortex-M a 4- or 2-bit feature map is a *storage* format (see docs/architecture.md, "Bitwidths and
packed feature maps"): kernels unpack to 8/16-bit lanes before they multiply, so what the packing must
keep cheap is addressing, not arithmetic. The simulator therefore holds every value unpacked, one integer
per element (an int8 array for 8, 4 and 2 bits), and :func:`pack` / :func:`unpack` say how those values
sit in memory.

Packed layout (``bits`` b in {4, 2}; 8-, 16- and 32-bit values take 1, 2, 4 whole bytes each):

- only the innermost axis is packed (the channels of an NHWC map): element c of a pixel is the two's
  complement b-bit field at bits ``(c % k) * b`` .. ``(c % k) * b + b - 1`` of byte ``c // k`` of that
  pixel, k = 8 / b values per byte, lowest bits first (element 0 in the low nibble, as CMSIS-NN and
  TFLite Micro pack int4);
- each pixel is padded to a whole byte: C channels take ``ceil(C * b / 8)`` bytes (:func:`pixel_bytes`)
  and the padding bits are zero;
- pixels follow each other as in int8 (row-major N, H, W): pixel (n, h, w) starts at byte
  ``((n * H + h) * W + w) * pixel_bytes``. So a row, and a patch region [top:bottom, left:right] of an
  NHWC map, is a set of whole-byte runs (``bottom - top`` runs of ``(right - left) * pixel_bytes`` bytes),
  exactly as for int8 with C replaced by pixel_bytes: region copies, start offsets and per-patch
  buffers need no bit arithmetic.

Nothing here imports the rest of the compiler (arith sits below ops/ and beside ir/); the IR's
``Tensor.nbytes`` computes the same sizes from the tensor's dtype.
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import multiply_by_quantized_multiplier

#: bitwidths stored packed, several values per byte
PACKED_BITS = (4, 2)
#: bitwidths a value can have: packed, or a whole number of bytes
SUPPORTED_BITS = (2, 4, 8, 16, 32)


def _check_bits(bits: int) -> int:
    if int(bits) not in SUPPORTED_BITS:
        raise ValueError(f"{bits}-bit integers are not supported (supported: {list(SUPPORTED_BITS)})")
    return int(bits)


def qrange(bits: int) -> tuple[int, int]:
    """(qmin, qmax) of a signed ``bits``-bit integer: (-2^(bits-1), 2^(bits-1) - 1)."""
    bits = _check_bits(bits)
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def storage_dtype(bits: int) -> np.dtype:
    """The numpy type that holds one ``bits``-bit value unpacked (int8 for 8, 4 and 2 bits)."""
    bits = _check_bits(bits)
    return np.dtype(np.int8 if bits <= 8 else np.int16 if bits <= 16 else np.int32)


def saturate(values, bits: int, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Clamp integers to the ``bits``-bit range (and to [lo, hi], a fused activation's bounds, when
    given) and return them in :func:`storage_dtype` (one value per element, unpacked).

    This is the last step of every integer kernel: the C kernel's ``MIN(MAX(x, lo), hi)`` and store."""
    qmin, qmax = qrange(bits)
    lo = qmin if lo is None else max(qmin, int(lo))
    hi = qmax if hi is None else min(qmax, int(hi))
    return np.clip(np.asarray(values), lo, hi).astype(storage_dtype(bits))


def pixel_bytes(channels: int, bits: int) -> int:
    """Bytes of one pixel (one innermost vector of ``channels`` values) at ``bits``: padded to a byte."""
    bits = _check_bits(bits)
    return (int(channels) * bits + 7) // 8


def pack(values, bits: int) -> np.ndarray:
    """The bytes of ``values`` (integers in the ``bits``-bit range, innermost axis C) as memory holds
    them: uint8 of shape [..., pixel_bytes(C, bits)] (for 8 bits and more, the little-endian bytes).

    Raises ValueError for a value outside the range: packing would silently change it."""
    bits = _check_bits(bits)
    v = np.asarray(values)
    qmin, qmax = qrange(bits)
    if v.size and (int(v.min()) < qmin or int(v.max()) > qmax):
        raise ValueError(f"values in [{int(v.min())}, {int(v.max())}] do not fit {bits} bits")
    if bits >= 8:
        return np.ascontiguousarray(v.astype(storage_dtype(bits).newbyteorder("<"))).view(np.uint8).reshape(
            v.shape[:-1] + (-1,) if v.ndim else (-1,))
    per_byte = 8 // bits
    shape = v.shape if v.ndim else (1,)
    c = shape[-1]
    nbytes = pixel_bytes(c, bits)
    fields = np.zeros(shape[:-1] + (nbytes * per_byte,), np.int64)
    fields[..., :c] = v.reshape(shape).astype(np.int64) & ((1 << bits) - 1)  # two's complement field
    fields = fields.reshape(shape[:-1] + (nbytes, per_byte))
    shifts = np.arange(per_byte, dtype=np.int64) * bits
    return (fields << shifts).sum(axis=-1).astype(np.uint8)


def unpack(packed, bits: int, channels: int) -> np.ndarray:
    """Inverse of :func:`pack`: uint8 [..., pixel_bytes(channels, bits)] -> values [..., channels] in
    :func:`storage_dtype` (sign-extended; the padding bits are ignored)."""
    bits = _check_bits(bits)
    raw = np.asarray(packed, np.uint8)
    nbytes = pixel_bytes(channels, bits)
    if raw.shape[-1] != nbytes:
        raise ValueError(f"{raw.shape[-1]} bytes per pixel for {channels} channels at {bits} bits "
                         f"(expected {nbytes})")
    if bits >= 8:
        return np.ascontiguousarray(raw).view(storage_dtype(bits).newbyteorder("<")).astype(storage_dtype(bits))
    per_byte = 8 // bits
    shifts = np.arange(per_byte, dtype=np.int64) * bits
    fields = (raw.astype(np.int64)[..., None] >> shifts) & ((1 << bits) - 1)
    fields = fields.reshape(raw.shape[:-1] + (nbytes * per_byte,))[..., :channels]
    signed = np.where(fields >= 1 << (bits - 1), fields - (1 << bits), fields)  # sign-extend the field
    return signed.astype(storage_dtype(bits))


def requantize(acc, multiplier, shift, output_offset: int, bits: int, lo: int | None = None,
               hi: int | None = None, rounding: str = "double") -> np.ndarray:
    """An int32 accumulator to a ``bits``-bit output: TFLite's MultiplyByQuantizedMultiplier (with the
    graph's ``rounding``, see arith.fixedpoint), plus the output zero point, saturated to the range (and
    to a fused activation's [lo, hi])."""
    return saturate(multiply_by_quantized_multiplier(acc, multiplier, shift, rounding) + output_offset, bits, lo, hi)


# The C element type a parameter array (multipliers, shifts, tables, biases) is emitted as, and its size;
# int64 arrays hold int32 values (multipliers, biases computed in wider numpy types).
_C_ARRAY_TYPES = {np.dtype(np.int8): ("int8_t", 1), np.dtype(np.uint8): ("uint8_t", 1),
                  np.dtype(np.int16): ("int16_t", 2), np.dtype(np.int32): ("int32_t", 4),
                  np.dtype(np.int64): ("int32_t", 4)}


def c_array_type(value: np.ndarray) -> tuple[str, int]:
    """(C element type, bytes per element) of a parameter array as the generated code stores it."""
    kind = _C_ARRAY_TYPES.get(np.asarray(value).dtype)
    if kind is None:
        raise TypeError(f"no C array type for numpy dtype {np.asarray(value).dtype}")
    if kind[0] == "int32_t" and np.asarray(value).size:
        v = np.asarray(value)
        if v.min() < -(1 << 31) or v.max() >= 1 << 31:
            raise ValueError("a parameter array holds values outside int32")
    return kind
