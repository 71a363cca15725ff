#!/usr/bin/env bash
# 32-bit size_t leg: g++ -m32 (SSE float, as bitlinear requires FLT_EVAL_METHOD 0) builds and
# runs tests/m32/size_limits_m32.cpp: normal layers are accepted (64-bit limit arithmetic), sizes a 32-bit address
# space cannot hold are clear errors, under ASan + UBSan. Debian's gcc-multilib conflicts with the aarch64 cross
# compiler, so install-deps installs only the 32-bit libraries (lib32stdc++-12-dev, libc6-dev-i386) and the
# kernel's asm headers come from the 64-bit include directory (identical for i386).
set -euo pipefail
out=build-m32
mkdir -p "$out"
m32_flags=(-m32 -msse2 -mfpmath=sse -std=c++17 -O1 -g -fno-sanitize-recover=all -Wall -Wextra -Wpedantic -Wshadow
           -Werror -idirafter /usr/include/x86_64-linux-gnu -Iinclude)
g++ "${m32_flags[@]}" -fsanitize=address,undefined tests/m32/size_limits_m32.cpp -o "$out/size_limits_m32"
# Some kernels are built without 32-bit execution (IA32 emulation): a trivial -m32 program tells. There the test
# runs under qemu-i386 (Debian's qemu-user) instead, built with UBSan only: ASan's shadow memory does not map
# under qemu-user (the ASan binary hangs there).
printf 'int main(void) { return 0; }\n' > "$out/probe.c"
gcc -m32 "$out/probe.c" -o "$out/probe"
if "$out/probe" 2>/dev/null; then
  "$out/size_limits_m32"
else
  echo "this kernel cannot execute 32-bit programs: running the UBSan build under qemu-i386"
  g++ "${m32_flags[@]}" -fsanitize=undefined tests/m32/size_limits_m32.cpp -o "$out/size_limits_m32_ubsan"
  qemu-i386 "$out/size_limits_m32_ubsan"
fi
# Without -mfpmath=sse (x87 excess precision) the headers refuse to compile, with a message saying what to add.
if g++ -m32 -std=c++17 -fsyntax-only -idirafter /usr/include/x86_64-linux-gnu -Iinclude \
     tests/m32/size_limits_m32.cpp 2>"$out/x87.log"; then
  echo "x87 build compiled, but bitlinear must refuse FLT_EVAL_METHOD != 0"; exit 1
fi
grep -q "compile with -msse2 -mfpmath=sse" "$out/x87.log"
echo "32-bit leg passed"
