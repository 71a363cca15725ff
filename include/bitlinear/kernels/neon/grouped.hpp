// bitlinear internal: the aarch64 kernels of the grouped formats (2-bit, 1-bit and compact codes with one float
// scale per group of weights), both families: a GEMV for small batches and a GEMM for prefill.
#pragma once
#include "../../detail/internal_only.hpp"

// The pinned order (interface.hpp, "Grouped formats"; ref/grouped.hpp is the oracle) maps onto NEON registers as
// follows. A row is a run of 64-weight fields (ternary: field i of a 64-byte block, i = 0..3, bits 2i..2i+1 of
// every byte; binary: bit i, i = 0..7; compact: field i of a 320-weight block, i = 0..4). Slice s (bytes 16 s .. 16 s + 15 of the block) of a field holds the
// weights 64 f + 16 s .. + 15, i.e. the lanes 4 s .. 4 s + 3, so the 16 lanes are four int32x4 registers
// part0..part3 (slice s -> part_s) and four float32x4 registers acc0..acc3 in the same order:
//   codes:  signed bytes code in {-1, 0, 1, 2} (ternary, field - 1: field value 3 is +2), {-1, +1} (binary) or
//           {-1, 0, 1} (compact)
//   p_l:    neon_dotprod: SDOT sums the 4 consecutive byte products of one int32 lane, exactly lane l;
//           neon: SMULL/SMULL2 (int16 products, |code q| <= 256), ADDP (adjacent pairs, <= 512 in int16) and
//           SADALP (adjacent pairs of pairs into the int32 lane): the same 4-byte sums (lane_dot below)
//   flush:  at the end of a segment, acc_s = FMLA(acc_s, SCVTF(part_s), c) (one rounding per lane: the fma of
//           the reference; SCVTF rounds to nearest even like (float)p), part_s = 0. A segment of 32 weights
//           (S == 32) covers the slices 0-1 or 2-3 of one field and flushes only those two registers (the other
//           lanes would add fma(0, c, acc) = acc). c is the group scale of the row, times the token's block scale
//           when a.block_size > 0 (exact_mul: one rounded product, as grouped_segment_scale).
//   total:  (acc0 + acc2), (acc1 + acc3) [l + l+8]; their sum [l + l+4]; low half + high half [l + l+2]; lane 0 +
//           lane 1 [l + l+1]: grouped_lane_sum's tree, each sum kept apart by no_contract so that
//           -fassociative-math cannot regroup it.
// The epilogue, derived once: y[t][j] = grouped_output(total, a.scale[t], e, j) = (total / a.scale[t]) + bias[j],
// two exact_* operations (no fma). A non-finite row has a.scale[t] = NaN, hence y = NaN.
// Segments: S = grouped_segment(...); a kernel handles S >= in_features (one segment), S == 32, and S a multiple
// of 64, with group and block sizes that are multiples of S or >= in_features (every shape the formats allow);
// any other shape runs the scalar reference. Fields from ceil(in_features / 64) on hold padding only and are not
// read; the last field's padding weights meet zero activations (activations.hpp), so whole fields are exact, and
// the second half of a field that starts at or past in_features is skipped (it is no segment: no scale is read).
//
// GEMV (batch < grouped_gemm_min_batch): rows in pairs, every token of the batch against the pair before the next
// pair (the pair's bytes stay in L1), codes decoded from the packed bytes per slice (ternary: USHL, AND, SUB;
// binary: CMTST (negbit, gemv.hpp), BSL). A pair keeps 16 vector registers of state (8 int32 partials, 8 float
// accumulators; four rows would take all 32), and each activation load serves both rows. Each row's blocks are
// prefetched as in the per-tensor GEMV (prefetch_distance, target.hpp).
// GEMM (and compact weights at every batch): panels of gemm_rows rows unpacked once per chunk (2-bit and 1-bit:
// gemm_chunk weights, unpack_panel of gemm.hpp, then turned into signed codes in place; compact: six blocks,
// decoded by the compact GEMV's TBL decoder), then every token of a block of grouped_token_block tokens runs the same field loop on
// the panel's rows, two at a time. A segment may outlive a chunk (S > gemm_chunk), so the lanes of each (token,
// row) are saved between chunks (stack: grouped_token_block x gemm_rows x 128 bytes).
#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../format.hpp"
#include "../../format_compact.hpp"
#include "../interface.hpp"
#include "../ref/grouped.hpp"
#include "gemm.hpp"
#include "gemv.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

