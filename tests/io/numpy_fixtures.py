#!/usr/bin/env python3
"""numpy's side of quantkit's .npy/.npz interoperability tests (tests/io/test_numpy_interop.cpp).

  numpy_fixtures.py write DIR    numpy writes every kind of file quantkit must read into DIR
  numpy_fixtures.py verify DIR   checks, with np.load(allow_pickle=False), what quantkit wrote into DIR

The values are recomputed on both sides from the formulas in values() (the C++ test has the same table);
verify exits 1 and prints every mismatch.
"""
import os
import sys
import zipfile

import numpy as np

NAMES = ["float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
         "int64", "uint64", "bool"]
SHAPE = (2, 3, 4)
TEXT = "h\u00e9llo \u6f22\u5b57 \U0001f600"


def values(name):
    """24 values per dtype, exact in that dtype; the same formulas as expected<T>() in the C++ test."""
    formulas = {
        "float16": lambda i: i * 0.25 - 3,
        "float32": lambda i: i * 0.375 - 4,
        "float64": lambda i: i * 1e10 + 0.5,
        "int8": lambda i: i * 5 - 60,
        "uint8": lambda i: i * 7,
        "int16": lambda i: i * 1000 - 12000,
        "uint16": lambda i: i * 2000,
        "int32": lambda i: i * 100000000 - 1200000000,
        "uint32": lambda i: i * 150000000,
        "int64": lambda i: i * 100000000000000000 - 1200000000000000000,
        "uint64": lambda i: i * 700000000000000000,
        "bool": lambda i: i % 3 == 0,
    }
    return np.array([formulas[name](i) for i in range(24)], dtype=name).reshape(SHAPE)


def specials(name):
    info = np.finfo(name)
    return np.array([np.nan, np.inf, -np.inf, -0.0, info.smallest_subnormal, info.max], dtype=name)


def write(folder):
    for name in NAMES:
        a = values(name)
        be = a.astype(a.dtype.newbyteorder(">"))
        np.save(os.path.join(folder, f"le_{name}.npy"), a)
        np.save(os.path.join(folder, f"be_{name}.npy"), be)
        np.save(os.path.join(folder, f"fortran_{name}.npy"), np.asfortranarray(a))
        np.save(os.path.join(folder, f"fortran_be_{name}.npy"), np.asfortranarray(be))
        for version in [(2, 0), (3, 0)]:
            with open(os.path.join(folder, f"v{version[0]}_{name}.npy"), "wb") as f:
                np.lib.format.write_array(f, a, version=version)
    for name in ["float16", "float32", "float64"]:
        np.save(os.path.join(folder, f"specials_{name}.npy"), specials(name))
    np.save(os.path.join(folder, "scalar_float64.npy"), np.array(3.5))
    np.save(os.path.join(folder, "scalar_int32.npy"), np.array(-7, dtype=np.int32))
    np.save(os.path.join(folder, "empty_float32.npy"), np.zeros((0, 3), dtype=np.float32))
    np.save(os.path.join(folder, "empty_int64.npy"), np.zeros(0, dtype=np.int64))
    np.save(os.path.join(folder, "string.npy"), np.array(TEXT))
    np.save(os.path.join(folder, "string_be.npy"), np.array(TEXT).astype(">U20"))
    np.save(os.path.join(folder, "string_padded.npy"), np.array("ab", dtype="<U10"))

    arrays = {"a": values("float32"), "b": values("int64"), "meta": np.array(TEXT), "s": np.array(2.5)}
    np.savez(os.path.join(folder, "arrays.npz"), **arrays)
    np.savez_compressed(os.path.join(folder, "arrays_c.npz"), **arrays)

    # Files quantkit must refuse, with a clear error rather than a crash or an unpickle.
    with zipfile.ZipFile(os.path.join(folder, "with_text.npz"), "w") as z:
        z.writestr("a.npy", open(os.path.join(folder, "le_float32.npy"), "rb").read())
        z.writestr("readme.txt", "not an array")
    with zipfile.ZipFile(os.path.join(folder, "garbage_member.npz"), "w") as z:
        z.writestr("x.npy", b"hello, not a .npy")
    np.save(os.path.join(folder, "object.npy"), np.array([1, "a", None], dtype=object), allow_pickle=True)
    np.save(os.path.join(folder, "structured.npy"), np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    np.save(os.path.join(folder, "complex.npy"), np.zeros(3, dtype=np.complex64))
    np.save(os.path.join(folder, "datetime.npy"), np.zeros(3, dtype="datetime64[ns]"))
    np.save(os.path.join(folder, "bytes.npy"), np.array([b"abc"]))


def verify(folder):
    errors = []

    def check(what, got, want):
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
            errors.append(f"{what}: got {got.dtype} {got.shape} {got!r}, want {want.dtype} {want.shape} {want!r}")

    def check_npy_file(path):
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            np.lib.format._read_array_header(f, version)
            if version != (1, 0) or f.tell() % 64 != 0:
                errors.append(f"{path}: version {version}, data at {f.tell()} (want 1.0 and a multiple of 64)")
        return np.load(path, allow_pickle=False)

    for name in NAMES:
        check(f"cpp_{name}.npy", check_npy_file(os.path.join(folder, f"cpp_{name}.npy")), values(name))
    check("cpp_scalar.npy", check_npy_file(os.path.join(folder, "cpp_scalar.npy")), np.array(3.5))
    check("cpp_empty.npy", check_npy_file(os.path.join(folder, "cpp_empty.npy")), np.zeros((0, 3), np.float32))
    check("cpp_string.npy", check_npy_file(os.path.join(folder, "cpp_string.npy")), np.array(TEXT))
    check("cpp_empty_string.npy", check_npy_file(os.path.join(folder, "cpp_empty_string.npy")), np.array(""))

    for archive, method in [("cpp_stored.npz", zipfile.ZIP_STORED), ("cpp_deflated.npz", zipfile.ZIP_DEFLATED)]:
        path = os.path.join(folder, archive)
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            if bad is not None:
                errors.append(f"{archive}: bad CRC in {bad}")
            for info in z.infolist():
                if info.compress_type != method:
                    errors.append(f"{archive}: {info.filename} compressed with {info.compress_type}, want {method}")
        with np.load(path, allow_pickle=False) as npz:
            if sorted(npz.files) != sorted(NAMES + ["meta"]):
                errors.append(f"{archive}: members {npz.files}")
            for name in NAMES:
                check(f"{archive}[{name}]", npz[name], values(name))
            check(f"{archive}[meta]", npz["meta"], np.array(TEXT))

    for e in errors:
        print("numpy_fixtures.py verify:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "verify"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if sys.argv[1] == "write":
        write(sys.argv[2])
        sys.exit(0)
    sys.exit(verify(sys.argv[2]))
