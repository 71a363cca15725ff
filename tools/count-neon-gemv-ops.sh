#!/usr/bin/env bash
# Counts, from the cross-compiled disassembly, the instructions per weight in the inner loop of each aarch64
# GEMV kernel (docs/neon.md). Usage: tools/count-neon-gemv-ops.sh [extra compiler flags]; run from the repo root.
# Compiles tools/neon_gemv_inner_loops.cpp like a CMake Release build (-O3, no -march flags), disassembles it with
# aarch64-linux-gnu-objdump -d, finds in each kernel the innermost loop (backward branch) that holds the
# multiply-accumulates, and counts its instructions: vector = any instruction naming a v/q/d register.
# Weights per loop trip are read off the loop itself: one SDOT or one SADALP .8h,.16b covers 16 weights of one row,
# one SMLAL or SMLAL2 covers 8.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-g++ -std=c++17 -O3 -DNDEBUG -Iinclude "$@" -c tools/neon_gemv_inner_loops.cpp -o "$out/k.o"
aarch64-linux-gnu-objdump -d --no-show-raw-insn -C "$out/k.o" > "$out/k.s"
python3 - "$out/k.s" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
funcs = re.split(r'\n(?=[0-9a-f]+ <)', text)
# GCC keeps the dotprod kernels out of line (their own target attribute) and inlines the neon ones into the
# count_* wrappers: look for whichever symbol holds the loop.
kernels = {'ternary_gemv_dotprod<4': 'neon_dotprod ternary', 'binary_gemv_dotprod<4': 'neon_dotprod binary',
           'count_ternary_neon': 'neon ternary', 'count_binary_neon': 'neon binary'}
# Weights of one 64-byte block of the 4 rows (one trip of the block loop).
block_weights = {'neon_dotprod ternary': 1024, 'neon ternary': 1024, 'neon_dotprod binary': 2048, 'neon binary': 2048}
def is_vector(x):
    return re.search(r'\b[vqd]\d+\b', x[2]) is not None
def weights(body):
    w = 0
    for _, o, args in body:
        if o == 'sdot': w += 16
        elif o in ('smlal', 'smlal2'): w += 8
        elif o == 'sadalp' and re.search(r'v\d+\.8h, v\d+\.16b', args): w += 16
    return w
rows = []
for f in funcs:
    head = f.split('\n', 1)[0]
    name = next((v for k, v in kernels.items() if k in head), None)
    if name is None:
        continue
    insns = []
    for line in f.split('\n')[1:]:
        m = re.match(r'\s+([0-9a-f]+):\s+(\S+)\s*(.*)', line)
        if m:
            insns.append((int(m.group(1), 16), m.group(2), m.group(3)))
    addr_index = {a: i for i, (a, _, _) in enumerate(insns)}
    loops = []  # (first index, last index) of every backward branch's body
    for i, (a, op, args) in enumerate(insns):
        if op.startswith('b') and not op.startswith('bl'):
            t = re.match(r'([0-9a-f]+) <', args)
            if t and int(t.group(1), 16) <= a and int(t.group(1), 16) in addr_index:
                loops.append((addr_index[int(t.group(1), 16)], i))
    cand = [l for l in loops if weights(insns[l[0]:l[1] + 1]) > 0]
    if not cand:
        continue  # a wrapper that only branches to the kernel
    inner = min(cand, key=lambda l: l[1] - l[0])  # innermost loop holding the multiply-accumulates
    body = insns[inner[0]:inner[1] + 1]
    vec = [x for x in body if is_vector(x)]
    loads = [x for x in vec if x[1].startswith('ld')]
    w = weights(body)
    # The block loop: the smallest loop around the inner one (or the inner loop itself if it is the block loop).
    # Per block: its own instructions once (prefetch, pointer steps, per-block widening) + the inner loop's
    # instructions once per inner trip.
    bw = block_weights[name]
    if w >= bw:
        block_all, block_vec, block_prfm = len(body), len(vec), sum(1 for x in body if x[1] == 'prfm')
        block_all, block_vec, block_prfm = block_all * w // bw, block_vec * w // bw, block_prfm * w // bw
    else:
        outer = min((l for l in loops if l[0] <= inner[0] and l[1] >= inner[1] and l != inner),
                    key=lambda l: l[1] - l[0])
        own = insns[outer[0]:inner[0]] + insns[inner[1] + 1:outer[1] + 1]
        trips = bw // w
        block_all = len(own) + trips * len(body)
        block_vec = sum(1 for x in own if is_vector(x)) + trips * len(vec)
        block_prfm = sum(1 for x in own if x[1] == 'prfm')
    rows.append((name, body[0][0], body[-1][0], len(body), len(vec), len(loads), w, block_all, block_vec, block_prfm, bw))
print("inner loop (as in docs/neon.md):")
print(f"{'kernel':22} {'loop bytes':>14} {'insns':>6} {'vector':>6} {'loads':>5} {'weights':>7} {'vector/weight':>13} {'all/weight':>10}")
for name, a0, a1, n, nv, nl, w, *_ in rows:
    print(f"{name:22} {a0:#6x}-{a1:#6x} {n:6} {nv:6} {nl:5} {w:7} {nv/w:13.4f} {n/w:10.4f}")
print("whole block loop (4 rows x one 64-byte block, prefetch and per-block work included):")
print(f"{'kernel':22} {'weights':>7} {'insns':>6} {'vector':>6} {'prfm':>5} {'vector/weight':>13} {'all/weight':>10}")
for name, *_, block_all, block_vec, block_prfm, bw in rows:
    print(f"{name:22} {bw:7} {block_all:6} {block_vec:6} {block_prfm:5} {block_vec/bw:13.4f} {block_all/bw:10.4f}")
PY
