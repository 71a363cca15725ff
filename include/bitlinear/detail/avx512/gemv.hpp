// bitlinear internal: avx512 GEMV (a few tokens, memory bound): the canonical packed rows as they are, one
// 64-byte load per block and row, shift/mask to u8 fields, vpdpbusd against the int8 activations.
//
// Shape of the work: a group of R <= 4 consecutive output rows times T <= 4 tokens. Per 64-byte block, each of
// the R rows is loaded once and split into its fields (4 ternary, 8 binary); each field's 64 activations of
// each token are loaded once and shared by the R rows. R*T (T = 1: 2*R, to have 8 independent vpdpbusd
// chains) zmm accumulators hold raw = sum f*q (see codes.hpp for the epilogue). Rows are handled 16 at a time
// so that one vectorized epilogue writes 16 outputs per token (masked at the end of the range).
// Prefetch: while a group reads block b of its rows, it prefetches block b of the rows about kPrefetchBytes further
// on (the rows it will read a few groups later), never past the end of the weight buffer.
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
// Prefetch distance: the rows about kPrefetchBytes ahead of the current group (at least one group ahead).
inline constexpr std::size_t kPrefetchBytes = 16384;

// One field of one block: acc[r][t] += field(w[r]) . q[t], for every row r and token t.
template <class Codes, int R, int T, int A, int Field>
BITLINEAR_AVX512_INLINE void gemv_field(const __m512i (&w)[R], const std::int8_t* q_block, std::size_t q_stride,
                                        __m512i (&acc)[R][T * A]) {
  __m512i q[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) q[t] = _mm512_loadu_si512(q_block + static_cast<std::size_t>(t) * q_stride + 64 * Field);
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512i f = Codes::template field<Field>(w[r]);
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) acc[r][t * A + Field % A] = dpbusd(acc[r][t * A + Field % A], f, q[t]);
  }
  if constexpr (Field + 1 < Codes::fields) gemv_field<Codes, R, T, A, Field + 1>(w, q_block, q_stride, acc);
}

// raw[t][r] = sum over the row of field * q for rows [0, R) starting at `rows`, tokens [0, T) starting at `q`.
template <class Codes, int R, int T>
BITLINEAR_AVX512_TARGET inline void gemv_rows(const std::uint8_t* rows, std::size_t row_bytes, const std::int8_t* q,
                                              std::size_t q_stride, const std::uint8_t* prefetch,
                                              std::int32_t (&raw)[kGemvMaxTokens][16], std::size_t r0) {
  constexpr int A = T == 1 ? 2 : 1;
  __m512i acc[R][T * A];
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int i = 0; i < T * A; ++i) acc[r][i] = _mm512_setzero_si512();
  }
  const std::size_t blocks = row_bytes / 64;
  for (std::size_t b = 0; b < blocks; ++b) {
    __m512i w[R];
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) w[r] = _mm512_loadu_si512(rows + static_cast<std::size_t>(r) * row_bytes + 64 * b);
    if (prefetch != nullptr) {
      BITLINEAR_UNROLL
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(prefetch + static_cast<std::size_t>(r) * row_bytes + 64 * b),
                     _MM_HINT_T0);
      }
    }
    gemv_field<Codes, R, T, A, 0>(w, q + Codes::block_weights * b, q_stride, acc);
  }
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      __m512i sum = acc[r][t * A];
      if constexpr (A == 2) sum = _mm512_add_epi32(sum, acc[r][t * A + 1]);
      raw[t][r0 + static_cast<std::size_t>(r)] = reduce_add_epi32(sum);
    }
  }
}

template <class Codes, int T>
BITLINEAR_AVX512_TARGET inline void gemv_row_group(std::size_t rows_in_group, const std::uint8_t* rows,
                                                   std::size_t row_bytes, const std::int8_t* q, std::size_t q_stride,
                                                   const std::uint8_t* prefetch,
                                                   std::int32_t (&raw)[kGemvMaxTokens][16], std::size_t r0) {
  switch (rows_in_group) {
    case 1: gemv_rows<Codes, 1, T>(rows, row_bytes, q, q_stride, prefetch, raw, r0); break;
    case 2: gemv_rows<Codes, 2, T>(rows, row_bytes, q, q_stride, prefetch, raw, r0); break;
    case 3: gemv_rows<Codes, 3, T>(rows, row_bytes, q, q_stride, prefetch, raw, r0); break;
    default: gemv_rows<Codes, 4, T>(rows, row_bytes, q, q_stride, prefetch, raw, r0); break;
  }
}

// Outputs [row_begin, row_end) of tokens [t0, t0 + T).
template <class Codes, int T>
BITLINEAR_AVX512_TARGET inline void gemv_tokens(const PackedWeightsView& w, const ActivationsView& a, std::size_t t0,
                                                std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                float* y, std::size_t y_stride) {
  const std::int8_t* q = a.q + t0 * a.stride;
  const std::size_t prefetch_rows =
      (kPrefetchBytes / w.row_bytes + kGemvMaxRows - 1) / kGemvMaxRows * kGemvMaxRows + kGemvMaxRows;
  for (std::size_t j0 = row_begin; j0 < row_end; j0 += 16) {
    const std::size_t count = row_end - j0 < 16 ? row_end - j0 : 16;
    alignas(64) std::int32_t raw[kGemvMaxTokens][16] = {};
    for (std::size_t r0 = 0; r0 < count; r0 += kGemvMaxRows) {
      const std::size_t rows_in_group = count - r0 < kGemvMaxRows ? count - r0 : kGemvMaxRows;
      const std::size_t row = j0 + r0;
      const std::uint8_t* rows = w.data + row * w.row_bytes;
      // Prefetch only rows that exist: the whole group prefetch_rows further on must lie inside the matrix.
      const bool can_prefetch = row + prefetch_rows + rows_in_group <= w.out_features;
      const std::uint8_t* prefetch = can_prefetch ? rows + prefetch_rows * w.row_bytes : nullptr;
      gemv_row_group<Codes, T>(rows_in_group, rows, w.row_bytes, q, a.stride, prefetch, raw, r0);
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
