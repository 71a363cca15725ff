#!/usr/bin/env bash
# CI leg: Windows x64 with MinGW-w64 GCC, run under wine.
#   1. POSIX thread model (x86_64-w64-mingw32-g++-posix): the whole test suite, GoogleTest built from Debian's
#      sources (/usr/src/googletest) for the target, every test run by ctest under wine64. The automatic family
#      must be the best one this CPU has (avx512_vbmi or avx512 on the CI machine), and every family must equal scalar (the
#      kernel tests and isa_env_<family> check it).
#   2. win32 thread model (x86_64-w64-mingw32-g++-win32, no std::thread in GCC 12): the library builds without
#      ThreadPool; the ISA-environment, no-exceptions and Windows API checks run, and including thread_pool.hpp
#      stops with its explanatory #error.
# Benchmarks and examples are not built.
set -euo pipefail
jobs=$(nproc)
[ "$jobs" -gt 2 ] && jobs=2
start=$SECONDS
wine=/usr/lib/wine/wine64
export WINEDEBUG=-all
export WINEPREFIX="$PWD/build-mingw-wineprefix"
mkdir -p "$WINEPREFIX"
"$wine" wineboot --init >/dev/null 2>&1 || true
# One wineserver for the whole leg: with ctest -j2, a test that starts just as the previous test's server shuts
# down fails with "wine client error: recvmsg: Connection reset by peer" before running any code.
wineserver=""
for candidate in /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver "$(command -v wineserver || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then wineserver=$candidate; break; fi
done
if [ -n "$wineserver" ]; then
  # wineboot's own server is still up for a few seconds (then -p would find it and fail): wait for it to end.
  "$wineserver" -w || true
  if "$wineserver" -p; then
    trap '"$wineserver" -k >/dev/null 2>&1 || true' EXIT
    # The first wine program of a server starts wine's own services (services.exe, winedevice.exe, ...), which
    # live as long as the server and keep that program's stdout / stderr open. Started by ctest's test listing
    # (CMake's execute_process, which waits for its pipe to close), they made the listing "time out" after 300 s
    # with the whole list printed. Start them here, on /dev/null.
    "$wine" wineboot </dev/null >/dev/null 2>&1 || true
  else
    echo "could not start a persistent wineserver: tests that wine drops are rerun below"
  fi
fi
echo "wine prefix ready: $((SECONDS - start)) s (persistent server: ${wineserver:-none})"

# The family the automatic choice must give on this CPU (isa.hpp's order of preference).
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx512f && has avx512bw && has avx512vl && has avx512_vnni && has avx512vbmi && has avx2 && has fma && has f16c; then
  expected=avx512_vbmi
elif has avx512f && has avx512bw && has avx512vl && has avx512_vnni && has avx2 && has fma && has f16c; then
  expected=avx512
elif has avx_vnni && has avx2 && has fma && has f16c; then
  expected=avxvnni
elif has avx2 && has fma && has f16c; then
  expected=avx2
else
  expected=scalar
fi
echo "expected automatic family: $expected"

echo "--- posix thread model: test suite under wine"
cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/x86_64-w64-mingw32.cmake \
  -DCMAKE_BUILD_TYPE=Release -DBITLINEAR_BUILD_BENCH=OFF -DBITLINEAR_BUILD_EXAMPLES=OFF
cmake --build build-mingw -j"$jobs"
echo "mingw posix build: $((SECONDS - start)) s"
# If wine itself drops a test process (the client error above, printed by wine, not by the test), the failed
# tests run once more; a test that fails for any other reason fails the leg.
if ! BITLINEAR_EXPECT_AUTOMATIC=$expected ctest --test-dir build-mingw -j"$jobs" --output-on-failure \
     2>&1 | tee build-mingw/ctest.log; then
  grep -q "wine client error" build-mingw/ctest.log || exit 1
  echo "wine dropped a test process: running the failed tests once more"
  BITLINEAR_EXPECT_AUTOMATIC=$expected ctest --test-dir build-mingw -j1 --output-on-failure --rerun-failed
fi
echo "mingw posix tests: $((SECONDS - start)) s"

echo "--- win32 thread model: the library without std::thread"
cmake -S . -B build-mingw-win32 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/x86_64-w64-mingw32.cmake \
  -DBITLINEAR_MINGW_THREADS=win32 -DCMAKE_BUILD_TYPE=Release -DBITLINEAR_BUILD_BENCH=OFF -DBITLINEAR_BUILD_EXAMPLES=OFF
cmake --build build-mingw-win32 -j"$jobs" --target isa_env_check no_exceptions_test windows_api_check msvc_cpuid_check
bin=build-mingw-win32/tests
for family in "" scalar avx2 avxvnni avx512 avx512_vbmi; do
  # isa_env_check: automatic = expected; a forced family runs and equals scalar, or (not on this CPU) fails clearly.
  BITLINEAR_ISA=$family BITLINEAR_EXPECT_AUTOMATIC=$expected "$wine" "$bin/isa_env_check.exe"
done
for case in works require non_finite_bias unsupported_isa saved_layer; do
  "$wine" "$bin/no_exceptions_test.exe" "$case"
done
BITLINEAR_EXPECT_AUTOMATIC=$expected "$wine" "$bin/windows_api_check.exe"
BITLINEAR_EXPECT_AUTOMATIC=$expected "$wine" "$bin/msvc_cpuid_check.exe"
if echo '#include <bitlinear/thread_pool.hpp>' |
   x86_64-w64-mingw32-g++-win32 -std=c++17 -Iinclude -x c++ -fsyntax-only - 2>build-mingw-win32/pool.err; then
  echo "thread_pool.hpp compiled without std::thread"; exit 1
fi
grep -q "needs std::thread" build-mingw-win32/pool.err
echo "mingw-wine leg: $((SECONDS - start)) s"
