// bitlinear internal: scalar reference activation quantization (the semantics, written plainly).
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>

#include "../../config.hpp"
#include "../../detail/exact_float.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::ref {

// max |x[i]|, or NaN if some x[i] is NaN or infinite. Compared as magnitude bit patterns (sign cleared), whose
// integer order is the order of the values: a test the optimizer cannot fold away under -ffinite-math-only.
inline float absmax(const float* x, std::size_t n) {
  std::uint32_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t a = float_bits(x[i]) & float_magnitude_mask;
    if (a >= float_infinity_bits) return std::numeric_limits<float>::quiet_NaN();  // NaN or inf
    m = a > m ? a : m;
  }
  return float_from_bits(m);
}

// clamp(rne(v), -128, 127) for a finite v. Clamping first gives the same integer (the bounds are integers and
// rne is monotonic); round_half_even does not depend on the rounding mode.
inline std::int8_t quantize_value(float v) {
  const float c = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
  return static_cast<std::int8_t>(round_half_even(c));
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
