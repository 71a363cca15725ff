# Writes tests/data/tiny_tq.gguf with gguf-py's own TQ1_0 / TQ2_0 quantizers and GGUFWriter (llama.cpp's
# gguf-py, snapshot 3f545be of the ngxson/llama.cpp mirror of upstream), and tiny_tq_dequantized.safetensors with
# gguf-py's own dequantization of the same bytes (stored as F16, which holds them exactly):
#   PYTHONPATH=<llama.cpp>/gguf-py /usr/bin/python3 tests/data/make_tiny_tq.py <out dir>
import json, struct, sys
import numpy as np
import gguf
from gguf import quants
from gguf.constants import GGMLQuantizationType as T

out_dir = sys.argv[1]
rng = np.random.default_rng(20261203)

def weights(rows, cols):
    # Ternary-ish values times per-row magnitudes, plus edge rows: all zero (d = 0), exact ties at +-0.5 amax
    # (np_roundf rounds them away from zero), and a row whose largest magnitude is negative.
    w = rng.normal(0.0, 0.02, size=(rows, cols)).astype(np.float32)
    w[1, :] = 0.0
    tie = np.float32(0.25)
    w[2, :] = rng.choice(np.array([-2 * tie, -tie, 0, tie, 2 * tie], dtype=np.float32), size=cols)
    w[3, :] = np.abs(w[3, :])
    w[3, 5] = -1.0
    return w

tensors = [
    ("blk.0.attn_q.weight", T.TQ2_0, weights(12, 512)),
    ("blk.0.ffn_down.weight", T.TQ1_0, weights(10, 768)),
    ("blk.0.ffn_up.weight", T.TQ1_0, weights(9, 256)),
]
writer = gguf.GGUFWriter(f"{out_dir}/tiny_tq.gguf", arch="llama")
writer.add_name("bitlinear tiny TQ fixture")
norm = rng.normal(1.0, 0.1, size=(512,)).astype(np.float32)
dequantized = {}
for name, qtype, w in tensors:
    q = quants.quantize(w, qtype)
    writer.add_tensor(name, q, raw_dtype=qtype)
    dequantized[name] = quants.dequantize(q, qtype).astype(np.float32).reshape(w.shape)
writer.add_tensor("blk.0.attn_norm.weight", norm)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()

# safetensors: 8-byte little-endian header length, JSON header, the tensors' bytes.
header, blobs, offset = {}, [], 0
for name, _, _ in tensors:
    # code x d with d an fp16 value is itself an fp16 value: F16 holds gguf-py's float32 results exactly.
    exact = dequantized[name].astype(np.float16)
    assert np.array_equal(exact.astype(np.float32), dequantized[name])
    b = np.ascontiguousarray(exact, dtype="<f2").tobytes()
    header[name] = {"dtype": "F16", "shape": list(dequantized[name].shape), "data_offsets": [offset, offset + len(b)]}
    blobs.append(b)
    offset += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(f"{out_dir}/tiny_tq_dequantized.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
