// bitlinear: IEEE-754 binary16 (fp16) <-> binary32 conversions on bit patterns, exact and independent of the
// rounding mode, the denormal modes and the optimizer's flags (what files hold group scales and ggml's block
// scales as).
//
//   fp16_to_float(h)       exact (every fp16 value, subnormals included, is a float); infinities and NaNs map to
//                          the float infinity / a quiet NaN of the same sign
//   float_to_fp16_bits(f)  round to nearest, ties to even, with fp16 subnormals; |f| >= 65520 (and infinity)
//                          gives infinity, NaN gives the quiet NaN 0x7E00 with f's sign (ggml's conversion)
//   fp16_is_finite(h)      false for infinities and NaNs
#pragma once

#include <cstdint>
#include <cstring>

#include "config.hpp"

BITLINEAR_NAMESPACE_BEGIN

inline constexpr bool fp16_is_finite(std::uint16_t h) noexcept { return (h & 0x7C00u) != 0x7C00u; }

inline float fp16_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits = 0;
  if (exponent == 0x1Fu) {
    bits = sign | 0x7F800000u | (mantissa << 13) | (mantissa != 0 ? 0x400000u : 0u);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);  // 112 = 127 - 15
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: mantissa * 2^-24. Normalize: shift the leading 1 up to bit 10 (the implicit bit).
    std::uint32_t float_exponent = 113;  // 2^-14 is exponent 113 in float
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --float_exponent;
    }
    bits = sign | (float_exponent << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float value = 0.0f;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline std::uint16_t float_to_fp16_bits(float f) noexcept {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, sizeof bits);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);  // NaN
  if (magnitude >= 0x47800000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65536 and infinity
  const std::uint32_t exponent = magnitude >> 23;
  if (exponent >= 113) {
    // Normal fp16 range (2^-14 <= |f| < 65536): keep 10 mantissa bits, round the 13 dropped ones to nearest
    // even; a carry out of the mantissa moves to the next exponent (and past 65504 to infinity, 0x7C00).
    std::uint32_t half = ((exponent - 112u) << 10) | ((magnitude >> 13) & 0x3FFu);
    const std::uint32_t dropped = magnitude & 0x1FFFu;
    if (dropped > 0x1000u || (dropped == 0x1000u && (half & 1u) != 0)) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  // Subnormal fp16 (or zero): the value in units of 2^-24 is significand * 2^(exponent - 126), rounded to nearest
  // even; a result of 0x400 is the smallest normal, which the bit pattern expresses by itself.
  const std::uint32_t significand = exponent == 0 ? (magnitude & 0x7FFFFFu) : ((magnitude & 0x7FFFFFu) | 0x800000u);
  const std::uint32_t shift = 126u - (exponent == 0 ? 1u : exponent);  // >= 14
  if (shift >= 25) return sign;  // below half of 2^-24: rounds to zero
  std::uint32_t half = significand >> shift;
  const std::uint32_t dropped = significand & ((1u << shift) - 1u);
  const std::uint32_t halfway = 1u << (shift - 1);
  if (dropped > halfway || (dropped == halfway && (half & 1u) != 0)) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

BITLINEAR_NAMESPACE_END
