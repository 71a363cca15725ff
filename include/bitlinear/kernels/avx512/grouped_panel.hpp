// bitlinear internal: the avx512 grouped GEMM (batch >= grouped_gemm_min_batch) on panels of unpacked codes.
#pragma once
#include "../../detail/internal_only.hpp"

// The small-batch row kernel of grouped.hpp extracts each weight's field from the packed bytes once per group of
// 4 tokens, so at a prefill batch every weight is shifted and masked batch / 4 times, and it keeps only 2 rows x
// 4 tokens in flight. Here the codes of a panel of rows are extracted once per call (compact rows decoded by
// codes.hpp), into kGroupedPanelBytes of stack (L1-sized), and every group of 3 tokens passes over the panel in
// register tiles of 4 rows x 3 tokens: per 64-weight step 4 + 3 loads, 3 xors and 12 vpdpbusd; per segment end
// and (row, token) one add, one cvt and one fma.
//
// Epilogue, derived once. The operands are swapped with respect to grouped.hpp: the signed one is the code
// (s8, -1..+2, stored in the panel), the unsigned one the activation moved to u8, v = q + 128 (q xor 0x80). Per
// lane l and segment:  sum v * code = sum q * code + 128 * sum code,  so  p_l = raw - 128 * C_l  with C_l the
// lane's sum of codes over the segment: a property of the weights alone, computed at unpacking (vpdpbusd of
// all-ones bytes with the codes) and stored beside the panel as int16, 32 bytes per row and segment end (|C_l| <=
// 2 * 4 * steps < 2^15 for any row a panel holds), widened and shifted at the segment end (shared by its tokens).
// Nothing per token is precomputed (no lane sums of the activations). Exact: |v * code| <= 255 * 2 per product,
// at most 4 * 2^14 products per lane (in_features <= 2^20), so |raw| < 2^26 and |128 C_l| < 2^24: no int32
// wraps, and p_l is the same integer as the pinned partial. Padding weights have q = 0 (activation rows are
// zero-padded), so whatever their code they add 128 * code to raw and code to C_l, which cancel; the high half of
// a step past in_features (half steps) is a segment of padding only, p = 0 there.
//
// The float part is the pinned order unchanged: acc[r][t] receives the same fma((float)p, c, acc) per segment end,
// in segment order, in {rn-sae}; then the pinned tree (all 12 trees of a tile at once, grouped_trees) and
// grouped_output as one vector division and addition.
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../grouped_plan.hpp"
#include "../interface.hpp"
#include "codes.hpp"
#include "grouped_common.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline constexpr std::size_t kGroupedPanelBytes = 48 * 1024;  // the panel: Zen 4/5 and Ice Lake L1D
inline constexpr std::size_t kGroupedTileRows = 4;    // a register tile: 4 rows x 3 tokens
inline constexpr std::size_t kGroupedTileTokens = 3;

// Rows per panel: each row takes its codes (row_bytes) and 16 int16 code sums per segment end (32 bytes per
// flush); a multiple of the tile's rows, 0 when not even one tile fits (rows of over 8192 weights with segments
// of 32 or 64, 9792 with 128, 10880 with 256, 12224 with one segment), and then the row kernel of grouped.hpp
// runs the GEMM.
inline std::size_t grouped_panel_rows(std::size_t row_bytes, std::size_t flushes) noexcept {
  return kGroupedPanelBytes / (row_bytes + 32 * flushes) / kGroupedTileRows * kGroupedTileRows;
}

// All fields of one 64-byte block, f[i] = Fields::field<i>(block).
template <class Fields, int... F>
BITLINEAR_AVX512_INLINE void grouped_block_fields(__m512i block, __m512i* f, std::integer_sequence<int, F...>) {
  ((f[F] = Fields::template field<F>(block)), ...);
}

// Codes of step s of a row: code = u - 1 (grouped_common.hpp); then the lane code sums of each segment end.
template <int Seg>
BITLINEAR_AVX512_INLINE void grouped_store_step(__m512i u, std::size_t s, std::size_t steps, std::int8_t* codes,
                                                std::int16_t* code_sums, __m512i& sums) {
  const __m512i code = _mm512_sub_epi8(u, _mm512_set1_epi8(1));
  _mm512_store_si512(codes + 64 * s, code);
  sums = dpbusd(sums, _mm512_set1_epi8(1), code);
  if (grouped_flush_after<Seg>(s, steps)) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(code_sums + 16 * grouped_flush_index<Seg>(s)),
                       _mm512_maskz_cvtepi32_epi16(0xFFFF, sums));
    sums = _mm512_setzero_si512();
  }
}

