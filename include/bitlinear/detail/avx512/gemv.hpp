// bitlinear internal: avx512 GEMV (a few tokens, memory bound): the canonical packed rows as they are, one
// 64-byte load per block and row, shift/mask to u8 fields, vpdpbusd against the int8 activations.
//
// Shape of the work: a group of R <= 4 consecutive output rows times T <= 4 tokens. Per 64-byte block, each of
// the R rows is loaded once and split into its fields (4 ternary, 8 binary); each field's 64 activations of
// each token are loaded once and shared by the R rows. R*T zmm accumulators hold raw = sum f*q (see codes.hpp
// for the epilogue). At batch 1 the fields are only masked, not shifted (field_in_place), with one accumulator
// per row and field (ternary 4 rows x 4, binary 2 rows x 8): 2 vector ops per 64 weights instead of 3. Rows are handled 16 at a time
// so that one vectorized epilogue writes 16 outputs per token (masked at the end of the range).
// Memory order: the layer stores its weights in groups of single_token_rows rows interleaved block by block
// (kernels.hpp), so at batch 1 a row group reads one linear stream and the whole layer is one pass over memory;
// any other layout (canonical rows, other group sizes, row ranges that start inside a group) gives the same
// results, read less linearly.
// Prefetch: every 64-byte load also prefetches the byte `prefetch_offset` further on: kPrefetchBytes in an
// interleaved layout (one stream), the same block of the rows ~kCanonicalPrefetchBytes further on in the
// canonical layout; never past the end of the weight buffer. The hint is T1 (into L2, not L1): an L1 prefetch
// holds one of the core's few line-fill buffers until the line arrives, which caps the misses in flight; measured
// on the 0.2 machine (README, decode), T1 streamed 6912x2560 and 2560x6912 at 1.05-1.27x a plain read of the same
// bytes (median 1.11) against 1.10-1.31x (median 1.24) with T0 (no prefetch: 1.6x; 4, 8 and 16 KiB ahead alike).
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include "../kernels.hpp"
#include "codes.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline constexpr std::size_t kGemvMaxRows = 4;
inline constexpr std::size_t kGemvMaxTokens = 4;
// Prefetch distance in the linear stream of an interleaved layout (measured: ../shared/experiments/stream_layout.cpp
// and bench/avx512_micro_bench.cpp).
inline constexpr std::size_t kPrefetchBytes = 4096;
// Canonical layout: prefetch the rows about this many bytes ahead of the current group (at least one group ahead).
inline constexpr std::size_t kCanonicalPrefetchBytes = 16384;

// One field of one block: acc[r][t] += field(w[r]) . q[t], for every row r and token t. At batch 1 (InPlace),
// each field keeps its scale 2^(bits*Field) and has its own accumulator (see field_in_place in codes.hpp).
template <class Codes, int R, int T, int A, bool InPlace, int Field>
BITLINEAR_AVX512_INLINE void gemv_field(const __m512i (&w)[R], const std::int8_t* q_block, std::size_t q_stride,
                                        __m512i (&acc)[R][T * A]) {
  __m512i q[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) q[t] = _mm512_loadu_si512(q_block + static_cast<std::size_t>(t) * q_stride + 64 * Field);
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512i f = InPlace ? field_in_place<Codes, Field>(w[r]) : Codes::template field<Field>(w[r]);
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) acc[r][t * A + Field % A] = dpbusd(acc[r][t * A + Field % A], f, q[t]);
  }
  if constexpr (Field + 1 < Codes::fields) {
    gemv_field<Codes, R, T, A, InPlace, Field + 1>(w, q_block, q_stride, acc);
  }
}

// Sum of the accumulators of one (row, token): undoes the in-place field scales.
template <class Codes, int A, bool InPlace>
BITLINEAR_AVX512_INLINE __m512i combine_accumulators(const __m512i* acc) {
  __m512i sum = acc[0];
  BITLINEAR_UNROLL
  for (int i = 1; i < A; ++i) {
    sum = _mm512_add_epi32(sum, InPlace ? _mm512_maskz_srai_epi32(0xFFFF, acc[i], Codes::field_bits * i) : acc[i]);
  }
  return sum;
}

// R rows of one run (kernels.hpp): block b of row r at rows + r * row_step + b * block_step.
struct RowRun {
  const std::uint8_t* rows;
  std::size_t row_step;
  std::size_t block_step;
  std::size_t blocks;
  std::size_t prefetch_offset;  // 0: no prefetch
};

