// bitlinear: fast conversions of the GGUF base-3 block rows (TQ1_0, PrismML's PTQ1_0) into bitlinear's canonical
// 2-bit rows (format.hpp) and 1.6-bit compact rows (format_compact.hpp): every digit of a block by a byte-wide
// multiply chain over all its bytes at once, then whole output blocks packed from 64-weight runs, loops of
// independent byte lanes with no per-weight branch or table lookup, which the compiler vectorizes.
//
// The layouts are those of gguf_blocks.hpp (which has their sources); decode_gguf_row_by_fields and
// decode_gguf_row_compact_by_fields there are the reference these equal byte for byte
// (tests/gguf_repack_base3_test.cpp).
//
// The digits. Digit n (0..4) of a byte v is ((v * 3^n mod 256) * 3) >> 8 (gguf_blocks.hpp). With x_0 = v and
// x_{n+1} = 3 x_n mod 256, x_n = v * 3^n mod 256 (the product mod 256 of the earlier factors), so
//   digit n = (3 x_n) >> 8 = [x_n >= 86] + [x_n >= 171]
// (3 x >= 256 exactly when x >= 86, 85 * 3 = 255; 3 x >= 512 exactly when x >= 171, 170 * 3 = 510; 3 x <= 765 < 768)
// and x_{n+1} = x_n + x_n + x_n in uint8 arithmetic. Each step is two compares and two adds on byte lanes, the same
// for every byte value: a byte above 242 (never written by ggml's quantizer) gives its digits 0..2 exactly as the
// reference does, so, like it, these never fail.
//
// Where the digits go: a block's qs / qh bytes fall into stages of c bytes (TQ1_0: 32, 16, then qh 4; PTQ1_0: 16, 8,
// then qh 2), byte m of a stage starting at weight s holding weights s + c n + m (n = 0..4 for qs, 0..3 for qh). So
// digit n of the stage's bytes, taken in byte order, is the contiguous run of weights s + c n .. s + c n + c - 1:
// one copy of c digits per (stage, n) puts every weight's field (digit = code + 1, already the canonical field) at
// its place in natural weight order.
//
// Packing, 64-weight runs f[i .. i + 63] of that order:
//   canonical byte j of a 256-weight block = f[j] | f[64 + j] << 2 | f[128 + j] << 4 | f[192 + j] << 6
//   compact byte j of a 320-weight block, with a_i = f[64 i + j]:
//     w = a_0 + 3 a_1 + 9 a_2 (0..26), p = a_3 + 3 a_4 (0..8), byte = 64 (w mod 4) + 7 p + floor(w / 4)
//   which is format_compact.hpp's encoding (compact_table.encode) written as byte arithmetic; 7 p + floor(w / 4)
//   <= 62, so the top two bits are w mod 4 alone.
// Fields past in_features are 1 (code 0), the canonical padding of both formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../format.hpp"
#include "gguf_repack.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// A base-3 block type: stages of C0 and C1 qs bytes (five digits each), then H qh bytes (four digits), then d.
template <std::size_t C0, std::size_t C1, std::size_t H>
struct Base3Layout {
  static constexpr std::size_t stage0 = C0, stage1 = C1, qh = H;
  static constexpr std::size_t code_bytes = C0 + C1 + H;
  static constexpr std::size_t block_bytes = code_bytes + 2;
  static constexpr std::size_t block_weights = 5 * C0 + 5 * C1 + 4 * H;
  // The code bytes rounded up to whole 16-byte lanes, so the digit loop has no remainder.
  static constexpr std::size_t lane_bytes = (code_bytes + 15) / 16 * 16;
};
using Tq1Layout = Base3Layout<32, 16, 4>;  // TQ1_0: 256 weights, 54 bytes
using Ptq1Layout = Base3Layout<16, 8, 2>;  // PTQ1_0: 128 weights, 28 bytes
static_assert(Tq1Layout::block_weights == 256 && Tq1Layout::block_bytes == 54, "TQ1_0 layout");
static_assert(Ptq1Layout::block_weights == 128 && Ptq1Layout::block_bytes == 28, "PTQ1_0 layout");

