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
kernels = {'ternary_gemv_dotprod<4>': 'neon_dotprod ternary', 'binary_gemv_dotprod<4>': 'neon_dotprod binary',
           'count_ternary_neon': 'neon ternary', 'count_binary_neon': 'neon binary'}
print(f"{'kernel':22} {'loop bytes':>10} {'insns':>6} {'vector':>6} {'loads':>5} {'weights':>7} {'vector/weight':>13} {'all/weight':>10}")
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
    loops = []
    for i, (a, op, args) in enumerate(insns):
        if op.startswith('b') and not op.startswith('bl'):
            t = re.match(r'([0-9a-f]+) <', args)
            if t and int(t.group(1), 16) <= a and int(t.group(1), 16) in addr_index:
                body = insns[addr_index[int(t.group(1), 16)]:i + 1]
                loops.append(body)
    def weights(body):
        w = 0
        for _, o, args in body:
            if o == 'sdot': w += 16
            elif o in ('smlal', 'smlal2'): w += 8
            elif o == 'sadalp' and re.search(r'v\d+\.8h, v\d+\.16b', args): w += 16
        return w
    cand = [b for b in loops if weights(b) > 0]
    body = min(cand, key=len)  # innermost loop holding the multiply-accumulates
    vec = [x for x in body if re.search(r'\b[vqd]\d+\b', x[2])]
    loads = [x for x in vec if x[1].startswith('ld')]
    w = weights(body)
    print(f"{name:22} {body[0][0]:#6x}-{body[-1][0]:#x} {len(body):6} {len(vec):6} {len(loads):5} {w:7} {len(vec)/w:13.4f} {len(body)/w:10.4f}")
PY
