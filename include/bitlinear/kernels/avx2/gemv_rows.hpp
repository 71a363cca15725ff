// bitlinear internal: the GEMV row kernel of the AVX2-class families, one template for both formats and both
// families: raw sums S = sum_k q[k] * u[j][k] (u = the stored field, epilogue.hpp) of R rows against one
// activation row, in any execution layout (kernels.hpp).
//
// Fields: a 32-byte half h of a 64-byte block holds, in field i (bits b*i .. b*i + b - 1 of each byte, b =
// bits_per_weight), u for k = 64i + 32h + 0..31 (format.hpp), lined up with one 32-byte load of q. Span fields
// share one 16-bit shift (by b*i for the first of them, none for i = 0): masking the shifted half with
// (2^b - 1) << b*f leaves 2^(b*f) * u of field i + f in every byte (the bits a 16-bit shift brings in from the
// neighbouring byte sit above every mask), so a half costs fields / Span - 1 shifts instead of fields - 1.
// Field f of a span goes into accumulator f; every lane of it is a multiple of 2^(b*f), so an arithmetic right
// shift by b*f divides it exactly before the accumulators are added.
//
// Mac (multiply-accumulate of u8 x s8, 4 bytes per int32 lane):
//   Maddubs (avx2): vpmaddubsw(u, q) + vpaddw into int16, Span <= 2. A pair of products of a scaled field is at
//     worst 2 * 2^b * u_max * -128 (u_max = 2 ternary, 1 binary): -2048 ternary, -512 binary, so the scaled
//     products of 4 blocks (16 ternary, 32 binary) sum to at least -32768 / -16384 (at most 32512 / 16256):
//     within int16; the unscaled ones stay far inside. vpmaddubsw saturates only beyond a pair's range and vpaddw
//     never wraps here. Every int16_blocks = 4 blocks, acc0 + (acc1 >> b) (|.| <= 16384) is widened with
//     vpmaddwd(., 1) into the int32 accumulator `wide`.
//   Dpbusd (avxvnni): VEX vpdpbusd adds the 4 products of a dword straight into int32, Span up to every field.
//     A lane of accumulator f holds at most in / 32 (ternary) or in / 64 (binary) weights, each product at most
//     2^(b*f) * 2 * 128 <= 2^14 in magnitude, so |lane| <= 2^29 for in <= 2^20: no wrap.
#pragma once
#include "../../detail/internal_only.hpp"

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "reduce.hpp"
#include "unroll.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

struct MaddubsMac {
  static constexpr std::size_t int16_blocks = 4;  // blocks summed in int16 before widening (0: int32 throughout)
  BITLINEAR_TARGET("avx2,fma,f16c")
  static __m256i mac(__m256i acc, __m256i u, const std::int8_t* q) noexcept {
    return _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q))));
  }
};

// R rows of one run of the layout: block b of row r at rows + r * row_step + b * block_step.
struct RowRun {
  const std::uint8_t* rows;
  std::size_t row_step;
  std::size_t block_step;
  std::size_t blocks;
  std::size_t prefetch_offset;  // each block load also prefetches this many bytes further on (0: none)
};

