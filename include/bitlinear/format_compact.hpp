// bitlinear: the compact ternary format, 5 ternary weights per byte (1.6 bits per weight), exact against the
// 2-bit Ternary format of format.hpp (same codes, same layer outputs bit for bit). docs/compact.md says why.
//
// TernaryCompact (320 weights per 64-byte block). Block b of a row covers weights k = 320*b .. 320*b+319. Byte j
// (0..63) of the block holds the five weights k = 320*b + 64*i + j, i = 0..4, as fields f_i = code + 1 in
// {0, 1, 2} ("field i = 64 consecutive weights", as in the 2-bit format, so a decoded field lines up with 64
// consecutive int8 activations). The five fields make one byte value
//
//   w = f_0 + 3 f_1 + 9 f_2          (0..26)         p = f_3 + 3 f_4          (0..8)
//   byte = 64 * (w mod 4) + 7 * p + floor(w / 4)
//
// so that the low 6 bits c = byte mod 64 = 7 p + floor(w / 4) alone give f_3 and f_4 (p = c div 7), and
// w = 4 * (c mod 7) + (byte >> 6). Decoding is a handful of 64-entry table lookups (VBMI vpermb, NEON tbl):
//   f_3 = T3[c], f_4 = T4[c], w = T4s[c] | (byte >> 6), f_0..f_2 = digits of w.
// Valid bytes: c != 63 and w != 27 (that is, not both c mod 7 == 6 and byte >> 6 == 3): 256 - 4 - 9 = 243 of them,
// exactly one per combination of five fields. Weights past in_features are padding with code 0 (every field 1:
// w = 13, p = 4, byte 0x5F). A row takes ceil(in_features / 320) blocks; at in_features = 2560 that is exactly
// 1.6 bits per weight.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "config.hpp"
#include "error.hpp"
#include "format.hpp"

BITLINEAR_NAMESPACE_BEGIN

namespace detail {

// The decoded fields of every byte value: fields[byte][i] = f_i, and valid[byte].
struct CompactDecodeTable {
  std::uint8_t fields[256][5] = {};
  bool valid[256] = {};
  std::uint8_t encode[243] = {};  // encode[f_0 + 3 f_1 + 9 f_2 + 27 f_3 + 81 f_4] = byte
};

constexpr CompactDecodeTable make_compact_decode_table() {
  CompactDecodeTable t{};
  for (unsigned v = 0; v < 243; ++v) {
    const unsigned f0 = v % 3, f1 = v / 3 % 3, f2 = v / 9 % 3, f3 = v / 27 % 3, f4 = v / 81;
    const unsigned w = f0 + 3 * f1 + 9 * f2, p = f3 + 3 * f4;
    const unsigned byte = 64 * (w % 4) + 7 * p + w / 4;
    t.encode[v] = static_cast<std::uint8_t>(byte);
    t.valid[byte] = true;
    t.fields[byte][0] = static_cast<std::uint8_t>(f0);
    t.fields[byte][1] = static_cast<std::uint8_t>(f1);
    t.fields[byte][2] = static_cast<std::uint8_t>(f2);
    t.fields[byte][3] = static_cast<std::uint8_t>(f3);
    t.fields[byte][4] = static_cast<std::uint8_t>(f4);
  }
  return t;
}

inline constexpr CompactDecodeTable compact_table = make_compact_decode_table();

// 1 for a byte that is not one of the 243 valid values, else 0, by arithmetic (no table: a loop of it vectorizes).
// With c = byte mod 64: invalid when c = 63, or when c mod 7 = 6 and byte >> 6 = 3 (w = 27). For c < 64,
// floor(c * 37 / 256) = floor(c / 7) (37 / 256 exceeds 1 / 7 by less than 1 / (7 * 64)), so c mod 7 = c - 7 q.
// Written in 8- and 16-bit types so that a vectorized loop keeps 16-bit lanes (it widened to 32 bits before).
constexpr std::uint8_t compact_byte_invalid(std::uint8_t byte) noexcept {
  const auto c = static_cast<std::uint8_t>(byte & 63u);
  const auto q = static_cast<std::uint8_t>(static_cast<std::uint16_t>(c * 37u) >> 8);
  const auto r = static_cast<std::uint8_t>(c - 7u * q);
  return static_cast<std::uint8_t>((c == 63u) | ((r == 6u) & (byte >= 192u)));
}
constexpr bool compact_validity_rule_is_the_table() noexcept {
  for (unsigned b = 0; b < 256; ++b) {
    if ((compact_byte_invalid(static_cast<std::uint8_t>(b)) == 0) != compact_table.valid[b]) return false;
  }
  return true;
}
static_assert(compact_validity_rule_is_the_table(), "compact_byte_invalid disagrees with the decode table");

}  // namespace detail

