#!/usr/bin/env python3
"""numpy's side of the qtool interop test (tests/cli/test_cli_quantize.cpp, CliNumpy).

Reads a quantized .npz that qtool wrote with np.load(allow_pickle=False), decodes the codes from the
meta JSON alone (packed codes: one little-endian bit stream, code i at bits [i*b, i*b + b), so at 4 bits
element 0 is the low nibble of byte 0; signed codes are two's complement in b bits), dequantizes them as
((q - zero_point) * scale).astype(np.float32), or for a codebook element (fp8-e4m3, fp8-e5m2, nf4) as
codebook[q] * scale in float32 after checking the codebook member against an FP8 decode written here,
and requires the result to equal, bit for bit, the .npy that `qtool dequantize` wrote. A file with the
optional input_scale member (qtool quantize --method awq|smoothquant) holds codes of W * input_scale along
the last axis; the tensor is then the dequantized codes / input_scale, in float32.

usage: check_qfile.py QUANTIZED.npz DEQUANTIZED.npy      exit 0: equal, 1: not, 2: usage
"""
import json
import sys

import numpy as np


class Mismatch(Exception):
    pass


def require(condition, message):
    if not condition:
        raise Mismatch(message)


def decode_codes(q, meta):
    bits = meta["bits"]
    shape = tuple(meta["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    if bits == 8:
        require(meta["packing"] == "none", f"8-bit codes with packing {meta['packing']!r}")
        want = np.int8 if meta["signed"] else np.uint8
        require(q.dtype == want and q.shape == shape, f"q is {q.dtype} {q.shape}, expected {np.dtype(want)} {shape}")
        return q.astype(np.int32)
    require(meta["packing"] == "lsb_bitstream", f"{bits}-bit codes with packing {meta['packing']!r}")
    nbytes = (count * bits + 7) // 8
    require(q.dtype == np.uint8 and q.shape == (nbytes,), f"packed q is {q.dtype} {q.shape}, expected uint8 ({nbytes},)")
    if bits == 4:
        # Low nibble first (ONNX's int4 layout): element 2k is byte k & 0xF, element 2k+1 is byte k >> 4.
        raw = np.stack([q & 0x0F, q >> 4], axis=1).reshape(-1)[:count].astype(np.int32)
    else:
        stream = np.unpackbits(q, bitorder="little")[: count * bits].reshape(count, bits).astype(np.int32)
        raw = (stream << np.arange(bits, dtype=np.int32)).sum(axis=1, dtype=np.int32)
    if meta["signed"]:
        raw = np.where(raw >= 1 << (bits - 1), raw - (1 << bits), raw)
    return raw.reshape(shape)


def fp8_value(code, exponent_bits, mantissa_bits, bias, e4m3):
    """The OCP FP8 value of a code, from the bit fields (independent of the library)."""
    sign = -1.0 if code & 0x80 else 1.0
    exponent = (code >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = code & ((1 << mantissa_bits) - 1)
    top = (1 << exponent_bits) - 1
    if e4m3 and exponent == top and mantissa == (1 << mantissa_bits) - 1:
        return float("nan")
    if not e4m3 and exponent == top:
        return sign * float("inf") if mantissa == 0 else float("nan")
    if exponent == 0:
        return sign * mantissa * 2.0 ** (1 - bias - mantissa_bits)
    return sign * (1 + mantissa / (1 << mantissa_bits)) * 2.0 ** (exponent - bias)


def check_codebook(book, element):
    if element == "nf4":
        require(book.shape == (16,) and book[0] == -1 and book[7] == 0 and book[15] == 1
                and np.all(np.diff(book) > 0), f"nf4 codebook {book}")
        return
    e4m3 = element == "fp8-e4m3"
    want = np.array([fp8_value(c, 4 if e4m3 else 5, 3 if e4m3 else 2, 7 if e4m3 else 15, e4m3) for c in range(256)],
                    dtype=np.float32)
    require(book.shape == (256,) and np.array_equal(book, want, equal_nan=True), f"{element} codebook differs")


def dequantize(codes, scale, zero_point, meta, book=None):
    if book is not None:  # codebook element: value = codebook[code] * scale, float32 throughout
        values = book[codes]
        if meta["granularity"] == "per_group":
            group = meta["group_size"]
            # scale's shape says where the groups run: the last axis, or a conv weight's flattened rows.
            grouped = values.reshape(scale.shape + (group,))
            return (grouped * scale[..., None]).reshape(values.shape)
        return values * scale
    # int32 - int32 times float32 computes in float64 in numpy; the product of a small integer and a
    # float32 is exact in float64, so rounding it to float32 once gives the float32 product qtool computes.
    if meta["granularity"] == "per_group":
        group = meta["group_size"]
        grouped = codes.reshape(scale.shape + (group,))
        out = (grouped - zero_point[..., None]) * scale[..., None]
        return out.reshape(codes.shape).astype(np.float32)
    # per tensor: 0-d parameters; per channel: the channel count at the axis and 1 elsewhere. Both broadcast.
    return ((codes - zero_point) * scale).astype(np.float32)


def check(quantized_path, dequantized_path):
    with np.load(quantized_path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["meta"][()]))
        element = meta.get("element", "int")
        # Version 3 leaves the zero_point member out when every zero point is 0 (meta zero_point_member).
        has_zero_point = meta.get("zero_point_member", True)
        members = ["meta", "q", "scale"] + (["zero_point"] if has_zero_point else []) + (
            [] if element == "int" else ["codebook"])
        input_scale = archive["input_scale"] if "input_scale" in archive.files else None
        if input_scale is not None:
            members.append("input_scale")
        require(sorted(archive.files) == sorted(members), f"members {archive.files}")
        q, scale = archive["q"], archive["scale"]
        zero_point = archive["zero_point"] if has_zero_point else np.zeros(scale.shape, dtype=np.int32)
        book = None if element == "int" else archive["codebook"]
    if book is not None:
        check_codebook(book, element)
        require(np.all(zero_point == 0), "a codebook file has zero points")
    # Integer files are version 1; codebook files version 2 (so that a version-1 reader refuses them);
    # files without a zero_point member, with float16 scales or the full range rule version 3.
    scale_dtype = meta.get("scale_dtype", "float32")
    full_range = meta.get("range_rule", "pytorch") == "full"
    if not has_zero_point or scale_dtype != "float32" or full_range:
        want_format = "quantkit.qtensor/3"
    else:
        want_format = "quantkit.qtensor/1" if element == "int" else "quantkit.qtensor/2"
    require(meta["format"] == want_format, f"format {meta['format']!r}, expected {want_format!r}")
    require(has_zero_point or meta["format"] == "quantkit.qtensor/3", "zero_point missing before version 3")
    require(has_zero_point == bool(np.any(zero_point != 0)), "zero_point member present iff a zero point is not 0")
    require(scale.dtype == np.dtype(scale_dtype), f"scale dtype {scale.dtype}, meta says {scale_dtype}")
    require(full_range or np.all(scale > 0), "a scale is not positive")
    scale = scale.astype(np.float32)  # float16 scales widen exactly
    require(zero_point.dtype == np.int32, f"zero_point dtype {zero_point.dtype}")
    require(scale.shape == zero_point.shape, f"scale {scale.shape} vs zero_point {zero_point.shape}")
    codes = decode_codes(q, meta)
    lo, hi = meta["quant_min"], meta["quant_max"]
    require(codes.min() >= lo and codes.max() <= hi, f"codes in [{codes.min()}, {codes.max()}], outside [{lo}, {hi}]")
    expected = dequantize(codes, scale, zero_point, meta, book)
    if input_scale is not None:
        require("method" in meta and meta["method"]["name"] in ("awq", "smoothquant"),
                f"input_scale in a file whose method is {meta.get('method')!r}")
        # One value per column of the [shape[0], rest] view (a conv weight's flattened in * k...).
        columns = int(np.prod(meta["shape"][1:]))
        require(input_scale.dtype == np.float32 and input_scale.shape == (columns,),
                f"input_scale is {input_scale.dtype} {input_scale.shape}, expected float32 ({columns},)")
        require(np.all(np.isfinite(input_scale)) and np.all(input_scale > 0), "input_scale not finite and positive")
        # float32 / float32: one IEEE division
        expected = (expected.reshape(-1, columns) / input_scale).astype(np.float32).reshape(expected.shape)

    actual = np.load(dequantized_path, allow_pickle=False)
    require(actual.dtype == np.float32 and actual.shape == expected.shape,
            f"qtool dequantize wrote {actual.dtype} {actual.shape}, expected float32 {expected.shape}")
    if not np.array_equal(actual, expected):
        bad = np.argwhere(actual != expected)
        first = tuple(int(i) for i in bad[0])
        raise Mismatch(f"{len(bad)} value(s) differ, first at {first}: qtool {actual[first]!r}, numpy {expected[first]!r}")


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        check(argv[1], argv[2])
    except Mismatch as e:
        print(f"check_qfile.py: {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
