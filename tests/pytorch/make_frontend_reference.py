#!/usr/bin/python3
"""Writes PyTorch float32 RMSNorm reference cases for bitlinear's activation front-end (docs/frontend.md).

RMSNorm as transformers' Llama/BitNet code evaluates it in float32:
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
Per case the file holds in_features, batch, eps, x, weight, PyTorch's factor r = rsqrt(mean(x^2) + eps) per row
and PyTorch's y.

PyTorch picks its CPU kernels at run time (ATEN_CPU_CAPABILITY: default, avx2, avx512), and the order in which
the float32 sum of x^2 is added depends on it: 8-lane vectors with default and avx2, 16 with avx512 (which 1.13
picks on some AVX-512 CPUs). The library follows the 8-lane order, so this script pins avx2 before importing
torch and checks that torch took it, and runs on one thread (a reduction split over threads is added in another
order). The rows are then the same on every x86 CPU with AVX2.

Usage: make_frontend_reference.py OUTPUT_FILE
"""
import os
import platform
import struct
import sys

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402  (after the environment above)

MAGIC = b"BLFRN002"


def check_capability():
    if platform.machine().lower() not in ("x86_64", "amd64"):
        # Not checked: ATen's other CPUs have no avx2 capability (its NEON float vector is 8 lanes too, untested).
        print("make_frontend_reference.py: not x86-64, PyTorch's sum order is not pinned", file=sys.stderr)
        return
    config = torch.__config__.show()
    if "CPU capability usage: AVX2" not in config:
        sys.exit("make_frontend_reference.py: torch did not take ATEN_CPU_CAPABILITY=avx2:\n" + config)


def rms_norm(x, weight, eps):
    r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * r * weight, r.reshape(-1)


def rows(batch, n, magnitude):
    """batch rows of n values: normal * magnitude, or (magnitude "wide") a dynamic range of about e^16."""
    x = torch.randn(batch, n, dtype=torch.float32)
    if magnitude == "wide":
        return (x * torch.exp(torch.rand(batch, n) * 16.0 - 8.0)).contiguous()
    return (x * magnitude).contiguous()


def main():
    check_capability()
    torch.set_num_threads(1)
    torch.manual_seed(20261204)
    cases = []

    def add(n, batch, eps, x):
        weight = (torch.rand(n, dtype=torch.float32) + 0.5).contiguous()
        y, r = rms_norm(x, weight, eps)
        cases.append((n, batch, eps, x, weight, r, y))

    # Below, at and above the sizes where the sum changes shape: one-value units (n < 8), 8-lane vectors with a
    # tail, whole groups of four vectors (32), the first level flush (512 = 16 groups), the second (8192 = 256
    # groups), the third (131072 = 4096 groups); the 2B4T widths 2560 and 6912.
    small = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 40, 63, 64, 100, 127, 128, 255, 256, 257,
             511, 512, 513, 543, 1003, 1024, 2047, 2560, 4095, 4096, 6912)
    for n in small:
        for eps in (1e-5, 1e-6):
            for magnitude in (1e-3, 1.0, 30.0, "wide"):
                add(n, 4, eps, rows(4, n, magnitude))
    for n in (8191, 8192, 8200, 16384, 20000):
        for magnitude in (1.0, "wide"):
            add(n, 2, 1e-6, rows(2, n, magnitude))
    for n in (131072, 135000):
        for magnitude in (1.0, "wide"):
            add(n, 1, 1e-5, rows(1, n, magnitude))
    # Edge rows, n = 1003: squares below the normal range; a sum of squares that overflows float although
    # every square is finite (r = 0, y = +-0); the same with a mean that is finite (the sum overflows first);
    # an infinity (r = 0, y NaN there and +-0 elsewhere); a NaN (r and y NaN).
    n = 1003
    x = torch.randn(6, n, dtype=torch.float32)
    x[0] *= 1e-22
    x[1] *= 3e18
    x[2] = torch.sign(x[2]) * 1.5e19
    x[3, 500] = float("inf")
    x[4, 17] = float("nan")
    x[5] *= 1e-3
    add(n, 6, 1e-6, x.contiguous())
    with open(sys.argv[1], "wb") as f:
        f.write(MAGIC)
        for n, batch, eps, x, weight, r, y in cases:
            f.write(struct.pack("<iif", n, batch, eps))
            f.write(x.numpy().astype("<f4").tobytes())
            f.write(weight.numpy().astype("<f4").tobytes())
            f.write(r.numpy().astype("<f4").tobytes())
            f.write(y.numpy().astype("<f4").tobytes())
    print("%d cases, %d rows" % (len(cases), sum(c[1] for c in cases)))


if __name__ == "__main__":
    main()
