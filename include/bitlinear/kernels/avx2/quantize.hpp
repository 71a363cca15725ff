// bitlinear internal: AVX2 activation quantization (absmax and one row of int8), bit-identical to
// ref/quantize.hpp.
//
// absmax: the absolute value of a float is its bit pattern with the sign cleared, and for non-negative floats
// the order of the bit patterns read as int32 is the order of the values, with +inf (0x7f800000) above every
// finite value and every NaN above +inf. So the integer maximum of (bits & 0x7fffffff), read back as a float,
// is max |x| when every x is finite and +inf or a NaN otherwise: exactly the contract of AbsmaxKernel.
//
// quantize_row: v = x * s_x (one IEEE multiply, as the reference), clamped to [-128, 127] in float, rounded
// half to even by vroundps with an explicit mode (_MM_FROUND_TO_NEAREST_INT, whatever MXCSR says), then
// converted by truncation (vcvttps2dq), exact on an integral value. Clamping before rounding gives the same
// integer as the reference's round-then-clamp for every finite v (both are monotone and agree on [-128, 127]). The int32 lanes are summed before packing; packs_epi32/packs_epi16 cannot saturate any more.
// Tails use masked loads (vmaskmovps never touches the masked-off lanes), so nothing past x[n-1] is read.
#pragma once
#include "../../detail/internal_only.hpp"

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../config.hpp"
#include "../ref/quantize.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

// A load mask for the first `count` (0..8) float lanes.
BITLINEAR_AVX2_TARGET
inline __m256i first_lanes_mask(std::size_t count) noexcept {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lane);
}

BITLINEAR_AVX2_TARGET
inline float absmax(const float* x, std::size_t n) noexcept {
  const __m256i abs_bits = _mm256_set1_epi32(0x7fffffff);
  __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
  std::size_t k = 0;
  for (; k + 32 <= n; k += 32) {
    m0 = _mm256_max_epi32(m0, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k)), abs_bits));
    m1 = _mm256_max_epi32(m1, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k + 8)), abs_bits));
    m2 = _mm256_max_epi32(m2, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k + 16)), abs_bits));
    m3 = _mm256_max_epi32(m3, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k + 24)), abs_bits));
  }
  for (; k < n; k += 8) {
    const std::size_t left = n - k;
    const __m256 v = left >= 8 ? _mm256_loadu_ps(x + k) : _mm256_maskload_ps(x + k, first_lanes_mask(left));
    m0 = _mm256_max_epi32(m0, _mm256_and_si256(_mm256_castps_si256(v), abs_bits));  // masked lanes read as +0
  }
  __m256i m = _mm256_max_epi32(_mm256_max_epi32(m0, m1), _mm256_max_epi32(m2, m3));
  __m128i h = _mm_max_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  h = _mm_max_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
  h = _mm_max_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtss_f32(_mm_castsi128_ps(h));
}

// Eight floats times s_x, clamped to [-128, 127] and rounded half to even: int32 lanes.
BITLINEAR_AVX2_TARGET
inline __m256i quantize8(__m256 x, __m256 s_x) noexcept {
  const __m256 v = _mm256_mul_ps(x, s_x);
  const __m256 c = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
  return _mm256_cvttps_epi32(_mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Four vectors of eight int32 in [-128, 127] (k = 0..7, 8..15, 16..23, 24..31) to 32 int8 in order k = 0..31.
BITLINEAR_AVX2_TARGET
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) noexcept {
  // packs work per 128-bit lane: the bytes come out as dword groups a0 b0 c0 d0 a1 b1 c1 d1 (group = 4 lanes).
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

BITLINEAR_AVX2_TARGET
inline std::int32_t quantize_row(const float* x, std::size_t n, float s_x, std::int8_t* q,
                                 std::size_t padded_n) noexcept {
  const __m256 scale = _mm256_set1_ps(s_x);
  __m256i sum0 = _mm256_setzero_si256(), sum1 = sum0;
  std::size_t k = 0;
  for (; k + 32 <= n; k += 32) {
    const __m256i a = quantize8(_mm256_loadu_ps(x + k), scale);
    const __m256i b = quantize8(_mm256_loadu_ps(x + k + 8), scale);
    const __m256i c = quantize8(_mm256_loadu_ps(x + k + 16), scale);
    const __m256i d = quantize8(_mm256_loadu_ps(x + k + 24), scale);
    sum0 = _mm256_add_epi32(sum0, _mm256_add_epi32(a, b));
    sum1 = _mm256_add_epi32(sum1, _mm256_add_epi32(c, d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), pack32(a, b, c, d));
  }
  std::int32_t sum = 0;
  if (k < n && k + 32 <= padded_n) {
    // Tail of 1..31 values: masked loads give 0 past n, which quantizes to 0, the padding value.
    __m256i part[4];
    for (int v = 0; v < 4; ++v) {
      const std::size_t start = k + 8 * static_cast<std::size_t>(v);
      const std::size_t left = start < n ? n - start : 0;
      const __m256 xv = left >= 8 ? _mm256_loadu_ps(x + start) : _mm256_maskload_ps(x + start, first_lanes_mask(left));
      part[v] = quantize8(xv, scale);
    }
    sum0 = _mm256_add_epi32(sum0, _mm256_add_epi32(part[0], part[1]));
    sum1 = _mm256_add_epi32(sum1, _mm256_add_epi32(part[2], part[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), pack32(part[0], part[1], part[2], part[3]));
    k += 32;
  } else {
    for (; k < n; ++k) {  // a caller-sized q without room for a whole vector: scalar tail
      q[k] = ref::quantize_value(x[k] * s_x);
      sum += q[k];
    }
  }
  if (k < padded_n) std::memset(q + k, 0, padded_n - k);
  const __m256i s = _mm256_add_epi32(sum0, sum1);
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
  return sum + _mm_cvtsi128_si32(h);
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
