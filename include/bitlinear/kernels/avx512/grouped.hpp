// bitlinear internal: the avx512 kernels of the grouped formats (2-bit with field 3 = +2, 1-bit), GEMV and GEMM.
#pragma once
#include "../../detail/internal_only.hpp"

// The pinned order of interface.hpp ("Grouped formats"), vector by vector. Lane l of a zmm int32 accumulator is
// exactly the pinned lane l: vpdpbusd on the 64 bytes of a 64-weight step sums weights 4l .. 4l+3 of the step
// into lane l. Per (row, token) one int32 accumulator `raw` (reset per segment) and one float accumulator `acc`.
//
// Epilogue, derived once: the unsigned operand u is the field shifted to u8 with code = u - 1:
//   2-bit:  u = field value f in {0, 1, 2, 3} (code -1, 0, +1, +2), code = f - 1
//   1-bit:  u = 2 * bit in {0, 2}                                   code = 2 bit - 1 = u - 1
// so per lane l and segment, p_l = sum code * q = sum u * q - sum_l(q), where sum_l(q) is the same lane sum of
// the activations (vpdpbusd of all-ones bytes with q), the same for every row: computed once per call and group
// of T tokens into a stack buffer (GroupedLaneSums, negated) and used as the initial value of each segment's
// accumulator `raw`, so raw ends the segment holding p_l itself. Rows with more segments than the buffer holds
// (kGroupedMaxFlushes: over 8192 weights with segments of 32 or 64) accumulate sum_l(q) beside the rows instead
// (vpdpbusd of all-ones bytes per step, subtracted per segment): the same integer.
// Exact: p_l is an integer sum, whatever the order of its terms, as long as nothing overflows int32. raw starts
// at -sum_l(q) and adds u * q terms with u <= 3, over at most 4 * 2^14 weights of a lane (in_features <= 2^20,
// format.hpp), so every intermediate value is at most (128 + 3 * 128) * 2^16 = 2^25 in magnitude (and vpdpbusd
// wraps, it does not saturate: the final value would be exact even past that). Padding weights have q = 0
// (activation rows are zero-padded), so they add nothing. Then per segment acc = fma((float)p, c, acc) with c the
// group scale (times the block scale, a rounded product: mul_rn), all in {rn-sae} rounding (target.hpp); after the
// last segment the tree l + l+8, + l+4, + l+2, + l+1 (operand order of grouped_lane_sum) and the scalar
// y = r / s_x + bias of grouped_output().
//
// GEMV (batch < grouped_gemm_min_batch): T <= 4 tokens at a time, R rows side by side from R streams
// (row_streams.hpp, the RowSet of gemv.hpp with its prefetch: each stream one linear pass over canonical rows).
// GEMM: panels of unpacked codes in register tiles (grouped_panel.hpp); rows too long for a panel of 4 take the
// same row kernel in a cache-blocked loop order instead: kGroupedGemmRows rows at a time stay in L1/L2 while every
// group of 4 tokens passes over them.
#include <type_traits>

#include "../../format.hpp"
#include "../../format_compact.hpp"
#include "../grouped_plan.hpp"
#include "../interface.hpp"
#include "../ref/grouped.hpp"
#include "../row_streams.hpp"
#include "codes.hpp"
#include "gemv.hpp"
#include "grouped_common.hpp"
#include "grouped_panel.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline constexpr std::size_t kGroupedGemmRows = 16;
inline constexpr std::size_t grouped_gemm_min_batch = 16;
inline constexpr std::size_t kGroupedMaxTokens = 4;
inline constexpr std::size_t kGroupedMaxFlushes = 128;  // segment ends per token in the lane-sum buffer

// Minus the lane sums of the activations per token and segment end, [token][flush], and one zero entry after
// the last flush (the value a kernel reloads after the last segment; never used): 33 KiB of stack.
struct GroupedLaneSums {
  alignas(64) std::int32_t lanes[kGroupedMaxTokens][kGroupedMaxFlushes + 1][16];
};


