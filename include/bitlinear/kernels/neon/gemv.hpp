// bitlinear internal: the aarch64 GEMV inner loops, 2-bit/1-bit and compact.
#pragma once
#include "../../detail/internal_only.hpp"

// aarch64 GEMV inner loops (one token against a run of ROWS = 1..4 output rows), reading
// the weights in any execution layout (RowRun, target.hpp). Each returns, for every row r of the run, the integer
//   ternary: field_dot[r] = sum_k (code[r][k] + 1) * q[k]        (fields 0, 1, 2; the caller subtracts sum(q))
//   binary:  bit_dot[r]   = sum_k bit[r][k] * q[k]               (bits 0, 1; code = 2 * bit - 1)
// over `blocks` whole 64-byte blocks. Padding weights meet zero activations (activations.hpp), so whole blocks
// are exact. The ROWS rows of a run share every activation load. Memory order: block b of rows 0..ROWS-1, then
// block b + 1; in the family's own layout (groups of 4 rows interleaved block by block) that is one linear
// stream of 256-byte steps, and every block's lines are prefetched run.prefetch_offset bytes ahead. ROW_STEP != 0
// is run.row_step known at compile time (64 in the family's layout), which saves the per-trip address arithmetic.
//
// neon_dotprod, ternary, per 16-byte slice v of a row (64 weights, four 2-bit fields):
//   f0 = v & 0x03 -> SDOT into acc1 with q[0..]      f1*4  = v & 0x0C -> SDOT into acc4 with q[64..]
//   f3 = v >> 6   -> SDOT into acc1 with q[192..]    f2*16 = v & 0x30 -> SDOT into acc16 with q[128..]
//   field_dot = sum(acc1) + sum(acc4) / 4 + sum(acc16) / 16   (each is exactly 4x or 16x an integer)
// 4 bit operations + 4 SDOT per 64 weights. Bound: |sum(acc16)| <= 16 * 2 * 128 * 2^18 = 2^30 < 2^31.
// neon_dotprod, binary, per slice (128 weights, eight 1-bit planes): CMTST with 1 << i gives -bit_i as a byte
// mask (0 or -1), SDOT with q[64*i..] accumulates -bit_dot: 8 CMTST + 8 SDOT per 128 weights.
// neon (ARMv8.0), ternary: fields by USHR/AND, then SMLAL/SMLAL2 into int16 lanes (|f * q| <= 256, at most
// 32 products per lane per 256-weight block: <= 8192), widened per block with SADALP into int32.
// neon (ARMv8.0), binary: CMTST mask, AND with q (q where the bit is set), SADALP into int16 (at most 64 values
// of |q| <= 128 per lane per block: <= 8192), widened per block into int32.
#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>

#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

// Accumulators live in named variables (one struct per row, expanded for ROWS = 1..4), not in arrays of
// vectors: GCC 12 keeps arrays of vectors indexed in a loop on the stack and stores them on every iteration.
// Each *_step helper is force-inlined into its kernel (BITLINEAR_NEON_ALWAYS_INLINE, target.hpp), so the
// references below become registers.

struct TernaryDotprodAcc {
  int32x4_t scale1, scale4, scale16;  // fields 0 and 3; 4 x field 1; 16 x field 2
};

// Two adjacent slices (h = 0, 1) of one row against the activations a_i = q[64 i + 16 s ..], i = 0..3.
BITLINEAR_NEON_DOTPROD_TARGET BITLINEAR_NEON_ALWAYS_INLINE void ternary_dotprod_step(
    TernaryDotprodAcc& acc, const std::uint8_t* w, const int8x16x2_t& a0, const int8x16x2_t& a1,
    const int8x16x2_t& a2, const int8x16x2_t& a3) noexcept {
  const uint8x16x2_t v = vld1q_u8_x2(w);
  for (int h = 0; h < 2; ++h) {
    acc.scale1 = sdot(acc.scale1, vreinterpretq_s8_u8(vandq_u8(v.val[h], vdupq_n_u8(0x03))), a0.val[h]);
    acc.scale4 = sdot(acc.scale4, vreinterpretq_s8_u8(vandq_u8(v.val[h], vdupq_n_u8(0x0C))), a1.val[h]);
    acc.scale16 = sdot(acc.scale16, vreinterpretq_s8_u8(vandq_u8(v.val[h], vdupq_n_u8(0x30))), a2.val[h]);
    acc.scale1 = sdot(acc.scale1, vreinterpretq_s8_u8(vshrq_n_u8(v.val[h], 6)), a3.val[h]);
  }
}

