# Cross-compiling bitlinear for 64-bit Windows with Debian's MinGW-w64 GCC, POSIX thread model
# (g++-mingw-w64-x86-64-posix); tests run under wine (package wine64) through CMAKE_CROSSCOMPILING_EMULATOR.
# Executables are linked statically, so that wine needs no MinGW runtime DLLs on its path.
#
#   cmake -S . -B build-mingw -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/x86_64-w64-mingw32.cmake
#   cmake --build build-mingw -j2
#   WINEDEBUG=-all ctest --test-dir build-mingw
#
# BITLINEAR_MINGW_THREADS=win32 selects the win32 thread model compiler instead (no std::thread before GCC 13:
# the library builds without ThreadPool, see config.hpp).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(BITLINEAR_CROSS_TRIPLE x86_64-w64-mingw32)
if(NOT DEFINED BITLINEAR_MINGW_THREADS)
  set(BITLINEAR_MINGW_THREADS posix)
endif()
set(CMAKE_C_COMPILER ${BITLINEAR_CROSS_TRIPLE}-gcc-${BITLINEAR_MINGW_THREADS})
set(CMAKE_CXX_COMPILER ${BITLINEAR_CROSS_TRIPLE}-g++-${BITLINEAR_MINGW_THREADS})
set(CMAKE_RC_COMPILER ${BITLINEAR_CROSS_TRIPLE}-windres)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

set(CMAKE_FIND_ROOT_PATH /usr/${BITLINEAR_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Debian installs the 64-bit loader as /usr/lib/wine/wine64 (not on PATH).
find_program(BITLINEAR_WINE64 NAMES wine64 PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(BITLINEAR_WINE64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BITLINEAR_WINE64})
endif()
