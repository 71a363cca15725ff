// bitlinear internal: compact ternary GEMV (format_compact.hpp) for the avx2 and avxvnni families, which have no
// 64-entry byte lookup: per 32-byte half of a block,
//   c = v & 63;  p = c div 7 = (c * 37) >> 8 (exact for c <= 62; vpmaddubsw on the even and odd bytes)
//   f3 = T3[p], f4 = T4[p] (vpshufb, p <= 8);  s = c - 7p;  w = 4 s + (v >> 6)
//   f_i = L_i[w] for w < 16, H_i[w - 16] otherwise: two vpshufb whose out-of-range index has bit 7 set (so the
//         instruction writes 0), OR-ed: index w + 0x70 for L (bit 7 set from w = 16 on), w - 16 for H (bit 7 set
//         below 16, by wrap-around)
// then field i meets the activations q[320 b + 64 i + 32 h ..]: vpdpbusd (avxvnni) or vpmaddubsw + vpmaddwd (avx2;
// |f q + f q| <= 512 in int16). raw = sum f q; dot = raw - sum q; y by the ternary epilogue (avx2/epilogue.hpp's
// order: (float)dot / s_x / s_w + bias). The last block runs only its fields below in_features. Batches from
// compact_gemm_min_batch on decode to 2-bit rows and run the family's ternary GEMM (compact_fallback.hpp).
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

#if BITLINEAR_ARCH_X86_64
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../format_compact.hpp"
#include "../compact_fallback.hpp"
#include "../../detail/exact_float.hpp"
#include "../interface.hpp"
#include "reduce.hpp"

#define BITLINEAR_AVX2_COMPACT_TARGET BITLINEAR_TARGET("avx2,fma,f16c")
#define BITLINEAR_AVXVNNI_COMPACT_TARGET BITLINEAR_TARGET("avxvnni,avx2,fma,f16c")

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

inline constexpr std::size_t compact_gemm_min_batch = 4;

struct CompactShuffleLookup {
  std::uint8_t t3[32], t4[32], t7[32], lo[3][32], hi[3][32];  // each 16-byte table twice (both 128-bit lanes)
};

constexpr CompactShuffleLookup make_compact_shuffle_lookup() {
  CompactShuffleLookup t{};
  for (unsigned lane = 0; lane < 2; ++lane) {
    for (unsigned p = 0; p < 9; ++p) {
      t.t3[16 * lane + p] = static_cast<std::uint8_t>(p % 3);
      t.t4[16 * lane + p] = static_cast<std::uint8_t>(p / 3);
      t.t7[16 * lane + p] = static_cast<std::uint8_t>(7 * p);
    }
    for (unsigned l = 0; l < 16; ++l) {
      const unsigned digits_lo[3] = {l % 3, l / 3 % 3, l / 9};
      const unsigned w = 16 + l;  // w <= 26 in valid bytes
      const unsigned digits_hi[3] = {w % 3, w / 3 % 3, w / 9};
      for (unsigned i = 0; i < 3; ++i) {
        t.lo[i][16 * lane + l] = static_cast<std::uint8_t>(digits_lo[i]);
        t.hi[i][16 * lane + l] = static_cast<std::uint8_t>(w < 27 ? digits_hi[i] : 0);
      }
    }
  }
  return t;
}

inline constexpr CompactShuffleLookup compact_shuffle_lookup = make_compact_shuffle_lookup();

struct CompactShuffleTables {
  __m256i t3, t4, t7, lo[3], hi[3];
};

#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVX2_COMPACT_INLINE BITLINEAR_AVX2_COMPACT_TARGET __attribute__((always_inline)) inline
#else
#define BITLINEAR_AVX2_COMPACT_INLINE inline
#endif

BITLINEAR_AVX2_COMPACT_INLINE CompactShuffleTables load_compact_shuffle_tables() noexcept {
  const CompactShuffleLookup& t = compact_shuffle_lookup;
  CompactShuffleTables r;
  r.t3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.t3));
  r.t4 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.t4));
  r.t7 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.t7));
  for (int i = 0; i < 3; ++i) {
    r.lo[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.lo[i]));
    r.hi[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.hi[i]));
  }
  return r;
}