BITLINEAR_NEON_DOTPROD_TARGET BITLINEAR_NEON_ALWAYS_INLINE std::int32_t ternary_dotprod_finish(
    const TernaryDotprodAcc& acc) noexcept {
  return vaddvq_s32(acc.scale1) + vaddvq_s32(acc.scale4) / 4 + vaddvq_s32(acc.scale16) / 16;
}

template <int ROWS, std::size_t ROW_STEP = 0>
BITLINEAR_NEON_DOTPROD_TARGET inline void ternary_gemv_dotprod(const RowRun& run, const std::int8_t* q,
                                                               std::int32_t* field_dot) noexcept {
  static_assert(ROWS >= 1 && ROWS <= 4, "a GEMV call reads 1 to 4 rows");
  const int32x4_t zero = vdupq_n_s32(0);
  TernaryDotprodAcc r0{zero, zero, zero}, r1 = r0, r2 = r0, r3 = r0;
  const std::size_t rs = ROW_STEP != 0 ? ROW_STEP : run.row_step;
  const std::uint8_t* wb = run.rows;
  for (std::size_t b = 0; b < run.blocks; ++b, wb += run.block_step) {
    prefetch_rows<ROWS>(wb, rs, run.prefetch_offset);
    const std::int8_t* qb = q + b * 256;
    for (std::size_t s = 0; s < 4; s += 2) {  // two adjacent slices: paired loads of weights and activations
      const int8x16x2_t a0 = vld1q_s8_x2(qb + 16 * s);
      const int8x16x2_t a1 = vld1q_s8_x2(qb + 64 + 16 * s);
      const int8x16x2_t a2 = vld1q_s8_x2(qb + 128 + 16 * s);
      const int8x16x2_t a3 = vld1q_s8_x2(qb + 192 + 16 * s);
      ternary_dotprod_step(r0, wb + 16 * s, a0, a1, a2, a3);
      if constexpr (ROWS > 1) ternary_dotprod_step(r1, wb + rs + 16 * s, a0, a1, a2, a3);
      if constexpr (ROWS > 2) ternary_dotprod_step(r2, wb + 2 * rs + 16 * s, a0, a1, a2, a3);
      if constexpr (ROWS > 3) ternary_dotprod_step(r3, wb + 3 * rs + 16 * s, a0, a1, a2, a3);
    }
  }
  field_dot[0] = ternary_dotprod_finish(r0);
  if constexpr (ROWS > 1) field_dot[1] = ternary_dotprod_finish(r1);
  if constexpr (ROWS > 2) field_dot[2] = ternary_dotprod_finish(r2);
  if constexpr (ROWS > 3) field_dot[3] = ternary_dotprod_finish(r3);
}

struct Planes8 {
  int8x16_t p0, p1, p2, p3, p4, p5, p6, p7;  // activations q[64 i + 16 s ..] of bit plane i
};

BITLINEAR_NEON_ALWAYS_INLINE Planes8 load_planes(const std::int8_t* q) noexcept {
  return {vld1q_s8(q), vld1q_s8(q + 64), vld1q_s8(q + 128), vld1q_s8(q + 192),
          vld1q_s8(q + 256), vld1q_s8(q + 320), vld1q_s8(q + 384), vld1q_s8(q + 448)};
}

// -bit_i as a byte mask (CMTST v, 1 << i).
BITLINEAR_NEON_ALWAYS_INLINE int8x16_t negbit(uint8x16_t v, unsigned i) noexcept {
  return vreinterpretq_s8_u8(vtstq_u8(v, vdupq_n_u8(static_cast<std::uint8_t>(1u << i))));
}