// raw[t * raw_stride + r] = S of row r < R of `run` against token t < T (activations q + t * q_stride) over the
// run's blocks and q[0, weights_per_block * blocks). Span fields share a shift (see above: 2 for pairs,
// 8 / bits_per_weight for every field in place, 1 for none). With T > 1 the fields of each half are taken out
// once for all T tokens.
template <class Format, class Mac, int R, int Span, int T>
BITLINEAR_TARGET("avx2,fma,f16c")
inline void dot_rows(const RowRun& run, const std::int8_t* q, std::size_t q_stride, std::int32_t* raw,
                     std::size_t raw_stride) noexcept {
  constexpr int bits = Format::bits_per_weight;
  constexpr int fields = 8 / bits;
  constexpr std::size_t block_weights = Format::weights_per_block;
  constexpr bool int16_stage = Mac::int16_blocks != 0;
  static_assert(fields % Span == 0 && (!int16_stage || Span <= 2), "int16 sums hold fields of scale 1 and 2^b only");
  __m256i mask[Span];
  BITLINEAR_AVX2_UNROLL
  for (int f = 0; f < Span; ++f) mask[f] = _mm256_set1_epi8(static_cast<char>(((1 << bits) - 1) << (bits * f)));
  __m256i acc[R][T][Span], wide[T][R];
  BITLINEAR_AVX2_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_AVX2_UNROLL
    for (int t = 0; t < T; ++t) {
      wide[t][r] = _mm256_setzero_si256();
      BITLINEAR_AVX2_UNROLL
      for (int f = 0; f < Span; ++f) acc[r][t][f] = _mm256_setzero_si256();
    }
  }
  const std::uint8_t* block = run.rows;
  for (std::size_t b = 0; b < run.blocks;) {
    const std::size_t stage = int16_stage ? Mac::int16_blocks : run.blocks;
    const std::size_t stage_end = run.blocks - b < stage ? run.blocks : b + stage;
    for (; b < stage_end; ++b, block += run.block_step) {
      if (run.prefetch_offset != 0) {
        BITLINEAR_AVX2_UNROLL
        for (int r = 0; r < R; ++r) {
          _mm_prefetch(reinterpret_cast<const char*>(block + r * run.row_step + run.prefetch_offset), _MM_HINT_T0);
        }
      }
      const std::int8_t* qb = q + block_weights * b;
      BITLINEAR_AVX2_UNROLL
      for (int h = 0; h < 2; ++h) {
        BITLINEAR_AVX2_UNROLL
        for (int r = 0; r < R; ++r) {
          const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + r * run.row_step + 32 * h));
          BITLINEAR_AVX2_UNROLL
          for (int i = 0; i < fields; i += Span) {
            const __m256i s = i == 0 ? packed : _mm256_srli_epi16(packed, bits * i);
            BITLINEAR_AVX2_UNROLL
            for (int f = 0; f < Span; ++f) {
              const __m256i u = _mm256_and_si256(s, mask[f]);
              BITLINEAR_AVX2_UNROLL
              for (int t = 0; t < T; ++t) {
                acc[r][t][f] = Mac::mac(acc[r][t][f], u, qb + t * q_stride + 64 * (i + f) + 32 * h);
              }
            }
          }
        }
      }
    }
    if constexpr (int16_stage) {
      const __m256i ones16 = _mm256_set1_epi16(1);
      BITLINEAR_AVX2_UNROLL
      for (int r = 0; r < R; ++r) {
        BITLINEAR_AVX2_UNROLL
        for (int t = 0; t < T; ++t) {
          __m256i sum16 = acc[r][t][0];
          BITLINEAR_AVX2_UNROLL
          for (int f = 1; f < Span; ++f) sum16 = _mm256_add_epi16(sum16, _mm256_srai_epi16(acc[r][t][f], bits * f));
          wide[t][r] = _mm256_add_epi32(wide[t][r], _mm256_madd_epi16(sum16, ones16));
          BITLINEAR_AVX2_UNROLL
          for (int f = 0; f < Span; ++f) acc[r][t][f] = _mm256_setzero_si256();
        }
      }
    }
  }
  if constexpr (!int16_stage) {
    BITLINEAR_AVX2_UNROLL
    for (int r = 0; r < R; ++r) {
      BITLINEAR_AVX2_UNROLL
      for (int t = 0; t < T; ++t) {
        wide[t][r] = acc[r][t][0];
        BITLINEAR_AVX2_UNROLL
        for (int f = 1; f < Span; ++f) wide[t][r] = _mm256_add_epi32(wide[t][r], _mm256_srai_epi32(acc[r][t][f], bits * f));
      }
    }
  }
  BITLINEAR_AVX2_UNROLL
  for (int t = 0; t < T; ++t) store_sums<R>(wide[t], raw + t * raw_stride);
}

// dot_rows for a run-time row count 1..R (one token).
template <class Format, class Mac, int R, int Span>
BITLINEAR_TARGET("avx2,fma,f16c")
inline void dot_rows_upto(std::size_t rows, const RowRun& run, const std::int8_t* q, std::int32_t* raw) noexcept {
  if constexpr (R > 1) {
    if (rows < static_cast<std::size_t>(R)) return dot_rows_upto<Format, Mac, R - 1, Span>(rows, run, q, raw);
  }
  dot_rows<Format, Mac, R, Span, 1>(run, q, 0, raw, 0);
}

// dot_rows of one row for a run-time token count 1..T.
template <class Format, class Mac, int Span, int T>
BITLINEAR_TARGET("avx2,fma,f16c")
inline void dot_row_tokens(std::size_t tokens, const RowRun& run, const std::int8_t* q, std::size_t q_stride,
                           std::int32_t* raw, std::size_t raw_stride) noexcept {
  if constexpr (T > 1) {
    if (tokens < static_cast<std::size_t>(T)) {
      return dot_row_tokens<Format, Mac, Span, T - 1>(tokens, run, q, q_stride, raw, raw_stride);
    }
  }
  dot_rows<Format, Mac, 1, Span, T>(run, q, q_stride, raw, raw_stride);
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
