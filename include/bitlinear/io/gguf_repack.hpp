// bitlinear: fast conversions of GGUF 2-bit and 1-bit block rows into bitlinear's canonical rows (format.hpp),
// byte-wise bit moves with no per-weight field array: what a load spends per weight.
//
// The canonical rows: a ternary block is 256 weights in 64 bytes, byte j holding weight 64 i + j in bits 2i..2i+1
// (field = code + 1); a binary block is 512 weights in 64 bytes, byte j holding weight 64 i + j in bit i (1 = +1).
// The GGUF layouts are those of gguf_blocks.hpp (which has their sources). Each function writes whole canonical
// blocks of a row (padding fields past in_features: ternary field 1 = code 0, binary bit 0) and one float per GGUF
// block (its fp16 d, converted exactly). gguf_blocks.hpp's decoders are the reference these equal byte for byte
// (tests/gguf_repack_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../format.hpp"
#include "../fp16.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

inline float gguf_fp16_at(const std::uint8_t* p) noexcept {
  return fp16_to_float(static_cast<std::uint16_t>(p[0] | (p[1] << 8)));
}

// TQ2_0 (256 weights, 66 bytes: qs[64] then d): byte 32c + m holds weight 128c + 32l + m in bits 2l. For m < 32 the
// canonical bytes m and 32 + m take, from a = qs[m] and b = qs[32 + m] (weights 0..127 and 128..255):
//   byte m:       fields of weights m, 64 + m, 128 + m, 192 + m = a bits 0-1, a bits 4-5, b bits 0-1, b bits 4-5
//   byte 32 + m:  weights 32 + m, 96 + m, 160 + m, 224 + m        = a bits 2-3, a bits 6-7, b bits 2-3, b bits 6-7
// The fields are already code + 1, the canonical encoding. in_features is a multiple of 256 (gguf_block_row_bytes).
inline void tq2_0_row_to_canonical(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                   float* scales_out) noexcept {
  for (std::size_t block = 0; block < in_features / 256; ++block) {
    const std::uint8_t* qs = src + block * 66;
    std::uint8_t* out = row_out + block * packed_block_bytes;
    for (std::size_t m = 0; m < 32; ++m) {
      const unsigned a = qs[m], b = qs[32 + m];
      out[m] = static_cast<std::uint8_t>((a & 0x03u) | ((a >> 2) & 0x0Cu) | ((b << 4) & 0x30u) | ((b << 2) & 0xC0u));
      out[32 + m] = static_cast<std::uint8_t>(((a >> 2) & 0x03u) | ((a >> 4) & 0x0Cu) | ((b << 2) & 0x30u) | (b & 0xC0u));
    }
    scales_out[block] = gguf_fp16_at(qs + 64);
  }
}

// Q2_0 (group 64) and PQ2_0 / legacy Q2_0 (group 128): blocks of d then qs[group / 4], weight j of a block in bits
// 2 (j % 4) of qs[j / 4], field = code + 1. Field i of a canonical block (its weights 64 i .. 64 i + 63) is the
// 64-weight run s_i of the source: bytes qs[o / 4 ..] of the block holding it, o its offset there. Canonical byte
// 4a + t then holds, in bits 2i, field t of byte a of s_i: for each a, the four source bytes form a 4 x 4 matrix of
// 2-bit fields (row i = s_i[a], column t) that the canonical bytes hold transposed. With the rows packed into a
// 32-bit word (field (i, t) at bit 8i + 2t) the transpose is two exchanges of 2-bit fields:
//   (i, t) <-> (i + 1, t - 1) for i even, t odd  (6 bits apart: mask 0x00CC00CC)
//   (i, t) <-> (i + 2, t - 2) for i < 2, t >= 2  (12 bits apart: mask 0x0000F0F0)
// after which field (i, t) sits at bit 8t + 2i. Runs past in_features read as all fields 1 (byte 0x55: code 0).
// in_features is a multiple of `group` (gguf_block_row_bytes).
inline std::uint32_t transpose_2bit_4x4(std::uint32_t x) noexcept {
  std::uint32_t t = ((x >> 6) ^ x) & 0x00CC00CCu;
  x ^= t ^ (t << 6);
  t = ((x >> 12) ^ x) & 0x0000F0F0u;
  x ^= t ^ (t << 12);
  return x;
}