// sums.lanes[t][n] = -(lane sums of segment end n) for tokens [t0, t0 + T) of `a`; sums.lanes[t][flushes] = 0.
template <int Seg, int T>
BITLINEAR_AVX512_TARGET inline void grouped_lane_sums(const ActivationsView& a, std::size_t t0, std::size_t steps,
                                                      GroupedLaneSums& sums) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int t = 0; t < T; ++t) {
    const std::int8_t* q = a.q + (t0 + static_cast<std::size_t>(t)) * a.stride;
    __m512i sum = _mm512_setzero_si512();
    for (std::size_t s = 0; s < steps; ++s) {
      sum = dpbusd(sum, ones, _mm512_loadu_si512(q + 64 * s));
      if (grouped_flush_after<Seg>(s, steps)) {
        _mm512_store_si512(sums.lanes[t][grouped_flush_index<Seg>(s)], _mm512_sub_epi32(_mm512_setzero_si512(), sum));
        sum = _mm512_setzero_si512();
      }
    }
    _mm512_store_si512(sums.lanes[t][grouped_flushes<Seg>(steps)], _mm512_setzero_si512());
  }
}

// Where a kernel finds the lane sums: `lanes` (the buffer above, entries [t][n] at lanes + (t * (kGroupedMaxFlushes
// + 1) + n) * 16), or null: accumulate them beside the rows.
BITLINEAR_AVX512_INLINE const std::int32_t* grouped_sums_at(const std::int32_t* lanes, int t, std::size_t n) {
  return lanes + (static_cast<std::size_t>(t) * (kGroupedMaxFlushes + 1) + n) * 16;
}

// The scale c of segment n of one row and token (bs: the token's block scales, or null).
BITLINEAR_AVX512_INLINE __m512 grouped_scale(const float* gs, const float* bs, const GroupedPlan& plan,
                                             std::size_t n) {
  const __m512 c = _mm512_set1_ps(gs[n >> plan.group_shift]);
  return bs == nullptr ? c : mul_rn(c, _mm512_set1_ps(bs[n >> plan.block_shift]));
}

// The R x T accumulators of one row set.
template <int R, int T>
struct GroupedAccumulators {
  __m512i raw[R][T];
  __m512i sum[T];
  __m512 acc[R][T];
};

// Starts the first segment: raw = -(its lane sums) (Pre), or raw = sum = 0.
template <int R, int T, bool Pre>
BITLINEAR_AVX512_INLINE void grouped_start(GroupedAccumulators<R, T>& x, const std::int32_t* lanes) {
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) {
    const __m512i init = Pre ? _mm512_load_si512(grouped_sums_at(lanes, t, 0)) : _mm512_setzero_si512();
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) {
      x.raw[r][t] = init;
      x.acc[r][t] = _mm512_setzero_ps();
    }
    x.sum[t] = _mm512_setzero_si512();
  }
}

// Ends segment end `flush` (index into the lane sums) of every (row, token): acc = fma((float)p, c, acc) with
// p = raw (Pre) or raw - sum, then the next segment starts: raw = -(lane sums of flush + 1) (Pre), or raw = sum
// = 0. Half: lanes 0..7 are segment n, lanes 8..15 segment n_high.
template <int R, int T, bool Half, bool Pre>
BITLINEAR_AVX512_INLINE void grouped_flush(GroupedAccumulators<R, T>& x, const float* const (&gs)[R],
                                           const float* const (&bs)[T], const GroupedPlan& plan, std::size_t n,
                                           std::size_t n_high, const std::int32_t* lanes, std::size_t flush) {
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) {
    const __m512i next = Pre ? _mm512_load_si512(grouped_sums_at(lanes, t, flush + 1)) : _mm512_setzero_si512();
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) {
      __m512 c = grouped_scale(gs[r], bs[t], plan, n);
      if constexpr (Half) c = _mm512_mask_mov_ps(c, 0xFF00, grouped_scale(gs[r], bs[t], plan, n_high));
      const __m512 p = cvtepi32_ps_rn(Pre ? x.raw[r][t] : _mm512_sub_epi32(x.raw[r][t], x.sum[t]));
      x.acc[r][t] = _mm512_fmadd_round_ps(p, c, x.acc[r][t], BITLINEAR_AVX512_RN);
      x.raw[r][t] = next;
    }
    x.sum[t] = _mm512_setzero_si512();
  }
}

