#!/usr/bin/env python3
"""Seed corpora for tests/fuzz/checkpoint_json_fuzzer.cpp and tests/fuzz/hf_import_fuzzer.cpp, written to
argv[1] (JSON seeds) and, if given, argv[2] (import seeds). Standard library only.

JSON seeds: a leading byte picks the parser (even: config.json, odd: the index), then the document: the
BitNet b1.58 2B4T config with each quantization_config variant, and a sharded index.
With --size-driven DIR, only megabyte JSON seeds, to DIR (size_driven_seeds).
Import seeds: the structured header of hf_import_fuzzer (rows-1, in-1 (10 bits), weight_scale bits, flags) and
packed bytes with valid fields."""
import json
import os
import random
import struct
import sys

CONFIG = {
    "architectures": ["BitNetForCausalLM"], "attention_bias": False, "bos_token_id": 128000, "eos_token_id": 128001,
    "hidden_act": "relu2", "hidden_size": 2560, "initializer_range": 0.02, "intermediate_size": 6912,
    "max_position_embeddings": 4096, "model_type": "bitnet", "rms_norm_eps": 1e-05, "num_attention_heads": 20,
    "num_hidden_layers": 30, "num_key_value_heads": 5, "rope_theta": 500000.0, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 128256,
}
QUANT = [
    {"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"},
    {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"},
    {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online",
     "modules_to_not_convert": ["lm_head"], "use_rms_norm": False, "rms_norm_eps": 1e-06},
    None,
]


def json_seeds(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    for q in QUANT:
        config = dict(CONFIG)
        if q is not None:
            config["quantization_config"] = q
        with open(os.path.join(out_dir, "config_%02d.json" % n), "wb") as f:
            f.write(b"\x00" + json.dumps(config, indent=2).encode())
        n += 1
    names = []
    for b in range(2):
        for m in ["self_attn.q_proj", "self_attn.k_proj", "mlp.down_proj"]:
            names += ["model.layers.%d.%s.weight" % (b, m), "model.layers.%d.%s.weight_scale" % (b, m)]
    index = {"metadata": {"total_size": 123}, "weight_map": {
        name: "model-%05d-of-00002.safetensors" % (1 + i % 2) for i, name in enumerate(names)}}
    with open(os.path.join(out_dir, "index_00.json"), "wb") as f:
        f.write(b"\x01" + json.dumps(index).encode())
    with open(os.path.join(out_dir, "index_01.json"), "wb") as f:
        f.write(b"\x01" + json.dumps({"weight_map": {"caf\u00e9 \\\"x\\\"": "a.safetensors"}}, ensure_ascii=False).encode())
    print("wrote %d JSON seeds to %s" % (n + 2, out_dir))


def size_driven_seeds(out_dir):
    """Megabyte documents: the fuzz leg runs the JSON fuzzer on these with -max_len of 4 MiB and a per-input time
    limit, so that a parse or match whose cost grows faster than the document shows up as a timeout or an
    out-of-memory report. A 24,000-entry sharded index and a config whose modules_to_not_convert lists 40,000
    entries."""
    os.makedirs(out_dir, exist_ok=True)
    big_names = ["model.layers.%d.%s.%s" % (b, m, t) for b in range(3000)
                 for m in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj"]
                 for t in ["weight", "weight_scale"]]
    big_index = {"metadata": {"total_size": 1 << 40}, "weight_map": {
        name: "model-%05d-of-00999.safetensors" % (1 + i % 999) for i, name in enumerate(big_names)}}
    with open(os.path.join(out_dir, "index_big.json"), "wb") as f:
        f.write(b"\x01" + json.dumps(big_index).encode())
    big_config = dict(CONFIG)
    big_config["quantization_config"] = dict(QUANT[2])
    big_config["quantization_config"]["modules_to_not_convert"] = [
        "model.layers.%d.mlp.%s" % (b, m) for b in range(20000) for m in ["gate_proj", "up_proj"]]
    with open(os.path.join(out_dir, "config_big.json"), "wb") as f:
        f.write(b"\x00" + json.dumps(big_config).encode())
    print("wrote 2 size-driven JSON seeds to %s" % out_dir)


def import_seeds(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(11)
    cases = [(1, 1, 1.0, 0), (2, 3, 0.5, 1), (4, 256, 48.0, 2), (3, 300, 0.02, 3), (8, 1000, 7.5, 0), (1, 64, 1e-30, 4)]
    for n, (rows, in_features, scale, flags) in enumerate(cases):
        header = bytes([rows - 1, (in_features - 1) & 0xFF, (in_features - 1) >> 8]) + struct.pack("<f", scale) + bytes([flags])
        body = bytes(sum(rng.randrange(3) << (2 * i) for i in range(4)) for _ in range(rows * in_features))
        with open(os.path.join(out_dir, "import_%02d.bin" % n), "wb") as f:
            f.write(header + body)
    print("wrote %d import seeds to %s" % (len(cases), out_dir))


if __name__ == "__main__":
    if sys.argv[1] == "--size-driven":
        size_driven_seeds(sys.argv[2])
        sys.exit(0)
    json_seeds(sys.argv[1])
    if len(sys.argv) > 2:
        import_seeds(sys.argv[2])