// The fields (code + 1, 0..2) of one block into fields[0 .. block_weights) in weight order; returns its scale.
template <class L>
inline float base3_block_fields(const std::uint8_t* block, std::uint8_t* fields) noexcept {
  std::uint8_t x[L::lane_bytes] = {};
  std::memcpy(x, block, L::code_bytes);
  for (std::size_t n = 0; n < 5; ++n) {
    std::uint8_t digit[L::lane_bytes];
    for (std::size_t m = 0; m < L::lane_bytes; ++m) {
      const std::uint8_t v = x[m];
      // [v > 85] + [v > 170], as saturating differences clamped to 1 (psubusb, pminub on SSE2).
      const auto over85 = static_cast<std::uint8_t>(v > 85 ? v - 85 : 0);
      const auto over170 = static_cast<std::uint8_t>(v > 170 ? v - 170 : 0);
      digit[m] = static_cast<std::uint8_t>((over85 < 1 ? over85 : 1) + (over170 < 1 ? over170 : 1));
      x[m] = static_cast<std::uint8_t>(v + v + v);
    }
    std::memcpy(fields + L::stage0 * n, digit, L::stage0);
    std::memcpy(fields + 5 * L::stage0 + L::stage1 * n, digit + L::stage0, L::stage1);
    if (n < 4) std::memcpy(fields + 5 * (L::stage0 + L::stage1) + L::qh * n, digit + L::stage0 + L::stage1, L::qh);
  }
  return gguf_fp16_at(block + L::code_bytes);
}

// The output block of each format from its 64-weight runs f[0 ..] (4 runs canonical, 5 compact).
struct Base3ToCanonical {
  static constexpr std::size_t block_weights = 256;
  static void pack(const std::uint8_t* f, std::uint8_t* out) noexcept {
    for (std::size_t j = 0; j < 64; ++j) {
      out[j] = static_cast<std::uint8_t>(f[j] | f[64 + j] << 2 | f[128 + j] << 4 | f[192 + j] << 6);
    }
  }
};
struct Base3ToCompact {
  static constexpr std::size_t block_weights = 320;
  static void pack(const std::uint8_t* f, std::uint8_t* out) noexcept {
    for (std::size_t j = 0; j < 64; ++j) {
      const auto w = static_cast<std::uint8_t>(f[j] + 3 * f[64 + j] + 9 * f[128 + j]);
      const auto p = static_cast<std::uint8_t>(f[192 + j] + 3 * f[256 + j]);
      out[j] = static_cast<std::uint8_t>((w & 3u) << 6 | (7 * p + (w >> 2)));
    }
  }
};

// One row of layout L into output blocks of Out (which hold Out::block_weights weights in 64 bytes), one float
// per GGUF block. Works in chunks of 1280 weights (a whole number of 128-, 256- and 320-weight blocks): the
// chunk's GGUF blocks into fields, the fields past in_features set to 1, then the chunk's output blocks packed.
// in_features is a positive multiple of L::block_weights (gguf_block_row_bytes checks it).
template <class L, class Out>
inline void base3_row(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                      float* scales_out) noexcept {
  constexpr std::size_t chunk = 1280;
  static_assert(chunk % L::block_weights == 0 && chunk % Out::block_weights == 0, "whole blocks per chunk");
  std::uint8_t fields[chunk];
  for (std::size_t k0 = 0; k0 < in_features; k0 += chunk) {
    const std::size_t filled = in_features - k0 < chunk ? in_features - k0 : chunk;
    const std::size_t first = k0 / L::block_weights;
    for (std::size_t b = 0; b < filled / L::block_weights; ++b) {
      scales_out[first + b] = base3_block_fields<L>(src + (first + b) * L::block_bytes, fields + b * L::block_weights);
    }
    const std::size_t out_blocks = (filled + Out::block_weights - 1) / Out::block_weights;
    std::memset(fields + filled, 1, out_blocks * Out::block_weights - filled);
    std::uint8_t* out = row_out + k0 / Out::block_weights * packed_block_bytes;
    for (std::size_t b = 0; b < out_blocks; ++b) Out::pack(fields + b * Out::block_weights, out + b * packed_block_bytes);
  }
}

inline void tq1_0_row_to_canonical(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                   float* scales_out) noexcept {
  base3_row<Tq1Layout, Base3ToCanonical>(src, in_features, row_out, scales_out);
}
inline void ptq1_0_row_to_canonical(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                    float* scales_out) noexcept {
  base3_row<Ptq1Layout, Base3ToCanonical>(src, in_features, row_out, scales_out);
}
inline void tq1_0_row_to_compact(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                 float* scales_out) noexcept {
  base3_row<Tq1Layout, Base3ToCompact>(src, in_features, row_out, scales_out);
}
inline void ptq1_0_row_to_compact(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                  float* scales_out) noexcept {
  base3_row<Ptq1Layout, Base3ToCompact>(src, in_features, row_out, scales_out);
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
