// bitlinear internal: aarch64 GEMV inner loops (one token against a group of ROWS output rows), reading the
// canonical packed layout directly. Each returns, for every row r of the group, the integer
//   ternary: field_dot[r] = sum_k (code[r][k] + 1) * q[k]        (fields 0, 1, 2; the caller subtracts sum(q))
//   binary:  bit_dot[r]   = sum_k bit[r][k] * q[k]               (bits 0, 1; code = 2 * bit - 1)
// over `blocks` whole 64-byte blocks. Padding weights meet zero activations (activations.hpp), so whole blocks
// are exact. The ROWS rows of a group share every activation load (ROWS = 4 in the main loop, 1 for the tail).
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
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>

#include "common.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

template <int ROWS>
BITLINEAR_NEON_DOTPROD_TARGET inline void ternary_gemv_dotprod(const std::uint8_t* w, std::size_t row_bytes,
                                                               const std::int8_t* q, std::size_t blocks,
                                                               std::int32_t* field_dot) noexcept {
  int32x4_t acc1[ROWS], acc4[ROWS], acc16[ROWS];
  for (int r = 0; r < ROWS; ++r) acc1[r] = acc4[r] = acc16[r] = vdupq_n_s32(0);
  const uint8x16_t mask_f0 = vdupq_n_u8(0x03), mask_f1 = vdupq_n_u8(0x0C), mask_f2 = vdupq_n_u8(0x30);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::int8_t* qb = q + b * 256;
    const std::uint8_t* wb = w + b * 64;
    for (std::size_t s = 0; s < 4; s += 2) {  // two adjacent slices: paired loads of weights and activations
      const int8x16x2_t a0 = vld1q_s8_x2(qb + 16 * s);
      const int8x16x2_t a1 = vld1q_s8_x2(qb + 64 + 16 * s);
      const int8x16x2_t a2 = vld1q_s8_x2(qb + 128 + 16 * s);
      const int8x16x2_t a3 = vld1q_s8_x2(qb + 192 + 16 * s);
      for (int r = 0; r < ROWS; ++r) {
        const uint8x16x2_t v = vld1q_u8_x2(wb + r * row_bytes + 16 * s);
        for (int h = 0; h < 2; ++h) {
          acc1[r] = sdot(acc1[r], vreinterpretq_s8_u8(vandq_u8(v.val[h], mask_f0)), a0.val[h]);
          acc4[r] = sdot(acc4[r], vreinterpretq_s8_u8(vandq_u8(v.val[h], mask_f1)), a1.val[h]);
          acc16[r] = sdot(acc16[r], vreinterpretq_s8_u8(vandq_u8(v.val[h], mask_f2)), a2.val[h]);
          acc1[r] = sdot(acc1[r], vreinterpretq_s8_u8(vshrq_n_u8(v.val[h], 6)), a3.val[h]);
        }
      }
    }
  }
  for (int r = 0; r < ROWS; ++r) {
    field_dot[r] = vaddvq_s32(acc1[r]) + vaddvq_s32(acc4[r]) / 4 + vaddvq_s32(acc16[r]) / 16;
  }
}

template <int ROWS>
BITLINEAR_NEON_DOTPROD_TARGET inline void binary_gemv_dotprod(const std::uint8_t* w, std::size_t row_bytes,
                                                              const std::int8_t* q, std::size_t blocks,
                                                              std::int32_t* bit_dot) noexcept {
  int32x4_t acc[ROWS][2];
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
  uint8x16_t plane[8];
  for (int i = 0; i < 8; ++i) plane[i] = vdupq_n_u8(static_cast<std::uint8_t>(1u << i));
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::int8_t* qb = q + b * 512;
    const std::uint8_t* wb = w + b * 64;
    for (std::size_t s = 0; s < 4; ++s) {
      int8x16_t a[8];
      for (int i = 0; i < 8; ++i) a[i] = vld1q_s8(qb + 64 * i + 16 * s);
      for (int r = 0; r < ROWS; ++r) {
        const uint8x16_t v = vld1q_u8(wb + r * row_bytes + 16 * s);
        for (int i = 0; i < 8; ++i) {
          acc[r][i & 1] = sdot(acc[r][i & 1], vreinterpretq_s8_u8(vtstq_u8(v, plane[i])), a[i]);
        }
      }
    }
  }
  for (int r = 0; r < ROWS; ++r) bit_dot[r] = -vaddvq_s32(vaddq_s32(acc[r][0], acc[r][1]));
}