// y of rows js[0, R) (block 0 of row r at set.rows[r]) and tokens [t0, t0 + T).
// Pre: the lane sums of tokens [t0, t0 + T) are at `lanes` (grouped_sums_at), otherwise accumulated here.
// One scale per row, 2-bit, one token (InPlace): the fields are only masked, not shifted (field_in_place of
// codes.hpp: u = f * 4^F), each field position F into its own accumulator (raw for F = 0, starting at minus the
// lane sums; more[F - 1] from 0), and the row's single segment ends with raw + (more[F - 1] >> 2F): the same
// integer p. Exact: a lane holds at most 2^16 / 4 weights of one field position (in_features <= 2^20), so
// |more[F - 1]| <= 64 * 3 * 128 * 2^14 = 3 * 2^27 < 2^31, every one a multiple of 4^F (the shift divides
// exactly), and |raw| <= 128 * 2^16 + 3 * 128 * 2^14. 2 vector ops per 64 weights instead of 3, as the
// per-tensor GEMV at batch 1; a segment shorter than the row would pay the shifts back at every segment end.
template <class Fields, int Seg, int R, int T, bool Pre>
BITLINEAR_AVX512_TARGET inline void grouped_rows(const RowSet& set, const std::size_t* js, const GroupedPlan& plan,
                                                 const ActivationsView& a, std::size_t t0, const Epilogue& e,
                                                 float* y, std::size_t y_stride, const std::int32_t* lanes) {
  constexpr int fields = Fields::fields;
  constexpr bool in_place = Seg == kGroupedWholeRow && T == 1 && std::is_same_v<Fields, GroupedTernaryFields>;
  const __m512i ones = _mm512_set1_epi8(1);
  GroupedAccumulators<R, T> x;
  grouped_start<R, T, Pre>(x, lanes);
  __m512i more[R][3];  // in_place only: field positions 1..3
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int i = 0; i < 3; ++i) more[r][i] = _mm512_setzero_si512();
  }
  const float* gs[R];
  const std::uint8_t* block[R];
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    gs[r] = e.group_scale + js[r] * e.groups_per_row;
    block[r] = set.rows[r];
  }
  const float* bs[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) {
    bs[t] = a.block_size == 0 ? nullptr : a.block_scale + (t0 + static_cast<std::size_t>(t)) * a.block_stride;
  }
  const std::int8_t* q = a.q + t0 * a.stride;
  const std::size_t steps = plan.steps;
  const std::size_t full_blocks = steps / fields;
  const std::size_t blocks = (steps + fields - 1) / fields;
  const std::size_t in = a.in_features;
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t live = b < full_blocks ? fields : steps - full_blocks * fields;
    __m512i w[R];
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) {
      w[r] = _mm512_loadu_si512(block[r]);
      if (set.prefetch_offset != 0) {
        prefetch_line(block[r] + set.prefetch_offset, set.prefetch_to_l2);
      }
      block[r] += set.block_step[r];
    }
    BITLINEAR_UNROLL
    for (int f = 0; f < fields; ++f) {
      if (static_cast<std::size_t>(f) >= live) break;
      const std::size_t s = b * fields + static_cast<std::size_t>(f);
      __m512i qv[T];
      BITLINEAR_UNROLL
      for (int t = 0; t < T; ++t) {
        qv[t] = _mm512_loadu_si512(q + static_cast<std::size_t>(t) * a.stride + 64 * s);
        if constexpr (!Pre) x.sum[t] = dpbusd(x.sum[t], ones, qv[t]);
      }
      if constexpr (in_place) {
        BITLINEAR_UNROLL
        for (int r = 0; r < R; ++r) {
          const __m512i u = _mm512_and_si512(w[r], _mm512_set1_epi8(static_cast<char>(3 << (2 * (f & 3)))));
          if (f == 0) {
            x.raw[r][0] = dpbusd(x.raw[r][0], u, qv[0]);
          } else {
            more[r][(f + 3) & 3] = dpbusd(more[r][(f + 3) & 3], u, qv[0]);  // f - 1 (f <= 3 here)
          }
        }
        continue;
      }
      BITLINEAR_UNROLL
      for (int r = 0; r < R; ++r) {
        __m512i u;
        switch (f) {  // a constant after unrolling
          case 0: u = Fields::template field<0>(w[r]); break;
          case 1: u = Fields::template field<1 % fields>(w[r]); break;
          case 2: u = Fields::template field<2 % fields>(w[r]); break;
          case 3: u = Fields::template field<3 % fields>(w[r]); break;
          case 4: u = Fields::template field<4 % fields>(w[r]); break;
          case 5: u = Fields::template field<5 % fields>(w[r]); break;
          case 6: u = Fields::template field<6 % fields>(w[r]); break;
          default: u = Fields::template field<7 % fields>(w[r]); break;
        }
        BITLINEAR_UNROLL
        for (int t = 0; t < T; ++t) x.raw[r][t] = dpbusd(x.raw[r][t], u, qv[t]);
      }
      if constexpr (Seg == kGroupedHalfStep) {
        // The high half of a step past in_features holds padding only: its lanes are 0, any scale will do.
        grouped_flush<R, T, true, Pre>(x, gs, bs, plan, 2 * s, 64 * s + 32 < in ? 2 * s + 1 : 2 * s, lanes, s);
      } else if constexpr (Seg != kGroupedWholeRow) {
        if ((f + 1) % Seg == 0 || s + 1 == steps) {
          grouped_flush<R, T, false, Pre>(x, gs, bs, plan, s / Seg, 0, lanes, s / Seg);
        }
      }
    }
  }
  if constexpr (in_place) {
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) {
      x.raw[r][0] = _mm512_add_epi32(x.raw[r][0], _mm512_maskz_srai_epi32(0xFFFF, more[r][0], 2));
      x.raw[r][0] = _mm512_add_epi32(x.raw[r][0], _mm512_maskz_srai_epi32(0xFFFF, more[r][1], 4));
      x.raw[r][0] = _mm512_add_epi32(x.raw[r][0], _mm512_maskz_srai_epi32(0xFFFF, more[r][2], 6));
    }
  }
  if constexpr (Seg == kGroupedWholeRow) grouped_flush<R, T, false, Pre>(x, gs, bs, plan, 0, 0, lanes, 0);
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      const std::size_t token = t0 + static_cast<std::size_t>(t);
      y[token * y_stride + js[r]] = grouped_output(grouped_tree(x.acc[r][t]), a.scale[token], e, js[r]);
    }
  }
}

