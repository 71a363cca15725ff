// bitlinear internal: float32 operations whose results the user's optimization flags cannot change.
//
// The headers compile under the user's flags. -ffast-math (and its parts -ffinite-math-only,
// -fassociative-math, -freciprocal-math) lets the compiler assume no NaN or infinity (std::isnan / std::isfinite
// fold to constants), reassociate (dot / s_x / s_w -> dot / (s_x * s_w)), replace a division by a multiplication
// with a hoisted reciprocal, or (clang on x86) by an rcpps estimate. Any of these changes the last bits that
// DESIGN §1 pins. So the library's own float arithmetic goes through:
//   - bit-pattern classification (is_finite_bits, is_nan_bits): integer tests the optimizer cannot fold away;
//   - exact_div / exact_mul / exact_add: one IEEE float32 operation each, as inline assembly on x86-64 (SSE or,
//     when the translation unit is compiled for AVX, the VEX form, so as not to mix encodings) and on aarch64,
//     which the compiler treats as an opaque instruction: it may move or merge identical ones but cannot rewrite
//     the arithmetic or fuse it into an fma;
//   - round_half_even: round half to even by integer manipulation of the bit pattern, independent of the
//     rounding mode and of the optimizer.
// Elsewhere (MSVC, other architectures) the operations are plain C++, and flags that would break them are
// refused where the compiler reveals them (__FAST_MATH__, __FINITE_MATH_ONLY__, MSVC /fp:fast).
// The rounding mode of exact_* is the environment's, which FpEnvironmentGuard (fp_environment.hpp) pins.
#pragma once
#include "internal_only.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "../config.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (BITLINEAR_ARCH_X86_64 || BITLINEAR_ARCH_AARCH64)
#define BITLINEAR_EXACT_FLOAT_ASM 1
#else
#define BITLINEAR_EXACT_FLOAT_ASM 0
#if defined(__FAST_MATH__) || (defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__)
#error "bitlinear: -ffast-math / -ffinite-math-only are supported on x86-64 and aarch64 with GCC or Clang only; build bitlinear's translation units without them on this target"
#endif
#if defined(_M_FP_FAST)
#error "bitlinear: /fp:fast changes bitlinear's pinned float32 results; compile its translation units with /fp:precise"
#endif
#endif

// float expressions must be evaluated in float (FLT_EVAL_METHOD 0): x87 excess precision (32-bit x86 without
// -mfpmath=sse) rounds twice and breaks bit-exactness.
#if defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ != 0 && __FLT_EVAL_METHOD__ != -1
#error "bitlinear: float expressions are evaluated in excess precision (FLT_EVAL_METHOD != 0); on 32-bit x86 compile with -msse2 -mfpmath=sse"
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

inline std::uint32_t float_bits(float v) noexcept {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}
inline float float_from_bits(std::uint32_t bits) noexcept {
  float v = 0.0f;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// A float in error messages: enough digits to tell it apart (std::to_string prints 1e-39 as 0.000000).
inline std::string float_text(float v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", static_cast<double>(v));
  return text;
}

inline constexpr std::uint32_t float_magnitude_mask = 0x7fffffffu;
inline constexpr std::uint32_t float_infinity_bits = 0x7f800000u;

// Classification by bit pattern: the exponent all ones is infinity (zero mantissa) or NaN.
inline bool is_finite_bits(float v) noexcept { return (float_bits(v) & float_magnitude_mask) < float_infinity_bits; }
// |v| by clearing the sign bit: no compare, so no branch to mispredict on random signs (-0.0 gives +0.0).
inline float abs_bits(float v) noexcept { return float_from_bits(float_bits(v) & float_magnitude_mask); }
inline bool is_nan_bits(float v) noexcept { return (float_bits(v) & float_magnitude_mask) > float_infinity_bits; }
// Sign tests on the bit pattern, independent of the caller's denormals-are-zero mode (DAZ would make a denormal
// compare equal to 0): positive = sign clear and not +0; negative = sign set and not -0.
inline bool is_positive_bits(float v) noexcept { return float_bits(v) - 1u < 0x7fffffffu; }
inline bool is_negative_bits(float v) noexcept { return float_bits(v) > 0x80000000u; }
inline bool is_finite_bits(double v) noexcept {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7fffffffffffffffu) < 0x7ff0000000000000u;
}

#if BITLINEAR_EXACT_FLOAT_ASM && BITLINEAR_ARCH_X86_64
// {AT&T|Intel} alternatives keep the templates valid under -masm=intel.
#if defined(__AVX__)
#define BITLINEAR_EXACT_BINARY_OP(op, a, b)                                                          \
  __asm__("v" op "ss {%2, %1, %0|%0, %1, %2}" : "=x"(result) : "x"(a), "x"(b)); \
  return result
#else
#define BITLINEAR_EXACT_BINARY_OP(op, a, b)                                  \
  result = a;                                                                \
  __asm__(op "ss {%1, %0|%0, %1}" : "+x"(result) : "x"(b)); \
  return result
#endif
#elif BITLINEAR_EXACT_FLOAT_ASM && BITLINEAR_ARCH_AARCH64
#define BITLINEAR_EXACT_BINARY_OP(op, a, b)                                   \
  __asm__("f" op " %s0, %s1, %s2" : "=w"(result) : "w"(a), "w"(b)); \
  return result
#endif

