// bitlinear: the group-scaled ternary and 1-bit GGUF block types of upstream ggml and of PrismML's fork, decoded into
// canonical rows (format.hpp, format_compact.hpp) and one float scale per block.
//
// Each type stores a row of in_features weights as in_features / block_weights blocks (in_features must be a
// multiple); a block is an fp16 scale d and packed codes, weight = code * d. Layouts (ggml-common.h and the
// reference dequantizers of ggml-quants.c, ggml-org/ggml d99724f):
//   TQ2_0 (id 35), 256 weights, 66 bytes: qs[64] then d. Byte 32c + m holds, in bits 2l..2l+1, the weight
//          128c + 32l + m as code + 1 (field 3 reads as +2, as ggml's dequantizer computes (q - 1) * d).
//   TQ1_0 (id 34), 256 weights, 54 bytes: qs[48], qh[4], d. Base-3 digits: the digit n of a byte v is
//          ((v * 3^n mod 256) * 3) >> 8, code = digit - 1. Byte m < 32 of qs gives weights 32n + m (n = 0..4);
//          byte 32 + m (m < 16) gives 160 + 16n + m; byte j of qh gives 240 + 4n + j (n = 0..3).
//   Q1_0  (id 41), 128 weights, 18 bytes: d then qs[16]. Bit j % 8 of byte j / 8: 1 is +d, 0 is -d.
//   Q2_0  (id 42), 64 weights, 18 bytes: d then qs[16]. Bits 2(j % 4) of byte j / 4 hold code + 1, field 3 = +2.
// PrismML's fork (PrismML-Eng/llama.cpp, ggml-common.h and ggml-quants.c), group-128 ternary types:
//   PQ2_0 (id 142) and legacy Q2_0_g128 (id 42 in older files; gguf.hpp tells it from Q2_0 by size), 128 weights,
//          34 bytes: d then qs[32]; the Q2_0 codec (dequantize_row_pq2_0: ((int)q - 1) * d, field 3 = +2).
//   PTQ1_0 (id 143), 128 weights, 28 bytes: qs[24], qh[2], d. TQ1_0's base-3 digits (digit n of byte v as above)
//          and its staging generalized: the fork's quantize_row_ptq1_0_ref / dequantize_row_ptq1_0 walk qs in
//          stages of 32, 16 and 8 bytes (as many whole stages of each as fit, widest first: for 24 bytes none of
//          32, one of 16, one of 8), byte m of a stage of c bytes holding weights base + c n + m, n = 0..4; then qh
//          byte j holds weights 120 + 2n + j (n = 0..3). So: qs[m], m < 16, gives weights 16n + m; qs[16 + m],
//          m < 8, gives 80 + 8n + m; qh[j] gives 120 + 2n + j. (The fork's stored sources here predate PTQ1_0; the
//          order is that of its quantize_row_ptq1_0_ref as quoted by projects built on the fork, which agree.)
// Every byte value decodes (a TQ1_0 byte above 242, which ggml's quantizer never writes, still gives digits
// 0..2), so decoding never fails; the layer checks the scales (finite) when the rows are handed to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "../config.hpp"
#include "../error.hpp"
#include "../format.hpp"
#include "../format_compact.hpp"
#include "../fp16.hpp"
#include "gguf_repack.hpp"
#include "gguf_repack_base3.hpp"

BITLINEAR_NAMESPACE_BEGIN

enum class GgufBlockType : std::uint8_t { tq1_0, tq2_0, q1_0, q2_0, pq2_0, ptq1_0, q2_0_g128 };

struct GgufBlockTypeInfo {
  const char* name;
  std::uint32_t ggml_type;     // the type id in upstream ggml
  std::size_t block_weights;   // weights per block (= the group size of the layer it becomes)
  std::size_t block_bytes;
  bool binary;                 // codes +-1 (Binary rows) rather than ternary (Ternary rows)
};

