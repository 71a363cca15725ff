// bitlinear internal: aarch64 kernels for the compact ternary format (format_compact.hpp), both families.
// GEMV (batch <= compact_gemv_max_batch), per 16-byte slice s of a row's block (bytes 16 s .. 16 s + 15):
//   c = v & 63;  f3 = tbl4(T3, c);  f4 = tbl4(T4, c);  w = tbl4(T4s, c) + (v >> 6) (USRA);  f0..f2 = tbl2(W_i, w)
// (TBL with 64-byte tables in 4 registers, 32-byte ones in 2), then field i meets the activations
// q[320 b + 64 i + 16 s ..]: SDOT (neon_dotprod) or SMULL/SMULL2 + SADALP (neon; |f q| <= 256, exact in int16
// pairs). raw = sum f q, dot = raw - sum q, epilogue of common.hpp. The last block runs only the fields that start
// below in_features (activation rows are padded to 512, compact rows to 320). Reads any execution layout.
// Larger batches decode to 2-bit rows and use the family's ternary GEMM (compact_fallback.hpp).
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>

#include "../../format_compact.hpp"
#include "../compact_fallback.hpp"
#include "../interface.hpp"
#include "common.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

inline constexpr std::size_t compact_gemv_max_batch = 4;

struct CompactNeonLookup {
  std::uint8_t t3[64], t4[64], t4s[64], w0[32], w1[32], w2[32];
};

constexpr CompactNeonLookup make_compact_neon_lookup() {
  CompactNeonLookup t{};
  for (unsigned c = 0; c < 63; ++c) {  // c = 63 never occurs in validated weights
    t.t3[c] = static_cast<std::uint8_t>(c / 7 % 3);
    t.t4[c] = static_cast<std::uint8_t>(c / 7 / 3);
    t.t4s[c] = static_cast<std::uint8_t>(4 * (c % 7));
  }
  for (unsigned w = 0; w < 27; ++w) {
    t.w0[w] = static_cast<std::uint8_t>(w % 3);
    t.w1[w] = static_cast<std::uint8_t>(w / 3 % 3);
    t.w2[w] = static_cast<std::uint8_t>(w / 9);
  }
  return t;
}

inline constexpr CompactNeonLookup compact_neon_lookup = make_compact_neon_lookup();

struct CompactNeonTables {
  uint8x16x4_t t3, t4, t4s;
  uint8x16x2_t w0, w1, w2;
};

inline CompactNeonTables load_compact_neon_tables() noexcept {
  const CompactNeonLookup& t = compact_neon_lookup;
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
  if (a.batch <= compact_gemv_max_batch) {
    compact_gemv<DOTPROD>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    compact_matmul_via_ternary(Ternary2Bit, w, a, row_begin, row_end, e, y, y_stride);
  }
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
