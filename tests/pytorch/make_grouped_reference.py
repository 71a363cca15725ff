#!/usr/bin/python3
"""Writes PyTorch float32 reference cases for the group-scaled weight rule of GroupedLinear::from_float.

The rule is BitNet's per-tensor rule applied to each group of G consecutive weights of a row:
  ternary: scale = max(mean|w|, 1e-5), codes = clamp(round(w * (1 / scale)), -1, 1)
  binary:  alpha = mean(w), scale = mean|w|, codes = (w - alpha > 0) ? +1 : -1
evaluated in float32, with each mean accumulated in float64 in index order (cumsum) and rounded to float32 once:
PyTorch's own float32 mean sums in another order and can differ by an ulp (DESIGN §1).

File: magic b"BLGREF01", u32 case count, then per case u32 kind (0 ternary, 1 binary), u32 out, u32 in,
u32 group, f32 weights[out * in], i8 codes[out * in], f32 scales[out * in / group]; little-endian.

Usage: make_grouped_reference.py OUTPUT_FILE
"""
import struct
import sys

import torch

MAGIC = b"BLGREF01"


def group_means(g):
    n = g.shape[-1]
    mean_abs = (g.double().abs().cumsum(-1)[..., -1] / n).float()
    mean = (g.double().cumsum(-1)[..., -1] / n).float()
    return mean, mean_abs


def ternary_grouped(w, group):
    out, n = w.shape
    g = w.reshape(out, n // group, group)
    _, mean_abs = group_means(g)
    scale = mean_abs.clamp(min=1e-5)
    s = 1.0 / scale  # float32 reciprocal
    codes = (g * s.unsqueeze(-1)).round().clamp(-1, 1)
    return codes.reshape(out, n), scale.reshape(-1)


def binary_grouped(w, group):
    out, n = w.shape
    g = w.reshape(out, n // group, group)
    alpha, mean_abs = group_means(g)
    codes = torch.where(g - alpha.unsqueeze(-1) > 0, torch.ones_like(g), -torch.ones_like(g))
    return codes.reshape(out, n), mean_abs.reshape(-1)


def cases(gen):
    shapes = [(7, 256, 32), (5, 256, 64), (9, 1024, 128), (3, 2560, 256), (4, 999, 999), (6, 33, 33), (2, 1, 1),
              (8, 640, 128), (3, 512, 512)]
    for out, n, group in shapes:
        for kind in (0, 1):
            w = torch.randn(out, n, generator=gen, dtype=torch.float32)
            w = w * torch.exp(torch.randn(out, n // group, 1, generator=gen) * 2).repeat_interleave(group, -1).reshape(out, n)
            if n >= 64:
                w[0, :32] = 0.0  # part of a group zero (all of it for group 32: scale 1e-5 / 0)
                w[-1, 5] = 1e4  # one large weight dominating its group
            if n % 32 == 0 and n >= 64:
                w[1, 32:64] = 0.0
            yield kind, w, group
    # Weights on the rounding boundary of their group's scale: w = +-0.5 * scale, exact for a scale that is a power of two.
    for kind in (0, 1):
        w = torch.full((2, 64), 0.25)
        w[:, ::2] = -0.75
        w[0, 3] = 0.5
        w[1, :32] = torch.tensor([0.5, -0.5] * 16)
        yield kind, w, 32


def main():
    gen = torch.Generator().manual_seed(20261202)
    records = []
    for kind, w, group in cases(gen):
        w = w.contiguous()
        codes, scales = ternary_grouped(w, group) if kind == 0 else binary_grouped(w, group)
        out, n = w.shape
        records.append(struct.pack("<4I", kind, out, n, group) + w.numpy().astype("<f4").tobytes() +
                       codes.to(torch.int8).numpy().tobytes() + scales.numpy().astype("<f4").tobytes())
    with open(sys.argv[1], "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(records)))
        for r in records:
            f.write(r)


if __name__ == "__main__":
    main()
