// bitlinear internal: what the avx512 grouped kernels share (grouped.hpp: GEMV and the small-batch row kernel;
// grouped_panel.hpp: the GEMM): the u8 operand of each format's fields and the pinned tree. The epilogue they
// implement is derived in grouped.hpp and grouped_panel.hpp.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../format.hpp"
#include "../../format_compact.hpp"
#include "codes.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

// The u8 operand of field F of a 64-byte block (u = code + 1: the epilogue of grouped.hpp).
struct GroupedTernaryFields {
  using Format = Ternary;
  static constexpr int fields = 4;
  template <int F>
  BITLINEAR_AVX512_INLINE static __m512i field(__m512i block) {
    return TernaryCodes::field<F>(block);
  }
};
struct GroupedBinaryFields {
  using Format = Binary;
  static constexpr int fields = 8;
  template <int F>
  BITLINEAR_AVX512_INLINE static __m512i field(__m512i block) {
    const __m512i two = _mm512_set1_epi8(2);
    if constexpr (F == 0) return _mm512_and_si512(_mm512_add_epi8(block, block), two);
    return _mm512_and_si512(_mm512_srli_epi16(block, F - 1), two);
  }
};

// The pinned tree of interface.hpp over the 16 lanes.
BITLINEAR_AVX512_INLINE float grouped_tree(__m512 v) {
  v = add_rn(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0x4E));  // lane l < 8: v[l] + v[l + 8]
  v = add_rn(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xB1));  // l < 4: + [l + 4]
  v = add_rn(v, _mm512_maskz_permute_ps(0xFFFF, v, 0x4E));       // l < 2: + [l + 2]
  v = add_rn(v, _mm512_maskz_permute_ps(0xFFFF, v, 0xB1));       // l = 0: + [1]
  return _mm512_cvtss_f32(v);
}

// The pinned tree of up to 16 accumulators at once (the missing ones count as zero vectors): lane 4 m + i of the
// result is the tree of acc[m + 4 i]. Every stage adds the same pairs of lanes as grouped_tree, first operand
// first (l + l+8, then l + l+4, l + l+2, l + l+1), with the halves of two or four accumulators side by side in one
// vector: 45 vector operations for 16 trees instead of 16 x 8.
template <int N>
BITLINEAR_AVX512_INLINE __m512 grouped_trees(const __m512 (&acc)[N]) {
  static_assert(N >= 1 && N <= 16, "at most 16 accumulators");
  __m512 v[16];
  BITLINEAR_UNROLL
  for (int i = 0; i < 16; ++i) v[i] = i < N ? acc[i] : _mm512_setzero_ps();
  __m512 s1[8];  // 128-bit lanes: acc 2i values 0..3, 4..7, acc 2i+1 values 0..3, 4..7 (value l: [l] + [l + 8])
  BITLINEAR_UNROLL
  for (int i = 0; i < 8; ++i) {
    s1[i] = add_rn(_mm512_maskz_shuffle_f32x4(0xFFFF, v[2 * i], v[2 * i + 1], 0x44),
                   _mm512_maskz_shuffle_f32x4(0xFFFF, v[2 * i], v[2 * i + 1], 0xEE));
  }
  __m512 s2[4];  // 128-bit lane m: acc 4i+m, values 0..3 (+ [l + 4])
  BITLINEAR_UNROLL
  for (int i = 0; i < 4; ++i) {
    s2[i] = add_rn(_mm512_maskz_shuffle_f32x4(0xFFFF, s1[2 * i], s1[2 * i + 1], 0x88),
                   _mm512_maskz_shuffle_f32x4(0xFFFF, s1[2 * i], s1[2 * i + 1], 0xDD));
  }
  __m512 s3[2];  // 128-bit lane m: acc 8i+m values 0, 1, then acc 8i+4+m values 0, 1 (+ [l + 2])
  BITLINEAR_UNROLL
  for (int i = 0; i < 2; ++i) {
    const __m512d lo = _mm512_castps_pd(s2[2 * i]), hi = _mm512_castps_pd(s2[2 * i + 1]);
    s3[i] = add_rn(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, lo, hi)),
                   _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, lo, hi)));
  }
  // 128-bit lane m: acc m, 4+m, 8+m, 12+m (+ [l + 1]).
  return add_rn(_mm512_maskz_shuffle_ps(0xFFFF, s3[0], s3[1], 0x88), _mm512_maskz_shuffle_ps(0xFFFF, s3[0], s3[1], 0xDD));
}
inline constexpr int grouped_trees_lane(int i) { return 4 * (i % 4) + i / 4; }

// Marks the compact format (five u8 fields per 64-byte block, decoded by codes.hpp's decode_compact_block).
struct GroupedCompactFields {
  using Format = TernaryCompact;
  static constexpr int fields = 5;
};

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