inline constexpr GgufBlockTypeInfo gguf_block_info(GgufBlockType type) noexcept {
  switch (type) {
    case GgufBlockType::tq1_0: return {"TQ1_0", 34, 256, 54, false};
    case GgufBlockType::tq2_0: return {"TQ2_0", 35, 256, 66, false};
    case GgufBlockType::q1_0: return {"Q1_0", 41, 128, 18, true};
    case GgufBlockType::pq2_0: return {"PQ2_0", 142, 128, 34, false};
    case GgufBlockType::ptq1_0: return {"PTQ1_0", 143, 128, 28, false};
    case GgufBlockType::q2_0_g128: return {"Q2_0_g128", 42, 128, 34, false};  // PrismML legacy, stored as id 42
    case GgufBlockType::q2_0: break;
  }
  return {"Q2_0", 42, 64, 18, false};
}

// Bytes of one row of in_features weights. Throws std::invalid_argument unless in_features is a positive multiple
// of the type's block.
inline std::size_t gguf_block_row_bytes(GgufBlockType type, std::size_t in_features) {
  const GgufBlockTypeInfo info = gguf_block_info(type);
  BITLINEAR_REQUIRE(in_features > 0 && in_features % info.block_weights == 0,
                    std::string("a ") + info.name + " row of " + std::to_string(in_features) +
                        " weights: the row length must be a positive multiple of its block of " +
                        std::to_string(info.block_weights));
  return in_features / info.block_weights * info.block_bytes;
}

namespace detail {

// The base-3 digit n (0..4) of a TQ1_0 byte, as ggml's dequantizer computes it.
inline int tq1_digit(std::uint8_t v, unsigned n) noexcept {
  static constexpr std::uint8_t pow3[5] = {1, 3, 9, 27, 81};
  const auto scaled = static_cast<std::uint8_t>(v * pow3[n]);
  return (scaled * 3) >> 8;
}

// Codes (code + 1, 0..3) of one block into `fields[0 .. block_weights)`; returns the block's scale.
inline float decode_gguf_block(GgufBlockType type, const std::uint8_t* block, std::uint8_t* fields) noexcept {
  switch (type) {
    case GgufBlockType::tq2_0:
      for (std::size_t c = 0; c < 2; ++c) {
        for (unsigned l = 0; l < 4; ++l) {
          for (std::size_t m = 0; m < 32; ++m) fields[128 * c + 32 * l + m] = (block[32 * c + m] >> (2 * l)) & 3u;
        }
      }
      return fp16_to_float(static_cast<std::uint16_t>(block[64] | (block[65] << 8)));
    case GgufBlockType::tq1_0:
      for (unsigned n = 0; n < 5; ++n) {
        for (std::size_t m = 0; m < 32; ++m) fields[32 * n + m] = static_cast<std::uint8_t>(tq1_digit(block[m], n));
        for (std::size_t m = 0; m < 16; ++m) {
          fields[160 + 16 * n + m] = static_cast<std::uint8_t>(tq1_digit(block[32 + m], n));
        }
      }
      for (unsigned n = 0; n < 4; ++n) {
        for (std::size_t j = 0; j < 4; ++j) fields[240 + 4 * n + j] = static_cast<std::uint8_t>(tq1_digit(block[48 + j], n));
      }
      return fp16_to_float(static_cast<std::uint16_t>(block[52] | (block[53] << 8)));
    case GgufBlockType::q1_0:
      // Binary: the field is the bit itself (1 = +1, 0 = -1), Binary's own encoding.
      for (std::size_t j = 0; j < 128; ++j) fields[j] = (block[2 + j / 8] >> (j % 8)) & 1u;
      return fp16_to_float(static_cast<std::uint16_t>(block[0] | (block[1] << 8)));
    case GgufBlockType::q2_0:
    case GgufBlockType::pq2_0:
    case GgufBlockType::q2_0_g128: {
      const std::size_t weights = gguf_block_info(type).block_weights;  // 64 or 128
      for (std::size_t j = 0; j < weights; ++j) fields[j] = (block[2 + j / 4] >> (2 * (j % 4))) & 3u;
      return fp16_to_float(static_cast<std::uint16_t>(block[0] | (block[1] << 8)));
    }
    case GgufBlockType::ptq1_0:
      for (unsigned n = 0; n < 5; ++n) {
        for (std::size_t m = 0; m < 16; ++m) fields[16 * n + m] = static_cast<std::uint8_t>(tq1_digit(block[m], n));
        for (std::size_t m = 0; m < 8; ++m) fields[80 + 8 * n + m] = static_cast<std::uint8_t>(tq1_digit(block[16 + m], n));
      }
      for (unsigned n = 0; n < 4; ++n) {
        for (std::size_t j = 0; j < 2; ++j) fields[120 + 2 * n + j] = static_cast<std::uint8_t>(tq1_digit(block[24 + j], n));
      }
      return fp16_to_float(static_cast<std::uint16_t>(block[26] | (block[27] << 8)));
  }
  return 0.0f;
}

}  // namespace detail

