#!/usr/bin/env bash
# CI leg: bitlinear as MSVC-mode compilers see it (no MSVC here: nothing is linked or run; see README
# "Platforms and toolchains"). clang 14 with --target=<arch>-pc-windows-msvc -fms-compatibility -fms-extensions
# (_MSC_VER defined, no __GNUC__) compiles tests/platforms/msvc_target_check.cpp (every public header, every
# kernel family of the architecture instantiated) against MinGW-w64's C and C++ headers, patched by
# tests/platforms/msvc_target_shim.h:
#   x64   clang-cl view (__clang__ kept, target attributes):        full compile to an object file
#   x64   cl.exe view   (__clang__ removed, -m flags as /arch would):  parse and instantiate (-fsyntax-only; MinGW's
#                                                                   math.h x87 asm blocks code generation)
#   ARM64 clang-cl view:                                           -fsyntax-only (MinGW's headers are x86-only)
#   ARM64 cl.exe view   (__clang__ removed):                        -fsyntax-only
#   ARM64 architecture macro: with __aarch64__ removed too (cl.exe defines only _M_ARM64), the preprocessed
#   headers must still select the aarch64 kernels (clang's own arm_neon.h needs __aarch64__ to compile further)
# Every line must compile without warnings (-Wall -Wextra -Werror).
set -euo pipefail
shim=tests/platforms/msvc_target_shim.h
src=tests/platforms/msvc_target_check.cpp
mingw_cxx=/usr/lib/gcc/x86_64-w64-mingw32/12-posix/include/c++
resource=$(clang++ -print-resource-dir)/include
out=build-msvc-target
mkdir -p "$out"
check() {
  local name=$1 target=$2
  shift 2
  echo "--- $name"
  clang++ --target="$target" -fms-compatibility -fms-extensions -std=c++17 -nostdinc++ -include "$shim" \
    -isystem "$mingw_cxx" -isystem "$mingw_cxx/x86_64-w64-mingw32" -isystem "$resource" \
    -isystem /usr/share/mingw-w64/include -Iinclude -Wall -Wextra -Werror -Wno-#warnings "$@" "$src"
}
check "x64, clang-cl view: object file" x86_64-pc-windows-msvc -O2 -c -o "$out/x64-clang-cl.obj"
check "x64, cl.exe view" x86_64-pc-windows-msvc -fsyntax-only -U__clang__ \
  -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx512vbmi -mavxvnni -mxsave
check "ARM64, clang-cl view" aarch64-pc-windows-msvc -fsyntax-only
check "ARM64, cl.exe view" aarch64-pc-windows-msvc -fsyntax-only -U__clang__ -march=armv8.2-a+dotprod
# The umbrella header only: the opt-in file headers include MinGW's <windows.h>, whose winnt.h knows ARM64 only
# as __aarch64__ (the Windows SDK's knows _M_ARM64), which this check removes.
echo '#include <bitlinear/bitlinear.hpp>' > "$out/umbrella.cpp"
src="$out/umbrella.cpp" check "ARM64, _M_ARM64 only" aarch64-pc-windows-msvc -E -dM -U__clang__ -U__aarch64__ \
  -o "$out/arm64-macros.txt"
grep -q '^#define BITLINEAR_ARCH_AARCH64 1$' "$out/arm64-macros.txt"
grep -q '^#define BITLINEAR_ARCH_X86_64 0$' "$out/arm64-macros.txt"
if grep -q '^#define __aarch64__' "$out/arm64-macros.txt"; then echo "__aarch64__ still defined"; exit 1; fi
echo "msvc-target leg passed"
