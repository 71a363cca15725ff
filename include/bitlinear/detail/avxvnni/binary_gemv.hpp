// bitlinear internal: AVX-VNNI binary GEMV core, the avx2 one (avx2/binary_gemv.hpp) with VEX vpdpbusd:
// u = (half >> i) & 1 times q, 4 products per dword added straight into the int32 accumulator.
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../avx2/unroll.hpp"
#include "../avx2/reduce.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avxvnni {

template <int R>
BITLINEAR_TARGET("avxvnni,avx2,fma,f16c")
inline void binary_dot_rows(const std::uint8_t* w, std::size_t row_bytes, std::size_t blocks, const std::int8_t* q,
                            std::size_t prefetch_ahead, std::int32_t* raw) noexcept {
  const __m256i low1 = _mm256_set1_epi8(1);
  __m256i acc[R];
  BITLINEAR_AVX2_UNROLL
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
  for (std::size_t b = 0; b < blocks; ++b) {
    if (prefetch_ahead != 0) {
      BITLINEAR_AVX2_UNROLL
      for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(w + r * row_bytes + 64 * b + prefetch_ahead), _MM_HINT_T0);
    }
    BITLINEAR_AVX2_UNROLL
    for (int h = 0; h < 2; ++h) {
      __m256i packed[R];
      BITLINEAR_AVX2_UNROLL
      for (int r = 0; r < R; ++r) {
        packed[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + 64 * b + 32 * h));
      }
      const std::int8_t* qb = q + 512 * b + 32 * h;
      BITLINEAR_AVX2_UNROLL
      for (int i = 0; i < 8; ++i) {
        const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 64 * i));
        BITLINEAR_AVX2_UNROLL
        for (int r = 0; r < R; ++r) {
          const __m256i u = _mm256_and_si256(i == 0 ? packed[r] : _mm256_srli_epi16(packed[r], i), low1);
          acc[r] = _mm256_dpbusd_avx_epi32(acc[r], u, qv);
        }
      }
    }
  }
  avx2::store_sums<R>(acc, raw);
}

}  // namespace detail::avxvnni
BITLINEAR_NAMESPACE_END