// Batches from this size on take the GEMM (the GEMV runs every token against a pair of rows already in L1, so
// below it the weights are still read from memory once per call).
inline constexpr std::size_t grouped_gemm_min_batch = 5;
inline constexpr std::size_t grouped_token_block = 32;

// The segment geometry of one call (see above).
struct GroupedShape {
  std::size_t in_features = 0;
  std::size_t fields = 0;              // 64-weight fields that hold a weight < in_features
  bool halves = false;                 // S == 32 < in_features: a segment is half a field
  std::size_t fields_per_segment = 1;  // otherwise: S / 64, or `fields` (one segment per row)
  std::size_t segments_per_group = 0;  // 0: every segment lies in group 0 (group_size >= in_features)
  std::size_t segments_per_block = 0;  // 0: every segment lies in block 0 (or the activations are per token)
  bool supported = false;
};

inline GroupedShape grouped_shape(std::size_t n, const ActivationsView& a, const Epilogue& e) noexcept {
  GroupedShape shape;
  const std::size_t s = grouped_segment(e.group_size, a.block_size, n);
  shape.in_features = n;
  shape.fields = (n + 63) / 64;
  const bool one = s >= n;
  bool ok = s != 0 && (one || s == 32 || s % 64 == 0);
  shape.halves = !one && s == 32;
  shape.fields_per_segment = one ? shape.fields : (s < 64 ? 1 : s / 64);
  if (ok && e.group_size < n) {
    ok = e.group_size % s == 0;
    shape.segments_per_group = e.group_size / s;
  }
  if (ok && a.block_size != 0 && a.block_size < n) {
    ok = a.block_size % s == 0;
    shape.segments_per_block = a.block_size / s;
  }
  shape.supported = ok && n != 0;
  return shape;
}

// Group and block of the current segment, advanced segment by segment (no division per segment).
struct SegmentCursor {
  std::size_t group = 0, group_count = 0, block = 0, block_count = 0;

  SegmentCursor(const GroupedShape& shape, std::size_t segment) noexcept {
    if (shape.segments_per_group != 0) {
      group = segment / shape.segments_per_group;
      group_count = segment % shape.segments_per_group;
    }
    if (shape.segments_per_block != 0) {
      block = segment / shape.segments_per_block;
      block_count = segment % shape.segments_per_block;
    }
  }
  BITLINEAR_NEON_ALWAYS_INLINE void advance(const GroupedShape& shape) noexcept {
    if (++group_count == shape.segments_per_group) {
      group_count = 0;
      ++group;
    }
    if (++block_count == shape.segments_per_block) {
      block_count = 0;
      ++block;
    }
  }
};

// The segment scales c of ROWS rows j.. for one token.
template <int ROWS>
struct GroupedScales {
  const float* group[ROWS];  // group_scale of each row
  const float* block;        // the token's block scales, or nullptr (per-token activations)

  GroupedScales(const Epilogue& e, const ActivationsView& a, std::size_t j, std::size_t t) noexcept
      : block(a.block_size != 0 ? a.block_scale + t * a.block_stride : nullptr) {
    for (int r = 0; r < ROWS; ++r) group[r] = e.group_scale + (j + static_cast<std::size_t>(r)) * e.groups_per_row;
  }
  BITLINEAR_NEON_ALWAYS_INLINE float at(int r, const SegmentCursor& cursor) const noexcept {
    const float g = group[r][cursor.group];
    return block != nullptr ? exact_mul(g, block[cursor.block]) : g;
  }
};

// The 16 lanes of one (token, row): float accumulators and the int32 partials of the open segment.
struct GroupedLanes {
  float32x4_t acc0, acc1, acc2, acc3;
  int32x4_t part0, part1, part2, part3;
};

BITLINEAR_NEON_ALWAYS_INLINE GroupedLanes zero_lanes() noexcept {
  const float32x4_t f = vdupq_n_f32(0.0f);
  const int32x4_t i = vdupq_n_s32(0);
  return {f, f, f, f, i, i, i, i};
}

