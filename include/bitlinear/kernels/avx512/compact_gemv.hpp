// bitlinear internal: avx512 GEMV for compact ternary weights (a few tokens, memory bound). The structure of
// gemv.hpp: R <= 4 rows side by side, row i of kCompactStreams streams (canonical layout: each stream one linear
// pass over memory, prefetched as gemv.hpp does), T <= 4 tokens, one 64-byte load per block and row, decoded by
// compact_codes.hpp into five u8 field vectors, each dotted (vpdpbusd) with its 64 activations. At batch 1 each
// row keeps kCompactSingleTokenAccumulators accumulators (fields rotate over them) so that consecutive vpdpbusd do
// not wait on each other. Epilogue: codes.hpp (TernaryCodes), raw - sum q.
// Activation rows are padded to activation_stride(in) (a multiple of 512), which can be shorter than the compact
// row (a multiple of 320): the last block therefore runs only its fields that start below in_features (fields past
// it are all padding, code 0, and contribute nothing), so no activation byte past the padded row is read.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../interface.hpp"
#include "codes.hpp"
#include "compact_codes.hpp"
#include "gemv.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline constexpr std::size_t kCompactStreams = 4;
// 2, not 3: with 3 (12 accumulators for 4 rows) GCC 12 shuffled accumulators through extra zmm moves in the inner
// loop; hot 2560x2560 measured 58.3-58.8 µs with 2 against 60.2-61.2 with 3 (1: 62 µs, 4: 63-64 µs), streaming alike.
inline constexpr int kCompactSingleTokenAccumulators = 2;

// One block of R rows (row r's at block[r]), its first NF fields, T tokens.
template <int R, int T, int A, int NF>
BITLINEAR_AVX512VBMI_INLINE void compact_block(const std::uint8_t* const (&block)[R], const std::int8_t* q,
                                               std::size_t q_stride, const CompactTables& tables,
                                               __m512i (&acc)[R][T * A]) {
  __m512i qv[NF][T];
  BITLINEAR_UNROLL
  for (int i = 0; i < NF; ++i) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) qv[i][t] = _mm512_loadu_si512(q + static_cast<std::size_t>(t) * q_stride + 64 * i);
  }
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    __m512i f[5];
    decode_compact_block(_mm512_loadu_si512(block[r]), tables, f);
    BITLINEAR_UNROLL
    for (int i = 0; i < NF; ++i) {
      BITLINEAR_UNROLL
      for (int t = 0; t < T; ++t) acc[r][t * A + i % A] = dpbusd(acc[r][t * A + i % A], f[i], qv[i][t]);
    }
  }
}

// raw[r][t][i] = sum f * q over the row for the R rows of `set` (set.blocks blocks, the last with tail_fields
// fields) and tokens [0, T) from q.
template <int R, int T>
BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv_rows(const RowSet& set, int tail_fields, const std::int8_t* q,
                                                          std::size_t q_stride, StreamSums& raw, std::size_t i) {
  constexpr int A = T == 1 ? kCompactSingleTokenAccumulators : 1;
  const CompactTables tables = load_compact_tables();
  __m512i acc[R][T * A];
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int k = 0; k < T * A; ++k) acc[r][k] = _mm512_setzero_si512();
  }
  const std::uint8_t* block[R];
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) block[r] = set.rows[r];
  const std::size_t full_blocks = set.blocks - 1;
  for (std::size_t b = 0; b < full_blocks; ++b) {
    if (set.prefetch_offset != 0) {
      BITLINEAR_UNROLL
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(block[r] + set.prefetch_offset), _MM_HINT_T0);
      }
    }
    compact_block<R, T, A, 5>(block, q + 320 * b, q_stride, tables, acc);
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) block[r] += set.block_step[r];
  }
  const std::int8_t* q_tail = q + 320 * full_blocks;
  switch (tail_fields) {
    case 1: compact_block<R, T, A, 1>(block, q_tail, q_stride, tables, acc); break;
    case 2: compact_block<R, T, A, 2>(block, q_tail, q_stride, tables, acc); break;
    case 3: compact_block<R, T, A, 3>(block, q_tail, q_stride, tables, acc); break;
    case 4: compact_block<R, T, A, 4>(block, q_tail, q_stride, tables, acc); break;
    default: compact_block<R, T, A, 5>(block, q_tail, q_stride, tables, acc); break;
  }
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      __m512i sum = acc[r][t * A];
      BITLINEAR_UNROLL
      for (int k = 1; k < A; ++k) sum = _mm512_add_epi32(sum, acc[r][t * A + k]);
      raw[r][t][i] = reduce_add_epi32(sum);
    }
  }
}

template <int T>
BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv_row_set(std::size_t rows, const RowSet& set, int tail_fields,
                                                             const std::int8_t* q, std::size_t q_stride,
                                                             StreamSums& raw, std::size_t i) {
  switch (rows) {
    case 1: compact_gemv_rows<1, T>(set, tail_fields, q, q_stride, raw, i); break;
    case 2: compact_gemv_rows<2, T>(set, tail_fields, q, q_stride, raw, i); break;
    case 3: compact_gemv_rows<3, T>(set, tail_fields, q, q_stride, raw, i); break;
    default: compact_gemv_rows<4, T>(set, tail_fields, q, q_stride, raw, i); break;
  }
}

// Outputs [row_begin, row_end) of tokens [t0, t0 + T), in kCompactStreams streams (gemv.hpp).
template <int T>
BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv_tokens(const PackedWeightsView& w, const ActivationsView& a,
                                                            std::size_t t0, std::size_t row_begin,
                                                            std::size_t row_end, const Epilogue& e, float* y,
                                                            std::size_t y_stride) {
  const std::int8_t* q = a.q + t0 * a.stride;
  const std::size_t blocks = w.row_bytes / 64;
  // Fields of the last block that start below in_features (1..5).
  const int tail_fields = static_cast<int>((w.in_features - 320 * (blocks - 1) + 63) / 64);
  const std::size_t q_stride = a.stride;
  gemv_streams<TernaryCodes, T>(
      kCompactStreams, w, a, t0, row_begin, row_end, e, y, y_stride,
      [q, q_stride, tail_fields](std::size_t active, const RowSet& set, StreamSums& raw, std::size_t i) {
        compact_gemv_row_set<T>(active, set, tail_fields, q, q_stride, raw, i);
      });
}

BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv(const PackedWeightsView& w, const ActivationsView& a,
                                                     std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                     float* y, std::size_t y_stride) {
  for (std::size_t t0 = 0; t0 < a.batch; t0 += kGemvMaxTokens) {
    switch (a.batch - t0) {
      case 1: compact_gemv_tokens<1>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 2: compact_gemv_tokens<2>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 3: compact_gemv_tokens<3>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      default: compact_gemv_tokens<4>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
    }
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
