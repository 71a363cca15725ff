// Test-only, force-included (-include) before everything in no_gnu_paths_test.cpp: the standard library and the
// intrinsic headers are read first, with the compiler's GNU macros, then __GNUC__ and __clang__ are removed, so
// that bitlinear's own headers take the code paths of a compiler without GNU extensions, as MSVC (cl.exe) sees
// them: no target attributes (the -m flags enable every intrinsic, as MSVC allows them without /arch), no inline
// asm anti-FMA barriers (volatile ones instead), no always_inline, no unroll pragmas.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <istream>
#include <limits>
#include <mutex>
#include <new>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#include <array>
#include <cpuid.h>
#include <immintrin.h>
#undef __GNUC__
#undef __clang__