// acc[i] += sum_{k<4} a[4i+k] * b[4i+k] without SDOT (see the top of this file).
BITLINEAR_NEON_ALWAYS_INLINE int32x4_t lane_dot_neon(int32x4_t acc, int8x16_t a, int8x16_t b) noexcept {
  const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
  const int16x8_t hi = vmull_high_s8(a, b);
  return vpadalq_s16(acc, vpaddq_s16(lo, hi));
}

template <bool DOTPROD>
BITLINEAR_NEON_ALWAYS_INLINE int32x4_t lane_dot(int32x4_t acc, int8x16_t a, int8x16_t b) noexcept {
  if constexpr (DOTPROD) {
    return sdot(acc, a, b);
  } else {
    return lane_dot_neon(acc, a, b);
  }
}

// acc = fma((float)part, c, acc) lane by lane, part = 0: the low (lanes 0-7) or high (8-15) half, or all.
BITLINEAR_NEON_ALWAYS_INLINE void flush_low(GroupedLanes& l, float c) noexcept {
  l.acc0 = vfmaq_n_f32(l.acc0, vcvtq_f32_s32(l.part0), c);
  l.acc1 = vfmaq_n_f32(l.acc1, vcvtq_f32_s32(l.part1), c);
  l.part0 = vdupq_n_s32(0);
  l.part1 = vdupq_n_s32(0);
}
BITLINEAR_NEON_ALWAYS_INLINE void flush_high(GroupedLanes& l, float c) noexcept {
  l.acc2 = vfmaq_n_f32(l.acc2, vcvtq_f32_s32(l.part2), c);
  l.acc3 = vfmaq_n_f32(l.acc3, vcvtq_f32_s32(l.part3), c);
  l.part2 = vdupq_n_s32(0);
  l.part3 = vdupq_n_s32(0);
}

// grouped_lane_sum's tree on the four accumulators.
BITLINEAR_NEON_ALWAYS_INLINE float lane_total(const GroupedLanes& l) noexcept {
  const float32x4_t low = no_contract(vaddq_f32(l.acc0, l.acc2));   // lanes 0-3 + 8-11
  const float32x4_t high = no_contract(vaddq_f32(l.acc1, l.acc3));  // lanes 4-7 + 12-15
  const float32x4_t four = no_contract(vaddq_f32(low, high));
  const float32x2_t two = no_contract(vadd_f32(vget_low_f32(four), vget_high_f32(four)));
  return exact_add(vget_lane_f32(two, 0), vget_lane_f32(two, 1));
}

// Signed codes of slice s of field `field` (of its block) at `block`.
template <class Format>
BITLINEAR_NEON_ALWAYS_INLINE int8x16_t packed_code_slice(const std::uint8_t* block, unsigned field,
                                                         std::size_t s) noexcept {
  const uint8x16_t v = vld1q_u8(block + 16 * s);
  if constexpr (Format::bits_per_weight == 2) {
    const uint8x16_t f = vandq_u8(vshlq_u8(v, vdupq_n_s8(static_cast<std::int8_t>(-2 * static_cast<int>(field)))),
                                  vdupq_n_u8(3));
    return vsubq_s8(vreinterpretq_s8_u8(f), vdupq_n_s8(1));
  } else {
    return vbslq_s8(vreinterpretq_u8_s8(negbit(v, field)), vdupq_n_s8(1), vdupq_n_s8(-1));
  }
}

// Codes straight from the packed rows (any layout: each row has its own block step).
template <class Format, int ROWS>
struct PackedCodes {
  static constexpr std::size_t fields_per_block = Format::weights_per_block / 64;
  const std::uint8_t* row[ROWS];
  std::size_t step[ROWS];

  std::size_t prefetch_offset;  // prefetch_within (target.hpp) of the farthest block these rows read

