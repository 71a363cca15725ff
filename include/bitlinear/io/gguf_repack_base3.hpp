// bitlinear: fast conversions of the GGUF base-3 block rows (TQ1_0, PrismML's PTQ1_0) into bitlinear's canonical
// 2-bit rows (format.hpp) and 1.6-bit compact rows (format_compact.hpp): the digits of a block computed for all its
// bytes at once by a byte-wide multiply chain, then output bytes assembled from whole sixteen-byte runs of digits.
// Loops over independent byte lanes with no per-weight branch or table lookup, which the compiler vectorizes.
//
// The layouts are those of gguf_blocks.hpp (which has their sources); decode_gguf_row_by_fields and
// decode_gguf_row_compact_by_fields there are the references these equal byte for byte
// (tests/gguf_repack_base3_test.cpp).
//
// The digits. Digit n (0..4) of a byte v is ((v * 3^n mod 256) * 3) >> 8 (gguf_blocks.hpp). With x_0 = v and
// x_{n+1} = 3 x_n mod 256, x_n = v * 3^n mod 256, so
//   digit n = (3 x_n) >> 8 = [x_n > 85] + [x_n > 170]
// (3 x >= 256 exactly when x >= 86, as 85 * 3 = 255; 3 x >= 512 exactly when x >= 171, as 170 * 3 = 510; and
// 3 x <= 765 < 768), and x_{n+1} = x_n + x_n + x_n in uint8 arithmetic: per digit, two saturating subtractions
// clamped to 1 and two adds per byte lane. Every byte value goes the same way: a byte above 242 (which ggml's
// quantizer never writes) gives digits 0..2 exactly as the reference computes them, so, like it, these never fail.
// The same holds for a qh byte's digit n taken as digit 0 of qh * 3^n mod 256.
//
// The target layouts, for 64-weight runs f[0 ..] of a row in weight order, fields f = code + 1:
//   canonical byte j of a 256-weight block = f[j] | f[64 + j] << 2 | f[128 + j] << 4 | f[192 + j] << 6
//   compact byte j of a 320-weight block, with a_i = f[64 i + j]:
//     w = a_0 + 3 a_1 + 9 a_2 (0..26), p = a_3 + 3 a_4 (0..8), byte = 64 (w mod 4) + 7 p + floor(w / 4)
//   which is format_compact.hpp's encoding (compact_table.encode) as byte arithmetic; 7 p + floor(w / 4) <= 62,
//   so the top two bits are w mod 4 alone.
// Fields past in_features are 1 (code 0), the canonical padding of both formats. in_features is a positive multiple
// of the GGUF block (gguf_block_row_bytes checks it before these run).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../format.hpp"
#include "gguf_repack.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Digit 0 of a byte v: (3 v) >> 8 = [v > 85] + [v > 170], as saturating differences clamped to 1 (SSE2 psubusb,
// pminub; NEON uqsub, umin).
inline std::uint8_t base3_top_digit(std::uint8_t v) noexcept {
  const auto over85 = static_cast<std::uint8_t>(v > 85 ? v - 85 : 0);
  const auto over170 = static_cast<std::uint8_t>(v > 170 ? v - 170 : 0);
  return static_cast<std::uint8_t>((over85 < 1 ? over85 : 1) + (over170 < 1 ? over170 : 1));
}

