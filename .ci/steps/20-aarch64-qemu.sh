#!/usr/bin/env bash
# CI leg: cross-build the test suite for aarch64 (no -march flags) and run it under qemu-aarch64:
#   QEMU_CPU=max         dotprod present: the whole suite (both NEON families run and must equal scalar), and
#                        `neon_dotprod` must be the automatic family
#   QEMU_CPU=cortex-a53  ARMv8.0 without dotprod: the dispatch, detection and NEON kernel tests only (the rest
#                        ran under max on the same binaries): `neon` must be the automatic family, forcing
#                        `neon_dotprod` fails with the documented error
# BITLINEAR_EXPECT_AUTOMATIC pins the automatic family for isa_env_automatic (tests/isa_environment) and
# NeonFamilies.AutomaticFamilyIsTheExpectedOne (tests/neon_kernels_test.cpp); isa_env_neon_dotprod checks
# the documented error under cortex-a53 and the forced family under max.
# Google Benchmark is not built: Debian ships it for the build machine only, without sources.
set -euo pipefail
jobs=$(nproc)
[ "$jobs" -gt 2 ] && jobs=2
build=build-aarch64
start=$SECONDS

cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
  -DBITLINEAR_BUILD_BENCH=OFF -DBITLINEAR_BUILD_EXAMPLES=OFF
cmake --build "$build" -j"$jobs"
echo "aarch64 cross build: $((SECONDS - start)) s"

echo "--- qemu-aarch64 -cpu max: whole test suite, the automatic family must be neon_dotprod"
QEMU_CPU=max BITLINEAR_EXPECT_AUTOMATIC=neon_dotprod ctest --test-dir "$build" -j"$jobs" --output-on-failure
echo "aarch64 max: $((SECONDS - start)) s"
echo "--- qemu-aarch64 -cpu cortex-a53: dispatch, detection and NEON kernel tests, the automatic family must be neon"
QEMU_CPU=cortex-a53 BITLINEAR_EXPECT_AUTOMATIC=neon ctest --test-dir "$build" -j"$jobs" --output-on-failure \
  -R 'isa_env|NeonDispatch|NeonFamilies|CpuFeatures|apple_detection' --no-tests=error
echo "aarch64 cortex-a53: $((SECONDS - start)) s"

echo "aarch64 qemu leg: $((SECONDS - start)) s"
