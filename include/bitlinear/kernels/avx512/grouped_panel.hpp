// bitlinear internal: the avx512 grouped GEMM (batch >= grouped_gemm_min_batch) on panels of unpacked fields.
#pragma once
#include "../../detail/internal_only.hpp"

// The small-batch row kernel of grouped.hpp extracts each weight's field from the packed bytes once per group of
// 4 tokens, so at a prefill batch every weight is shifted and masked batch / 4 times, and it keeps only 2 rows x
// 4 tokens in flight. Here the fields of a panel of rows are extracted once per call into u8 bytes (the operand
// u = code + 1 of the epilogue in grouped.hpp; compact rows decoded by codes.hpp), kGroupedPanelBytes of stack:
// L1-sized, so every group of 4 tokens then passes over the panel in register tiles of 3 rows x 4 tokens. Per
// 64-weight step a tile does 3 + 4 loads and 12 vpdpbusd; per segment end and (row, token) one cvt and one fma.
// The lane sums of a group of 4 tokens (grouped_lane_sums) are computed once per panel: T x steps vpdpbusd
// beside the panel's rows x T x steps.
//
// The arithmetic is the pinned order unchanged: lane l of raw[r][t] holds the same exact int32 partial p_l of the
// segment (it starts at minus the lane sums and adds u * q over the segment's steps, the bound of grouped.hpp),
// and acc[r][t] receives the same fma((float)p, c, acc) per segment end, in segment order, in {rn-sae}; then the
// pinned tree and grouped_output. Only which registers hold what, and when the fields are extracted, change.
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

// Rows per panel for rows of `row_bytes` unpacked bytes: a multiple of the tile's rows; 0 when not even one tile
// fits (rows over 16384 weights), and then the row kernel of grouped.hpp runs the GEMM.
inline std::size_t grouped_panel_rows(std::size_t row_bytes) noexcept {
  return kGroupedPanelBytes / row_bytes / kGroupedTileRows * kGroupedTileRows;
}

// All fields of one 64-byte block, f[i] = Fields::field<i>(block).
template <class Fields, int... F>
BITLINEAR_AVX512_INLINE void grouped_block_fields(__m512i block, __m512i* f, std::integer_sequence<int, F...>) {
  ((f[F] = Fields::template field<F>(block)), ...);
}

// Steps [0, steps) of one row (block 0 at `block`, blocks block_step apart) as u8 operands: step s at out + 64 s.
template <class Fields>
BITLINEAR_AVX512_TARGET inline void grouped_unpack_row(const std::uint8_t* block, std::size_t block_step,
                                                       std::size_t steps, std::uint8_t* out) {
  constexpr std::size_t fields = Fields::fields;
  for (std::size_t s = 0; s < steps; s += fields, block += block_step) {
    __m512i f[fields];
    grouped_block_fields<Fields>(_mm512_loadu_si512(block), f, std::make_integer_sequence<int, fields>{});
    const std::size_t live = steps - s < fields ? steps - s : fields;
    for (std::size_t i = 0; i < live; ++i) _mm512_store_si512(out + 64 * (s + i), f[i]);
  }
}

// The same for compact rows: five steps per 64-byte block (the last block's steps at or past `steps` are not
// stored: they hold padding only).
BITLINEAR_AVX512VBMI_TARGET inline void grouped_unpack_compact_row(const std::uint8_t* block, std::size_t block_step,
                                                                   std::size_t steps, std::uint8_t* out) {
  const CompactTables tables = load_compact_tables();
  for (std::size_t s = 0; s < steps; s += 5, block += block_step) {
    __m512i f[5];
    decode_compact_block(_mm512_loadu_si512(block), tables, f);
    const std::size_t live = steps - s < 5 ? steps - s : 5;
    for (std::size_t i = 0; i < live; ++i) _mm512_store_si512(out + 64 * (s + i), f[i]);
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

// Step s (weights 64 s ..) of a register tile: raw[r][t] += u * q per lane.
template <int R, int T>
BITLINEAR_AVX512_INLINE void grouped_panel_step(__m512i (&raw)[R][T], const std::uint8_t* panel, std::size_t row_bytes,
                                                const std::int8_t* const (&q)[T], std::size_t s) {
  __m512i qv[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) qv[t] = _mm512_loadu_si512(q[t] + 64 * s);
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512i u = _mm512_load_si512(panel + static_cast<std::size_t>(r) * row_bytes + 64 * s);
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) raw[r][t] = dpbusd(raw[r][t], u, qv[t]);
  }
}