// Steps [0, steps) of one row (block 0 at `block`, blocks block_step apart): codes of step s at codes + 64 s,
// the 16 lane code sums of segment end n at code_sums + 16 n.
template <class Fields, int Seg>
BITLINEAR_AVX512_TARGET inline void grouped_unpack_row(const std::uint8_t* block, std::size_t block_step,
                                                       std::size_t steps, std::int8_t* codes,
                                                       std::int16_t* code_sums) {
  constexpr std::size_t fields = Fields::fields;
  __m512i sums = _mm512_setzero_si512();
  for (std::size_t s = 0; s < steps; s += fields, block += block_step) {
    __m512i f[fields];
    grouped_block_fields<Fields>(_mm512_loadu_si512(block), f, std::make_integer_sequence<int, fields>{});
    const std::size_t live = steps - s < fields ? steps - s : fields;
    for (std::size_t i = 0; i < live; ++i) grouped_store_step<Seg>(f[i], s + i, steps, codes, code_sums, sums);
  }
}

// The same for compact rows: five steps per 64-byte block (the last block's steps at or past `steps` are not
// stored: they hold padding only).
template <int Seg>
BITLINEAR_AVX512VBMI_TARGET inline void grouped_unpack_compact_row(const std::uint8_t* block, std::size_t block_step,
                                                                   std::size_t steps, std::int8_t* codes,
                                                                   std::int16_t* code_sums) {
  const CompactTables tables = load_compact_tables();
  __m512i sums = _mm512_setzero_si512();
  for (std::size_t s = 0; s < steps; s += 5, block += block_step) {
    __m512i f[5];
    decode_compact_block(_mm512_loadu_si512(block), tables, f);
    const std::size_t live = steps - s < 5 ? steps - s : 5;
    for (std::size_t i = 0; i < live; ++i) grouped_store_step<Seg>(f[i], s + i, steps, codes, code_sums, sums);
  }
}

// The weight scale of segment n of each of R rows, or with Half the scales of segments n (lanes 0..7) and n_high
// (lanes 8..15).
template <int R, bool Half>
BITLINEAR_AVX512_INLINE void grouped_row_scales(const float* const (&gs)[R], const GroupedPlan& plan, std::size_t n,
                                                std::size_t n_high, __m512 (&c)[R]) {
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    c[r] = _mm512_set1_ps(gs[r][n >> plan.group_shift]);
    if constexpr (Half) c[r] = _mm512_mask_mov_ps(c[r], 0xFF00, _mm512_set1_ps(gs[r][n_high >> plan.group_shift]));
  }
}

// Step s (weights 64 s ..) of a register tile: raw[r][t] += v * code per lane.
template <int R, int T>
BITLINEAR_AVX512_INLINE void grouped_panel_step(__m512i (&raw)[R][T], const std::int8_t* codes, std::size_t row_bytes,
                                                const std::int8_t* const (&q)[T], std::size_t s) {
  __m512i v[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) v[t] = _mm512_xor_si512(_mm512_loadu_si512(q[t] + 64 * s), _mm512_set1_epi8(-128));
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512i code = _mm512_load_si512(codes + static_cast<std::size_t>(r) * row_bytes + 64 * s);
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) raw[r][t] = dpbusd(raw[r][t], v[t], code);
  }
}

