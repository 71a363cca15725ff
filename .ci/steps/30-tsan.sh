#!/usr/bin/env bash
# ThreadSanitizer leg: the threading tests (ThreadPool, pooled forward for 1..8 threads, std::thread row
# ranges, many concurrent forward calls on one layer, plain and pooled; GGUF layers converted on a pool) built
# with -fsanitize=thread.
set -euo pipefail
jobs=$(nproc)
cxx=clang++
command -v "$cxx" >/dev/null || cxx=g++
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DBITLINEAR_BUILD_BENCH=OFF -DBITLINEAR_BUILD_EXAMPLES=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer"
cmake --build build-tsan -j"$jobs" --target bitlinear_thread_tests bitlinear_gguf_parallel_tests
# halt_on_error: the first data race fails the leg (exit code 66).
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build-tsan/tests/bitlinear_thread_tests
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" build-tsan/tests/bitlinear_gguf_parallel_tests