// The compact grouped format (avx512_vbmi row): one 64-byte block is 320 weights = 5 steps, decoded by codes.hpp
// (decode_compact_block: six vpermb) into five u8 field vectors f in {0, 1, 2}, code = f - 1: the 2-bit epilogue
// above. The row kernel of grouped_rows with that decode; a block's steps do not line up with segments of 2 or 4
// steps, so the segment end is tested per step. Only steps below ceil(in / 64) are read (activation rows are
// padded to 512 bytes, which can be shorter than the last 320-weight block).
template <int Seg, int R, int T, bool Pre>
BITLINEAR_AVX512VBMI_TARGET inline void compact_grouped_rows(const RowSet& set, const std::size_t* js,
                                                             const GroupedPlan& plan, const ActivationsView& a,
                                                             std::size_t t0, const Epilogue& e, float* y,
                                                             std::size_t y_stride, const std::int32_t* lanes) {
  constexpr int fields = 5;
  const __m512i ones = _mm512_set1_epi8(1);
  const CompactTables tables = load_compact_tables();
  GroupedAccumulators<R, T> x;
  grouped_start<R, T, Pre>(x, lanes);
  const float* gs[R];
  const std::uint8_t* block[R];
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    gs[r] = e.group_scale + js[r] * e.groups_per_row;
    block[r] = set.rows[r];
  }
  const float* bs[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) {
    bs[t] = a.block_size == 0 ? nullptr : a.block_scale + (t0 + static_cast<std::size_t>(t)) * a.block_stride;
  }
  const std::int8_t* q = a.q + t0 * a.stride;
  const std::size_t steps = plan.steps;
  const std::size_t full_blocks = steps / fields;
  const std::size_t blocks = (steps + fields - 1) / fields;
  const std::size_t in = a.in_features;
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::size_t live = b < full_blocks ? fields : steps - full_blocks * fields;
    __m512i f[R][5];
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) {
      decode_compact_block(_mm512_loadu_si512(block[r]), tables, f[r]);
      if (set.prefetch_offset != 0) {
        prefetch_line(block[r] + set.prefetch_offset, set.prefetch_to_l2);
      }
      block[r] += set.block_step[r];
    }
    BITLINEAR_UNROLL
    for (int i = 0; i < fields; ++i) {
      if (static_cast<std::size_t>(i) >= live) break;
      const std::size_t s = b * fields + static_cast<std::size_t>(i);
      __m512i qv[T];
      BITLINEAR_UNROLL
      for (int t = 0; t < T; ++t) {
        qv[t] = _mm512_loadu_si512(q + static_cast<std::size_t>(t) * a.stride + 64 * s);
        if constexpr (!Pre) x.sum[t] = dpbusd(x.sum[t], ones, qv[t]);
      }
      BITLINEAR_UNROLL
      for (int r = 0; r < R; ++r) {
        BITLINEAR_UNROLL
        for (int t = 0; t < T; ++t) x.raw[r][t] = dpbusd(x.raw[r][t], f[r][i], qv[t]);
      }
      if constexpr (Seg == kGroupedHalfStep) {
        grouped_flush<R, T, true, Pre>(x, gs, bs, plan, 2 * s, 64 * s + 32 < in ? 2 * s + 1 : 2 * s, lanes, s);
      } else if constexpr (Seg != kGroupedWholeRow) {
        if ((s + 1) % Seg == 0 || s + 1 == steps) {
          grouped_flush<R, T, false, Pre>(x, gs, bs, plan, s / Seg, 0, lanes, s / Seg);
        }
      }
    }
  }
  if constexpr (Seg == kGroupedWholeRow) grouped_flush<R, T, false, Pre>(x, gs, bs, plan, 0, 0, lanes, 0);
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      const std::size_t token = t0 + static_cast<std::size_t>(t);
      y[token * y_stride + js[r]] = grouped_output(grouped_tree(x.acc[r][t]), a.scale[token], e, js[r]);
    }
  }
}