// raw[t][r0 + r] = sum over the row of field * q for the R rows of `run`, tokens [0, T) starting at `q`.
template <class Codes, int R, int T>
BITLINEAR_AVX512_TARGET inline void gemv_rows(const RowRun& run, const std::int8_t* q, std::size_t q_stride,
                                              std::int32_t (&raw)[kGemvMaxTokens][16], std::size_t r0) {
  constexpr bool in_place = T == 1;
  constexpr int A = in_place ? Codes::fields : 1;
  __m512i acc[R][T * A];
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int i = 0; i < T * A; ++i) acc[r][i] = _mm512_setzero_si512();
  }
  const std::uint8_t* block = run.rows;
  for (std::size_t b = 0; b < run.blocks; ++b, block += run.block_step) {
    __m512i w[R];
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) w[r] = _mm512_loadu_si512(block + static_cast<std::size_t>(r) * run.row_step);
    if (run.prefetch_offset != 0) {
      BITLINEAR_UNROLL
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(block + static_cast<std::size_t>(r) * run.row_step +
                                                   run.prefetch_offset),
                     _MM_HINT_T1);
      }
    }
    gemv_field<Codes, R, T, A, in_place, 0>(w, q + Codes::block_weights * b, q_stride, acc);
  }
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      raw[t][r0 + static_cast<std::size_t>(r)] = reduce_add_epi32(combine_accumulators<Codes, A, in_place>(&acc[r][t * A]));
    }
  }
}

template <class Codes, int T>
BITLINEAR_AVX512_TARGET inline void gemv_row_group(std::size_t rows_in_group, const RowRun& run, const std::int8_t* q,
                                                   std::size_t q_stride, std::int32_t (&raw)[kGemvMaxTokens][16],
                                                   std::size_t r0) {
  constexpr std::size_t max_rows = T == 1 ? Codes::single_token_rows : kGemvMaxRows;
  if constexpr (max_rows == 4) {
    switch (rows_in_group) {
      case 1: gemv_rows<Codes, 1, T>(run, q, q_stride, raw, r0); break;
      case 2: gemv_rows<Codes, 2, T>(run, q, q_stride, raw, r0); break;
      case 3: gemv_rows<Codes, 3, T>(run, q, q_stride, raw, r0); break;
      default: gemv_rows<Codes, 4, T>(run, q, q_stride, raw, r0); break;
    }
  } else {
    static_assert(max_rows == 2, "GEMV row groups hold 2 or 4 rows");
    if (rows_in_group == 1) {
      gemv_rows<Codes, 1, T>(run, q, q_stride, raw, r0);
    } else {
      gemv_rows<Codes, 2, T>(run, q, q_stride, raw, r0);
    }
  }
}

// Outputs [row_begin, row_end) of tokens [t0, t0 + T).
template <class Codes, int T>
BITLINEAR_AVX512_TARGET inline void gemv_tokens(const PackedWeightsView& w, const ActivationsView& a, std::size_t t0,
                                                std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                float* y, std::size_t y_stride) {
  const std::int8_t* q = a.q + t0 * a.stride;
  const std::size_t blocks = w.row_bytes / 64;
  const std::size_t canonical_prefetch_rows =
      (kCanonicalPrefetchBytes / w.row_bytes + kGemvMaxRows - 1) / kGemvMaxRows * kGemvMaxRows + kGemvMaxRows;
  const std::size_t prefetch_offset = w.group_rows == 1 ? canonical_prefetch_rows * w.row_bytes : kPrefetchBytes;
  for (std::size_t j0 = row_begin; j0 < row_end; j0 += 16) {
    const std::size_t count = row_end - j0 < 16 ? row_end - j0 : 16;
    alignas(64) std::int32_t raw[kGemvMaxTokens][16] = {};
    constexpr std::size_t max_rows = T == 1 ? Codes::single_token_rows : kGemvMaxRows;
    for (std::size_t r0 = 0; r0 < count;) {
      const std::size_t row = j0 + r0;
      // The rows of one call share a run of the layout (kernels.hpp): stop at the end of the row's group.
      std::size_t rows_in_group = count - r0 < max_rows ? count - r0 : max_rows;
      const std::size_t run_rows = w.run_end(row) - row;
      if (rows_in_group > run_rows) rows_in_group = run_rows;
      RowRun run{w.row(row), w.row_step(), w.block_step(row), blocks, prefetch_offset};
      // Prefetch only inside the buffer: the farthest byte this group prefetches must exist.
      const std::uint8_t* last_block = run.rows + (rows_in_group - 1) * run.row_step + (blocks - 1) * run.block_step;
      if (static_cast<std::size_t>(w.end() - last_block) < 64 + prefetch_offset) run.prefetch_offset = 0;
      gemv_row_group<Codes, T>(rows_in_group, run, q, a.stride, raw, r0);
      r0 += rows_in_group;
    }
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      const std::size_t token = t0 + static_cast<std::size_t>(t);
      store_outputs<Codes>(_mm512_load_si512(raw[t]), count, a.scale[token], a.sum[token], e, j0,
                           y + token * y_stride);
    }
  }
}

// Every token of `a`, up to kGemvMaxTokens at a time (each group of tokens reads the weights once).
template <class Codes>
BITLINEAR_AVX512_TARGET inline void gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                         std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  for (std::size_t t0 = 0; t0 < a.batch; t0 += kGemvMaxTokens) {
    switch (a.batch - t0) {
      case 1: gemv_tokens<Codes, 1>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 2: gemv_tokens<Codes, 2>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 3: gemv_tokens<Codes, 3>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      default: gemv_tokens<Codes, 4>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
    }
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
