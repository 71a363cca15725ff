#!/usr/bin/env python3
"""PyTorch reference for examples/bitnet_block.cpp.

Usage: bitnet_block_reference.py DIR
Reads DIR/block.safetensors (written by `bitnet_block --write DIR`: one BitNet b1.58 2B4T-sized block in the
Hugging Face packed form, plus a 128-token input), runs the block in float32 PyTorch with the layer semantics of
transformers' BitNet integration (BitLinear: per-token absmax int8 activations, ternary codes unpacked from
uint8 [out/4, in], output = F.linear(q, codes) / (weight_scale * input_scale)), and writes the output to
DIR/reference.safetensors as tensor "output" [128, 2560]. Standard library + torch + numpy only.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

HIDDEN, FFN, HEADS, KV_HEADS, HEAD_DIM = 2560, 6912, 20, 5, 128
EPS, THETA = 1e-5, 500000.0
P = "model.layers.0."


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "U8": np.uint8}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + e], dtype=np.dtype(dtypes[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.astype(dtypes[info["dtype"]]).reshape(info["shape"]))
    return out


def unpack(packed):
    rows = packed.shape[0]
    return torch.cat([((packed >> (2 * i)) & 3).to(torch.float32) - 1 for i in range(4)], dim=0)  # row i*rows + j


def bitlinear(x, codes, weight_scale):
    scale = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    q = (x * scale).round().clamp(-128, 127)
    return torch.nn.functional.linear(q, codes) / (weight_scale * scale)


def rms_norm(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rope(x, n_heads):
    t = x.shape[0]
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.int64).float() / HEAD_DIM))
    freqs = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    x = x.view(t, n_heads, HEAD_DIM)
    half = HEAD_DIM // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * cos + rotated * sin)


def main():
    d = sys.argv[1]
    w = read_safetensors(os.path.join(d, "block.safetensors"))
    lin = {}
    for name in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]:
        lin[name.split(".")[1]] = (unpack(w[P + name + ".weight"]), w[P + name + ".weight_scale"])
    norm = {k: w[P + k + ".weight"] for k in ["input_layernorm", "self_attn.attn_sub_norm",
                                              "post_attention_layernorm", "mlp.ffn_sub_norm"]}
    x = w["input"]
    t = x.shape[0]
    with torch.no_grad():
        h = rms_norm(x, norm["input_layernorm"])
        q = rope(bitlinear(h, *lin["q_proj"]), HEADS)                 # [t, 20, 128]
        k = rope(bitlinear(h, *lin["k_proj"]), KV_HEADS)              # [t, 5, 128]
        v = bitlinear(h, *lin["v_proj"]).view(t, KV_HEADS, HEAD_DIM)
        rep = HEADS // KV_HEADS
        k = k.repeat_interleave(rep, dim=1)                           # query head h reads kv head h // 4
        v = v.repeat_interleave(rep, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(HEAD_DIM)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(mask, float("-inf"))
        attn = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).reshape(t, HIDDEN)
        x1 = x + bitlinear(rms_norm(attn, norm["self_attn.attn_sub_norm"]), *lin["o_proj"])
        h2 = rms_norm(x1, norm["post_attention_layernorm"])
        f = torch.relu(bitlinear(h2, *lin["gate_proj"])).pow(2) * bitlinear(h2, *lin["up_proj"])
        y = x1 + bitlinear(rms_norm(f, norm["mlp.ffn_sub_norm"]), *lin["down_proj"])
    data = y.contiguous().numpy().astype("<f4").tobytes()
    header = json.dumps({"output": {"dtype": "F32", "shape": list(y.shape), "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(os.path.join(d, "reference.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)
    print("wrote %s" % os.path.join(d, "reference.safetensors"))


if __name__ == "__main__":
    main()