struct BinaryDotprodAcc {
  int32x4_t even, odd;  // two chains: -sum bit * q over even and odd planes
};

struct Planes4 {
  int8x16_t p0, p1, p2, p3;  // activations of bit planes first .. first + 3
};

BITLINEAR_NEON_ALWAYS_INLINE Planes4 load_half_planes(const std::int8_t* q) noexcept {
  return {vld1q_s8(q), vld1q_s8(q + 64), vld1q_s8(q + 128), vld1q_s8(q + 192)};
}

// Planes first .. first + 3 of one slice v of one row, half a slice at a time (4 activation vectors live instead
// of 8). GCC 12's scheduler still hoists most CMTSTs of a trip and spills about 6 vectors per 512 weights
// (docs/neon.md counts them).
BITLINEAR_NEON_DOTPROD_TARGET BITLINEAR_NEON_ALWAYS_INLINE void binary_dotprod_half(BinaryDotprodAcc& acc,
                                                                                     uint8x16_t v, const Planes4& a,
                                                                                     unsigned first) noexcept {
  acc.even = sdot(acc.even, negbit(v, first), a.p0);
  acc.odd = sdot(acc.odd, negbit(v, first + 1), a.p1);
  acc.even = sdot(acc.even, negbit(v, first + 2), a.p2);
  acc.odd = sdot(acc.odd, negbit(v, first + 3), a.p3);
}

template <int ROWS, std::size_t ROW_STEP = 0>
BITLINEAR_NEON_DOTPROD_TARGET inline void binary_gemv_dotprod(const RowRun& run, const std::int8_t* q,
                                                              std::int32_t* bit_dot) noexcept {
  static_assert(ROWS >= 1 && ROWS <= 4, "a GEMV call reads 1 to 4 rows");
  const int32x4_t zero = vdupq_n_s32(0);
  BinaryDotprodAcc r0{zero, zero}, r1 = r0, r2 = r0, r3 = r0;
  const std::size_t rs = ROW_STEP != 0 ? ROW_STEP : run.row_step;
  const std::uint8_t* wb = run.rows;
  for (std::size_t b = 0; b < run.blocks; ++b, wb += run.block_step) {
    prefetch_rows<ROWS>(wb, rs, run.prefetch_offset);
    const std::int8_t* qb = q + b * 512;
    for (std::size_t s = 0; s < 4; ++s) {
      const uint8x16_t v0 = vld1q_u8(wb + 16 * s);
      uint8x16_t v1 = v0, v2 = v0, v3 = v0;
      if constexpr (ROWS > 1) v1 = vld1q_u8(wb + rs + 16 * s);
      if constexpr (ROWS > 2) v2 = vld1q_u8(wb + 2 * rs + 16 * s);
      if constexpr (ROWS > 3) v3 = vld1q_u8(wb + 3 * rs + 16 * s);
      for (unsigned first = 0; first < 8; first += 4) {
        const Planes4 a = load_half_planes(qb + 64 * first + 16 * s);
        binary_dotprod_half(r0, v0, a, first);
        if constexpr (ROWS > 1) binary_dotprod_half(r1, v1, a, first);
        if constexpr (ROWS > 2) binary_dotprod_half(r2, v2, a, first);
        if constexpr (ROWS > 3) binary_dotprod_half(r3, v3, a, first);
      }
    }
  }
  bit_dot[0] = -vaddvq_s32(vaddq_s32(r0.even, r0.odd));
  if constexpr (ROWS > 1) bit_dot[1] = -vaddvq_s32(vaddq_s32(r1.even, r1.odd));
  if constexpr (ROWS > 2) bit_dot[2] = -vaddvq_s32(vaddq_s32(r2.even, r2.odd));
  if constexpr (ROWS > 3) bit_dot[3] = -vaddvq_s32(vaddq_s32(r3.even, r3.odd));
}

struct Int16Pair {
  int16x8_t lo, hi;
};

