#!/usr/bin/env bash
# Fuzzes the untrusted-input parsers (saved layers, safetensors + Hugging Face import, config.json and the
# sharded-checkpoint index, a structured HF import fuzzer, and GGUF + I2_S import) with libFuzzer + ASan
# for a bounded time each, starting from seed corpora generated here. FUZZ_SECONDS overrides the time budget.
set -euo pipefail
seconds=${FUZZ_SECONDS:-45}
out=build-fuzz
mkdir -p "$out"
# -gline-tables-only: crash reports keep file and line; full debug info only lengthened the compiles.
flags=(-std=c++17 -O1 -gline-tables-only -fno-sanitize-recover=undefined -Iinclude -DBITLINEAR_SEPARATE_KERNELS=1)
fuzzers=(load_fuzzer safetensors_fuzzer checkpoint_json_fuzzer hf_import_fuzzer gguf_fuzzer)
start=$SECONDS

# The kernels compile once (BITLINEAR_SEPARATE_KERNELS, docs/build-time.md), under the same sanitizers, and the
# fuzzers in parallel: compiling every kernel family into each of them took most of this leg's time.
clang++ "${flags[@]}" -fsanitize=fuzzer-no-link,address,undefined -c tests/kernels_definition/kernels_definition.cpp \
  -o "$out/kernels_definition.o" &
printf '%s\n' "${fuzzers[@]}" | xargs -P 2 -I{} clang++ "${flags[@]}" -fsanitize=fuzzer,address,undefined -c \
  "tests/fuzz/{}.cpp" -o "$out/{}.o"
wait $!
for name in "${fuzzers[@]}"; do
  clang++ "${flags[@]}" -fsanitize=fuzzer,address,undefined "$out/$name.o" "$out/kernels_definition.o" -o "$out/$name"
done
echo "fuzzers built: $((SECONDS - start)) s"

# Inputs up to 64 KiB unless size_options says more; -timeout: no one input may take more than 10 s.
# run_fuzzer_as RUN FUZZER SEEDER [ARGS]: one timed run of FUZZER, its corpus and seeds named after RUN.
size_options=(-max_len=65536)
run_fuzzer_as() {
  local run=$1 name=$2 seed_script=$3
  shift 3
  rm -rf "$out/$run-corpus" && mkdir -p "$out/$run-corpus"
  /usr/bin/python3 "$seed_script" "$@" "$out/$run-seeds"
  # -malloc_limit_mb: a loader must never allocate more than the input justifies (JSON: at most 8x the document).
  "$out/$name" -max_total_time="$seconds" "${size_options[@]}" -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=1024 \
    -print_final_stats=1 "$out/$run-corpus" "$out/$run-seeds"
}
run_fuzzer() { run_fuzzer_as "$1" "$@"; }

run_fuzzer load_fuzzer tests/fuzz/make_seeds.py
run_fuzzer safetensors_fuzzer tests/fuzz/make_safetensors_seeds.py
# config.json / index parsers, then the structured HF import (make_checkpoint_seeds.py writes both corpora:
# the JSON seeds to the first directory, the import seeds to the second).
run_fuzzer checkpoint_json_fuzzer tests/fuzz/make_checkpoint_seeds.py
run_fuzzer hf_import_fuzzer tests/fuzz/make_checkpoint_seeds.py "$out/unused-json-seeds"
# Size-driven defects (a cost that grows faster than the document) need big documents: megabyte seeds (a
# 24,000-entry index, a config with 40,000 modules_to_not_convert), inputs up to 4 MiB mutated at full length
# from the start (-len_control=0), for a shorter time (SIZE_FUZZ_SECONDS, default 30: ~16 inputs a second).
seconds_before=$seconds
seconds=${SIZE_FUZZ_SECONDS:-30}
size_options=(-max_len=4194304 -len_control=0)
run_fuzzer_as checkpoint_json_size checkpoint_json_fuzzer tests/fuzz/make_checkpoint_seeds.py --size-driven
size_options=(-max_len=65536)
seconds=$seconds_before
# GGUF reader + I2_S import: its own budget (GGUF_FUZZ_SECONDS, default the same FUZZ_SECONDS value, at most 60 s).
gguf_seconds=${GGUF_FUZZ_SECONDS:-$seconds}
if [ "$gguf_seconds" -gt 60 ]; then gguf_seconds=60; fi
seconds=$gguf_seconds
run_fuzzer gguf_fuzzer tests/fuzz/make_gguf_seeds.py