// ---- TQ1_0 (256 weights, 54 bytes: qs[48], qh[4], d) ----
//
// In sixteen-byte lanes: A = qs[0..15], B = qs[16..31], C = qs[32..47]. qs[m], m < 32, holds weights 32 n + m, and
// qs[32 + m], m < 16, weights 160 + 16 n + m; qh[j] holds 240 + 4 n + j (n = 0..3), which is lane 4 n + j of
// Q = (qh[j] * 3^n mod 256 at lane 4 n + j), digit 0. Writing a_n, b_n, c_n for the digit-n vectors and q for
// Q's digit 0, the block's four 64-weight runs, each four lanes of 16 weights, are
//   run 0 (weights   0.. 63) = a_0 b_0 a_1 b_1      run 2 (128..191) = a_4 b_4 c_0 c_1
//   run 1 (weights  64..127) = a_2 b_2 a_3 b_3      run 3 (192..255) = c_2 c_3 c_4 q
// (e.g. weight 176 + i = 160 + 16 * 1 + i is digit 1 of qs[32 + i]: lane i of c_1, run 2's fourth lane). So the
// canonical block, byte 16 k + i holding run s's lane k in bits 2 s, is
//   bytes  0..15 = a_0 | a_2 << 2 | a_4 << 4 | c_2 << 6      bytes 32..47 = a_1 | a_3 << 2 | c_0 << 4 | c_4 << 6
//   bytes 16..31 = b_0 | b_2 << 2 | b_4 << 4 | c_3 << 6      bytes 48..63 = b_1 | b_3 << 2 | c_1 << 4 | q   << 6
// and a compact block (five runs) takes runs 5 c .. 5 c + 4 of the row, spanning at most two TQ1_0 blocks.

// The digit vectors of one TQ1_0 block (a[n] = a_n, b[n] = b_n, c[n] = c_n, q); returns its scale.
struct Tq1Digits {
  std::uint8_t a[5][16], b[5][16], c[5][16], q[16];
};
inline float tq1_digits(const std::uint8_t* block, Tq1Digits& d) noexcept {
  std::uint8_t x[16], y[16], z[16], h[16];
  std::memcpy(x, block, 16);
  std::memcpy(y, block + 16, 16);
  std::memcpy(z, block + 32, 16);
  for (std::size_t n = 0; n < 4; ++n) {
    for (std::size_t j = 0; j < 4; ++j) {
      static constexpr std::uint8_t pow3[4] = {1, 3, 9, 27};
      h[4 * n + j] = static_cast<std::uint8_t>(block[48 + j] * pow3[n]);
    }
  }
  for (std::size_t n = 0; n < 5; ++n) {
    for (std::size_t i = 0; i < 16; ++i) {
      d.a[n][i] = base3_top_digit(x[i]);
      d.b[n][i] = base3_top_digit(y[i]);
      d.c[n][i] = base3_top_digit(z[i]);
      x[i] = static_cast<std::uint8_t>(x[i] + x[i] + x[i]);
      y[i] = static_cast<std::uint8_t>(y[i] + y[i] + y[i]);
      z[i] = static_cast<std::uint8_t>(z[i] + z[i] + z[i]);
    }
  }
  for (std::size_t i = 0; i < 16; ++i) d.q[i] = base3_top_digit(h[i]);
  return gguf_fp16_at(block + 52);
}

// in_features / 256 canonical blocks, one per TQ1_0 block.
inline void tq1_0_row_to_canonical(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                   float* scales_out) noexcept {
  for (std::size_t blk = 0; blk < in_features / 256; ++blk) {
    Tq1Digits d;
    scales_out[blk] = tq1_digits(src + blk * 54, d);
    std::uint8_t* out = row_out + blk * packed_block_bytes;
    for (std::size_t i = 0; i < 16; ++i) {
      out[i] = static_cast<std::uint8_t>(d.a[0][i] | d.a[2][i] << 2 | d.a[4][i] << 4 | d.c[2][i] << 6);
      out[16 + i] = static_cast<std::uint8_t>(d.b[0][i] | d.b[2][i] << 2 | d.b[4][i] << 4 | d.c[3][i] << 6);
      out[32 + i] = static_cast<std::uint8_t>(d.a[1][i] | d.a[3][i] << 2 | d.c[0][i] << 4 | d.c[4][i] << 6);
      out[48 + i] = static_cast<std::uint8_t>(d.b[1][i] | d.b[3][i] << 2 | d.c[1][i] << 4 | d.q[i] << 6);
    }
  }
}

