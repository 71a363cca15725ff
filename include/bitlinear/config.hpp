// bitlinear: version, ABI namespace and small portability macros.
#pragma once

#define BITLINEAR_VERSION_MAJOR 0
#define BITLINEAR_VERSION_MINOR 2
#define BITLINEAR_VERSION_PATCH 0

// Internal headers (detail/, kernels/) refuse to compile unless a public header came first
// (detail/internal_only.hpp); every public header includes this one before any internal header.
#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

// Exceptions on or off (error.hpp): detected from the compiler (__cpp_exceptions; _CPPUNWIND for MSVC), or set
// by the user to 0 before the first bitlinear include to get the error handler with exceptions on.
#if !defined(BITLINEAR_EXCEPTIONS)
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define BITLINEAR_EXCEPTIONS 1
#else
#define BITLINEAR_EXCEPTIONS 0
#endif
#endif

// Everything lives in an inline namespace whose name carries the version and the baseline instruction set
// the including translation unit was compiled for (its -m flags). Inline functions are emitted once per
// translation unit and the linker keeps one copy; if a TU built with -mavx512bw and one built without shared
// a namespace, the linker could keep the AVX-512 copy of a "baseline" helper (or of a target("avx2") kernel,
// since target attributes add to the command-line flags) and run it on a CPU without AVX-512. Distinct
// namespaces make those copies distinct symbols. The price: a BitLinear object built in a TU with one set of
// -m flags cannot be passed to a TU built with another (the link fails instead of crashing at run time).
#if defined(__AVX512F__)
#define BITLINEAR_ABI_ISA_TAG v0_2_avx512
#elif defined(__AVX2__)
#define BITLINEAR_ABI_ISA_TAG v0_2_avx2
#elif defined(__AVX__)
#define BITLINEAR_ABI_ISA_TAG v0_2_avx
#elif defined(__SSE4_1__)
#define BITLINEAR_ABI_ISA_TAG v0_2_sse41
#elif defined(__ARM_FEATURE_DOTPROD)
#define BITLINEAR_ABI_ISA_TAG v0_2_dotprod
#else
#define BITLINEAR_ABI_ISA_TAG v0_2
#endif
// Code built without exceptions reports errors differently (error.hpp), so it gets a namespace of its own too:
// a program mixing the two modes links two copies instead of merging one mode's copy into the other.
#define BITLINEAR_ABI_CONCAT_(a, b) a##b
#define BITLINEAR_ABI_CONCAT(a, b) BITLINEAR_ABI_CONCAT_(a, b)
#if BITLINEAR_EXCEPTIONS
#define BITLINEAR_ABI_MODE_NS BITLINEAR_ABI_ISA_TAG
#else
#define BITLINEAR_ABI_MODE_NS BITLINEAR_ABI_CONCAT(BITLINEAR_ABI_ISA_TAG, _noexcept)
#endif
// Separately compiled kernels (BITLINEAR_SEPARATE_KERNELS = 1, kernels/grid.hpp): such a translation unit only
// declares the kernel table. It gets a namespace of its own as well, so a program whose translation units
// disagree on the macro links two consistent copies (or fails to link), never one unit's inline table with
// another's declaration.
#if !defined(BITLINEAR_SEPARATE_KERNELS)
#define BITLINEAR_SEPARATE_KERNELS 0
#endif
#if BITLINEAR_SEPARATE_KERNELS
#define BITLINEAR_ABI_NS BITLINEAR_ABI_CONCAT(BITLINEAR_ABI_MODE_NS, _separate_kernels)
#else
#define BITLINEAR_ABI_NS BITLINEAR_ABI_MODE_NS
#endif

#define BITLINEAR_NAMESPACE_BEGIN \
  namespace bitlinear {           \
  inline namespace BITLINEAR_ABI_NS {
#define BITLINEAR_NAMESPACE_END \
  }                             \
  }

// Threads: does the standard library have std::thread, std::mutex and std::condition_variable? Not with MinGW-w64's
// "win32" thread model before GCC 13 (libstdc++ built without gthreads), nor with a libc++ built without threads.
// Without them ThreadPool (thread_pool.hpp) and the forward() overloads that take one are left out; everything
// else works, and engines can still split forward_quantized() over their own threads. Define
// BITLINEAR_HAS_THREADS to 0 to leave the pool out anyway. (__STDCPP_THREADS__ cannot tell: MinGW's win32 model
// defines it too.)
#include <cstddef>  // the standard library's configuration macros
#if !defined(BITLINEAR_HAS_THREADS)
#if defined(__GLIBCXX__)
#if defined(_GLIBCXX_HAS_GTHREADS)
#define BITLINEAR_HAS_THREADS 1
#else
#define BITLINEAR_HAS_THREADS 0
#endif
#elif defined(_LIBCPP_VERSION)
#if defined(_LIBCPP_HAS_NO_THREADS) || (defined(_LIBCPP_HAS_THREADS) && !_LIBCPP_HAS_THREADS)
#define BITLINEAR_HAS_THREADS 0
#else
#define BITLINEAR_HAS_THREADS 1
#endif
#else
#define BITLINEAR_HAS_THREADS 1  // MSVC's STL and others: threads are part of C++11
#endif
#endif

// Architectures with SIMD kernels. MSVC spells them _M_X64 and _M_ARM64. ARM64EC (x64-compatible code on Windows
// on ARM, which defines _M_X64 too) gets neither: its x86 intrinsics are emulated and stop at SSE4.2, so it runs
// the scalar family.
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(_M_ARM64EC)
#define BITLINEAR_ARCH_X86_64 1
#else
#define BITLINEAR_ARCH_X86_64 0
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
#define BITLINEAR_ARCH_AARCH64 1
#else
#define BITLINEAR_ARCH_AARCH64 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_TARGET(features) __attribute__((target(features)))
#else
#define BITLINEAR_TARGET(features)
#endif

// Argument checks: the message (often built with std::to_string) is only evaluated when the check fails, so
// checks cost no allocation on the hot path. Reports std::invalid_argument("bitlinear: " + message) (error.hpp).
#define BITLINEAR_REQUIRE(condition, message)                                    \
  do {                                                                           \
    if (!(condition)) ::bitlinear::detail::throw_invalid_argument(message);      \
  } while (false)
