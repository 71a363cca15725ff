// bitlinear internal: AVX2 ternary GEMV core: raw sums S = sum_k q[k] * u[j][k] (u = code + 1, epilogue.hpp)
// for R consecutive output rows against one activation row, straight from the canonical packed layout.
//
// A 64-byte block of a row holds 256 weights; its half h (bytes 32h .. 32h+31) shifted right by 2i and masked
// with 3 gives, in byte lanes, u for k = 64i + 32h + 0..31 (format.hpp), lined up with one 32-byte load of q.
// vpmaddubsw(u, q) multiplies unsigned u by signed q and adds neighbouring pairs into int16: each pair is in
// [2 * 2 * -128, 2 * 2 * 127] = [-512, 508] and cannot saturate. Up to 4 blocks (32 such vectors, |sum| <= 16384)
// are summed in int16 before vpmaddwd(., 1) widens them into the int32 accumulator. The R rows share each load
// of q; the weights of the next R rows (the same bytes one group further) are prefetched while these run.
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "unroll.hpp"
#include "../../format.hpp"
#include "reduce.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

// raw[r] = S of rows w + r * row_bytes (r < R) over `blocks` 64-byte blocks and q[0, 256 * blocks).
// prefetch_ahead: bytes from each row to the same block of the row the caller runs next (0: none).
template <int R>
BITLINEAR_TARGET("avx2,fma,f16c")
inline void ternary_dot_rows(const std::uint8_t* w, std::size_t row_bytes, std::size_t blocks, const std::int8_t* q,
                             std::size_t prefetch_ahead, std::int32_t* raw) noexcept {
  const __m256i low2 = _mm256_set1_epi8(3);
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i acc[R];
  BITLINEAR_AVX2_UNROLL
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
  for (std::size_t b = 0; b < blocks;) {
    const std::size_t group_end = b + 4 < blocks ? b + 4 : blocks;
    __m256i acc16[R];
    BITLINEAR_AVX2_UNROLL
    for (int r = 0; r < R; ++r) acc16[r] = _mm256_setzero_si256();
    for (; b < group_end; ++b) {
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
        const std::int8_t* qb = q + 256 * b + 32 * h;
        BITLINEAR_AVX2_UNROLL
        for (int i = 0; i < 4; ++i) {
          const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 64 * i));
          BITLINEAR_AVX2_UNROLL
          for (int r = 0; r < R; ++r) {
            const __m256i u = _mm256_and_si256(i == 0 ? packed[r] : _mm256_srli_epi16(packed[r], 2 * i), low2);
            acc16[r] = _mm256_add_epi16(acc16[r], _mm256_maddubs_epi16(u, qv));
          }
        }
      }
    }
    BITLINEAR_AVX2_UNROLL
    for (int r = 0; r < R; ++r) acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(acc16[r], ones16));
  }
  store_sums<R>(acc, raw);
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