// One slice of one row, ternary: fields by USHR/AND, SMLAL/SMLAL2 with a_i = q[64 i + 16 s ..].
BITLINEAR_NEON_ALWAYS_INLINE void ternary_neon_step(Int16Pair& acc, const std::uint8_t* w, int8x16_t a0,
                                                    int8x16_t a1, int8x16_t a2, int8x16_t a3) noexcept {
  const uint8x16_t v = vld1q_u8(w);
  const uint8x16_t mask = vdupq_n_u8(0x03);
  const int8x16_t f0 = vreinterpretq_s8_u8(vandq_u8(v, mask));
  const int8x16_t f1 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), mask));
  const int8x16_t f2 = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), mask));
  const int8x16_t f3 = vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
  acc.lo = vmlal_s8(acc.lo, vget_low_s8(f0), vget_low_s8(a0));
  acc.hi = vmlal_high_s8(acc.hi, f0, a0);
  acc.lo = vmlal_s8(acc.lo, vget_low_s8(f1), vget_low_s8(a1));
  acc.hi = vmlal_high_s8(acc.hi, f1, a1);
  acc.lo = vmlal_s8(acc.lo, vget_low_s8(f2), vget_low_s8(a2));
  acc.hi = vmlal_high_s8(acc.hi, f2, a2);
  acc.lo = vmlal_s8(acc.lo, vget_low_s8(f3), vget_low_s8(a3));
  acc.hi = vmlal_high_s8(acc.hi, f3, a3);
}

template <int ROWS, std::size_t ROW_STEP = 0>
inline void ternary_gemv_neon(const RowRun& run, const std::int8_t* q, std::int32_t* field_dot) noexcept {
  static_assert(ROWS >= 1 && ROWS <= 4, "a GEMV call reads 1 to 4 rows");
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  const std::size_t rs = ROW_STEP != 0 ? ROW_STEP : run.row_step;
  const std::uint8_t* wb = run.rows;
  for (std::size_t b = 0; b < run.blocks; ++b, wb += run.block_step) {
    prefetch_rows<ROWS>(wb, rs, run.prefetch_offset);
    const std::int8_t* qb = q + b * 256;
    const int16x8_t zero = vdupq_n_s16(0);
    Int16Pair r0{zero, zero}, r1 = r0, r2 = r0, r3 = r0;
    for (std::size_t s = 0; s < 4; ++s) {
      const int8x16_t a0 = vld1q_s8(qb + 16 * s), a1 = vld1q_s8(qb + 64 + 16 * s);
      const int8x16_t a2 = vld1q_s8(qb + 128 + 16 * s), a3 = vld1q_s8(qb + 192 + 16 * s);
      ternary_neon_step(r0, wb + 16 * s, a0, a1, a2, a3);
      if constexpr (ROWS > 1) ternary_neon_step(r1, wb + rs + 16 * s, a0, a1, a2, a3);
      if constexpr (ROWS > 2) ternary_neon_step(r2, wb + 2 * rs + 16 * s, a0, a1, a2, a3);
      if constexpr (ROWS > 3) ternary_neon_step(r3, wb + 3 * rs + 16 * s, a0, a1, a2, a3);
    }
    acc0 = vpadalq_s16(vpadalq_s16(acc0, r0.lo), r0.hi);
    if constexpr (ROWS > 1) acc1 = vpadalq_s16(vpadalq_s16(acc1, r1.lo), r1.hi);
    if constexpr (ROWS > 2) acc2 = vpadalq_s16(vpadalq_s16(acc2, r2.lo), r2.hi);
    if constexpr (ROWS > 3) acc3 = vpadalq_s16(vpadalq_s16(acc3, r3.lo), r3.hi);
  }
  field_dot[0] = vaddvq_s32(acc0);
  if constexpr (ROWS > 1) field_dot[1] = vaddvq_s32(acc1);
  if constexpr (ROWS > 2) field_dot[2] = vaddvq_s32(acc2);
  if constexpr (ROWS > 3) field_dot[3] = vaddvq_s32(acc3);
}