// One register tile: panel rows [0, R) (codes of row r at codes + r * row_bytes, its code sums at code_sums +
// r * 16 * flushes; layer row j + r) and tokens [t0, t0 + T). Blocks: per-block or per-super-block activations,
// c = weight scale x block scale (mul_rn, as grouped_scale of grouped.hpp).
template <int Seg, int R, int T, bool Blocks>
BITLINEAR_AVX512_TARGET inline void grouped_panel_tile(const std::int8_t* codes, std::size_t row_bytes,
                                                       const std::int16_t* code_sums, std::size_t flushes,
                                                       std::size_t j, const GroupedPlan& plan,
                                                       const ActivationsView& a, std::size_t t0, const Epilogue& e,
                                                       float* y, std::size_t y_stride) {
  constexpr bool half = Seg == kGroupedHalfStep;
  __m512i raw[R][T];
  __m512 acc[R][T];
  const float* gs[R];
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) gs[r] = e.group_scale + (j + static_cast<std::size_t>(r)) * e.groups_per_row;
  const std::int8_t* q[T];
  const float* bs[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) {
    const std::size_t token = t0 + static_cast<std::size_t>(t);
    q[t] = a.q + token * a.stride;
    bs[t] = Blocks ? a.block_scale + token * a.block_stride : nullptr;
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) {
      raw[r][t] = _mm512_setzero_si512();
      acc[r][t] = _mm512_setzero_ps();
    }
  }
  const std::size_t steps = plan.steps;
  const std::size_t in = a.in_features;
  // Segment by segment (a segment of Seg steps, of one step for half steps, or the whole row), so that the step
  // loop has no branch; then the segment end.
  constexpr std::size_t seg_steps = Seg > 0 ? static_cast<std::size_t>(Seg) : 1;
  for (std::size_t s = 0, flush = 0; s < steps; ++flush) {
    if (Seg == kGroupedWholeRow) {
      for (; s < steps; ++s) grouped_panel_step<R, T>(raw, codes, row_bytes, q, s);
    } else if (s + seg_steps <= steps) {
      BITLINEAR_UNROLL
      for (std::size_t k = 0; k < seg_steps; ++k) grouped_panel_step<R, T>(raw, codes, row_bytes, q, s + k);
      s += seg_steps;
    } else {
      for (; s < steps; ++s) grouped_panel_step<R, T>(raw, codes, row_bytes, q, s);
    }
    // Segment `flush` ends after step s - 1: n (and n_high for half steps: the high half of a step past
    // in_features is padding, its lanes are 0 and any scale will do) as in grouped.hpp.
    const std::size_t n = half ? 2 * (s - 1) : flush;
    const std::size_t n_high = half && 64 * (s - 1) + 32 < in ? n + 1 : n;
    __m512 c[R];
    grouped_row_scales<R, half>(gs, plan, n, n_high, c);
    __m512 b[T];
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      b[t] = _mm512_setzero_ps();
      if constexpr (Blocks) {
        b[t] = _mm512_set1_ps(bs[t][n >> plan.block_shift]);
        if constexpr (half) b[t] = _mm512_mask_mov_ps(b[t], 0xFF00, _mm512_set1_ps(bs[t][n_high >> plan.block_shift]));
      }
    }
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256i sums16 = _mm256_load_si256(
          reinterpret_cast<const __m256i*>(code_sums + (static_cast<std::size_t>(r) * flushes + flush) * 16));
      const __m512i correction = _mm512_maskz_slli_epi32(0xFFFF, _mm512_maskz_cvtepi16_epi32(0xFFFF, sums16), 7);  // 128 C_l
      BITLINEAR_UNROLL
      for (int t = 0; t < T; ++t) {
        const __m512 scale = Blocks ? mul_rn(c[r], b[t]) : c[r];
        const __m512i p = _mm512_sub_epi32(raw[r][t], correction);
        acc[r][t] = _mm512_fmadd_round_ps(cvtepi32_ps_rn(p), scale, acc[r][t], BITLINEAR_AVX512_RN);
        raw[r][t] = _mm512_setzero_si512();
      }
    }
  }
  // y = r / s_x + bias (grouped_output) of all R x T outputs in one vector, then stored one by one.
  __m512 flat[R * T];
  alignas(64) float s_x[16], bias[16], out[16];
  BITLINEAR_UNROLL
  for (int i = 0; i < 16; ++i) {
    s_x[i] = 1.0f;
    bias[i] = 0.0f;
  }
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      flat[r * T + t] = acc[r][t];
      s_x[grouped_trees_lane(r * T + t)] = a.scale[t0 + static_cast<std::size_t>(t)];
      bias[grouped_trees_lane(r * T + t)] = e.bias[j + static_cast<std::size_t>(r)];
    }
  }
  const __m512 quotient = _mm512_maskz_div_round_ps(0xFFFF, grouped_trees(flat), _mm512_load_ps(s_x),
                                                    BITLINEAR_AVX512_RN);
  _mm512_store_ps(out, add_rn(quotient, _mm512_load_ps(bias)));
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      y[(t0 + static_cast<std::size_t>(t)) * y_stride + j + static_cast<std::size_t>(r)] =
          out[grouped_trees_lane(r * T + t)];
    }
  }
}