// The ternary format of BitNet b1.58 at 1.6 bits per weight: codes in {-1, 0, +1}.
struct TernaryCompact {
  static constexpr const char* name = "compact ternary";
  static constexpr std::size_t weights_per_block = 320;
  static constexpr std::size_t fields_per_byte = 5;
  static constexpr int min_code = -1;
  static constexpr std::uint8_t zero_byte = 0x5F;  // every field 1 (code 0): padding

  static constexpr std::size_t packed_row_bytes(std::size_t in_features) noexcept {
    return (in_features + weights_per_block - 1) / weights_per_block * packed_block_bytes;
  }
  // Byte offset of weight k within its row, and its field index i (0..4) inside that byte.
  static constexpr std::size_t byte_of(std::size_t k) noexcept { return k / 320 * 64 + k % 64; }
  static constexpr unsigned field_of(std::size_t k) noexcept { return static_cast<unsigned>(k % 320 / 64); }

  static bool valid_byte(std::uint8_t byte) noexcept { return detail::compact_table.valid[byte]; }
  // The byte holding fields f[0..4] (each 0, 1 or 2).
  static std::uint8_t encode(const std::uint8_t (&f)[5]) noexcept {
    return detail::compact_table.encode[f[0] + 3 * f[1] + 9 * f[2] + 27 * f[3] + 81 * f[4]];
  }
  // Field i of a valid byte.
  static unsigned field(std::uint8_t byte, unsigned i) noexcept { return detail::compact_table.fields[byte][i]; }

  static int code_at(const std::uint8_t* row, std::size_t k) noexcept {
    return static_cast<int>(field(row[byte_of(k)], field_of(k))) - 1;
  }
  // Requires the byte holding k to be valid (rows start as zero_byte).
  static void set_code(std::uint8_t* row, std::size_t k, int code) noexcept {
    std::uint8_t& byte = row[byte_of(k)];
    std::uint8_t f[5];
    for (unsigned i = 0; i < 5; ++i) f[i] = static_cast<std::uint8_t>(field(byte, i));
    f[field_of(k)] = static_cast<std::uint8_t>(code + 1);
    byte = encode(f);
  }
};

// Packs row-major codes [out, in] (each -1, 0 or +1) into compact bytes (packed_size<TernaryCompact>(out, in)).
template <>
inline void pack_codes<TernaryCompact>(const std::int8_t* codes, std::size_t out_features, std::size_t in_features,
                                       std::uint8_t* packed) {
  const std::size_t row_bytes = TernaryCompact::packed_row_bytes(in_features);
  for (std::size_t r = 0; r < out_features; ++r) {
    std::uint8_t* row = packed + r * row_bytes;
    for (std::size_t i = 0; i < row_bytes; ++i) row[i] = TernaryCompact::zero_byte;
    for (std::size_t k = 0; k < in_features; ++k) {
      const int code = codes[r * in_features + k];
      if (code < -1 || code > 1) {
        detail::fail_invalid_argument("bitlinear::pack_codes: code " + std::to_string(code) + " at [" +
                                    std::to_string(r) + "][" + std::to_string(k) +
                                    "] is not a valid compact ternary code (-1, 0 or +1)");
      }
      TernaryCompact::set_code(row, k, code);
    }
  }
}

