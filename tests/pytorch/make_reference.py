#!/usr/bin/python3
"""Writes PyTorch float32 reference cases for bitlinear's semantics (DESIGN §1) to a binary file.

The quantizers below are the BitNet reference code (activation absmax to int8 with 127 / max(|x|, 1e-5); ternary
weights round(W / max(mean|W|, 1e-5)) clamped to [-1, 1]; binary weights sign(W - mean(W)) with sign(0) = -1),
evaluated by PyTorch in float32. Per case the file holds the inputs and PyTorch's q, s_x, codes, scales and the
output computed in float64 from PyTorch's own quantized values.

Usage: make_reference.py OUTPUT_FILE
"""
import struct
import sys

import torch

MAGIC = b"BLREF001"


def activation_quant(x, per_tensor):
    absx = x.abs()
    m = (absx.max() if per_tensor else absx.max(dim=-1, keepdim=True).values).clamp(min=1e-5)
    scale = 127.0 / m  # PyTorch evaluates this as m.reciprocal() * 127
    if per_tensor:
        scale = scale.expand(x.shape[0], 1)
    q = (x * scale).round().clamp(-128, 127)
    return q, scale.reshape(-1)


def ternary_quant(w):
    beta = w.abs().mean().clamp(min=1e-5)
    s_w = 1.0 / beta
    codes = (w * s_w).round().clamp(-1, 1)
    return codes, beta, torch.zeros((), dtype=torch.float32)


def binary_quant(w):
    alpha = w.mean()
    beta = w.abs().mean()
    codes = torch.where(w - alpha > 0, torch.ones_like(w), -torch.ones_like(w))
    return codes, beta, alpha


def reciprocal_sensitive_rows(rows, cols, gen):
    """Rows whose q differs between 127/m (true division) and reciprocal(m)*127, for at least one element."""
    x = torch.randn(rows, cols, generator=gen)
    found = 0
    for r in range(rows):
        for _ in range(10000):
            m = torch.rand((), generator=gen) * 50 + 0.1
            recip = (1.0 / m) * 127.0
            div = torch.tensor(127.0, dtype=torch.float64) / m.double()
            div = div.float()
            if recip != div:
                break
        x[r] = x[r].clamp(-0.9, 0.9) * m / 2
        x[r, 0] = m
        for n in range(1, 127):
            cand = torch.tensor((n + 0.5), dtype=torch.float32) / div
            if cand < m and (cand * recip).round() != (cand * div).round():
                x[r, 1] = cand
                found += 1
                break
    return x, found


def write_case(f, kind, per_tensor, w, bias, x, special):
    out_f, in_f = w.shape
    batch = x.shape[0]
    q, s_x = activation_quant(x, per_tensor)
    codes, beta, alpha = (ternary_quant if kind == 0 else binary_quant)(w)
    # Output from PyTorch's own quantized values, in float64 (exact dot, then the scale and bias).
    dot = q.double() @ codes.double().t()
    if kind == 0:
        y = dot / s_x.double().unsqueeze(1) / (1.0 / beta).double()
    else:
        y = dot / s_x.double().unsqueeze(1) * beta.double()
    if bias is not None:
        y = y + bias.double()
    q_bytes = torch.nan_to_num(q, nan=0.0).to(torch.int8)
    nan_rows = torch.isnan(q).any(dim=1).to(torch.int8)
    f.write(struct.pack("<iiiiiii", kind, int(per_tensor), int(bias is not None), out_f, in_f, batch, special))
    f.write(w.contiguous().numpy().tobytes())
    if bias is not None:
        f.write(bias.contiguous().numpy().tobytes())
    f.write(x.contiguous().numpy().tobytes())
    f.write(q_bytes.numpy().tobytes())
    f.write(nan_rows.numpy().tobytes())
    f.write(s_x.to(torch.float32).contiguous().numpy().tobytes())
    f.write(codes.to(torch.int8).contiguous().numpy().tobytes())
    f.write(struct.pack("<ff", float(beta), float(alpha)))
    f.write(y.contiguous().numpy().tobytes())


def main():
    gen = torch.Generator().manual_seed(20261123)
    shapes = [(1, 1, 1), (3, 5, 2), (17, 31, 3), (64, 256, 4), (129, 1000, 2), (40, 4099, 1), (256, 2560, 2),
              (7, 257, 9), (16, 63, 5), (5, 511, 33), (33, 65, 16)]
    cases = 0
    reciprocal_rows = 0
    with open(sys.argv[1], "wb") as f:
        f.write(MAGIC)
        for kind in (0, 1):
            for per_tensor in (False, True):
                for with_bias in (False, True):
                    for out_f, in_f, batch in shapes:
                        w = torch.randn(out_f, in_f, generator=gen) * torch.rand((), generator=gen) * 0.1
                        bias = torch.randn(out_f, generator=gen) if with_bias else None
                        row_scale = torch.pow(10.0, torch.rand(batch, 1, generator=gen) * 12 - 6)
                        x = torch.randn(batch, in_f, generator=gen) * row_scale
                        write_case(f, kind, per_tensor, w, bias, x, 0)
                        cases += 1
            # Special rows: zeros, tiny (below 1e-5), huge, ties and reciprocal-sensitive values, NaN and inf.
            w = torch.randn(24, 300, generator=gen)
            x = torch.randn(8, 300, generator=gen)
            x[0] = 0
            x[1] = x[1] * 1e-7
            x[2] = x[2] * 1e30
            x[3, :] = torch.arange(300, dtype=torch.float32) / 2 - 75  # many exact .5 products with m = 74.5
            x[4, 7] = float("nan")
            x[5, 299] = float("inf")
            x[6, 0] = -float("inf")
            sensitive, found = reciprocal_sensitive_rows(1, 300, gen)
            x[7] = sensitive[0]
            reciprocal_rows += found
            write_case(f, kind, False, w, None, x, found)
            cases += 1
            sensitive, found = reciprocal_sensitive_rows(6, 64, gen)
            reciprocal_rows += found
            write_case(f, kind, False, torch.randn(10, 64, generator=gen), torch.randn(10, generator=gen), sensitive, found)
            cases += 1
    print(f"wrote {cases} cases ({reciprocal_rows} reciprocal-sensitive rows) to {sys.argv[1]}")


if __name__ == "__main__":
    main()
