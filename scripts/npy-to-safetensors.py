#!/usr/bin/env python3
"""Packs a folder of .npy files into one .safetensors file (tensor name = file stem), with numpy only.

    python3 scripts/npy-to-safetensors.py DIR OUT.safetensors [--dtype f32|f16|bf16]

Floating arrays are stored as --dtype (default: as they are); others keep their dtype. The layout is the
format's own: an 8-byte little-endian header length, the JSON header (padded with spaces to a multiple of
8), then the data, tensors sorted by element size then name as the reference writer does. README uses it
to make a real model file from the bundled Silero VAD weights.
"""
import argparse
import json
import pathlib
import struct

import numpy as np

DTYPES = {np.dtype("float64"): "F64", np.dtype("float32"): "F32", np.dtype("float16"): "F16",
          np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16", np.dtype("int8"): "I8",
          np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL"}


def to_bf16(a):
    """float32 -> bfloat16 bits, round to nearest even (as torch does)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("output", type=pathlib.Path)
    parser.add_argument("--dtype", choices=["f32", "f16", "bf16"])
    args = parser.parse_args()
    tensors = []
    for path in sorted(args.folder.glob("*.npy")):
        a = np.load(path, allow_pickle=False)
        if a.dtype.kind == "f" and args.dtype == "bf16":
            tensors.append((path.stem, "BF16", a.shape, to_bf16(a).tobytes()))
            continue
        if a.dtype.kind == "f" and args.dtype:
            a = a.astype({"f32": np.float32, "f16": np.float16}[args.dtype])
        a = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
        tensors.append((path.stem, DTYPES[a.dtype.newbyteorder("=")], a.shape, a.tobytes()))
    size = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
    tensors.sort(key=lambda t: (-size[t[1]], t[0]))
    header, offset = {}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(args.output, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))
    print(f"{args.output}: {len(tensors)} tensor(s), {offset} bytes of data")


if __name__ == "__main__":
    main()
