// bitlinear internal: scalar reference activation quantization (the semantics, written plainly).
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "../../config.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::ref {

inline float absmax(const float* x, std::size_t n) {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (!(a <= std::numeric_limits<float>::max())) return std::numeric_limits<float>::quiet_NaN();  // NaN or inf
    m = a > m ? a : m;
  }
  return m;
}

// clamp(rne(v), -128, 127) for a finite v. std::nearbyint rounds half to even in the default rounding mode.
inline std::int8_t quantize_value(float v) {
  const float r = std::nearbyint(v);
  const float c = r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r);
  return static_cast<std::int8_t>(c);
}

inline std::int32_t quantize_row(const float* x, std::size_t n, float s_x, std::int8_t* q, std::size_t padded_n) {
  std::int32_t sum = 0;
  for (std::size_t k = 0; k < n; ++k) {
    q[k] = quantize_value(x[k] * s_x);
    sum += q[k];
  }
  for (std::size_t k = n; k < padded_n; ++k) q[k] = 0;
  return sum;
}

}  // namespace detail::ref
BITLINEAR_NAMESPACE_END
