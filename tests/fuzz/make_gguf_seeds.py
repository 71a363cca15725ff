#!/usr/bin/env python3
"""Writes a few small valid GGUF files (every metadata value type, nested arrays, F32/F16 tensors, an I2_S BitNet
block in bitnet.cpp's layout, a block of the group-scaled types TQ1_0 / TQ2_0 / Q1_0 / Q2_0, a block of PrismML's
PQ2_0 / PTQ1_0 / legacy id-42 Q2_0 with 128-weight blocks and prism.hadamard.* metadata, another alignment) into
argv[1]: the seed corpus of tests/fuzz/gguf_fuzzer.cpp.
Standard library only."""
import os
import random
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)  # metadata value types
GGML_F32, GGML_F16 = 0, 1  # tensor types (not the value types above: F32 there is 6, Q5_0 as a tensor type)


def s(text):
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def gguf(kvs, tensors, version=3, alignment=32):
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    blobs, offset = [], 0
    for name, ne, ttype, data in tensors:
        out += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", ttype, offset)
        pad = -len(data) % alignment
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    out += b"\0" * (-len(out) % alignment)
    return out + b"".join(blobs)


def i2s(codes, scale):
    n = len(codes)
    out = bytearray(n // 4 + 32)
    for e, c in enumerate(codes):
        out[32 * (e // 128) + e % 32] |= (c + 1) << (6 - 2 * (e % 128 // 32))
    out[n // 4:n // 4 + 4] = struct.pack("<f", scale)
    return bytes(out)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(11)
    every = [
        kv("a.u8", U8, b"\x07"), kv("a.i8", I8, b"\xff"), kv("a.u16", U16, b"\x01\x02"), kv("a.i16", I16, b"\x01\x80"),
        kv("a.u32", U32, struct.pack("<I", 9)), kv("a.i32", I32, struct.pack("<i", -9)),
        kv("a.f32", F32, struct.pack("<f", 0.5)), kv("a.bool", BOOL, b"\x01"), kv("a.str", STRING, s("text")),
        kv("a.u64", U64, struct.pack("<Q", 1 << 40)), kv("a.i64", I64, struct.pack("<q", -5)),
        kv("a.f64", F64, struct.pack("<d", 2.5)),
        kv("a.arr", ARRAY, struct.pack("<IQ", STRING, 2) + s("x") + s("yz")),
        kv("a.nested", ARRAY, struct.pack("<IQ", ARRAY, 2) + struct.pack("<IQ", U8, 2) + b"\x01\x02" +
           struct.pack("<IQ", BOOL, 1) + b"\x00"),
    ]
    f32 = struct.pack("<4f", 1, 2, 3, 4)
    for version in (2, 3):
        with open(os.path.join(out_dir, "every_v%d.gguf" % version), "wb") as f:
            f.write(gguf(every, [("w", [4], GGML_F32, f32), ("h", [2], GGML_F16, b"\x00\x3c\x00\xc0")], version))
    arch = "bitnet-b1.58"
    meta = [kv("general.architecture", STRING, s(arch)), kv("general.file_type", U32, struct.pack("<I", 40)),
            kv(arch + ".block_count", U32, struct.pack("<I", 1)),
            kv(arch + ".attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5))]
    tensors = [("blk.0.attn_norm.weight", [128], GGML_F32, struct.pack("<128f", *([1.0] * 128)))]
    for name, rows in (("attn_q", 4), ("attn_k", 2), ("attn_v", 2), ("attn_output", 4), ("ffn_gate", 4),
                       ("ffn_up", 4), ("ffn_down", 4)):
        codes = [rng.randrange(3) - 1 for _ in range(128 * rows)]
        tensors.append(("blk.0.%s.weight" % name, [128, rows], 36, i2s(codes, rng.uniform(0.1, 2))))
    with open(os.path.join(out_dir, "bitnet_block.gguf"), "wb") as f:
        f.write(gguf(meta, tensors))
    # One block whose projections are the four group-scaled types (ggml ids, bytes per block, weights per
    # block): random bytes with finite fp16 scales (0x3C00 = 1.0) where the scale field is.
    grouped = {"TQ1_0": (34, 54, 256, 52), "TQ2_0": (35, 66, 256, 64), "Q1_0": (41, 18, 128, 0), "Q2_0": (42, 18, 64, 0)}
    meta = [kv("general.architecture", STRING, s("llama")), kv("llama.block_count", U32, struct.pack("<I", 1))]
    tensors = [("token_embd.weight", [256, 2], 35, b"")]
    kinds = ["TQ2_0", "TQ1_0", "Q2_0", "Q1_0", "TQ2_0", "Q1_0", "Q2_0"]
    for name, kind in zip(("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"), kinds):
        tid, block_bytes, weights, scale_at = grouped[kind]
        # Q2_0 (id 42) with 16 rows: a smaller tensor of 256-weight rows also fits PrismML's legacy 128-weight
        # reading of id 42 within the alignment padding, and the reader refuses such a file.
        rows = 16 if kind == "Q2_0" else 2
        blocks = 256 // weights
        data = bytearray(rng.randrange(256) for _ in range(rows * blocks * block_bytes))
        for b in range(rows * blocks):
            data[b * block_bytes + scale_at:b * block_bytes + scale_at + 2] = b"\x00\x3c"
        tensors.append(("blk.0.%s.weight" % name, [256, rows], tid, bytes(data)))
    tensors[0] = ("token_embd.weight", [256, 2], 35, tensors[1][3])
    with open(os.path.join(out_dir, "grouped_block.gguf"), "wb") as f:
        f.write(gguf(meta, tensors))
    # PrismML: PQ2_0 (142, d first), PTQ1_0 (143, d last) and legacy Q2_0 under id 42 with 128-weight 34-byte
    # blocks (attn_v, 16 rows: large enough that only that reading fits its span), with prism.hadamard.* keys.
    prism = {"PQ2_0": (142, 34, 0), "PTQ1_0": (143, 28, 26), "Q2_0_g128": (42, 34, 0)}
    widths = [256]
    signs = [rng.choice((-1, 1)) for _ in range(256)]
    names = ["blk.0.ffn_up.weight", "blk.0.ffn_down.weight"]
    meta = [kv("general.architecture", STRING, s("qwen35")), kv("qwen35.block_count", U32, struct.pack("<I", 1)),
            kv("prism.hadamard.version", U32, struct.pack("<I", 1)),
            kv("prism.hadamard.block_size", U32, struct.pack("<I", 256)),
            kv("prism.hadamard.transform", STRING, s("normalized-sylvester-walsh-hadamard")),
            kv("prism.hadamard.axis", STRING, s("input-last-dimension")),
            kv("prism.hadamard.sign_mode", STRING, s("explicit")),
            kv("prism.hadamard.sign_widths", ARRAY, struct.pack("<IQ", I32, len(widths)) +
               b"".join(struct.pack("<i", w) for w in widths)),
            kv("prism.hadamard.sign_values", ARRAY, struct.pack("<IQ", I8, len(signs)) +
               b"".join(struct.pack("<b", v) for v in signs)),
            kv("prism.hadamard.weight_names", ARRAY, struct.pack("<IQ", STRING, len(names)) + b"".join(map(s, names)))]
    tensors = []
    kinds = [("PQ2_0", 2), ("PTQ1_0", 2), ("Q2_0_g128", 16), ("PTQ1_0", 2), ("PQ2_0", 2), ("PTQ1_0", 2), ("PQ2_0", 2)]
    for name, (kind, rows) in zip(("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"), kinds):
        tid, block_bytes, scale_at = prism[kind]
        blocks = rows * 2
        data = bytearray(rng.randrange(256) for _ in range(blocks * block_bytes))
        for b in range(blocks):
            data[b * block_bytes + scale_at:b * block_bytes + scale_at + 2] = b"\x00\x3c"
        tensors.append(("blk.0.%s.weight" % name, [256, rows], tid, bytes(data)))
    with open(os.path.join(out_dir, "prism_block.gguf"), "wb") as f:
        f.write(gguf(meta, tensors))
    with open(os.path.join(out_dir, "aligned_64.gguf"), "wb") as f:
        f.write(gguf([kv("general.alignment", U32, struct.pack("<I", 64))],
                     [("a", [3], 24, b"\x01\x02\x03"), ("b", [4], GGML_F32, f32), ("u", [8], 200, b"\x05" * 8)],
                     alignment=64))


if __name__ == "__main__":
    main()
