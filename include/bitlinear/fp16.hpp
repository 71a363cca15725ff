// bitlinear: IEEE binary16 (fp16) scale values, as model files store them, converted exactly to float.
#pragma once

#include <cstdint>
#include <cstring>

#include "config.hpp"

BITLINEAR_NAMESPACE_BEGIN

// The float of the same value (every fp16 value, subnormals included, is a float): sign, then the 5-bit exponent
// rebiased from 15 to 127, the 10-bit fraction shifted to the top of the 23-bit one. A subnormal (exponent 0)
// m * 2^-24 is normalized: shifted left until its leading bit reaches bit 10, lowering the exponent once per
// shift. Infinities and NaNs stay infinities and NaNs (callers that need finite scales check the result).
inline float fp16_to_float(std::uint16_t half) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  std::uint32_t fraction = half & 0x3ffu;
  std::uint32_t bits = sign;
  if (exponent == 0x1f) {
    bits |= 0x7f800000u | (fraction << 13);
  } else if (exponent != 0) {
    bits |= ((exponent + (127 - 15)) << 23) | (fraction << 13);
  } else if (fraction != 0) {
    std::uint32_t biased = 127 - 14;  // 2^-14, the exponent of the smallest normal fp16
    while ((fraction & 0x400u) == 0) {
      fraction <<= 1;
      --biased;
    }
    bits |= (biased << 23) | ((fraction & 0x3ffu) << 13);
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

BITLINEAR_NAMESPACE_END