// Run s (0..3: weights 64 s .. 64 s + 63) of a decoded TQ1_0 block as its four sixteen-lane vectors.
inline void tq1_run(const Tq1Digits& d, std::size_t s, const std::uint8_t* (&v)[4]) noexcept {
  switch (s) {
    case 0: v[0] = d.a[0], v[1] = d.b[0], v[2] = d.a[1], v[3] = d.b[1]; return;
    case 1: v[0] = d.a[2], v[1] = d.b[2], v[2] = d.a[3], v[3] = d.b[3]; return;
    case 2: v[0] = d.a[4], v[1] = d.b[4], v[2] = d.c[0], v[3] = d.c[1]; return;
    default: v[0] = d.c[2], v[1] = d.c[3], v[2] = d.c[4], v[3] = d.q; return;
  }
}

// Compact block c from runs 5 c + f (f = 0..4) of the row, run r being run r % 4 of TQ1_0 block r / 4; each block
// is decoded once, when its first run is needed (two slots: a compact block spans at most two blocks). Runs past
// in_features read as sixteen 1 fields per lane.
inline void tq1_0_row_to_compact(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                 float* scales_out) noexcept {
  static const std::uint8_t padding[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const std::size_t runs = in_features / 64;
  Tq1Digits digits[2];  // the blocks of the current compact block (it spans at most two)
  std::size_t next_block = 0;
  for (std::size_t cb = 0; cb < (runs + 4) / 5; ++cb) {
    const std::uint8_t* v[5][4];
    for (std::size_t f = 0; f < 5; ++f) {
      const std::size_t r = 5 * cb + f;
      if (r >= runs) {
        for (std::size_t k = 0; k < 4; ++k) v[f][k] = padding;
        continue;
      }
      const std::size_t blk = r / 4;
      if (blk == next_block) {
        scales_out[blk] = tq1_digits(src + blk * 54, digits[blk % 2]);
        ++next_block;
      }
      tq1_run(digits[blk % 2], r % 4, v[f]);
    }
    std::uint8_t* out = row_out + cb * packed_block_bytes;
    for (std::size_t k = 0; k < 4; ++k) {
      const std::uint8_t *f0 = v[0][k], *f1 = v[1][k], *f2 = v[2][k], *f3 = v[3][k], *f4 = v[4][k];
      std::uint8_t bytes[16];
      for (std::size_t i = 0; i < 16; ++i) {
        const auto w = static_cast<std::uint8_t>(f0[i] + 3 * f1[i] + 9 * f2[i]);
        const auto p = static_cast<std::uint8_t>(f3[i] + 3 * f4[i]);
        bytes[i] = static_cast<std::uint8_t>((w & 3u) << 6 | (7 * p + (w >> 2)));
      }
      std::memcpy(out + 16 * k, bytes, 16);
    }
  }
}

// ---- PTQ1_0 (128 weights, 28 bytes: qs[24], qh[2], d), by way of a field array ----
//
// A block's qs / qh bytes fall into stages of c bytes (PTQ1_0: 16, 8, then qh 2; TQ1_0 would be 32, 16, 4), byte m
// of a stage starting at weight s holding weights s + c n + m (n = 0..4 for qs, 0..3 for qh). So digit n of a
// stage's bytes, in byte order, is the contiguous run of weights s + c n .. s + c n + c - 1: one copy of c digits
// per (stage, n) puts every field at its place in weight order, and the output blocks are packed from that array.
// (TQ1_0 goes this way too through base3_row<Tq1Layout, ...>, which the tests run; the TQ1_0 converters above skip
// the array.)

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
      digit[m] = base3_top_digit(x[m]);
      x[m] = static_cast<std::uint8_t>(x[m] + x[m] + x[m]);
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

inline void ptq1_0_row_to_canonical(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                    float* scales_out) noexcept {
  base3_row<Ptq1Layout, Base3ToCanonical>(src, in_features, row_out, scales_out);
}
inline void ptq1_0_row_to_compact(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                  float* scales_out) noexcept {
  base3_row<Ptq1Layout, Base3ToCompact>(src, in_features, row_out, scales_out);
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
