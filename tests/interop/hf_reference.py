#!/usr/bin/env python3
"""Writes small Hugging Face style BitNet checkpoints and PyTorch's outputs for them (the test fixture of
tests/interop/hf_import_checkpoint_test.cpp).

Usage: hf_reference.py OUTPUT_DIR   -> OUTPUT_DIR/hf_cases.safetensors

For each case the file holds, under the prefix caseN:
  caseN.weight        U8 [out/4, in]: the packing rule of transformers' BitNet integration (row i*(out/4)+j of the
                      ternary code matrix stored as code+1 in bits 2i..2i+1 of packed row j)
  caseN.weight_scale  F32 or BF16 [1]: 1/beta for the "divide" convention (transformers BitLinear),
                      beta for "multiply" (transformers AutoBitLinear, offline mode)
  caseN.bias          F32 [out] (some cases)
  caseN.x             F32 [batch, in]   inputs
  caseN.q             I8  [batch, in]   PyTorch's int8 activations (must match bit for bit)
  caseN.y             F32 [batch, out]  PyTorch's output of the layer class the convention names
  caseN.magnitude     F32 [batch, out]  sum of |terms| of each output, the scale of its rounding error
and __metadata__ maps caseN to its convention. Everything is float32, as DESIGN §1 pins.
The safetensors container is written by hand (json + struct): Debian has no python3-safetensors.
"""
import json
import os
import struct
import sys

import torch


def pack_hf(codes):
    """codes: int8 [out, in] in {-1,0,1} -> uint8 [out/4, in] in transformers' BitNet layout."""
    out, _ = codes.shape
    assert out % 4 == 0
    rows = out // 4
    fields = (codes + 1).to(torch.uint8)
    packed = torch.zeros((rows, codes.shape[1]), dtype=torch.uint8)
    for i in range(4):
        packed |= fields[i * rows:(i + 1) * rows] << (2 * i)
    return packed


def activation_quant(x):
    # transformers BitLinear.activation_quant: 127 / absmax (PyTorch evaluates scalar / tensor as
    # reciprocal * scalar), round half to even, clamp to int8.
    scale = 127 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    q = (x * scale).round().clamp(-128, 127)
    return q, scale


def make_case(gen, out, inp, batch, convention, scale_dtype, with_bias):
    w = torch.randn((out, inp), generator=gen, dtype=torch.float32) * 0.05
    s = 1.0 / w.abs().mean().clamp(min=1e-5)          # WeightQuant: s = 1 / mean|W|
    codes = (w * s).round().clamp(-1, 1).to(torch.int8)
    beta = 1.0 / s
    weight_scale = (s if convention == "divide" else beta).reshape(1).to(scale_dtype)
    ws = weight_scale.to(torch.float32)
    bias = torch.randn((out,), generator=gen, dtype=torch.float32) if with_bias else None

    x = torch.randn((batch, inp), generator=gen, dtype=torch.float32)
    x[0] *= 100.0                       # rows of very different magnitude
    if batch > 2:
        x[1] = 0.0                      # an all-zero row: absmax clamps to 1e-5
        x[2, inp // 2] = 1e4            # one dominating value
    q, x_scale = activation_quant(x)
    cf = codes.to(torch.float32)
    if convention == "divide":
        # transformers BitLinear.forward: F.linear(q, codes) then / (weight_scale * input_scale), then + bias.
        y = torch.nn.functional.linear(q, cf) / (ws * x_scale)
        if bias is not None:
            y = y + bias
    else:
        # transformers AutoBitLinear.forward (offline): F.linear(dequantized x, codes, bias) * weight_scale.
        y = torch.nn.functional.linear(q / x_scale, cf, bias) * ws
    magnitude = torch.nn.functional.linear(q.abs(), cf.abs()) / x_scale * beta
    if bias is not None:
        magnitude = magnitude + (bias.abs() * (ws if convention == "multiply" else 1.0))
    tensors = {
        "weight": pack_hf(codes),
        "weight_scale": weight_scale,
        "x": x,
        "q": q.to(torch.int8),
        "y": y,
        "magnitude": magnitude,
    }
    if bias is not None:
        tensors["bias"] = bias
    return tensors


DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.uint8: "U8", torch.int8: "I8"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)    # the format pads the header to 8 bytes with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(20250417)
    cases = [  # out, in, batch, convention, weight_scale dtype, bias
        (8, 300, 3, "divide", torch.float32, False),
        (12, 1000, 5, "divide", torch.bfloat16, True),
        (4, 17, 2, "multiply", torch.float32, True),
        (16, 513, 4, "multiply", torch.bfloat16, False),
        (64, 2560, 3, "divide", torch.bfloat16, False),
    ]
    tensors, metadata = {}, {}
    for n, (out, inp, batch, convention, dtype, bias) in enumerate(cases):
        for key, t in make_case(gen, out, inp, batch, convention, dtype, bias).items():
            tensors["case%d.%s" % (n, key)] = t
        metadata["case%d" % n] = convention
    metadata["cases"] = str(len(cases))
    path = os.path.join(out_dir, "hf_cases.safetensors")
    write_safetensors(path, tensors, metadata)
    print("wrote %d cases to %s" % (len(cases), path))


if __name__ == "__main__":
    main()