template <class Fields, int Seg, int MaxRows, int T, bool Pre>
BITLINEAR_AVX512_TARGET inline void grouped_row_set(std::size_t rows, const RowSet& set, const std::size_t* js,
                                                    const GroupedPlan& plan, const ActivationsView& a,
                                                    std::size_t t0, const Epilogue& e, float* y,
                                                    std::size_t y_stride, const std::int32_t* lanes) {
  if constexpr (std::is_same_v<Fields, GroupedCompactFields>) {
    if (rows == 1) {
      compact_grouped_rows<Seg, 1, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes);
    } else {
      compact_grouped_rows<Seg, 2, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes);
    }
  } else if constexpr (MaxRows == 4) {
    switch (rows) {
      case 1: grouped_rows<Fields, Seg, 1, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes); return;
      case 2: grouped_rows<Fields, Seg, 2, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes); return;
      case 3: grouped_rows<Fields, Seg, 3, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes); return;
      default: grouped_rows<Fields, Seg, 4, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes); return;
    }
  } else {
    if (rows == 1) {
      grouped_rows<Fields, Seg, 1, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes);
    } else {
      grouped_rows<Fields, Seg, 2, T, Pre>(set, js, plan, a, t0, e, y, y_stride, lanes);
    }
  }
}

// Rows per set at T tokens: 2 R T + T + R zmm stay below 32 (compact: 5 R decoded fields and 7 tables too).
template <class Fields, int T>
inline constexpr int kGroupedRows = std::is_same_v<Fields, GroupedCompactFields> ? 2 : T <= 2 ? 4 : 2;

