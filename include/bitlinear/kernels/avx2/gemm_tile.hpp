// bitlinear internal: the AVX2 GEMM register tile: M tokens (1..5) x 16 output rows of a panel (panel.hpp).
//
// Per k-group g (4 consecutive k): the two panel vectors of g (8 rows x 4 u each) and, per token, q[4g .. 4g+3]
// broadcast to all dwords; vpmaddubsw(u, q) adds the 4 products of each dword in two int16 pairs. A pair is in
// [2 * 2 * -128, 2 * 2 * 127] = [-512, 508], so 64 groups (256 k) sum to [-32768, 32512]: exactly within int16
// (no saturating op is involved: vpmaddubsw only saturates beyond a pair's range, vpaddw wraps but never needs
// to). Every 64 groups, vpmaddwd(., 1) folds the pairs into int32 and adds them to the tile in memory c.
// 10 int16 accumulators + 2 panel vectors + 1 broadcast + 1 product = 14 ymm registers (vpmaddubsw does not
// accumulate, so each product needs a register of its own before the add: 4 x 24 would need 17 and spills).
#pragma once
#include "../../detail/internal_only.hpp"

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../config.hpp"
#include "panel.hpp"
#include "unroll.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

BITLINEAR_TARGET("avx2,fma,f16c")
inline __m256i broadcast4(const std::int8_t* q) noexcept {
  std::int32_t four = 0;
  std::memcpy(&four, q, 4);
  return _mm256_set1_epi32(four);
}

// acc0 += maddubs(w0, q4), acc1 += maddubs(w1, q4), with q4 the 4 bytes at q broadcast to every dword.
// GCC 12 schedules the ten products of a 5-token step ahead of their additions and spills half of the
// accumulators (twice the time); the same step as one asm block per token keeps its live range to two
// scratch registers. Clang schedules the intrinsics well and gets them.
BITLINEAR_TARGET("avx2,fma,f16c")
inline void maddubs_step(__m256i& acc0, __m256i& acc1, __m256i w0, __m256i w1, const std::int8_t* q) noexcept {
#if defined(__GNUC__) && !defined(__clang__)
  __m256i q4, product;
  __asm__(
      "vpbroadcastd {%[q], %[q4]|%[q4], %[q]}\n\t"
      "vpmaddubsw {%[q4], %[w0], %[p]|%[p], %[w0], %[q4]}\n\t"
      "vpaddw {%[p], %[a0], %[a0]|%[a0], %[a0], %[p]}\n\t"
      "vpmaddubsw {%[q4], %[w1], %[p]|%[p], %[w1], %[q4]}\n\t"
      "vpaddw {%[p], %[a1], %[a1]|%[a1], %[a1], %[p]}"
      : [a0] "+x"(acc0), [a1] "+x"(acc1), [q4] "=&x"(q4), [p] "=&x"(product)
      : [w0] "x"(w0), [w1] "x"(w1), [q] "m"(*reinterpret_cast<const std::int32_t*>(q)));
#else
  const __m256i q4 = broadcast4(q);
  acc0 = _mm256_add_epi16(acc0, _mm256_maddubs_epi16(w0, q4));
  acc1 = _mm256_add_epi16(acc1, _mm256_maddubs_epi16(w1, q4));
#endif
}

struct MaddubsTile {
  static constexpr int tokens = 5;

  // c[m * panel_rows + n] += S over `groups` k-groups (a multiple of 64) of tokens q[m] (m < M) and panel row n.
  template <int M>
  BITLINEAR_TARGET("avx2,fma,f16c")
  static void run(const std::uint8_t* panel, std::size_t groups, const std::int8_t* const* q,
                  std::int32_t* c) noexcept {
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (std::size_t g0 = 0; g0 < groups; g0 += 64) {
      __m256i acc[M][2];
      BITLINEAR_AVX2_UNROLL
      for (int m = 0; m < M; ++m) {
        for (int v = 0; v < 2; ++v) acc[m][v] = _mm256_setzero_si256();
      }
      for (std::size_t g = g0; g < g0 + 64; ++g) {
        const std::uint8_t* p = panel + g * panel_group_bytes;
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32));
        BITLINEAR_AVX2_UNROLL
        for (int m = 0; m < M; ++m) maddubs_step(acc[m][0], acc[m][1], w0, w1, q[m] + 4 * g);
      }
      BITLINEAR_AVX2_UNROLL
      for (int m = 0; m < M; ++m) {
        for (int v = 0; v < 2; ++v) {
          __m256i* out = reinterpret_cast<__m256i*>(c + m * panel_rows + 8 * v);
          _mm256_store_si256(out, _mm256_add_epi32(_mm256_load_si256(out), _mm256_madd_epi16(acc[m][v], ones16)));
        }
      }
    }
  }
};

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