namespace detail {
// Compact bytes are canonical when every byte is one of the 243 valid values and every padding field (weights
// past in_features) is code 0. Returns the first violation (row, byte, rule), or an empty string.
template <>
inline std::string noncanonical_report<TernaryCompact>(const std::uint8_t* packed, std::size_t out_features,
                                                       std::size_t in_features) {
  const std::size_t row_bytes = TernaryCompact::packed_row_bytes(in_features);
  // The check in one branch-free pass (a load's hot path): every byte valid and, in each row's last block, the
  // fields past in_features at 1. Only rows that fail it are walked below to name the first violation.
  if (row_bytes == 0) return {};
  const std::size_t tail_start = row_bytes - packed_block_bytes;  // the last block's first byte
  const std::size_t tail_weights = in_features - tail_start / packed_block_bytes * 320;
  unsigned invalid = 0;
  for (std::size_t r = 0; r < out_features; ++r) {
    const std::uint8_t* row = packed + r * row_bytes;
    std::uint8_t bytes_invalid = 0;
    for (std::size_t i = 0; i < row_bytes; ++i) bytes_invalid |= compact_byte_invalid(row[i]);
    invalid |= bytes_invalid;
    // Padding: field f of the last block's byte i is weight 64 f + i of the block; none when tail_weights is 320.
    for (unsigned f = static_cast<unsigned>(tail_weights / 64); f < 5; ++f) {
      const std::size_t first = 64 * f >= tail_weights ? 0 : tail_weights - 64 * f;
      for (std::size_t i = first; i < packed_block_bytes; ++i) {
        invalid |= TernaryCompact::field(row[tail_start + i], f) != 1 ? 1u : 0u;
      }
    }
  }
  if (invalid == 0) return {};
  for (std::size_t r = 0; r < out_features; ++r) {
    const std::uint8_t* row = packed + r * row_bytes;
    for (std::size_t i = 0; i < row_bytes; ++i) {
      const std::uint8_t byte = row[i];
      const auto where = [&] {
        return "bitlinear: packed compact ternary weights: row " + std::to_string(r) + ", byte " + std::to_string(i) +
               " holds " + std::to_string(byte);
      };
      if (!TernaryCompact::valid_byte(byte)) {
        return where() + ", which is not one of the 243 valid compact bytes (invalid: low 6 bits 63, or low 6 bits "
                         "mod 7 == 6 with top 2 bits 3)";
      }
      const std::size_t k0 = i / 64 * 320 + i % 64;  // field 0's weight
      for (unsigned f = 0; f < 5; ++f) {
        const std::size_t k = k0 + 64 * f;
        if (k >= in_features && TernaryCompact::field(byte, f) != 1) {
          return where() + ": weight " + std::to_string(k) + " is padding past in_features " +
                 std::to_string(in_features) + " and must be code 0 (field 1), but has field " +
                 std::to_string(TernaryCompact::field(byte, f));
        }
      }
    }
  }
  return {};
}
}  // namespace detail

// Converts one canonical 2-bit Ternary row (format.hpp, valid) to one compact row, both of in_features weights.
inline void compact_row_from_ternary(const std::uint8_t* ternary_row, std::size_t in_features,
                                     std::uint8_t* compact_row) noexcept {
  const std::size_t bytes = TernaryCompact::packed_row_bytes(in_features);
  for (std::size_t i = 0; i < bytes; ++i) {
    const std::size_t k0 = i / 64 * 320 + i % 64;
    std::uint8_t f[5];
    for (unsigned j = 0; j < 5; ++j) {
      const std::size_t k = k0 + 64 * j;
      f[j] = k < in_features ? static_cast<std::uint8_t>(Ternary::code_at(ternary_row, k) + 1) : 1;
    }
    compact_row[i] = TernaryCompact::encode(f);
  }
}

// Converts one canonical compact row (valid) to one canonical 2-bit Ternary row.
inline void ternary_row_from_compact(const std::uint8_t* compact_row, std::size_t in_features,
                                     std::uint8_t* ternary_row) noexcept {
  const std::size_t bytes = Ternary::packed_row_bytes(in_features);
  for (std::size_t i = 0; i < bytes; ++i) ternary_row[i] = Ternary::zero_byte;
  for (std::size_t k = 0; k < in_features; ++k) {
    Ternary::set_code(ternary_row, k, TernaryCompact::code_at(compact_row, k));
  }
}

BITLINEAR_NAMESPACE_END
