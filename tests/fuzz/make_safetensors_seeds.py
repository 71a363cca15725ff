#!/usr/bin/env python3
"""Writes a few small valid safetensors files (HF BitNet layers: packed U8 weight, F32/BF16 weight_scale, optional
bias, metadata) into argv[1]: the seed corpus of tests/fuzz/safetensors_fuzzer.cpp. Standard library only."""
import json
import os
import random
import struct
import sys


def write(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(7)
    n = 0
    for rows, cols, bf16, bias in [(1, 1, False, False), (2, 3, True, True), (4, 64, False, True), (1, 300, True, False)]:
        packed = bytes(sum((rng.randrange(3)) << (2 * i) for i in range(4)) for _ in range(rows * cols))
        scale = struct.pack("<f", rng.uniform(0.1, 3.0))
        tensors = {"layer.weight": ("U8", [rows, cols], packed)}
        tensors["layer.weight_scale"] = ("BF16", [1], scale[2:]) if bf16 else ("F32", [1], scale)
        if bias:
            tensors["layer.bias"] = ("F32", [4 * rows], struct.pack("<%df" % (4 * rows), *[rng.uniform(-1, 1) for _ in range(4 * rows)]))
        write(os.path.join(out_dir, "seed_%02d.safetensors" % n), tensors, {"format": "pt", "n": str(n)})
        n += 1
    write(os.path.join(out_dir, "seed_%02d.safetensors" % n),
          {"a": ("F16", [2], b"\x00\x3c\x01\x00"), "b": ("F64", [], struct.pack("<d", 0.5)), "c": ("I8", [0, 4], b"")})
    print("wrote %d seeds to %s" % (n + 1, out_dir))


if __name__ == "__main__":
    main()