namespace detail {

// The row decoder by fields: every block into code fields (decode_gguf_block), then packed into canonical blocks.
// The reference the byte-wise converters of gguf_repack.hpp and gguf_repack_base3.hpp equal byte for byte.
inline void decode_gguf_row_by_fields(GgufBlockType type, const std::uint8_t* src, std::size_t in_features,
                                      std::uint8_t* row_out, float* scales_out) {
  const GgufBlockTypeInfo info = gguf_block_info(type);
  gguf_block_row_bytes(type, in_features);
  // A canonical block (256 ternary or 512 binary weights) is a whole number of GGUF blocks (64, 128 or 256).
  const std::size_t canonical_weights = info.binary ? Binary::weights_per_block : Ternary::weights_per_block;
  const std::uint8_t pad = info.binary ? 0 : 1;  // the field of the padding code (-1 binary bit 0, ternary 0)
  std::uint8_t fields[512];
  std::size_t block = 0;
  for (std::size_t k0 = 0; k0 < in_features; k0 += canonical_weights) {
    std::size_t filled = 0;
    for (; filled < canonical_weights && k0 + filled < in_features; filled += info.block_weights, ++block) {
      scales_out[block] = decode_gguf_block(type, src + block * info.block_bytes, fields + filled);
    }
    for (std::size_t k = filled; k < canonical_weights; ++k) fields[k] = pad;
    std::uint8_t* out = row_out + k0 / canonical_weights * packed_block_bytes;
    if (info.binary) {
      for (std::size_t j = 0; j < 64; ++j) {
        unsigned byte = 0;
        for (unsigned i = 0; i < 8; ++i) byte |= static_cast<unsigned>(fields[64 * i + j]) << i;
        out[j] = static_cast<std::uint8_t>(byte);
      }
    } else {
      for (std::size_t j = 0; j < 64; ++j) {
        out[j] = static_cast<std::uint8_t>(fields[j] | fields[64 + j] << 2 | fields[128 + j] << 4 | fields[192 + j] << 6);
      }
    }
  }
}

}  // namespace detail

// Decodes one row of `type` (gguf_block_row_bytes(type, in_features) bytes at src) into:
//   row_out    the canonical packed row: Binary::packed_row_bytes(in_features) bytes for Q1_0,
//              Ternary::packed_row_bytes(in_features) for the others (padding past in_features canonical);
//   scales_out in_features / block_weights floats, the blocks' d converted exactly (inf or NaN kept as they are).
// in_features must be a positive multiple of the block (gguf_block_row_bytes checks it). The 2-bit and 1-bit types
// go through the byte-wise converters (gguf_repack.hpp), TQ1_0 and PTQ1_0 through the base-3 converters
// (gguf_repack_base3.hpp).
inline void decode_gguf_row(GgufBlockType type, const std::uint8_t* src, std::size_t in_features,
                            std::uint8_t* row_out, float* scales_out) {
  gguf_block_row_bytes(type, in_features);
  switch (type) {
    case GgufBlockType::tq2_0: return detail::tq2_0_row_to_canonical(src, in_features, row_out, scales_out);
    case GgufBlockType::q2_0: return detail::q2_row_to_canonical(src, in_features, 64, row_out, scales_out);
    case GgufBlockType::pq2_0:
    case GgufBlockType::q2_0_g128: return detail::q2_row_to_canonical(src, in_features, 128, row_out, scales_out);
    case GgufBlockType::q1_0: return detail::q1_0_row_to_canonical(src, in_features, row_out, scales_out);
    case GgufBlockType::tq1_0: return detail::tq1_0_row_to_canonical(src, in_features, row_out, scales_out);
    case GgufBlockType::ptq1_0: return detail::ptq1_0_row_to_canonical(src, in_features, row_out, scales_out);
  }
}

