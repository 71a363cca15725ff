#!/usr/bin/env python3
"""Writes a small seed corpus of valid saved bitlinear layers (format version 1, see serialize.hpp) into the
directory given as argv[1]. Written independently of the C++ writer (struct + zlib.crc32), so the fuzzer starts
from files that exercise every header field, and the format's description is checked by a second writer."""
import os
import random
import struct
import sys
import zlib

MAGIC = bytes([0x89, ord("B"), ord("L"), ord("N"), ord("\r"), ord("\n"), 0x1A, ord("\n")])


def packed_row_bytes(kind, in_features):
    per_block = 256 if kind == 1 else 512
    return (in_features + per_block - 1) // per_block * 64


def pack_row(kind, codes):
    row = bytearray([0x55 if kind == 1 else 0x00] * packed_row_bytes(kind, len(codes)))
    for k, code in enumerate(codes):
        if kind == 1:
            block, lane, j = k // 256, k % 256 // 64, k % 64
            at, shift = block * 64 + j, 2 * lane
            row[at] = (row[at] & ~(3 << shift)) | ((code + 1) << shift)
        else:
            block, lane, j = k // 512, k % 512 // 64, k % 64
            at = block * 64 + j
            row[at] = (row[at] & ~(1 << lane)) | ((1 if code > 0 else 0) << lane)
    return bytes(row)


def layer(kind, out, inp, per_tensor, bias, rng):
    codes = [[rng.choice([-1, 0, 1] if kind == 1 else [-1, 1]) for _ in range(inp)] for _ in range(out)]
    packed = b"".join(pack_row(kind, row) for row in codes)
    body = MAGIC + struct.pack("<IIQQIIfQ", 1, kind, out, inp, 1 if per_tensor else 0, 1 if bias else 0,
                               rng.uniform(0.01, 2.0), len(packed))
    if bias:
        body += struct.pack("<%df" % out, *[rng.uniform(-1, 1) for _ in range(out)])
    body += packed
    return body + struct.pack("<I", zlib.crc32(body))


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(1234)
    shapes = [(1, 1), (2, 3), (3, 64), (2, 257), (4, 513)]
    n = 0
    for kind in (1, 2):
        for out, inp in shapes:
            for per_tensor in (False, True):
                for bias in (False, True):
                    with open(os.path.join(out_dir, "seed_%03d.bin" % n), "wb") as f:
                        f.write(layer(kind, out, inp, per_tensor, bias, rng))
                    n += 1
    print("wrote %d seeds to %s" % (n, out_dir))


if __name__ == "__main__":
    main()
