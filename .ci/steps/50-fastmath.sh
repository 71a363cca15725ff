#!/usr/bin/env bash
# -ffast-math leg: the headers compile under the user's flags, so the exactness tests are
# built with -O2 -ffast-math by GCC and by Clang and must still pass: every kernel family bit for bit against
# scalar (kernel matrix, per-ISA kernel tests), the hand-worked semantics (ties, NaN rows, non-finite weights),
# the FP-environment and hardening tests, and the PyTorch float32 reference. Linking with -ffast-math also
# links crtfastmath.o, which turns on flush-to-zero and denormals-are-zero at startup: the library must pin
# its own environment (include/bitlinear/detail/fp_environment.hpp) for these to pass.
# The same tests are also built by Clang without -ffast-math (-O3, as a Release build): CI's only plain Clang
# build of the exactness and FP-environment tests (Clang once sank float work past the environment guard at -O3).
set -euo pipefail
out=build-fastmath
mkdir -p "$out"
start=$SECONDS
tests=(tests/kernel_matrix_test.cpp tests/semantics_test.cpp tests/hardening_test.cpp tests/errors_test.cpp
       tests/strided_test.cpp tests/avx2_kernels_test.cpp tests/avx512_kernels_test.cpp tests/layout_test.cpp
       tests/grouped_test.cpp)
/usr/bin/python3 tests/pytorch/make_reference.py "$out/pytorch_reference.bin"
/usr/bin/python3 tests/pytorch/make_grouped_reference.py "$out/pytorch_grouped_reference.bin"
run_exactness() {  # $1 = compiler, $2 = name, then the optimization flags
  local cxx=$1 name=$2
  shift 2
  local flags=(-std=c++17 "$@" -Wall -Wextra -Wpedantic -Wshadow -Werror -Iinclude -pthread)
  echo "--- $name: exactness tests"
  "$cxx" "${flags[@]}" "${tests[@]}" -o "$out/exactness_$name" -lgmock -lgtest -lgtest_main
  "$out/exactness_$name"
  echo "--- $name: PyTorch reference"
  "$cxx" "${flags[@]}" tests/pytorch/pytorch_reference_test.cpp -o "$out/pytorch_$name" -lgtest -lgtest_main
  BITLINEAR_PYTORCH_REFERENCE="$out/pytorch_reference.bin" "$out/pytorch_$name"
  "$cxx" "${flags[@]}" tests/pytorch/grouped_reference_test.cpp -o "$out/pytorch_grouped_$name" -lgtest -lgtest_main
  BITLINEAR_PYTORCH_GROUPED_REFERENCE="$out/pytorch_grouped_reference.bin" "$out/pytorch_grouped_$name"
  echo "$name: $((SECONDS - start)) s"
}
run_exactness g++ gcc-fast-math -O2 -ffast-math
run_exactness clang++ clang-fast-math -O2 -ffast-math
run_exactness clang++ clang-O3 -O3 -DNDEBUG
