# Cross-compiling bitlinear for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu; tests run under
# qemu-user (package qemu-user), which CMake/CTest call through CMAKE_CROSSCOMPILING_EMULATOR.
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 -j2
#   QEMU_CPU=max ctest --test-dir build-aarch64       # or QEMU_CPU=cortex-a53 (no dotprod)
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(BITLINEAR_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${BITLINEAR_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${BITLINEAR_CROSS_TRIPLE}-g++)

# Debian installs the target's libc and libstdc++ under /usr/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/${BITLINEAR_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# qemu-aarch64 finds the dynamic loader and shared libraries of the target under -L. The CPU model comes from
# the environment variable QEMU_CPU (cortex-a53: ARMv8.0 without dotprod; max: every feature qemu emulates).
set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-aarch64;-L;/usr/${BITLINEAR_CROSS_TRIPLE}")