  PackedCodes(const PackedWeightsView& w, std::size_t j) noexcept {
    for (int r = 0; r < ROWS; ++r) {
      row[r] = w.row(j + static_cast<std::size_t>(r));
      step[r] = w.block_step(j + static_cast<std::size_t>(r));
    }
    const std::size_t blocks = w.row_bytes / packed_block_bytes;
    prefetch_offset = prefetch_within(w, row[ROWS - 1] + (blocks - 1) * step[ROWS - 1], prefetch_distance(w));
  }
  // At the first field of a block: one PRFM per row, prefetch_offset beyond the block (the same block of rows
  // further on in the canonical layout: prefetch_distance).
  BITLINEAR_NEON_ALWAYS_INLINE void enter_field(std::size_t f) const noexcept {
    if (f % fields_per_block != 0) return;
    for (int r = 0; r < ROWS; ++r) prefetch(row[r] + f / fields_per_block * step[r] + prefetch_offset);
  }
  BITLINEAR_NEON_ALWAYS_INLINE int8x16_t slice(int r, std::size_t f, std::size_t s) const noexcept {
    return packed_code_slice<Format>(row[r] + f / fields_per_block * step[r],
                                     static_cast<unsigned>(f % fields_per_block), s);
  }
};

// Codes from an unpacked GEMM panel whose first weight is field `first` of the row.
template <int ROWS>
struct PanelCodes {
  const std::int8_t* row[ROWS];
  std::size_t first;

  BITLINEAR_NEON_ALWAYS_INLINE void enter_field(std::size_t) const noexcept {}
  BITLINEAR_NEON_ALWAYS_INLINE int8x16_t slice(int r, std::size_t f, std::size_t s) const noexcept {
    return vld1q_s8(row[r] + 64 * (f - first) + 16 * s);
  }
};

// Slices 0 and 1 (dot_low: lanes 0-7) or 2 and 3 (dot_high: lanes 8-15) of field f of ROWS rows, into their
// part registers; each activation vector serves every row.
template <bool DOTPROD, int ROWS, class Codes>
BITLINEAR_NEON_ALWAYS_INLINE void dot_low(const Codes& codes, const std::int8_t* qf, std::size_t f, GroupedLanes& l0,
                                          GroupedLanes& l1) noexcept {
  const int8x16_t q0 = vld1q_s8(qf), q1 = vld1q_s8(qf + 16);
  l0.part0 = lane_dot<DOTPROD>(l0.part0, codes.slice(0, f, 0), q0);
  l0.part1 = lane_dot<DOTPROD>(l0.part1, codes.slice(0, f, 1), q1);
  if constexpr (ROWS > 1) {
    l1.part0 = lane_dot<DOTPROD>(l1.part0, codes.slice(1, f, 0), q0);
    l1.part1 = lane_dot<DOTPROD>(l1.part1, codes.slice(1, f, 1), q1);
  }
}
template <bool DOTPROD, int ROWS, class Codes>
BITLINEAR_NEON_ALWAYS_INLINE void dot_high(const Codes& codes, const std::int8_t* qf, std::size_t f,
                                           GroupedLanes& l0, GroupedLanes& l1) noexcept {
  const int8x16_t q2 = vld1q_s8(qf + 32), q3 = vld1q_s8(qf + 48);
  l0.part2 = lane_dot<DOTPROD>(l0.part2, codes.slice(0, f, 2), q2);
  l0.part3 = lane_dot<DOTPROD>(l0.part3, codes.slice(0, f, 3), q3);
  if constexpr (ROWS > 1) {
    l1.part2 = lane_dot<DOTPROD>(l1.part2, codes.slice(1, f, 2), q2);
    l1.part3 = lane_dot<DOTPROD>(l1.part3, codes.slice(1, f, 3), q3);
  }
}

