#!/usr/bin/env python3
"""Writes a BitNet b1.58 2B4T-shaped Hugging Face checkpoint directory and its PyTorch reference output.

Usage: bitnet_checkpoint.py DIR [--blocks 2] [--vocab 4096] [--linear-class bitlinear|autobitlinear] [--shards 1]

DIR/config.json          microsoft/bitnet-b1.58-2B-4T's config (hidden 2560, FFN 6912, 20 heads, 5 KV heads, RoPE
                         theta 500000, RMSNorm eps 1e-5, tied embeddings), with num_hidden_layers = --blocks,
                         vocab_size = --vocab and quantization_config {quant_method: bitnet, linear_class,
                         quantization_mode: offline}
DIR/model.safetensors    the real tensor names, shapes and dtypes of the 2B4T checkpoint for those blocks:
                           model.embed_tokens.weight                     BF16 [vocab, 2560]
                           model.layers.N.input_layernorm.weight         BF16 [2560]
                           model.layers.N.post_attention_layernorm.weight BF16 [2560]
                           model.layers.N.self_attn.attn_sub_norm.weight BF16 [2560]
                           model.layers.N.mlp.ffn_sub_norm.weight        BF16 [6912]
                           model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj}.weight  U8 [out/4, in]
                           model.layers.N.<same>.weight_scale            BF16 [1]
                           model.norm.weight                             BF16 [2560]
                         (--shards N > 1: model-0000i-of-0000N.safetensors + model.safetensors.index.json)
DIR/reference.safetensors  input_ids I64 [128] and, computed in float32 PyTorch with transformers' BitNet layer
                         semantics, hidden.N F32 [128, 2560] (the hidden states after block N) and output F32
                         [128, 2560] (after model.norm).

The codes are random (about a third zeros); the full vocabulary (--vocab 128256) writes the real 657 MB
embedding, the default a 4096-row one. linear_class bitlinear stores weight_scale = 1/beta and divides by it
(transformers BitLinear); autobitlinear stores beta and multiplies (AutoBitLinear, offline).
Standard library + torch + numpy only (no safetensors package: the format is written by hand below).
"""
import argparse
import json
import math
import os
import struct

# The SubLN norms below are transformers' own float32 RMSNorm, which the library's front-end reproduces bit for bit
# with PyTorch's AVX2 kernels (docs/frontend.md): pin them before torch loads.
os.environ["ATEN_CPU_CAPABILITY"] = "avx2"

import numpy as np  # noqa: E402
import torch  # noqa: E402

HIDDEN, FFN, HEADS, KV_HEADS, HEAD_DIM = 2560, 6912, 20, 5, 128
KV = KV_HEADS * HEAD_DIM
EPS, THETA = 1e-5, 500000.0
PROMPT = 128
LINEARS = [("self_attn.q_proj", HIDDEN, HIDDEN), ("self_attn.k_proj", KV, HIDDEN), ("self_attn.v_proj", KV, HIDDEN),
           ("self_attn.o_proj", HIDDEN, HIDDEN), ("mlp.gate_proj", FFN, HIDDEN), ("mlp.up_proj", FFN, HIDDEN),
           ("mlp.down_proj", HIDDEN, FFN)]
NORMS = [("input_layernorm", HIDDEN), ("self_attn.attn_sub_norm", HIDDEN), ("post_attention_layernorm", HIDDEN),
         ("mlp.ffn_sub_norm", FFN)]