// One slice of one row, binary: q where bit i is set (CMTST mask AND q), pairwise-added into int16 lanes.
BITLINEAR_NEON_ALWAYS_INLINE int16x8_t binary_neon_step(int16x8_t acc, const std::uint8_t* w,
                                                        const Planes8& a) noexcept {
  const uint8x16_t v = vld1q_u8(w);
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 0), a.p0));
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 1), a.p1));
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 2), a.p2));
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 3), a.p3));
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 4), a.p4));
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 5), a.p5));
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 6), a.p6));
  acc = vpadalq_s8(acc, vandq_s8(negbit(v, 7), a.p7));
  return acc;
}

template <int ROWS, std::size_t ROW_STEP = 0>
inline void binary_gemv_neon(const RowRun& run, const std::int8_t* q, std::int32_t* bit_dot) noexcept {
  static_assert(ROWS >= 1 && ROWS <= 4, "a GEMV call reads 1 to 4 rows");
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  const std::size_t rs = ROW_STEP != 0 ? ROW_STEP : run.row_step;
  const std::uint8_t* wb = run.rows;
  for (std::size_t b = 0; b < run.blocks; ++b, wb += run.block_step) {
    prefetch_rows<ROWS>(wb, rs, run.prefetch_offset);
    const std::int8_t* qb = q + b * 512;
    int16x8_t p0 = vdupq_n_s16(0), p1 = p0, p2 = p0, p3 = p0;
    for (std::size_t s = 0; s < 4; ++s) {
      const Planes8 a = load_planes(qb + 16 * s);
      p0 = binary_neon_step(p0, wb + 16 * s, a);
      if constexpr (ROWS > 1) p1 = binary_neon_step(p1, wb + rs + 16 * s, a);
      if constexpr (ROWS > 2) p2 = binary_neon_step(p2, wb + 2 * rs + 16 * s, a);
      if constexpr (ROWS > 3) p3 = binary_neon_step(p3, wb + 3 * rs + 16 * s, a);
    }
    acc0 = vpadalq_s16(acc0, p0);
    if constexpr (ROWS > 1) acc1 = vpadalq_s16(acc1, p1);
    if constexpr (ROWS > 2) acc2 = vpadalq_s16(acc2, p2);
    if constexpr (ROWS > 3) acc3 = vpadalq_s16(acc3, p3);
  }
  bit_dot[0] = vaddvq_s32(acc0);
  if constexpr (ROWS > 1) bit_dot[1] = vaddvq_s32(acc1);
  if constexpr (ROWS > 2) bit_dot[2] = vaddvq_s32(acc2);
  if constexpr (ROWS > 3) bit_dot[3] = vaddvq_s32(acc3);
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64

// --------------------------------------------------------------------------------------------------------------
// Aarch64 kernels for the compact ternary format (format_compact.hpp), both families.
// GEMV (batch < compact_gemm_min_batch), per 16-byte slice s of a row's block (bytes 16 s .. 16 s + 15):
//   c = v & 63;  f3 = tbl4(T3, c);  f4 = tbl4(T4, c);  w = tbl4(T4s, c) + (v >> 6) (USRA);  f0..f2 = tbl2(W_i, w)
// (TBL with 64-byte tables in 4 registers, 32-byte ones in 2), then field i meets the activations
// q[320 b + 64 i + 16 s ..]: SDOT (neon_dotprod) or SMULL/SMULL2 + SADALP (neon; |f q| <= 256, exact in int16
// pairs). raw = sum f q, dot = raw - sum q, epilogue of target.hpp. The last block runs only the fields that start
// below in_features (activation rows are padded to 512, compact rows to 320). Reads any execution layout.
// Larger batches decode to 2-bit rows and use the family's ternary GEMM (compact_fallback.hpp).

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>

#include "../../format_compact.hpp"
#include "../compact_fallback.hpp"
#include "../compact_lookup.hpp"
#include "../interface.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

inline constexpr std::size_t compact_gemm_min_batch = 5;

struct CompactNeonTables {
  uint8x16x4_t t3, t4, t4s;
  uint8x16x2_t w0, w1, w2;
};

inline CompactNeonTables load_compact_neon_tables() noexcept {
  const CompactLookup& t = compact_lookup;  // compact_lookup.hpp
  return {vld1q_u8_x4(t.t3), vld1q_u8_x4(t.t4), vld1q_u8_x4(t.t4s),
          vld1q_u8_x2(t.w0), vld1q_u8_x2(t.w1), vld1q_u8_x2(t.w2)};
}

// The five fields of 16 bytes.
inline void decode_compact_slice(uint8x16_t v, const CompactNeonTables& t, uint8x16_t (&f)[5]) noexcept {
  const uint8x16_t c = vandq_u8(v, vdupq_n_u8(63));
  const uint8x16_t w = vsraq_n_u8(vqtbl4q_u8(t.t4s, c), v, 6);
  f[0] = vqtbl2q_u8(t.w0, w);
  f[1] = vqtbl2q_u8(t.w1, w);
  f[2] = vqtbl2q_u8(t.w2, w);
  f[3] = vqtbl4q_u8(t.t3, c);
  f[4] = vqtbl4q_u8(t.t4, c);
}

// sum f q over the first `fields` fields of one 64-byte block.
BITLINEAR_NEON_DOTPROD_TARGET inline int32x4_t compact_block_dotprod(int32x4_t acc, const std::uint8_t* block,
                                                                     const std::int8_t* q, int fields,
                                                                     const CompactNeonTables& t) noexcept {
  for (int s = 0; s < 4; ++s) {
    uint8x16_t f[5];
    decode_compact_slice(vld1q_u8(block + 16 * s), t, f);
    for (int i = 0; i < fields; ++i) acc = sdot(acc, vreinterpretq_s8_u8(f[i]), vld1q_s8(q + 64 * i + 16 * s));
  }
  return acc;
}

inline int32x4_t compact_block_neon(int32x4_t acc, const std::uint8_t* block, const std::int8_t* q, int fields,
                                    const CompactNeonTables& t) noexcept {
  for (int s = 0; s < 4; ++s) {
    uint8x16_t f[5];
    decode_compact_slice(vld1q_u8(block + 16 * s), t, f);
    for (int i = 0; i < fields; ++i) {
      const int8x16_t fi = vreinterpretq_s8_u8(f[i]);
      const int8x16_t qi = vld1q_s8(q + 64 * i + 16 * s);
      acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(fi), vget_low_s8(qi)));
      acc = vpadalq_s16(acc, vmull_high_s8(fi, qi));
    }
  }
  return acc;
}