// Fields [f_begin, f_end) of ROWS (1 or 2) rows against one token's activations q, in the pinned order; the lanes
// carry the state in and out (a segment may continue past f_end unless f_end == shape.fields).
template <bool DOTPROD, int ROWS, class Codes>
BITLINEAR_NEON_ALWAYS_INLINE void grouped_fields(const Codes& codes, const std::int8_t* q, std::size_t f_begin,
                                                 std::size_t f_end, const GroupedShape& shape,
                                                 const GroupedScales<ROWS>& scales, GroupedLanes& l0,
                                                 GroupedLanes& l1) noexcept {
  if (shape.halves) {
    SegmentCursor cursor(shape, 2 * f_begin);
    for (std::size_t f = f_begin; f < f_end; ++f) {
      const std::int8_t* qf = q + 64 * f;
      codes.enter_field(f);
      dot_low<DOTPROD, ROWS>(codes, qf, f, l0, l1);
      flush_low(l0, scales.at(0, cursor));
      if constexpr (ROWS > 1) flush_low(l1, scales.at(1, cursor));
      cursor.advance(shape);
      if (64 * f + 32 < shape.in_features) {
        dot_high<DOTPROD, ROWS>(codes, qf, f, l0, l1);
        flush_high(l0, scales.at(0, cursor));
        if constexpr (ROWS > 1) flush_high(l1, scales.at(1, cursor));
        cursor.advance(shape);
      }
    }
    return;
  }
  SegmentCursor cursor(shape, f_begin / shape.fields_per_segment);
  std::size_t position = f_begin % shape.fields_per_segment;  // fields of the open segment already summed
  for (std::size_t f = f_begin; f < f_end; ++f) {
    const std::int8_t* qf = q + 64 * f;
    codes.enter_field(f);
    dot_low<DOTPROD, ROWS>(codes, qf, f, l0, l1);
    dot_high<DOTPROD, ROWS>(codes, qf, f, l0, l1);
    if (++position == shape.fields_per_segment || f + 1 == shape.fields) {
      const float c0 = scales.at(0, cursor);
      flush_low(l0, c0);
      flush_high(l0, c0);
      if constexpr (ROWS > 1) {
        const float c1 = scales.at(1, cursor);
        flush_low(l1, c1);
        flush_high(l1, c1);
      }
      cursor.advance(shape);
      position = 0;
    }
  }
}

// GEMV: ROWS rows from j, every token.
template <class Format, bool DOTPROD, int ROWS>
BITLINEAR_NEON_ALWAYS_INLINE void grouped_gemv_rows(const PackedWeightsView& w, const ActivationsView& a,
                                                    std::size_t j, const GroupedShape& shape, const Epilogue& e,
                                                    float* y, std::size_t y_stride) noexcept {
  const PackedCodes<Format, ROWS> codes(w, j);
  for (std::size_t t = 0; t < a.batch; ++t) {
    const GroupedScales<ROWS> scales(e, a, j, t);
    GroupedLanes l0 = zero_lanes(), l1 = l0;
    grouped_fields<DOTPROD, ROWS>(codes, a.q + t * a.stride, 0, shape.fields, shape, scales, l0, l1);
    y[t * y_stride + j] = grouped_output(lane_total(l0), a.scale[t], e, j);
    if constexpr (ROWS > 1) y[t * y_stride + j + 1] = grouped_output(lane_total(l1), a.scale[t], e, j + 1);
  }
}

template <class Format, bool DOTPROD>
BITLINEAR_NEON_ALWAYS_INLINE void grouped_gemv(const PackedWeightsView& w, const ActivationsView& a,
                                               std::size_t row_begin, std::size_t row_end, const GroupedShape& shape,
                                               const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  std::size_t j = row_begin;
  for (; j + 2 <= row_end; j += 2) grouped_gemv_rows<Format, DOTPROD, 2>(w, a, j, shape, e, y, y_stride);
  if (j < row_end) grouped_gemv_rows<Format, DOTPROD, 1>(w, a, j, shape, e, y, y_stride);
}

// The lanes of one (token, row) between chunks.
struct SavedLanes {
  float acc[16];
  std::int32_t part[16];
};

BITLINEAR_NEON_ALWAYS_INLINE GroupedLanes load_lanes(const SavedLanes& s) noexcept {
  return {vld1q_f32(s.acc),       vld1q_f32(s.acc + 4),    vld1q_f32(s.acc + 8),    vld1q_f32(s.acc + 12),
          vld1q_s32(s.part),      vld1q_s32(s.part + 4),   vld1q_s32(s.part + 8),   vld1q_s32(s.part + 12)};
}
BITLINEAR_NEON_ALWAYS_INLINE void store_lanes(const GroupedLanes& l, SavedLanes& s) noexcept {
  vst1q_f32(s.acc, l.acc0);
  vst1q_f32(s.acc + 4, l.acc1);
  vst1q_f32(s.acc + 8, l.acc2);
  vst1q_f32(s.acc + 12, l.acc3);
  vst1q_s32(s.part, l.part0);
  vst1q_s32(s.part + 4, l.part1);
  vst1q_s32(s.part + 8, l.part2);
  vst1q_s32(s.part + 12, l.part3);
}