// Tokens [t0, t0 + T) over the panel's `rows` rows (layer rows j0 ..).
template <int Seg, int T, bool Blocks>
BITLINEAR_AVX512_TARGET inline void grouped_panel_tokens(const std::int8_t* codes, std::size_t row_bytes,
                                                         const std::int16_t* code_sums, std::size_t flushes,
                                                         std::size_t j0, std::size_t rows, const GroupedPlan& plan,
                                                         const ActivationsView& a, std::size_t t0,
                                                         const Epilogue& e, float* y, std::size_t y_stride) {
  std::size_t r = 0;
  for (; r + kGroupedTileRows <= rows; r += kGroupedTileRows) {
    grouped_panel_tile<Seg, kGroupedTileRows, T, Blocks>(codes + r * row_bytes, row_bytes,
                                                         code_sums + r * 16 * flushes, flushes, j0 + r, plan, a, t0,
                                                         e, y, y_stride);
  }
  const std::int8_t* tail_codes = codes + r * row_bytes;
  const std::int16_t* tail_sums = code_sums + r * 16 * flushes;
  switch (rows - r) {
    case 3: grouped_panel_tile<Seg, 3, T, Blocks>(tail_codes, row_bytes, tail_sums, flushes, j0 + r, plan, a, t0, e, y, y_stride); break;
    case 2: grouped_panel_tile<Seg, 2, T, Blocks>(tail_codes, row_bytes, tail_sums, flushes, j0 + r, plan, a, t0, e, y, y_stride); break;
    case 1: grouped_panel_tile<Seg, 1, T, Blocks>(tail_codes, row_bytes, tail_sums, flushes, j0 + r, plan, a, t0, e, y, y_stride); break;
    default: break;
  }
}

// Outputs [row_begin, row_end) of every token. Needs grouped_panel_rows(plan.steps * 64, grouped_flushes<Seg>(
// plan.steps)) > 0.
template <class Fields, int Seg, bool Blocks>
BITLINEAR_AVX512_NOINLINE void grouped_panel_gemm(const PackedWeightsView& w, const ActivationsView& a,
                                                  std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                  float* y, std::size_t y_stride, const GroupedPlan& plan) {
  alignas(64) std::int32_t panel[kGroupedPanelBytes / 4];
  const std::size_t row_bytes = plan.steps * 64;
  const std::size_t flushes = grouped_flushes<Seg>(plan.steps);
  const std::size_t panel_rows = grouped_panel_rows(row_bytes, flushes);
  // The codes of panel_rows rows, then their code sums (row_bytes is a multiple of 64: aligned).
  std::int8_t* const codes = reinterpret_cast<std::int8_t*>(panel);
  std::int16_t* const code_sums = reinterpret_cast<std::int16_t*>(panel + panel_rows * row_bytes / 4);
  for (std::size_t j0 = row_begin; j0 < row_end; j0 += panel_rows) {
    const std::size_t rows = row_end - j0 < panel_rows ? row_end - j0 : panel_rows;
    for (std::size_t r = 0; r < rows; ++r) {
      if constexpr (std::is_same_v<Fields, GroupedCompactFields>) {
        grouped_unpack_compact_row<Seg>(w.row(j0 + r), w.block_step(j0 + r), plan.steps, codes + r * row_bytes,
                                        code_sums + r * 16 * flushes);
      } else {
        grouped_unpack_row<Fields, Seg>(w.row(j0 + r), w.block_step(j0 + r), plan.steps, codes + r * row_bytes,
                                        code_sums + r * 16 * flushes);
      }
    }
    for (std::size_t t0 = 0; t0 < a.batch; t0 += kGroupedTileTokens) {
      switch (a.batch - t0) {
        case 1: grouped_panel_tokens<Seg, 1, Blocks>(codes, row_bytes, code_sums, flushes, j0, rows, plan, a, t0, e, y, y_stride); break;
        case 2: grouped_panel_tokens<Seg, 2, Blocks>(codes, row_bytes, code_sums, flushes, j0, rows, plan, a, t0, e, y, y_stride); break;
        default: grouped_panel_tokens<Seg, 3, Blocks>(codes, row_bytes, code_sums, flushes, j0, rows, plan, a, t0, e, y, y_stride); break;
      }
    }
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