// GEMV: outputs [row_begin, row_end) of tokens [t0, t0 + T) as kGroupedRows<T> streams side by side.
template <class Fields, int Seg, int T, bool Pre>
BITLINEAR_AVX512_TARGET inline void grouped_gemv_tokens(const PackedWeightsView& w, const ActivationsView& a,
                                                        std::size_t t0, std::size_t row_begin, std::size_t row_end,
                                                        const Epilogue& e, float* y, std::size_t y_stride,
                                                        const GroupedPlan& plan, const std::int32_t* lanes) {
  constexpr std::size_t streams = kGroupedRows<Fields, T>;
  const std::size_t rows = row_end - row_begin;
  const std::size_t part = stream_part_rows(rows, streams, 1);
  const auto chunk = stream_chunk<kGemvMaxRows>(row_begin, rows, part, streams, part, 0);
  const StreamPrefetch& prefetch = stream_prefetch();
  for (std::size_t i = 0; i < chunk.count[0]; ++i) {
    RowSet set{};
    const std::size_t active = stream_row_set(w, chunk, streams, i, prefetch, set);
    std::size_t js[kGemvMaxRows] = {};
    for (std::size_t s = 0; s < active; ++s) js[s] = chunk.first[s] + i;
    grouped_row_set<Fields, Seg, kGroupedRows<Fields, T>, T, Pre>(active, set, js, plan, a, t0, e, y, y_stride,
                                                                  lanes);
  }
}

// GEMM: kGroupedGemmRows rows at a time, every token over them in groups of 4, 2 rows per set (the lane sums
// of a token group computed again for every kGroupedGemmRows rows: the buffer holds one group).
template <class Fields, int Seg, int T, bool Pre>
BITLINEAR_AVX512_TARGET inline void grouped_gemm_tokens(const PackedWeightsView& w, const ActivationsView& a,
                                                        std::size_t t0, std::size_t j0, std::size_t j_end,
                                                        const Epilogue& e, float* y, std::size_t y_stride,
                                                        const GroupedPlan& plan, GroupedLaneSums& sums,
                                                        const std::int32_t* lanes) {
  if constexpr (Pre) grouped_lane_sums<Seg, T>(a, t0, plan.steps, sums);
  for (std::size_t j = j0; j < j_end; j += 2) {
    const std::size_t rows = j_end - j < 2 ? 1 : 2;
    RowSet set{};
    std::size_t js[kGemvMaxRows] = {j, j + 1, 0, 0};
    for (std::size_t r = 0; r < rows; ++r) {
      set.rows[r] = w.row(j + r);
      set.block_step[r] = w.block_step(j + r);
    }
    grouped_row_set<Fields, Seg, 2, T, Pre>(rows, set, js, plan, a, t0, e, y, y_stride, lanes);
  }
}

template <class Fields, int Seg, bool Pre>
BITLINEAR_AVX512_TARGET inline void grouped_matmul_tokens(const PackedWeightsView& w, const ActivationsView& a,
                                                          std::size_t row_begin, std::size_t row_end,
                                                          const Epilogue& e, float* y, std::size_t y_stride,
                                                          const GroupedPlan& plan) {
  GroupedLaneSums sums;  // Pre only; only the entries of the group's tokens and the row's segments are written
  // Through a volatile pointer: GCC cannot follow which entries were written and would warn (maybe-uninitialized);
  // portable, unlike an asm barrier.
  const std::int32_t* volatile lanes_through = &sums.lanes[0][0][0];
  const std::int32_t* lanes = lanes_through;
  if (a.batch >= grouped_gemm_min_batch) {
    for (std::size_t j0 = row_begin; j0 < row_end; j0 += kGroupedGemmRows) {
      const std::size_t j_end = row_end - j0 < kGroupedGemmRows ? row_end : j0 + kGroupedGemmRows;
      for (std::size_t t0 = 0; t0 < a.batch; t0 += kGroupedMaxTokens) {
        switch (a.batch - t0) {
          case 1: grouped_gemm_tokens<Fields, Seg, 1, Pre>(w, a, t0, j0, j_end, e, y, y_stride, plan, sums, lanes); break;
          case 2: grouped_gemm_tokens<Fields, Seg, 2, Pre>(w, a, t0, j0, j_end, e, y, y_stride, plan, sums, lanes); break;
          case 3: grouped_gemm_tokens<Fields, Seg, 3, Pre>(w, a, t0, j0, j_end, e, y, y_stride, plan, sums, lanes); break;
          default: grouped_gemm_tokens<Fields, Seg, 4, Pre>(w, a, t0, j0, j_end, e, y, y_stride, plan, sums, lanes); break;
        }
      }
    }
    return;
  }
  for (std::size_t t0 = 0; t0 < a.batch; t0 += kGroupedMaxTokens) {
    switch (a.batch - t0) {
      case 1:
        if constexpr (Pre) grouped_lane_sums<Seg, 1>(a, t0, plan.steps, sums);
        grouped_gemv_tokens<Fields, Seg, 1, Pre>(w, a, t0, row_begin, row_end, e, y, y_stride, plan, lanes);
        break;
      case 2:
        if constexpr (Pre) grouped_lane_sums<Seg, 2>(a, t0, plan.steps, sums);
        grouped_gemv_tokens<Fields, Seg, 2, Pre>(w, a, t0, row_begin, row_end, e, y, y_stride, plan, lanes);
        break;
      case 3:
        if constexpr (Pre) grouped_lane_sums<Seg, 3>(a, t0, plan.steps, sums);
        grouped_gemv_tokens<Fields, Seg, 3, Pre>(w, a, t0, row_begin, row_end, e, y, y_stride, plan, lanes);
        break;
      default:
        if constexpr (Pre) grouped_lane_sums<Seg, 4>(a, t0, plan.steps, sums);
        grouped_gemv_tokens<Fields, Seg, 4, Pre>(w, a, t0, row_begin, row_end, e, y, y_stride, plan, lanes);
        break;
    }
  }
}

