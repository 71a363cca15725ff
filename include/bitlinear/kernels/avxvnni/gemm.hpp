// bitlinear internal: the avxvnni GEMM register tile (the driver is avx2/gemm.hpp).
#pragma once
#include "../../detail/internal_only.hpp"

// the AVX-VNNI GEMM register tile: M tokens (1..6) x 16 output rows of a panel
// (avx2/gemm.hpp). Per k-group g: the two panel vectors of g (8 rows x 4 u each) and, per token,
// q[4g .. 4g+3] broadcast to every dword; VEX vpdpbusd adds the 4 products u * q of each dword straight into an
// int32 accumulator (no saturation, no int16 stage: |S| <= 2 * 128 * 2^20 = 2^28). 12 accumulators + 2 panel
// vectors + 1 broadcast = 15 ymm registers.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../avx2/gemm.hpp"
#include "../avx2/target.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avxvnni {

// acc0 += dpbusd(w0, q4), acc1 += dpbusd(w1, q4), q4 = the 4 bytes at q in every dword. As in the avx2 tile,
// GCC 12 hoists every broadcast of a step and spills accumulators; one asm block per token keeps it in order.
BITLINEAR_AVXVNNI_TARGET
inline void dpbusd_step(__m256i& acc0, __m256i& acc1, __m256i w0, __m256i w1, const std::int8_t* q) noexcept {
#if defined(__GNUC__) && !defined(__clang__)
  __m256i q4;
  __asm__(
      "vpbroadcastd {%[q], %[q4]|%[q4], %[q]}\n\t"
      "%{vex%} vpdpbusd {%[q4], %[w0], %[a0]|%[a0], %[w0], %[q4]}\n\t"
      "%{vex%} vpdpbusd {%[q4], %[w1], %[a1]|%[a1], %[w1], %[q4]}"
      : [a0] "+x"(acc0), [a1] "+x"(acc1), [q4] "=&x"(q4)
      : [w0] "x"(w0), [w1] "x"(w1), [q] "m"(*reinterpret_cast<const std::int32_t*>(q)));
#else
  const __m256i q4 = avx2::broadcast4(q);
  acc0 = _mm256_dpbusd_avx_epi32(acc0, w0, q4);
  acc1 = _mm256_dpbusd_avx_epi32(acc1, w1, q4);
#endif
}

struct DpbusdTile {
  static constexpr int tokens = 6;

  // c[m * panel_rows + n] += S over `groups` k-groups of tokens q[m] (m < M) and panel row n.
  template <int M>
  BITLINEAR_AVXVNNI_TARGET
  static void run(const std::uint8_t* panel, std::size_t groups, const std::int8_t* const* q,
                  std::int32_t* c) noexcept {
    __m256i acc[M][2];
    BITLINEAR_AVX2_UNROLL
    for (int m = 0; m < M; ++m) {
      acc[m][0] = _mm256_setzero_si256();
      acc[m][1] = _mm256_setzero_si256();
    }
    for (std::size_t g = 0; g < groups; ++g) {
      const std::uint8_t* p = panel + g * avx2::panel_group_bytes;
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32));
      BITLINEAR_AVX2_UNROLL
      for (int m = 0; m < M; ++m) dpbusd_step(acc[m][0], acc[m][1], w0, w1, q[m] + 4 * g);
    }
    BITLINEAR_AVX2_UNROLL
    for (int m = 0; m < M; ++m) {
      for (int v = 0; v < 2; ++v) {
        __m256i* out = reinterpret_cast<__m256i*>(c + m * avx2::panel_rows + 8 * v);
        _mm256_store_si256(out, _mm256_add_epi32(_mm256_load_si256(out), acc[m][v]));
      }
    }
  }
};

}  // namespace detail::avxvnni
BITLINEAR_NAMESPACE_END
