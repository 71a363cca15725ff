#!/usr/bin/python3
"""Writes PyTorch float32 RMSNorm reference cases for bitlinear's activation front-end (docs/frontend.md).

RMSNorm as transformers' Llama/BitNet code evaluates it in float32:
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
Per case the file holds in_features, batch, eps, x, weight, PyTorch's factor r = rsqrt(mean(x^2) + eps) per row
and PyTorch's y.

Usage: make_frontend_reference.py OUTPUT_FILE
"""
import struct
import sys

import torch

MAGIC = b"BLFRN002"


def rms_norm(x, weight, eps):
    r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * r * weight, r.reshape(-1)


def main():
    torch.manual_seed(20261203)
    cases = []
    for in_features in (1, 7, 100, 1003, 2560, 6912):
        for eps in (1e-5, 1e-6):
            for magnitude in (1e-3, 1.0, 30.0):
                batch = 4
                x = (torch.randn(batch, in_features, dtype=torch.float32) * magnitude).contiguous()
                weight = (torch.rand(in_features, dtype=torch.float32) + 0.5).contiguous()
                y, r = rms_norm(x, weight, eps)
                cases.append((in_features, batch, eps, x, weight, r, y))
    with open(sys.argv[1], "wb") as f:
        f.write(MAGIC)
        for in_features, batch, eps, x, weight, r, y in cases:
            f.write(struct.pack("<iif", in_features, batch, eps))
            f.write(x.numpy().astype("<f4").tobytes())
            f.write(weight.numpy().astype("<f4").tobytes())
            f.write(r.numpy().astype("<f4").tobytes())
            f.write(y.numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main()