// The unpacked panel (ternary: field in {0..3}; binary: -bit in {0, -1}) to signed codes, `len` weights per row.
template <class Format>
inline void panel_to_codes(std::int8_t (*panel)[gemm_chunk], std::size_t rows, std::size_t len) noexcept {
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t k = 0; k < len; k += 16) {
      const int8x16_t x = vld1q_s8(panel[r] + k);
      if constexpr (Format::bits_per_weight == 2) {
        vst1q_s8(panel[r] + k, vsubq_s8(x, vdupq_n_s8(1)));  // code = field - 1
      } else {
        vst1q_s8(panel[r] + k, vsubq_s8(vdupq_n_s8(-1), vaddq_s8(x, x)));  // code = -1 - 2 (-bit)
      }
    }
  }
}

// Compact rows (format_compact.hpp) to signed codes: blocks [block0, block0 + blocks) of rows j0.., 320 weights
// per block (compact field i of block b holds the weights 320 b + 64 i ..: whole 64-weight fields, so the panel
// has the same lane structure), decoded with the compact GEMV's TBL decoder (decode_compact_slice, gemv.hpp).
inline void unpack_compact_codes(const PackedWeightsView& w, std::size_t j0, std::size_t rows, std::size_t block0,
                                 std::size_t blocks, std::int8_t (*panel)[gemm_chunk]) noexcept {
  const CompactNeonTables tables = load_compact_neon_tables();
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = w.row(j0 + r);
    const std::size_t step = w.block_step(j0 + r);
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::uint8_t* block = row + (block0 + b) * step;
      std::int8_t* dst = panel[r] + b * TernaryCompact::weights_per_block;
      for (std::size_t s = 0; s < slices_per_block; ++s) {
        uint8x16_t f[5];
        decode_compact_slice(vld1q_u8(block + 16 * s), tables, f);
        for (std::size_t i = 0; i < 5; ++i) {
          vst1q_s8(dst + 64 * i + 16 * s, vsubq_s8(vreinterpretq_s8_u8(f[i]), vdupq_n_s8(1)));
        }
      }
    }
  }
}

// Weights per unpacked chunk: whole blocks of the format, and whole 64-weight fields.
template <class Format>
inline constexpr std::size_t grouped_chunk = std::is_same<Format, TernaryCompact>::value ? 6 * 320 : gemm_chunk;

// The panel of rows j0.. (rows <= gemm_rows), weights [k0, k0 + len) of the padded rows, as signed codes.
template <class Format>
inline void unpack_grouped_panel(const PackedWeightsView& w, std::size_t j0, std::size_t rows, std::size_t k0,
                                 std::size_t len, std::size_t distance, std::int8_t (*panel)[gemm_chunk]) noexcept {
  constexpr std::size_t per_block = Format::weights_per_block;
  if constexpr (std::is_same<Format, TernaryCompact>::value) {
    (void)distance;
    unpack_compact_codes(w, j0, rows, k0 / per_block, len / per_block, panel);
  } else {
    unpack_panel<Format>(w, j0, rows, k0 / per_block, len / per_block, distance, panel);
    panel_to_codes<Format>(panel, rows, len);
  }
}

