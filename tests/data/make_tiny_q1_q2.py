# Writes tiny_q1_q2.gguf: Q1_0 and Q2_0 weights quantized by ggml's own C reference quantizers
# (quantize_row_q1_0_ref / quantize_row_q2_0_ref of llama.cpp's ggml/src/ggml-quants.c, snapshot 3f545be of the
# ngxson/llama.cpp mirror of upstream) and written by llama.cpp's gguf-py GGUFWriter; and
# tiny_q1_q2_dequantized.safetensors: ggml's own dequantizers (dequantize_row_q1_0 / _q2_0) on the same bytes,
# stored as F16 (code x an fp16 scale is an fp16 value; asserted). Build the harness, then run:
#   L=<llama.cpp>; gcc -O1 -c -I$L/ggml/include -I$L/ggml/src -I$L/ggml/src/ggml-cpu $L/ggml/src/ggml-quants.c -o q.o
#   gcc -O1 -I$L/ggml/include -I$L/ggml/src tests/data/ggml_q1_q2_harness.c q.o -lm -o harness
#   PYTHONPATH=$L/gguf-py /usr/bin/python3 tests/data/make_tiny_q1_q2.py ./harness <out dir>
import json, os, struct, subprocess, sys, tempfile
import numpy as np
import gguf
from gguf.constants import GGMLQuantizationType as T

harness, out_dir = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(20261204)

def weights(rows, cols):
    # Normal values plus edge rows: all zero (d = 0), exact ties at half the block maximum (roundf takes them away
    # from zero), and zeros among signs (Q1_0 stores x >= 0 as +d).
    w = rng.normal(0.0, 0.02, size=(rows, cols)).astype(np.float32)
    w[1, :] = 0.0
    w[2, :] = rng.choice(np.array([-0.5, -0.25, 0.0, 0.25, 0.5], dtype=np.float32), size=cols)
    w[3, ::3] = 0.0
    return w

tensors = [
    ("blk.0.attn_k.weight", "q1_0", T.Q1_0, 128, 18, weights(8, 384)),
    ("blk.0.attn_v.weight", "q2_0", T.Q2_0, 64, 18, weights(10, 192)),
]
writer = gguf.GGUFWriter(f"{out_dir}/tiny_q1_q2.gguf", arch="llama")
writer.add_name("bitlinear tiny Q1_0 / Q2_0 fixture")
dequantized = {}
with tempfile.TemporaryDirectory() as tmp:
    for name, kind, qtype, block_w, block_b, w in tensors:
        rows, cols = w.shape
        src, blocks, values = (os.path.join(tmp, f"{kind}.{e}") for e in ("in", "blocks", "out"))
        w.tofile(src)
        subprocess.run([harness, kind, str(rows), str(cols), src, blocks, values], check=True)
        q = np.fromfile(blocks, dtype=np.uint8).reshape(rows, cols // block_w * block_b)
        writer.add_tensor(name, q, raw_dtype=qtype)
        dequantized[name] = np.fromfile(values, dtype=np.float32).reshape(rows, cols)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()

header, blobs, offset = {}, [], 0
for name, *_ in tensors:
    exact = dequantized[name].astype(np.float16)
    assert np.array_equal(exact.astype(np.float32), dequantized[name])
    b = np.ascontiguousarray(exact, dtype="<f2").tobytes()
    header[name] = {"dtype": "F16", "shape": list(exact.shape), "data_offsets": [offset, offset + len(b)]}
    blobs.append(b)
    offset += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(f"{out_dir}/tiny_q1_q2_dequantized.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