def config(blocks, vocab, linear_class):
    return {
        "architectures": ["BitNetForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "relu2", "hidden_size": HIDDEN,
        "initializer_range": 0.02, "intermediate_size": FFN, "max_position_embeddings": 4096, "model_type": "bitnet",
        "num_attention_heads": HEADS, "num_hidden_layers": blocks, "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": EPS, "rope_theta": THETA, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "use_cache": True, "vocab_size": vocab,
        "quantization_config": {"quant_method": "bitnet", "linear_class": linear_class, "quantization_mode": "offline"},
    }


def tensor_bytes(t):
    if t.dtype == torch.bfloat16:
        return "BF16", t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.uint8:
        return "U8", t.contiguous().numpy().tobytes()
    if t.dtype == torch.float32:
        return "F32", t.contiguous().numpy().astype("<f4").tobytes()
    if t.dtype == torch.int64:
        return "I64", t.contiguous().numpy().astype("<i8").tobytes()
    raise ValueError(t.dtype)


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dtype, data = tensor_bytes(tensors[name])
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for b in blobs:
            f.write(b)
    return offset


def pack(codes):
    """transformers' pack_weights: code row i*R + j goes to bits 2i..2i+1 of packed row j, as code + 1."""
    rows = codes.shape[0] // 4
    shifted = (codes + 1).to(torch.uint8)
    packed = torch.zeros((rows, codes.shape[1]), dtype=torch.uint8)
    for i in range(4):
        packed |= shifted[i * rows:(i + 1) * rows] << (2 * i)
    return packed


def unpack(packed):
    return torch.cat([((packed >> (2 * i)) & 3).to(torch.float32) - 1 for i in range(4)], dim=0)


def bitlinear(x, packed, weight_scale, linear_class):
    scale = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    q = (x * scale).round().clamp(-128, 127)
    codes = unpack(packed)
    ws = weight_scale.float()
    if linear_class == "bitlinear":  # BitLinear.forward: F.linear(q, w) then post_quant_process: / (ws * scale)
        return torch.nn.functional.linear(q, codes) / (ws * scale)
    return torch.nn.functional.linear(q / scale, codes) * ws  # AutoBitLinear offline: F.linear(x_dq, w) * ws


def rms_norm(x, w):
    # input_layernorm, post_attention_layernorm and model.norm, which the C++ example computes by hand.
    # transformers' BitNetRMSNorm is weight * (x * rsqrt(mean(x^2) + eps)) in float32. The mean of squares is
    # taken in float64 here and rounded to float32, and the reciprocal square root is 1 / sqrt, as the C++
    # example's hand-written norm does: otherwise the two sides' normalized activations differ in the last bit almost everywhere,
    # which flips int8 activations of the next layer and compounds over the blocks. The glue code is not what
    # is under test; the layers are.
    var = x.double().pow(2).mean(-1, keepdim=True).float()
    return (x * (1.0 / torch.sqrt(var + EPS))) * w.float()


def sub_norm(x, w):
    # attn_sub_norm and ffn_sub_norm, which the C++ example fuses into the next layer's input with the library's
    # front-end: transformers' BitNetRMSNorm in float32 (weight * (x * rsqrt(mean(x^2) + eps))), the same bits as
    # the front-end's RMSNorm when PyTorch runs its AVX2 kernels on one thread (docs/frontend.md).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        var = x.pow(2).mean(-1, keepdim=True)
        return w.float() * (x * torch.rsqrt(var + EPS))
    finally:
        torch.set_num_threads(threads)


def rope(x, n_heads):
    t = x.shape[0]
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.int64).float() / HEAD_DIM))
    freqs = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    x = x.view(t, n_heads, HEAD_DIM)
    half = HEAD_DIM // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def block(x, w, p, linear_class):
    t = x.shape[0]
    lin = lambda name, h: bitlinear(h, w[p + name + ".weight"], w[p + name + ".weight_scale"], linear_class)
    h = rms_norm(x, w[p + "input_layernorm.weight"])
    q = rope(lin("self_attn.q_proj", h), HEADS)
    k = rope(lin("self_attn.k_proj", h), KV_HEADS).repeat_interleave(HEADS // KV_HEADS, dim=1)
    v = lin("self_attn.v_proj", h).view(t, KV_HEADS, HEAD_DIM).repeat_interleave(HEADS // KV_HEADS, dim=1)
    scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(HEAD_DIM)
    scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1), float("-inf"))
    attn = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).reshape(t, HIDDEN)
    x1 = x + lin("self_attn.o_proj", sub_norm(attn, w[p + "self_attn.attn_sub_norm.weight"]))
    h2 = rms_norm(x1, w[p + "post_attention_layernorm.weight"])
    f = torch.relu(lin("mlp.gate_proj", h2)).pow(2) * lin("mlp.up_proj", h2)
    return x1 + lin("mlp.down_proj", sub_norm(f, w[p + "mlp.ffn_sub_norm.weight"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--linear-class", choices=["bitlinear", "autobitlinear"], default="bitlinear")
    ap.add_argument("--shards", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    g = torch.Generator().manual_seed(20250417)
    uniform = lambda *shape: torch.rand(*shape, generator=g) * 2 - 1

    w = {"model.embed_tokens.weight": uniform(args.vocab, HIDDEN).to(torch.bfloat16),
         "model.norm.weight": (1 + 0.25 * uniform(HIDDEN)).to(torch.bfloat16)}
    for n in range(args.blocks):
        p = "model.layers.%d." % n
        for name, out, inp in LINEARS:
            codes = torch.randint(-1, 2, (out, inp), generator=g, dtype=torch.int8)
            beta = 0.02 + 0.01 * (float(uniform(1)) + 1)
            w[p + name + ".weight"] = pack(codes)
            scale = 1.0 / beta if args.linear_class == "bitlinear" else beta
            w[p + name + ".weight_scale"] = torch.tensor([scale]).to(torch.bfloat16)
        for name, size in NORMS:
            w[p + name + ".weight"] = (1 + 0.25 * uniform(size)).to(torch.bfloat16)

    with open(os.path.join(args.dir, "config.json"), "w") as f:
        json.dump(config(args.blocks, args.vocab, args.linear_class), f, indent=2)
    names = sorted(w)
    if args.shards == 1:
        write_safetensors(os.path.join(args.dir, "model.safetensors"), w)
    else:
        files = ["model-%05d-of-%05d.safetensors" % (s + 1, args.shards) for s in range(args.shards)]
        parts = [{} for _ in files]
        for i, name in enumerate(names):  # contiguous runs of names per shard, like transformers' sharding
            parts[i * args.shards // len(names)][name] = w[name]
        total = sum(write_safetensors(os.path.join(args.dir, f), part) for f, part in zip(files, parts))
        weight_map = {name: files[s] for s, part in enumerate(parts) for name in part}
        with open(os.path.join(args.dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    ids = torch.randint(0, args.vocab, (PROMPT,), generator=g, dtype=torch.int64)
    ref = {"input_ids": ids}
    with torch.no_grad():
        x = w["model.embed_tokens.weight"][ids].float()
        for n in range(args.blocks):
            x = block(x, w, "model.layers.%d." % n, args.linear_class)
            ref["hidden.%d" % n] = x.contiguous()
        ref["output"] = rms_norm(x, w["model.norm.weight"]).contiguous()
    write_safetensors(os.path.join(args.dir, "reference.safetensors"), ref)
    print("wrote %s: %d blocks, vocab %d, %s, %d shard(s), reference output" %
          (args.dir, args.blocks, args.vocab, args.linear_class, args.shards))


if __name__ == "__main__":
    main()