template <class Format, bool DOTPROD>
BITLINEAR_NEON_ALWAYS_INLINE void grouped_gemm(const PackedWeightsView& w, const ActivationsView& a,
                                               std::size_t row_begin, std::size_t row_end, const GroupedShape& shape,
                                               const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  alignas(16) std::int8_t panel[gemm_rows][gemm_chunk];
  SavedLanes saved[grouped_token_block][gemm_rows];
  constexpr std::size_t chunk = grouped_chunk<Format>;
  const std::size_t padded_k = w.row_bytes / packed_block_bytes * Format::weights_per_block;
  const std::size_t distance = prefetch_distance(w);
  for (std::size_t j0 = row_begin; j0 < row_end;) {
    const std::size_t panel_end = (j0 / gemm_rows + 1) * gemm_rows;
    const std::size_t rows = (row_end < panel_end ? row_end : panel_end) - j0;
    for (std::size_t t0 = 0; t0 < a.batch; t0 += grouped_token_block) {
      const std::size_t tokens = a.batch - t0 < grouped_token_block ? a.batch - t0 : grouped_token_block;
      std::memset(saved, 0, tokens * sizeof(saved[0]));  // +0 in every float and int lane
      for (std::size_t k0 = 0; k0 < padded_k && k0 / 64 < shape.fields; k0 += chunk) {
        const std::size_t len = padded_k - k0 < chunk ? padded_k - k0 : chunk;
        const std::size_t f_begin = k0 / 64;
        const std::size_t f_end = (k0 + len) / 64 < shape.fields ? (k0 + len) / 64 : shape.fields;
        unpack_grouped_panel<Format>(w, j0, rows, k0, len, distance, panel);
        for (std::size_t t = 0; t < tokens; ++t) {
          const std::int8_t* q = a.q + (t0 + t) * a.stride;
          std::size_t r = 0;
          for (; r + 2 <= rows; r += 2) {
            const PanelCodes<2> codes{{panel[r], panel[r + 1]}, f_begin};
            const GroupedScales<2> scales(e, a, j0 + r, t0 + t);
            GroupedLanes l0 = load_lanes(saved[t][r]), l1 = load_lanes(saved[t][r + 1]);
            grouped_fields<DOTPROD, 2>(codes, q, f_begin, f_end, shape, scales, l0, l1);
            store_lanes(l0, saved[t][r]);
            store_lanes(l1, saved[t][r + 1]);
          }
          if (r < rows) {
            const PanelCodes<1> codes{{panel[r]}, f_begin};
            const GroupedScales<1> scales(e, a, j0 + r, t0 + t);
            GroupedLanes l0 = load_lanes(saved[t][r]), l1 = l0;
            grouped_fields<DOTPROD, 1>(codes, q, f_begin, f_end, shape, scales, l0, l1);
            store_lanes(l0, saved[t][r]);
          }
        }
      }
      for (std::size_t t = 0; t < tokens; ++t) {
        for (std::size_t r = 0; r < rows; ++r) {
          y[(t0 + t) * y_stride + j0 + r] =
              grouped_output(lane_total(load_lanes(saved[t][r])), a.scale[t0 + t], e, j0 + r);
        }
      }
    }
    j0 += rows;
  }
}

// The MatmulKernel (interface.hpp) of either family: unsupported shapes run the reference; 2-bit and 1-bit
// weights take the GEMV below grouped_gemm_min_batch; compact weights always take the panel path (their codes
// are decoded into the panel once per call, whatever the batch).
template <class Format, bool DOTPROD>
BITLINEAR_NEON_ALWAYS_INLINE void grouped_matmul(const PackedWeightsView& w, const ActivationsView& a,
                                                 std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                 float* y, std::size_t y_stride) {
  const GroupedShape shape = grouped_shape(w.in_features, a, e);
  if (!shape.supported) {
    ref::grouped_matmul<Format>(w, a, row_begin, row_end, e, y, y_stride);
    return;
  }
  if constexpr (!std::is_same<Format, TernaryCompact>::value) {
    if (a.batch < grouped_gemm_min_batch) {
      grouped_gemv<Format, DOTPROD>(w, a, row_begin, row_end, shape, e, y, y_stride);
      return;
    }
  }
  grouped_gemm<Format, DOTPROD>(w, a, row_begin, row_end, shape, e, y, y_stride);
}

template <class Format>
inline void grouped_matmul_neon(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  grouped_matmul<Format, false>(w, a, row_begin, row_end, e, y, y_stride);
}

template <class Format>
BITLINEAR_NEON_DOTPROD_TARGET inline void grouped_matmul_dotprod(const PackedWeightsView& w, const ActivationsView& a,
                                                                 std::size_t row_begin, std::size_t row_end,
                                                                 const Epilogue& e, float* y, std::size_t y_stride) {
  grouped_matmul<Format, true>(w, a, row_begin, row_end, e, y, y_stride);
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