inline void q2_row_to_canonical(const std::uint8_t* src, std::size_t in_features, std::size_t group,
                                std::uint8_t* row_out, float* scales_out) noexcept {
  const std::size_t block_bytes = 2 + group / 4;
  for (std::size_t g = 0; g < in_features / group; ++g) scales_out[g] = gguf_fp16_at(src + g * block_bytes);
  static const std::uint8_t padding[16] = {0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
                                           0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
  for (std::size_t k0 = 0; k0 < in_features; k0 += 256) {
    const std::uint8_t* run[4];  // the 16 source bytes of each canonical field
    for (std::size_t i = 0; i < 4; ++i) {
      const std::size_t k = k0 + 64 * i;
      run[i] = k < in_features ? src + k / group * block_bytes + 2 + k % group / 4 : padding;
    }
    std::uint8_t* out = row_out + k0 / 256 * packed_block_bytes;
    for (std::size_t a = 0; a < 16; ++a) {
      const std::uint32_t rows = static_cast<std::uint32_t>(run[0][a]) | static_cast<std::uint32_t>(run[1][a]) << 8 |
                                 static_cast<std::uint32_t>(run[2][a]) << 16 | static_cast<std::uint32_t>(run[3][a]) << 24;
      const std::uint32_t bytes = transpose_2bit_4x4(rows);
      for (std::size_t t = 0; t < 4; ++t) out[4 * a + t] = static_cast<std::uint8_t>(bytes >> (8 * t));
    }
  }
}

// Q1_0 (group 128, 18 bytes: d then qs[16]): weight j of a block in bit j % 8 of qs[j / 8], 1 = +d. Field i of a
// canonical binary block (weights 64 i .. 64 i + 63) is the 64-weight run s_i: 8 bytes of the block holding it.
// Canonical byte 8a + b holds, in bit i, bit b of s_i[a]. Read as eight little-endian 64-bit words x_i = s_i, the
// 512 bits of a canonical block are indexed (i; a, b) = (word; byte, bit), and the canonical block read the same
// way is (a; b, i): word a, byte b, bit i. That is a permutation of the 9 index bits, made of six exchanges of a
// word-index bit with a bit-in-word index bit (exchange_word_bits): word bit k with bit k (shift 1, 2, 4) turns
// (i; a, b) into (b; a, i), then word bit k with bit 3 + k (shift 8, 16, 32) into (a; b, i). Each exchange is
// three operations per pair of words, on all eight byte columns at once (the scalar 8 x 8 transposes it replaces
// gathered, transposed and scattered one column at a time). Runs past in_features read as zero bytes (padding
// bit 0). in_features is a multiple of 128 (gguf_block_row_bytes).
// Little-endian 64-bit words from / to bytes: one load or store (memcpy) unless the target is big-endian.
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
inline std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}
inline void store_le64(std::uint8_t* p, std::uint64_t v) noexcept {
  for (unsigned i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
#else
inline std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_le64(std::uint8_t* p, std::uint64_t v) noexcept { std::memcpy(p, &v, sizeof v); }
#endif

// Exchanges word-index bit k with bit-in-word index bit p (shift = 2^p, mask = the bits whose index has bit p
// clear) across the eight words x[0..7]: the bit at (w, q + shift) of a word w with bit k clear trades places with
// the bit at (w + 2^k, q).
template <unsigned K, unsigned Shift>
inline void exchange_word_bits(std::uint64_t* x, std::uint64_t mask) noexcept {
  for (unsigned w = 0; w < 8; ++w) {
    if ((w >> K) & 1u) continue;
    const std::uint64_t t = ((x[w] >> Shift) ^ x[w + (1u << K)]) & mask;
    x[w + (1u << K)] ^= t;
    x[w] ^= t << Shift;
  }
}

inline void q1_0_row_to_canonical(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                  float* scales_out) noexcept {
  for (std::size_t g = 0; g < in_features / 128; ++g) scales_out[g] = gguf_fp16_at(src + g * 18);
  for (std::size_t k0 = 0; k0 < in_features; k0 += 512) {
    std::uint64_t x[8];  // x[i]: the run s_i of weights k0 + 64 i ..
    for (std::size_t i = 0; i < 8; ++i) {
      const std::size_t k = k0 + 64 * i;
      x[i] = k < in_features ? load_le64(src + k / 128 * 18 + 2 + k % 128 / 8) : 0;
    }
    exchange_word_bits<0, 1>(x, 0x5555555555555555ull);
    exchange_word_bits<1, 2>(x, 0x3333333333333333ull);
    exchange_word_bits<2, 4>(x, 0x0F0F0F0F0F0F0F0Full);
    exchange_word_bits<0, 8>(x, 0x00FF00FF00FF00FFull);
    exchange_word_bits<1, 16>(x, 0x0000FFFF0000FFFFull);
    exchange_word_bits<2, 32>(x, 0x00000000FFFFFFFFull);
    std::uint8_t* out = row_out + k0 / 512 * packed_block_bytes;
    for (std::size_t a = 0; a < 8; ++a) store_le64(out + 8 * a, x[a]);
  }
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
