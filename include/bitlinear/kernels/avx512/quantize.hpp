// bitlinear internal: avx512 activation quantization (absmax and one row to int8), bit-identical to
// ref/quantize.hpp.
#pragma once
#include "../../detail/internal_only.hpp"

#include "target.hpp"

#if BITLINEAR_ARCH_X86_64
#include <cstring>

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

// max |x[i]| as an integer max over the bit patterns with the sign cleared: for non-negative IEEE floats the
// order of the patterns is the order of the values, and +inf (0x7f800000) and every NaN (above it) exceed every
// finite value, so the result is non-finite exactly when some input is. -0 becomes +0, as fabs gives.
// The tail is a masked load (masked-off lanes read nothing and count as 0).
BITLINEAR_AVX512_TARGET inline float absmax(const float* x, std::size_t n) {
  const __m512i magnitude_bits = _mm512_set1_epi32(0x7fffffff);
  __m512i max0 = _mm512_setzero_si512(), max1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    max0 = max_epu32(max0, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)), magnitude_bits));
    max1 = max_epu32(max1, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i + 16)), magnitude_bits));
  }
  for (; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(first_lanes16(n - i), x + i);
    max0 = max_epu32(max0, _mm512_and_si512(_mm512_castps_si512(v), magnitude_bits));
  }
  const std::uint32_t bits = reduce_max_epu32(max_epu32(max0, max1));
  float m = 0.0f;
  std::memcpy(&m, &bits, sizeof m);
  return m;
}

// q = clamp(rne(x * s_x), -128, 127). Clamping before rounding gives the same integers (the bounds are
// integers and rne is monotonic) and keeps an overflowing product (+-inf) away from cvtps2dq's 0x80000000.
// The multiply and the conversion carry embedded rounding {rn-sae}: round to nearest even whatever MXCSR's
// rounding field says, and as builtins they are out of -ffast-math's reach.
BITLINEAR_AVX512_TARGET inline __m512i quantize16(__m512 x, __m512 s_x) {
  const __m512 v = mul_rn(x, s_x);
  const __m512 clamped = min_ps(max_ps(v, _mm512_set1_ps(-128.0f)), _mm512_set1_ps(127.0f));
  return cvtps_epi32_rn(clamped);
}

BITLINEAR_AVX512_TARGET inline std::int32_t quantize_row(const float* x, std::size_t n, float s_x, std::int8_t* q,
                                                          std::size_t padded_n) {
  const __m512 scale = _mm512_set1_ps(s_x);
  __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();  // int32 lanes: |sum| <= 2^20 * 128 / 16
  std::size_t k = 0;
  for (; k + 64 <= n; k += 64) {
    const __m512i q0 = quantize16(_mm512_loadu_ps(x + k), scale);
    const __m512i q1 = quantize16(_mm512_loadu_ps(x + k + 16), scale);
    const __m512i q2 = quantize16(_mm512_loadu_ps(x + k + 32), scale);
    const __m512i q3 = quantize16(_mm512_loadu_ps(x + k + 48), scale);
    sum0 = _mm512_add_epi32(sum0, _mm512_add_epi32(q0, q1));
    sum1 = _mm512_add_epi32(sum1, _mm512_add_epi32(q2, q3));
    // vpmovdb truncates each int32 to its low byte: exact, since every value is already in [-128, 127].
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k), cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k + 16), cvtepi32_epi8(q1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k + 32), cvtepi32_epi8(q2));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k + 48), cvtepi32_epi8(q3));
  }
  for (; k < n; k += 16) {
    const __mmask16 lanes = first_lanes16(n - k);
    const __m512i qv = quantize16(_mm512_maskz_loadu_ps(lanes, x + k), scale);  // masked-off lanes quantize 0 to 0
    sum0 = _mm512_add_epi32(sum0, qv);
    _mm512_mask_cvtepi32_storeu_epi8(q + k, lanes, qv);
  }
  if (padded_n > n) std::memset(q + n, 0, padded_n - n);
  return reduce_add_epi32(_mm512_add_epi32(sum0, sum1));
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