template <bool DOTPROD>
inline std::int32_t compact_row_raw(const PackedWeightsView& w, std::size_t j, const std::int8_t* q,
                                    const CompactNeonTables& t) noexcept {
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  const int tail_fields = static_cast<int>((w.in_features - 320 * (blocks - 1) + 63) / 64);
  const std::uint8_t* row = w.row(j);
  const std::size_t step = w.block_step(j);
  int32x4_t acc = vdupq_n_s32(0);
  for (std::size_t b = 0; b < blocks; ++b) {
    const int fields = b + 1 == blocks ? tail_fields : 5;
    if constexpr (DOTPROD) {
      acc = compact_block_dotprod(acc, row + b * step, q + 320 * b, fields, t);
    } else {
      acc = compact_block_neon(acc, row + b * step, q + 320 * b, fields, t);
    }
  }
  return vaddvq_s32(acc);
}

template <bool DOTPROD>
inline void compact_gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                         std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  const CompactNeonTables t = load_compact_neon_tables();
  for (std::size_t tok = 0; tok < a.batch; ++tok) {
    const std::int8_t* q = a.q + tok * a.stride;
    for (std::size_t j = row_begin; j < row_end; ++j) {
      y[tok * y_stride + j] = ternary_output(compact_row_raw<DOTPROD>(w, j, q, t) - a.sum[tok], a.scale[tok], e, j);
    }
  }
}

// The compact MatmulKernel of a family whose 2-bit matmul is `Ternary2Bit`.
template <bool DOTPROD, MatmulKernel Ternary2Bit>
inline void compact_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch < compact_gemm_min_batch) {
    compact_gemv<DOTPROD>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    compact_matmul_via_ternary(Ternary2Bit, &decode_compact_row_to_ternary, w, a, row_begin, row_end, e, y, y_stride);
  }
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
