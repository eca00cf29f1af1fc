#!/usr/bin/env python3
"""Writes a natural-language id stream as an int64 .npy for `qtool embed --ids`: the words of English
text files (default: Debian's /usr/share/common-licenses/*, present on every Debian machine), each word
mapped to its frequency rank (0 = most frequent), the whole text repeated --repeat times. No numpy needed.

  python3 scripts/text-ids.py --repeat 20 ids.npy
"""
import argparse
import collections
import glob
import os
import re
import struct


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the .npy to write (int64, 1-D)")
    parser.add_argument("--text", nargs="*", default=sorted(glob.glob("/usr/share/common-licenses/*")),
                        help="text files (default: /usr/share/common-licenses/*)")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the text in the stream")
    args = parser.parse_args()
    words = []
    for path in args.text:
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="ignore") as f:
                words += re.findall(r"[a-z]+", f.read().lower())
    if not words:
        raise SystemExit("text-ids: no words in the given files")
    counts = collections.Counter(words)
    rank = {w: i for i, (w, _) in enumerate(sorted(counts.items(), key=lambda item: (-item[1], item[0])))}
    ids = [rank[w] for w in words] * args.repeat
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }" % len(ids)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"  # data starts on a 64-byte boundary
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%dq" % len(ids), *ids))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, args.out)
    print("%s: %d ids, %d distinct words" % (args.out, len(ids), len(counts)))


if __name__ == "__main__":
    main()