namespace detail {

// The compact row decoder by fields (what decode_gguf_row_compact computes; the reference gguf_repack_base3.hpp's
// converters equal byte for byte). Throws std::invalid_argument for a type other than TQ1_0 or PTQ1_0.
// Both layouts split into 64-weight runs (64 divides 128, 256 and 320): run r (weights 64 r .. 64 r + 63) is run
// r % R of GGUF block r / R (R = block_weights / 64: 4 for TQ1_0, 2 for PTQ1_0) and field r % 5 of compact block
// r / 5 (compact byte i of a block holds its weights 64 f + i, f = 0..4). Each GGUF block is decoded into fields
// once, each compact block encoded once from its five runs (runs past in_features: field 1, code 0).
inline void decode_gguf_row_compact_by_fields(GgufBlockType type, const std::uint8_t* src, std::size_t in_features,
                                              std::uint8_t* row_out, float* scales_out) {
  BITLINEAR_REQUIRE(type == GgufBlockType::tq1_0 || type == GgufBlockType::ptq1_0,
                    std::string("a compact (1.6-bit) row is decoded from TQ1_0 or PTQ1_0, not ") +
                        gguf_block_info(type).name);
  const GgufBlockTypeInfo info = gguf_block_info(type);
  gguf_block_row_bytes(type, in_features);
  const std::size_t runs_per_block = info.block_weights / 64;
  std::uint8_t gguf_fields[256];
  std::uint8_t compact_fields[5][64];
  const std::size_t runs = in_features / 64;
  const std::size_t compact_runs = (runs + 4) / 5 * 5;
  for (std::size_t r = 0; r < compact_runs; ++r) {
    if (r < runs) {
      const std::size_t block = r / runs_per_block;
      if (r % runs_per_block == 0) {
        scales_out[block] = detail::decode_gguf_block(type, src + block * info.block_bytes, gguf_fields);
      }
      std::memcpy(compact_fields[r % 5], gguf_fields + 64 * (r % runs_per_block), 64);
    } else {
      std::memset(compact_fields[r % 5], 1, 64);
    }
    if (r % 5 == 4) {
      std::uint8_t* out = row_out + r / 5 * packed_block_bytes;
      for (std::size_t i = 0; i < 64; ++i) {
        out[i] = detail::compact_table.encode[compact_fields[0][i] + 3 * compact_fields[1][i] + 9 * compact_fields[2][i] +
                                              27 * compact_fields[3][i] + 81 * compact_fields[4][i]];
      }
    }
  }
}

}  // namespace detail

// A base-3 type (TQ1_0 or PTQ1_0) into the 1.6-bit compact row (TernaryCompact::packed_row_bytes(in_features)
// bytes): these hold only codes -1, 0, +1, so they keep their size class. Scales as decode_gguf_row. Throws
// std::invalid_argument for another type. Runs gguf_repack_base3.hpp's converters (compact block b holds weights
// 320 b + 64 f + i in byte i, f = 0..4; weights past in_features code 0).
inline void decode_gguf_row_compact(GgufBlockType type, const std::uint8_t* src, std::size_t in_features,
                                    std::uint8_t* row_out, float* scales_out) {
  BITLINEAR_REQUIRE(type == GgufBlockType::tq1_0 || type == GgufBlockType::ptq1_0,
                    std::string("a compact (1.6-bit) row is decoded from TQ1_0 or PTQ1_0, not ") +
                        gguf_block_info(type).name);
  gguf_block_row_bytes(type, in_features);
  if (type == GgufBlockType::tq1_0) {
    detail::tq1_0_row_to_compact(src, in_features, row_out, scales_out);
  } else {
    detail::ptq1_0_row_to_compact(src, in_features, row_out, scales_out);
  }
}

// TQ1_0 into the compact row (the form before PTQ1_0 existed).
inline void decode_gguf_row_compact(const std::uint8_t* src, std::size_t in_features, std::uint8_t* row_out,
                                    float* scales_out) {
  decode_gguf_row_compact(GgufBlockType::tq1_0, src, in_features, row_out, scales_out);
}

BITLINEAR_NAMESPACE_END
