// bitlinear internal: the GEMV of the AVX2-class families: the row kernel, the stream driver, and the compact
// (1.6-bit) GEMV.
#pragma once
#include "../../detail/internal_only.hpp"

// the GEMV row kernel of the AVX2-class families, one template for both formats and both
// families: raw sums S = sum_k q[k] * u[j][k] (u = the stored field, codes.hpp) of R rows against one
// activation row, in any execution layout (interface.hpp).
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
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "target.hpp"
#include "../avxvnni/target.hpp"
#include "../../activations.hpp"
#include "../interface.hpp"
#include "../row_streams.hpp"
#include "codes.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

struct MaddubsMac {
  static constexpr std::size_t int16_blocks = 4;  // blocks summed in int16 before widening (0: int32 throughout)
  BITLINEAR_AVX2_TARGET
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
BITLINEAR_AVX2_TARGET
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
BITLINEAR_AVX2_TARGET
inline void dot_rows_upto(std::size_t rows, const RowRun& run, const std::int8_t* q, std::int32_t* raw) noexcept {
  if constexpr (R > 1) {
    if (rows < static_cast<std::size_t>(R)) return dot_rows_upto<Format, Mac, R - 1, Span>(rows, run, q, raw);
  }
  dot_rows<Format, Mac, R, Span, 1>(run, q, 0, raw, 0);
}

// dot_rows of one row for a run-time token count 1..T.
template <class Format, class Mac, int Span, int T>
BITLINEAR_AVX2_TARGET
inline void dot_row_tokens(std::size_t tokens, const RowRun& run, const std::int8_t* q, std::size_t q_stride,
                           std::int32_t* raw, std::size_t raw_stride) noexcept {
  if constexpr (T > 1) {
    if (tokens < static_cast<std::size_t>(T)) {
      return dot_row_tokens<Format, Mac, Span, T - 1>(tokens, run, q, q_stride, raw, raw_stride);
    }
  }
  dot_rows<Format, Mac, 1, Span, T>(run, q, q_stride, raw, raw_stride);
}

// --------------------------------------------------------------------------------------------------------------
// The GEMV driver of the AVX2-class families (batches below the family's gemm_min_batch).
//
// The weights are in the canonical layout (the grid slot's group rows are 1; this GEMV reads no other). Rows go
// in runs of up to R through the row kernel above, R = the family's gemv_shape().rows. At batch 1 a run is row i of
// R streams (row_streams.hpp): the range cut into R contiguous parts of whole 64-row chunks, so a run's rows sit
// part * row_bytes apart and the layer is read as R linear passes side by side (as the avx512 GEMV does, which
// keeps more misses in flight than one pass: docs/avx2.md). With more tokens (up to 4 per pass), each row of the
// run goes through the kernel against up to T tokens at once, which takes the fields out once for all of them: the
// run's bytes come from memory once and from L1 after. 64 raw sums per token (or per stream) go through the
// vectorized epilogue (codes.hpp) at a time.
// Prefetch: at batch 1 each block load also prefetches prefetch_bytes further on in its stream; at batch > 1 the
// same block of the rows ~canonical_prefetch_bytes further on; only the first call on a run prefetches, and never
// past the end of the weight buffer.

// Measured with bench/avx2_micro_bench.cpp (docs/avx2.md).
inline constexpr std::size_t prefetch_bytes = 4096;
inline constexpr std::size_t canonical_prefetch_bytes = 16384;

inline constexpr std::size_t gemv_chunk_rows = 64;
inline constexpr std::size_t gemv_pass_tokens = 4;

// Batch 1, canonical layout: row i of R streams per kernel call (see the top of the file). raw holds a chunk of
// 64 sums per stream.
template <class Format, class Mac, int R, int Span>
BITLINEAR_AVX2_TARGET
inline void gemv_streams(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                         std::size_t row_end, const Epilogue& e, float* y,
                         std::int32_t (&raw)[gemv_pass_tokens][gemv_chunk_rows]) noexcept {
  static_assert(R <= static_cast<int>(gemv_pass_tokens), "one raw chunk per stream");
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  const std::size_t rows = row_end - row_begin;
  const std::size_t part = stream_part_rows(rows, R, gemv_chunk_rows);
  for (std::size_t c = 0; c < part; c += gemv_chunk_rows) {
    const auto chunk = stream_chunk<R>(row_begin, rows, part, R, gemv_chunk_rows, c);
    for (std::size_t i = 0; i < chunk.count[0]; ++i) {
      const std::size_t streams = streams_holding_row(chunk, R, i);
      RowRun run{w.data + chunk.first[0] * w.row_bytes + i * w.row_bytes, part * w.row_bytes, packed_block_bytes,
                 blocks, prefetch_bytes};
      const std::uint8_t* last = run.rows + (streams - 1) * run.row_step + (blocks - 1) * run.block_step;
      if (static_cast<std::size_t>(w.end() - last) < packed_block_bytes + prefetch_bytes) run.prefetch_offset = 0;
      std::int32_t sums[R];
      dot_rows_upto<Format, Mac, R, Span>(streams, run, a.q, sums);
      for (std::size_t s = 0; s < streams; ++s) raw[s][i] = sums[s];
    }
    for (std::size_t s = 0; s < static_cast<std::size_t>(R) && chunk.count[s] != 0; ++s) {
      write_outputs<Format>(raw[s], chunk.count[s], a.sum[0], a.scale[0], e, chunk.first[s], y);
    }
  }
}

// R rows per run at batch 1; with more tokens, runs of one row against up to T tokens at a time (gemv.hpp).
template <class Format, class Mac, int R, int Span, int T>
BITLINEAR_AVX2_TARGET
inline void gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                 const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  const std::size_t run_bytes = R * w.row_bytes;
  const std::size_t prefetch_offset = (canonical_prefetch_bytes / run_bytes + 1) * run_bytes;
  alignas(32) std::int32_t raw[gemv_pass_tokens][gemv_chunk_rows];
  if (a.batch == 1 && R > 1) {
    gemv_streams<Format, Mac, R, Span>(w, a, row_begin, row_end, e, y, raw);
    return;
  }
  for (std::size_t t0 = 0; t0 < a.batch; t0 += gemv_pass_tokens) {
    const std::size_t tokens = a.batch - t0 < gemv_pass_tokens ? a.batch - t0 : gemv_pass_tokens;
    const std::int8_t* q = a.q + t0 * a.stride;
    for (std::size_t j0 = row_begin; j0 < row_end; j0 += gemv_chunk_rows) {
      const std::size_t count = row_end - j0 < gemv_chunk_rows ? row_end - j0 : gemv_chunk_rows;
      for (std::size_t r0 = 0; r0 < count;) {
        const std::size_t row = j0 + r0;
        const std::size_t rows = count - r0 < static_cast<std::size_t>(R) ? count - r0 : R;
        RowRun run{w.data + row * w.row_bytes, w.row_bytes, packed_block_bytes, blocks, prefetch_offset};
        // The farthest byte the run prefetches must lie inside the buffer.
        const std::uint8_t* last = run.rows + (rows - 1) * run.row_step + (blocks - 1) * run.block_step;
        if (static_cast<std::size_t>(w.end() - last) < packed_block_bytes + prefetch_offset) run.prefetch_offset = 0;
        if (tokens == 1) {
          dot_rows_upto<Format, Mac, R, Span>(rows, run, q, raw[0] + r0);
        } else {
          // Each row against up to T tokens at a time; the first call brings the run's bytes into L1.
          for (std::size_t r = 0; r < rows; ++r) {
            RowRun one = run;
            one.rows += r * run.row_step;
            for (std::size_t t = 0; t < tokens; t += static_cast<std::size_t>(T)) {
              dot_row_tokens<Format, Mac, Span, T>(tokens - t < static_cast<std::size_t>(T) ? tokens - t : T, one, q + t * a.stride, a.stride,
                                                   raw[t] + r0 + r, gemv_chunk_rows);
              one.prefetch_offset = 0;
            }
          }
        }
        r0 += rows;
      }
      for (std::size_t t = 0; t < tokens; ++t) {
        const std::size_t token = t0 + t;
        write_outputs<Format>(raw[t], count, a.sum[token], a.scale[token], e, j0, y + token * y_stride);
      }
    }
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END

// --------------------------------------------------------------------------------------------------------------
// Compact ternary GEMV (format_compact.hpp) for the avx2 and avxvnni families, which have no
// 64-entry byte lookup: per 32-byte half of a block,
//   c = v & 63;  p = c div 7 = (c * 37) >> 8 (exact for c <= 62; vpmaddubsw on the even and odd bytes)
//   f3 = T3[p], f4 = T4[p] (vpshufb, p <= 8);  s = c - 7p;  w = 4 s + (v >> 6)
//   f_i = L_i[w] for w < 16, H_i[w - 16] otherwise: two vpshufb whose out-of-range index has bit 7 set (so the
//         instruction writes 0), OR-ed: index w + 0x70 for L (bit 7 set from w = 16 on), w - 16 for H (bit 7 set
//         below 16, by wrap-around)
// then field i meets the activations q[320 b + 64 i + 32 h ..]: vpdpbusd (avxvnni) or vpmaddubsw + vpmaddwd (avx2;
// |f q + f q| <= 512 in int16). raw = sum f q; dot = raw - sum q; y by the ternary epilogue (avx2/codes.hpp's
// order: (float)dot / s_x / s_w + bias). The last block runs only its fields below in_features. Batches from
// compact_gemm_min_batch on decode to 2-bit rows and run the family's ternary GEMM (compact_fallback.hpp).

#if BITLINEAR_ARCH_X86_64
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../format_compact.hpp"
#include "../compact_fallback.hpp"
#include "../../detail/exact_float.hpp"

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

BITLINEAR_AVX2_INLINE CompactShuffleTables load_compact_shuffle_tables() noexcept {
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
BITLINEAR_AVX2_INLINE void decode_compact_half(__m256i v, const CompactShuffleTables& t,
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

// decode_compact_row_to_ternary (compact_fallback.hpp) with the decode above, for the families whose large batches
// (or, on avx512 without VBMI, every batch) run the 2-bit kernels on decoded rows: compact field i of block b is
// weights k0 = 320 b + 64 i ..; they are field k0 % 256 / 64 of 2-bit block k0 / 256, byte for byte, so 32 decoded
// bytes (values 0..2) shift into their 2-bit field of 32 output bytes (f << 6 <= 128 stays inside the byte).
// Weights past in_features are padding in both formats (the compact padding decodes to code 0).
BITLINEAR_AVX2_TARGET inline void decode_compact_row_avx2(const PackedWeightsView& w, std::size_t j,
                                                          std::uint8_t* out) noexcept {
  const std::size_t out_bytes = Ternary::packed_row_bytes(w.in_features);
  for (std::size_t i = 0; i < out_bytes; ++i) out[i] = Ternary::zero_byte;
  const CompactShuffleTables t = load_compact_shuffle_tables();
  const std::uint8_t* row = w.row(j);
  const std::size_t step = w.block_step(j);
  for (std::size_t b = 0; b * TernaryCompact::weights_per_block < w.in_features; ++b) {
    for (int h = 0; h < 2; ++h) {
      __m256i f[5];
      decode_compact_half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * step + 32 * h)), t, f);
      for (int i = 0; i < 5; ++i) {
        const std::size_t k0 = b * TernaryCompact::weights_per_block + 64 * static_cast<std::size_t>(i);
        if (k0 >= w.in_features) break;
        auto* dst = reinterpret_cast<__m256i*>(out + k0 / 256 * 64 + 32 * h);
        const int shift = static_cast<int>(k0 % 256 / 64 * 2);
        const __m256i keep = _mm256_set1_epi8(static_cast<char>(~(3u << shift)));
        const __m256i field = _mm256_sll_epi16(f[i], _mm_cvtsi32_si128(shift));
        _mm256_storeu_si256(dst, _mm256_or_si256(_mm256_and_si256(_mm256_loadu_si256(dst), keep), field));
      }
    }
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
        y[tok * y_stride + j] = ternary_output(dot, a.scale[tok], e, j);                                               \
      }                                                                                                             \
    }                                                                                                               \
  }

// avx2: vpmaddubsw (|f q + f q| <= 512, no int16 saturation) then vpmaddwd by 1 into int32.
#define BITLINEAR_COMPACT_MADDUBS(acc, f, q) \
  _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(f, q), _mm256_set1_epi16(1)))
#define BITLINEAR_COMPACT_DPBUSD(acc, f, q) _mm256_dpbusd_avx_epi32(acc, f, q)

BITLINEAR_DEFINE_COMPACT_GEMV(compact_gemv_avx2, BITLINEAR_AVX2_TARGET, BITLINEAR_COMPACT_MADDUBS)
BITLINEAR_DEFINE_COMPACT_GEMV(compact_gemv_avxvnni, BITLINEAR_AVXVNNI_TARGET, BITLINEAR_COMPACT_DPBUSD)

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
    compact_matmul_via_ternary(Ternary2Bit, &decode_compact_row_avx2, w, a, row_begin, row_end, e, y, y_stride);
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