// One register tile: panel rows [0, R) (row r at panel + r * row_bytes, layer row j + r) and tokens
// [t0, t0 + T), whose lane sums are at `lanes` (grouped_sums_at). Blocks: per-block or per-super-block
// activations, c = weight scale x block scale (mul_rn, as grouped_scale of grouped_common.hpp).
template <int Seg, int R, int T, bool Blocks>
BITLINEAR_AVX512_TARGET inline void grouped_panel_tile(const std::uint8_t* panel, std::size_t row_bytes,
                                                       std::size_t j, const GroupedPlan& plan,
                                                       const ActivationsView& a, std::size_t t0, const Epilogue& e,
                                                       float* y, std::size_t y_stride, const std::int32_t* lanes) {
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
      for (; s < steps; ++s) grouped_panel_step<R, T>(raw, panel, row_bytes, q, s);
    } else if (s + seg_steps <= steps) {
      BITLINEAR_UNROLL
      for (std::size_t k = 0; k < seg_steps; ++k) grouped_panel_step<R, T>(raw, panel, row_bytes, q, s + k);
      s += seg_steps;
    } else {
      for (; s < steps; ++s) grouped_panel_step<R, T>(raw, panel, row_bytes, q, s);
    }
    // Segment `flush` ends after step s - 1: n (and n_high for half steps: the high half of a step past
    // in_features is padding, its lanes are 0 and any scale will do) as in grouped.hpp.
    const std::size_t n = half ? 2 * (s - 1) : flush;
    const std::size_t n_high = half && 64 * (s - 1) + 32 < in ? n + 1 : n;
    __m512 c[R];
    grouped_row_scales<R, half>(gs, plan, n, n_high, c);
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      const __m512i minus_sums = _mm512_load_si512(grouped_sums_at(lanes, t, flush));
      __m512 b = _mm512_setzero_ps();
      if constexpr (Blocks) {
        b = _mm512_set1_ps(bs[t][n >> plan.block_shift]);
        if constexpr (half) b = _mm512_mask_mov_ps(b, 0xFF00, _mm512_set1_ps(bs[t][n_high >> plan.block_shift]));
      }
      BITLINEAR_UNROLL
      for (int r = 0; r < R; ++r) {
        const __m512 scale = Blocks ? mul_rn(c[r], b) : c[r];
        const __m512i p = _mm512_add_epi32(raw[r][t], minus_sums);
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

// Tokens [t0, t0 + T) over the panel's `rows` rows (layer rows j0 ..): the group's lane sums, then the tiles.
template <int Seg, int T, bool Blocks>
BITLINEAR_AVX512_TARGET inline void grouped_panel_tokens(const std::uint8_t* panel, std::size_t row_bytes,
                                                         std::size_t j0, std::size_t rows, const GroupedPlan& plan,
                                                         const ActivationsView& a, std::size_t t0,
                                                         const Epilogue& e, float* y, std::size_t y_stride,
                                                         GroupedLaneSums& sums, const std::int32_t* lanes) {
  grouped_lane_sums<Seg, T>(a, t0, plan.steps, sums);
  std::size_t r = 0;
  for (; r + kGroupedTileRows <= rows; r += kGroupedTileRows) {
    grouped_panel_tile<Seg, kGroupedTileRows, T, Blocks>(panel + r * row_bytes, row_bytes, j0 + r, plan, a, t0, e,
                                                         y, y_stride, lanes);
  }
  switch (rows - r) {
    case 3: grouped_panel_tile<Seg, 3, T, Blocks>(panel + r * row_bytes, row_bytes, j0 + r, plan, a, t0, e, y, y_stride, lanes); break;
    case 2: grouped_panel_tile<Seg, 2, T, Blocks>(panel + r * row_bytes, row_bytes, j0 + r, plan, a, t0, e, y, y_stride, lanes); break;
    case 1: grouped_panel_tile<Seg, 1, T, Blocks>(panel + r * row_bytes, row_bytes, j0 + r, plan, a, t0, e, y, y_stride, lanes); break;
    default: break;
  }
}

// Outputs [row_begin, row_end) of every token. Needs grouped_panel_rows(plan.steps * 64) > 0 and the row's segment
// ends within the lane-sum buffer (grouped_flushes<Seg>(steps) <= kGroupedMaxFlushes).
template <class Fields, int Seg, bool Blocks>
BITLINEAR_AVX512_TARGET inline void grouped_panel_gemm(const PackedWeightsView& w, const ActivationsView& a,
                                                       std::size_t row_begin, std::size_t row_end,
                                                       const Epilogue& e, float* y, std::size_t y_stride,
                                                       const GroupedPlan& plan, GroupedLaneSums& sums,
                                                       const std::int32_t* lanes) {
  alignas(64) std::uint8_t panel[kGroupedPanelBytes];
  const std::size_t row_bytes = plan.steps * 64;
  const std::size_t panel_rows = grouped_panel_rows(row_bytes);
  for (std::size_t j0 = row_begin; j0 < row_end; j0 += panel_rows) {
    const std::size_t rows = row_end - j0 < panel_rows ? row_end - j0 : panel_rows;
    for (std::size_t r = 0; r < rows; ++r) {
      if constexpr (std::is_same_v<Fields, GroupedCompactFields>) {
        grouped_unpack_compact_row(w.row(j0 + r), w.block_step(j0 + r), plan.steps, panel + r * row_bytes);
      } else {
        grouped_unpack_row<Fields>(w.row(j0 + r), w.block_step(j0 + r), plan.steps, panel + r * row_bytes);
      }
    }
    for (std::size_t t0 = 0; t0 < a.batch; t0 += kGroupedTileTokens) {
      switch (a.batch - t0) {
        case 1: grouped_panel_tokens<Seg, 1, Blocks>(panel, row_bytes, j0, rows, plan, a, t0, e, y, y_stride, sums, lanes); break;
        case 2: grouped_panel_tokens<Seg, 2, Blocks>(panel, row_bytes, j0, rows, plan, a, t0, e, y, y_stride, sums, lanes); break;
        default: grouped_panel_tokens<Seg, 3, Blocks>(panel, row_bytes, j0, rows, plan, a, t0, e, y, y_stride, sums, lanes); break;
      }
    }
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
