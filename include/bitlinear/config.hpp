// bitlinear: version, ABI namespace and small portability macros.
#pragma once

#include <stdexcept>
#include <string>

#define BITLINEAR_VERSION_MAJOR 0
#define BITLINEAR_VERSION_MINOR 1
#define BITLINEAR_VERSION_PATCH 0

// Everything lives in an inline namespace whose name carries the version and the baseline instruction set
// the including translation unit was compiled for (its -m flags). Inline functions are emitted once per
// translation unit and the linker keeps one copy; if a TU built with -mavx512bw and one built without shared
// a namespace, the linker could keep the AVX-512 copy of a "baseline" helper (or of a target("avx2") kernel,
// since target attributes add to the command-line flags) and run it on a CPU without AVX-512. Distinct
// namespaces make those copies distinct symbols. The price: a BitLinear object built in a TU with one set of
// -m flags cannot be passed to a TU built with another (the link fails instead of crashing at run time).
#if defined(__AVX512F__)
#define BITLINEAR_ABI_NS v0_1_avx512
#elif defined(__AVX2__)
#define BITLINEAR_ABI_NS v0_1_avx2
#elif defined(__AVX__)
#define BITLINEAR_ABI_NS v0_1_avx
#elif defined(__SSE4_1__)
#define BITLINEAR_ABI_NS v0_1_sse41
#elif defined(__ARM_FEATURE_DOTPROD)
#define BITLINEAR_ABI_NS v0_1_dotprod
#else
#define BITLINEAR_ABI_NS v0_1
#endif

#define BITLINEAR_NAMESPACE_BEGIN \
  namespace bitlinear {           \
  inline namespace BITLINEAR_ABI_NS {
#define BITLINEAR_NAMESPACE_END \
  }                             \
  }

#if defined(__x86_64__) || defined(_M_X64)
#define BITLINEAR_ARCH_X86_64 1
#else
#define BITLINEAR_ARCH_X86_64 0
#endif

#if defined(__aarch64__)
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
// checks cost no allocation on the hot path. Throws std::invalid_argument("bitlinear: " + message).
#define BITLINEAR_REQUIRE(condition, message)                                    \
  do {                                                                           \
    if (!(condition)) ::bitlinear::detail::throw_invalid_argument(message);      \
  } while (false)

BITLINEAR_NAMESPACE_BEGIN
namespace detail {
[[noreturn]] inline void throw_invalid_argument(const std::string& message) {
  throw std::invalid_argument("bitlinear: " + message);
}
}  // namespace detail
BITLINEAR_NAMESPACE_END
