#!/usr/bin/env bash
# -ffast-math leg: the headers compile under the user's flags, so the exactness tests are
# built with -O2 -ffast-math by GCC and by Clang and must still pass: every kernel family bit for bit against
# scalar (kernel matrix, per-ISA kernel tests), the hand-worked semantics (ties, NaN rows, non-finite weights),
# the FP-environment and hardening tests, the activation front-end, and the PyTorch float32 references (layers,
# grouped weight rule, the front-end's RMSNorm bit for bit). Linking with -ffast-math also
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
       tests/grouped_test.cpp tests/frontend_test.cpp)
/usr/bin/python3 tests/pytorch/make_reference.py "$out/pytorch_reference.bin"
/usr/bin/python3 tests/pytorch/make_grouped_reference.py "$out/pytorch_grouped_reference.bin"
/usr/bin/python3 tests/pytorch/make_frontend_reference.py "$out/pytorch_frontend_reference.bin"
jobs=$(nproc)
[ "$jobs" -gt 2 ] && jobs=2
# The kernels compile once per variant (BITLINEAR_SEPARATE_KERNELS, tests/kernels_definition/) with the same
# flags as the tests, and the translation units compile in parallel.
run_exactness() {  # $1 = compiler, $2 = name, then the optimization flags
  local cxx=$1 name=$2
  shift 2
  local flags=(-std=c++17 "$@" -Wall -Wextra -Wpedantic -Wshadow -Werror -Iinclude -pthread -DBITLINEAR_SEPARATE_KERNELS=1)
  local objdir="$out/$name"
  mkdir -p "$objdir"
  echo "--- $name: compile"
  printf '%s\n' tests/kernels_definition/kernels_definition.cpp "${tests[@]}" tests/pytorch/pytorch_reference_test.cpp \
      tests/pytorch/grouped_reference_test.cpp tests/pytorch/frontend_reference_test.cpp |
    xargs -P "$jobs" -I{} sh -c 'd=$1; shift; "$0" "$@" -c "{}" -o "$d/$(basename "{}" .cpp).o"' "$cxx" "$objdir" "${flags[@]}"
  local kernels="$objdir/kernels_definition.o" objects=()
  for t in "${tests[@]}"; do objects+=("$objdir/$(basename "$t" .cpp).o"); done
  "$cxx" "${flags[@]}" "${objects[@]}" "$kernels" -o "$out/exactness_$name" -lgmock -lgtest -lgtest_main
  "$cxx" "${flags[@]}" "$objdir/pytorch_reference_test.o" "$kernels" -o "$out/pytorch_$name" -lgtest -lgtest_main
  "$cxx" "${flags[@]}" "$objdir/grouped_reference_test.o" "$kernels" -o "$out/pytorch_grouped_$name" -lgtest -lgtest_main
  "$cxx" "${flags[@]}" "$objdir/frontend_reference_test.o" "$kernels" -o "$out/pytorch_frontend_$name" -lgtest -lgtest_main
  echo "--- $name: exactness tests"
  "$out/exactness_$name"
  echo "--- $name: PyTorch reference"
  BITLINEAR_PYTORCH_REFERENCE="$out/pytorch_reference.bin" "$out/pytorch_$name"
  BITLINEAR_PYTORCH_GROUPED_REFERENCE="$out/pytorch_grouped_reference.bin" "$out/pytorch_grouped_$name"
  BITLINEAR_PYTORCH_FRONTEND_REFERENCE="$out/pytorch_frontend_reference.bin" "$out/pytorch_frontend_$name"
  echo "$name: $((SECONDS - start)) s"
}
run_exactness g++ gcc-fast-math -O2 -ffast-math
run_exactness clang++ clang-fast-math -O2 -ffast-math
run_exactness clang++ clang-O3 -O3 -DNDEBUG