// The five fields of 32 bytes of a block (f[i] byte j = field i of byte j).
BITLINEAR_AVX2_COMPACT_INLINE void decode_compact_half(__m256i v, const CompactShuffleTables& t,
                                                              __m256i (&f)[5]) noexcept {
  const __m256i c = _mm256_and_si256(v, _mm256_set1_epi8(63));
  const __m256i even = _mm256_maddubs_epi16(c, _mm256_set1_epi16(37));
  const __m256i odd = _mm256_maddubs_epi16(c, _mm256_set1_epi16(37 << 8));
  const __m256i p = _mm256_or_si256(_mm256_srli_epi16(even, 8),
                                    _mm256_and_si256(odd, _mm256_set1_epi16(static_cast<short>(0xFF00))));
  f[3] = _mm256_shuffle_epi8(t.t3, p);
  f[4] = _mm256_shuffle_epi8(t.t4, p);
  const __m256i s = _mm256_sub_epi8(c, _mm256_shuffle_epi8(t.t7, p));                 // 0..6
  const __m256i top = _mm256_and_si256(_mm256_srli_epi16(v, 6), _mm256_set1_epi8(3));  // byte >> 6
  const __m256i w = _mm256_or_si256(_mm256_slli_epi16(s, 2), top);                    // s << 2 stays in its byte
  const __m256i index_lo = _mm256_add_epi8(w, _mm256_set1_epi8(0x70));
  const __m256i index_hi = _mm256_sub_epi8(w, _mm256_set1_epi8(16));
  for (int i = 0; i < 3; ++i) {
    f[i] = _mm256_or_si256(_mm256_shuffle_epi8(t.lo[i], index_lo), _mm256_shuffle_epi8(t.hi[i], index_hi));
  }
}

// A family's GEMV: sum f q over each row (two accumulators), dot = raw - sum q, the ternary epilogue. Defined once
// per family by a macro, because the target attribute (avx2 or avxvnni) cannot be a template parameter; DOT(acc,
// f, q) is the family's u8 x s8 dot product into int32 lanes.
#define BITLINEAR_DEFINE_COMPACT_GEMV(NAME, TARGET, DOT)                                                             \
  TARGET inline void NAME(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,              \
                          std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) noexcept {        \
    const CompactShuffleTables t = load_compact_shuffle_tables();                                                   \
    const std::size_t blocks = w.row_bytes / packed_block_bytes;                                                    \
    const int tail_fields = static_cast<int>((w.in_features - 320 * (blocks - 1) + 63) / 64);                       \
    for (std::size_t tok = 0; tok < a.batch; ++tok) {                                                               \
      const std::int8_t* q = a.q + tok * a.stride;                                                                  \
      for (std::size_t j = row_begin; j < row_end; ++j) {                                                           \
        const std::uint8_t* row = w.row(j);                                                                         \
        const std::size_t step = w.block_step(j);                                                                   \
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();                                       \
        for (std::size_t b = 0; b < blocks; ++b) {                                                                  \
          const int fields = b + 1 == blocks ? tail_fields : 5;                                                     \
          const std::int8_t* qb = q + 320 * b;                                                                      \
          for (int h = 0; h < 2; ++h) {                                                                             \
            __m256i f[5];                                                                                           \
            decode_compact_half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * step + 32 * h)), t,   \
                                f);                                                                                 \
            for (int i = 0; i < fields; ++i) {                                                                      \
              const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb + 64 * i + 32 * h));        \
              if (i % 2 == 0) {                                                                                     \
                acc0 = DOT(acc0, f[i], qv);                                                                         \
              } else {                                                                                              \
                acc1 = DOT(acc1, f[i], qv);                                                                         \
              }                                                                                                     \
            }                                                                                                       \
          }                                                                                                         \
        }                                                                                                           \
        const std::int32_t dot = horizontal_sum(_mm256_add_epi32(acc0, acc1)) - a.sum[tok];                         \
        y[tok * y_stride + j] = exact_add(exact_div(exact_div(static_cast<float>(dot), a.scale[tok]), e.s_w), e.bias[j]); \
      }                                                                                                             \
    }                                                                                                               \
  }

// avx2: vpmaddubsw (|f q + f q| <= 512, no int16 saturation) then vpmaddwd by 1 into int32.
#define BITLINEAR_COMPACT_MADDUBS(acc, f, q) \
  _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(f, q), _mm256_set1_epi16(1)))
#define BITLINEAR_COMPACT_DPBUSD(acc, f, q) _mm256_dpbusd_avx_epi32(acc, f, q)

BITLINEAR_DEFINE_COMPACT_GEMV(compact_gemv_avx2, BITLINEAR_AVX2_COMPACT_TARGET, BITLINEAR_COMPACT_MADDUBS)
BITLINEAR_DEFINE_COMPACT_GEMV(compact_gemv_avxvnni, BITLINEAR_AVXVNNI_COMPACT_TARGET, BITLINEAR_COMPACT_DPBUSD)

#undef BITLINEAR_DEFINE_COMPACT_GEMV
#undef BITLINEAR_COMPACT_MADDUBS
#undef BITLINEAR_COMPACT_DPBUSD

// The compact MatmulKernel of a family (Gemv: its compact GEMV above; Ternary2Bit: its 2-bit matmul, used for
// large batches through compact_fallback.hpp).
template <MatmulKernel Gemv, MatmulKernel Ternary2Bit>
inline void compact_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch < compact_gemm_min_batch) {
    Gemv(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    compact_matmul_via_ternary(Ternary2Bit, w, a, row_begin, row_end, e, y, y_stride);
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