#if BITLINEAR_EXACT_FLOAT_ASM
inline float exact_div(float a, float b) noexcept {
  float result;
  BITLINEAR_EXACT_BINARY_OP("div", a, b);
}
inline float exact_mul(float a, float b) noexcept {
  float result;
  BITLINEAR_EXACT_BINARY_OP("mul", a, b);
}
inline float exact_add(float a, float b) noexcept {
  float result;
  BITLINEAR_EXACT_BINARY_OP("add", a, b);
}
#undef BITLINEAR_EXACT_BINARY_OP
#else
inline float exact_div(float a, float b) noexcept { return a / b; }
// The product goes through a volatile: compilers that contract a * b + c into an fma (MSVC before VS 2022, GCC's
// default -ffp-contract=fast) must round it first.
inline float exact_mul(float a, float b) noexcept {
  volatile float product = a * b;
  return product;
}
inline float exact_add(float a, float b) noexcept { return a + b; }
#endif

// Hides a value from the optimizer (an empty asm that "changes" it): a sum accumulated as
// s = opaque(s + x) cannot be reassociated or vectorized in another order. volatile: not hoisted out of loops.
template <class T>
inline T opaque(T value) noexcept {
#if BITLINEAR_EXACT_FLOAT_ASM && BITLINEAR_ARCH_X86_64
  __asm__ __volatile__("" : "+x"(value));
#elif BITLINEAR_EXACT_FLOAT_ASM && BITLINEAR_ARCH_AARCH64
  __asm__ __volatile__("" : "+w"(value));
#else
  volatile T barrier = value;
  value = barrier;
#endif
  return value;
}

// a * b + c rounded once (a fused multiply-add), whatever the flags and the C library. On aarch64 the fmadd
// instruction (baseline there). Elsewhere in double, without a C library call (mingw-w64's fmaf rounds twice):
// a * b is exact in double (48 significant bits); s = a * b + c is rounded to odd (TwoSum gives its exact error
// e, and a nonzero e moves an even s one ulp toward it); s rounded to float is then the correctly rounded fma,
// since rounding to odd at 53 bits and then to nearest at 24 <= 53 - 2 bits equals rounding to nearest once
// (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using rounding to odd",
// IEEE Trans. Computers, 2008). Every step is one IEEE operation behind opaque(), which no flag can reassociate
// or contract. Infinities and NaNs come out of the plain sum. Only the scalar reference of the grouped formats
// uses it (kernels/ref/grouped.hpp); SIMD kernels use their fma instruction.
inline float exact_fma(float a, float b, float c) noexcept {
#if BITLINEAR_EXACT_FLOAT_ASM && BITLINEAR_ARCH_AARCH64
  float result;
  __asm__("fmadd %s0, %s1, %s2, %s3" : "=w"(result) : "w"(a), "w"(b), "w"(c));
  return result;
#else
  const double p = opaque(static_cast<double>(a) * static_cast<double>(b));
  const double q = opaque(static_cast<double>(c));
  const double s = opaque(p + q);
  std::uint64_t bits = 0;
  std::memcpy(&bits, &s, sizeof bits);
  const bool finite = (bits & 0x7FF0000000000000u) != 0x7FF0000000000000u;
  if (finite && (bits & 1u) == 0) {
    // TwoSum (Knuth): e = (p + q) - s exactly, in six operations.
    const double q_part = opaque(s - p);
    const double p_part = opaque(s - q_part);
    const double e = opaque(opaque(p - p_part) + opaque(q - q_part));
    if (e != 0.0) {
      bits = (e > 0.0) == (s > 0.0) ? bits + 1 : bits - 1;  // one ulp away from zero, or toward it
      double odd = 0.0;
      std::memcpy(&odd, &bits, sizeof odd);
      return static_cast<float>(opaque(odd));
    }
  }
  return static_cast<float>(s);
#endif
}

// rne(v) for a finite |v| < 2^30: round half to even computed on the bit pattern, so that neither the rounding
// mode nor the optimizer can change it. v = m * 2^(e - 150) with the 24-bit significand m; the integer part is
// m >> (150 - e) and the discarded bits decide the rounding (above half: up; exactly half: to the even neighbour).
inline std::int32_t round_half_even(float v) noexcept {
  const std::uint32_t bits = float_bits(v);
  const int exponent = static_cast<int>((bits >> 23) & 0xFFu);
  if (exponent < 126) return 0;  // |v| < 0.5 (zeros and subnormals included)
  const std::uint32_t significand = (bits & 0x7FFFFFu) | 0x800000u;
  std::uint32_t magnitude;
  if (exponent >= 150) {
    magnitude = significand << (exponent - 150);  // already an integer (|v| >= 2^23)
  } else {
    const int shift = 150 - exponent;  // 1..24
    const std::uint32_t discarded = significand & ((1u << shift) - 1u);
    const std::uint32_t half = 1u << (shift - 1);
    magnitude = significand >> shift;
    if (discarded > half || (discarded == half && (magnitude & 1u) != 0)) ++magnitude;
  }
  const auto m = static_cast<std::int32_t>(magnitude);
  return (bits >> 31) != 0 ? -m : m;
}

// Round half away from zero (C's roundf, what ggml's reference quantizers use) for a finite |v| < 2^30, on the bit
// pattern like round_half_even above: the discarded bits at or above half round the magnitude up.
inline std::int32_t round_half_away(float v) noexcept {
  const std::uint32_t bits = float_bits(v);
  const int exponent = static_cast<int>((bits >> 23) & 0xFFu);
  if (exponent < 126) return 0;  // |v| < 0.5
  const std::uint32_t significand = (bits & 0x7FFFFFu) | 0x800000u;
  std::uint32_t magnitude;
  if (exponent >= 150) {
    magnitude = significand << (exponent - 150);
  } else {
    const int shift = 150 - exponent;  // 1..24
    magnitude = significand >> shift;
    if ((significand & ((1u << shift) - 1u)) >= (1u << (shift - 1))) ++magnitude;
  }
  const auto m = static_cast<std::int32_t>(magnitude);
  return (bits >> 31) != 0 ? -m : m;
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