template <int ROWS>
inline void ternary_gemv_neon(const std::uint8_t* w, std::size_t row_bytes, const std::int8_t* q,
                              std::size_t blocks, std::int32_t* field_dot) noexcept {
  int32x4_t acc[ROWS];
  for (int r = 0; r < ROWS; ++r) acc[r] = vdupq_n_s32(0);
  const uint8x16_t mask = vdupq_n_u8(0x03);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::int8_t* qb = q + b * 256;
    const std::uint8_t* wb = w + b * 64;
    int16x8_t lo[ROWS], hi[ROWS];
    for (int r = 0; r < ROWS; ++r) lo[r] = hi[r] = vdupq_n_s16(0);
    for (std::size_t s = 0; s < 4; ++s) {
      int8x16_t a[4];
      for (int i = 0; i < 4; ++i) a[i] = vld1q_s8(qb + 64 * i + 16 * s);
      for (int r = 0; r < ROWS; ++r) {
        const uint8x16_t v = vld1q_u8(wb + r * row_bytes + 16 * s);
        int8x16_t f[4];
        f[0] = vreinterpretq_s8_u8(vandq_u8(v, mask));
        f[1] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), mask));
        f[2] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), mask));
        f[3] = vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
        for (int i = 0; i < 4; ++i) {
          lo[r] = vmlal_s8(lo[r], vget_low_s8(f[i]), vget_low_s8(a[i]));
          hi[r] = vmlal_high_s8(hi[r], f[i], a[i]);
        }
      }
    }
    for (int r = 0; r < ROWS; ++r) acc[r] = vpadalq_s16(vpadalq_s16(acc[r], lo[r]), hi[r]);
  }
  for (int r = 0; r < ROWS; ++r) field_dot[r] = vaddvq_s32(acc[r]);
}

template <int ROWS>
inline void binary_gemv_neon(const std::uint8_t* w, std::size_t row_bytes, const std::int8_t* q,
                             std::size_t blocks, std::int32_t* bit_dot) noexcept {
  int32x4_t acc[ROWS];
  for (int r = 0; r < ROWS; ++r) acc[r] = vdupq_n_s32(0);
  uint8x16_t plane[8];
  for (int i = 0; i < 8; ++i) plane[i] = vdupq_n_u8(static_cast<std::uint8_t>(1u << i));
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::int8_t* qb = q + b * 512;
    const std::uint8_t* wb = w + b * 64;
    int16x8_t partial[ROWS];
    for (int r = 0; r < ROWS; ++r) partial[r] = vdupq_n_s16(0);
    for (std::size_t s = 0; s < 4; ++s) {
      int8x16_t a[8];
      for (int i = 0; i < 8; ++i) a[i] = vld1q_s8(qb + 64 * i + 16 * s);
      for (int r = 0; r < ROWS; ++r) {
        const uint8x16_t v = vld1q_u8(wb + r * row_bytes + 16 * s);
        for (int i = 0; i < 8; ++i) {
          const int8x16_t selected = vandq_s8(vreinterpretq_s8_u8(vtstq_u8(v, plane[i])), a[i]);
          partial[r] = vpadalq_s8(partial[r], selected);
        }
      }
    }
    for (int r = 0; r < ROWS; ++r) acc[r] = vpadalq_s16(acc[r], partial[r]);
  }
  for (int r = 0; r < ROWS; ++r) bit_dot[r] = vaddvq_s32(acc[r]);
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