// GEMM batches on panels (grouped_panel.hpp) when 4 rows fit one; otherwise the row kernel, with lane sums from the
// stack buffer when the row's segment ends fit it, or accumulated beside the rows. (The panel kernel is not
// inlined here, so that its panel and the lane-sum buffer are never on the stack at once.)
template <class Fields, int Seg>
BITLINEAR_AVX512_TARGET inline void grouped_matmul_segments(const PackedWeightsView& w, const ActivationsView& a,
                                                            std::size_t row_begin, std::size_t row_end,
                                                            const Epilogue& e, float* y, std::size_t y_stride,
                                                            const GroupedPlan& plan) {
  if (a.batch >= grouped_gemm_min_batch && grouped_panel_rows(plan.steps * 64, grouped_flushes<Seg>(plan.steps)) != 0) {
    if (a.block_size == 0) {
      grouped_panel_gemm<Fields, Seg, false>(w, a, row_begin, row_end, e, y, y_stride, plan);
    } else {
      grouped_panel_gemm<Fields, Seg, true>(w, a, row_begin, row_end, e, y, y_stride, plan);
    }
  } else if (grouped_flushes<Seg>(plan.steps) <= kGroupedMaxFlushes) {
    grouped_matmul_tokens<Fields, Seg, true>(w, a, row_begin, row_end, e, y, y_stride, plan);
  } else {
    grouped_matmul_tokens<Fields, Seg, false>(w, a, row_begin, row_end, e, y, y_stride, plan);
  }
}

// The grid slots (table.hpp: 2-bit, 1-bit, and compact in the avx512_vbmi row): the segment mode picks the kernel;
// a shape grouped_plan() does not cover goes to the scalar reference.
template <class Fields>
inline void grouped_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (row_begin >= row_end || a.batch == 0) return;
  const GroupedPlan plan = grouped_plan(w, a, e);
  switch (plan.supported ? plan.segment : -2) {
    case kGroupedWholeRow: grouped_matmul_segments<Fields, kGroupedWholeRow>(w, a, row_begin, row_end, e, y, y_stride, plan); return;
    case kGroupedHalfStep: grouped_matmul_segments<Fields, kGroupedHalfStep>(w, a, row_begin, row_end, e, y, y_stride, plan); return;
    case 1: grouped_matmul_segments<Fields, 1>(w, a, row_begin, row_end, e, y, y_stride, plan); return;
    case 2: grouped_matmul_segments<Fields, 2>(w, a, row_begin, row_end, e, y, y_stride, plan); return;
    case 4: grouped_matmul_segments<Fields, 4>(w, a, row_begin, row_end, e, y, y_stride, plan); return;
    default: ref::grouped_matmul<typename Fields::Format>(w, a, row_begin, row_end, e, y, y_stride); return;
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
