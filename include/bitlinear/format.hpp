// bitlinear: the canonical packed weight formats (the same bytes on every CPU).
//
// Both formats store each output row (one row of W, `in_features` weights) in whole 64-byte blocks; a row
// takes packed_row_bytes(in_features) bytes and the matrix is out_features such rows, one after another.
//
// Ternary (2 bits per weight, 256 weights per block). Block b of a row covers weights k = 256*b .. 256*b+255.
// Byte j (0..63) of the block holds, in bits 2i..2i+1 (i = 0..3), the weight k = 256*b + 64*i + j stored as
// code + 1: 0 means -1, 1 means 0, 2 means +1; 3 is invalid. Weights past in_features are padding: code 0
// (field value 1).
//
// Binary (1 bit per weight, 512 weights per block). Block b covers k = 512*b .. 512*b+511. Byte j of the block
// holds in bit i (i = 0..7) the weight k = 512*b + 64*i + j: 1 means +1, 0 means -1. Padding bits are 0.
//
// Why this order: a 64-byte load of one block, shifted right by 2*i (or i) and masked, gives 64 consecutive
// codes k = 64*i .. 64*i+63 in byte lanes, lined up with 64 consecutive int8 activations. Narrower vectors
// (32-byte AVX2, 16-byte NEON) take the block in 32- or 16-byte slices with the same property.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "config.hpp"
#include "error.hpp"

BITLINEAR_NAMESPACE_BEGIN

// Largest supported in_features. The integer dot product of one output is bounded by 128 * 2 * 2^20 = 2^28
// in magnitude even with codes offset to {0,1,2}, which leaves int32 headroom.
inline constexpr std::size_t max_in_features = std::size_t{1} << 20;

// Every packed row, and every quantized activation row, is a whole number of blocks of this many bytes.
inline constexpr std::size_t packed_block_bytes = 64;

namespace detail {

// The layout both formats share: 64-byte blocks of 512 / Bits weights; weight k of a row sits in byte k % 64 of
// its block, in the Bits-wide field (k % weights_per_block) / 64.
template <std::size_t Bits>
struct BitFieldFormat {
  static constexpr std::size_t bits_per_weight = Bits;
  static constexpr std::size_t weights_per_block = 512 / Bits;
  static constexpr int min_code = -1;

  static constexpr std::size_t packed_row_bytes(std::size_t in_features) noexcept {
    return (in_features + weights_per_block - 1) / weights_per_block * packed_block_bytes;
  }
  // Byte offset of weight k within its row and the shift of its field.
  static constexpr std::size_t byte_of(std::size_t k) noexcept {
    return k / weights_per_block * packed_block_bytes + k % 64;
  }
  static constexpr unsigned shift_of(std::size_t k) noexcept {
    return static_cast<unsigned>(k % weights_per_block / 64 * Bits);
  }
  static unsigned field_at(const std::uint8_t* row, std::size_t k) noexcept {
    return (row[byte_of(k)] >> shift_of(k)) & field_mask;
  }
  static void set_field(std::uint8_t* row, std::size_t k, unsigned field) noexcept {
    const unsigned shift = shift_of(k);
    std::uint8_t& byte = row[byte_of(k)];
    byte = static_cast<std::uint8_t>((byte & ~(field_mask << shift)) | (field << shift));
  }

 private:
  static constexpr unsigned field_mask = (1u << Bits) - 1u;
};

}  // namespace detail

// The ternary format of BitNet b1.58: codes in {-1, 0, +1}, stored as code + 1.
struct Ternary : detail::BitFieldFormat<2> {
  static constexpr const char* name = "ternary";
  // The byte value of a block with every field at code 0: what padding looks like.
  static constexpr std::uint8_t zero_byte = 0x55;
  static int code_at(const std::uint8_t* row, std::size_t k) noexcept { return static_cast<int>(field_at(row, k)) - 1; }
  static void set_code(std::uint8_t* row, std::size_t k, int code) noexcept {
    set_field(row, k, static_cast<unsigned>(code + 1));
  }
};

// The binary format of BitNet b1: codes in {-1, +1}, stored as bit 1 for +1.
struct Binary : detail::BitFieldFormat<1> {
  static constexpr const char* name = "binary";
  static constexpr std::uint8_t zero_byte = 0x00;  // padding: all bits clear
  static int code_at(const std::uint8_t* row, std::size_t k) noexcept { return field_at(row, k) != 0 ? 1 : -1; }
  static void set_code(std::uint8_t* row, std::size_t k, int code) noexcept {
    set_field(row, k, static_cast<unsigned>(code > 0));
  }
};

// Bytes of a packed [out_features, in_features] matrix in the canonical format.
template <class Format>
constexpr std::size_t packed_size(std::size_t out_features, std::size_t in_features) noexcept {
  return out_features * Format::packed_row_bytes(in_features);
}

// Packs row-major codes ([out, in], each -1/0/+1 for Ternary, -1/+1 for Binary) into `packed`, which must hold
// packed_size<Format>(out, in) bytes. Throws std::invalid_argument on a code the format cannot hold.
template <class Format>
void pack_codes(const std::int8_t* codes, std::size_t out_features, std::size_t in_features, std::uint8_t* packed) {
  const std::size_t row_bytes = Format::packed_row_bytes(in_features);
  for (std::size_t r = 0; r < out_features; ++r) {
    std::uint8_t* row = packed + r * row_bytes;
    for (std::size_t i = 0; i < row_bytes; ++i) row[i] = Format::zero_byte;
    for (std::size_t k = 0; k < in_features; ++k) {
      const int code = codes[r * in_features + k];
      const bool valid = code == 1 || code == -1 || (code == 0 && Format::bits_per_weight == 2);
      if (!valid) {
        detail::fail_invalid_argument("bitlinear::pack_codes: code " + std::to_string(code) + " at [" +
                                      std::to_string(r) + "][" + std::to_string(k) + "] is not a valid " +
                                      Format::name + " code");
      }
      Format::set_code(row, k, code);
    }
  }
}

// Unpacks a canonical packed matrix into row-major codes [out, in].
template <class Format>
void unpack_codes(const std::uint8_t* packed, std::size_t out_features, std::size_t in_features, std::int8_t* codes) {
  const std::size_t row_bytes = Format::packed_row_bytes(in_features);
  for (std::size_t r = 0; r < out_features; ++r) {
    for (std::size_t k = 0; k < in_features; ++k) {
      codes[r * in_features + k] = static_cast<std::int8_t>(Format::code_at(packed + r * row_bytes, k));
    }
  }
}

namespace detail {
// The first non-canonical field of a packed buffer: a ternary field holding 3, or a padding field that is not
// code 0 (ternary) or clear (binary). Returns false if every field is canonical.
template <class Format>
bool find_noncanonical(const std::uint8_t* packed, std::size_t out_features, std::size_t in_features,
                       std::size_t& bad_row, std::size_t& bad_weight, unsigned& bad_field) noexcept {
  const std::size_t row_bytes = Format::packed_row_bytes(in_features);
  const std::size_t padded = row_bytes / packed_block_bytes * Format::weights_per_block;
  // Blocks without padding are checked a word at a time first: a 2-bit field is 3 exactly when both its bits are
  // set, i.e. when bit 2i of (w & (w >> 1)) is (the bit shifted in from the next byte lands on an odd position,
  // which the mask drops); binary blocks without padding have no rule. Only a row that fails, and the blocks with
  // padding, take the weight-by-weight loop that finds the first bad weight.
  const std::size_t full_bytes = in_features / Format::weights_per_block * packed_block_bytes;
  for (std::size_t r = 0; r < out_features; ++r) {
    const std::uint8_t* row = packed + r * row_bytes;
    std::uint64_t field_3 = 0;
    if (Format::bits_per_weight == 2) {
      for (std::size_t i = 0; i < full_bytes; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, row + i, sizeof word);
        field_3 |= word & (word >> 1) & 0x5555555555555555u;
      }
    }
    const std::size_t k_begin = field_3 == 0 ? full_bytes / packed_block_bytes * Format::weights_per_block : 0;
    for (std::size_t k = k_begin; k < padded; ++k) {
      const unsigned field =
          (row[Format::byte_of(k)] >> Format::shift_of(k)) & ((1u << Format::bits_per_weight) - 1u);
      const bool padding = k >= in_features;
      const bool ok = Format::bits_per_weight == 2 ? (padding ? field == 1u : field != 3u) : (!padding || field == 0u);
      if (!ok) {
        bad_row = r;
        bad_weight = k;
        bad_field = field;
        return true;
      }
    }
  }
  return false;
}

template <class Format>
std::string noncanonical_message(std::size_t row, std::size_t weight, unsigned field, std::size_t in_features) {
  return std::string("bitlinear: packed ") + Format::name + " weights: row " + std::to_string(row) + ", weight " +
         std::to_string(weight) + " holds field value " + std::to_string(field) +
         (weight >= in_features ? ", but padding past in_features must be code 0 (ternary field 1, binary bit 0)"
                                : ", which is not a valid ternary field (0, 1 or 2)");
}

// What validate_packed() reports for a packed buffer, or an empty string if it is canonical (a format with other
// rules, e.g. format_compact.hpp, specializes this).
template <class Format>
std::string noncanonical_report(const std::uint8_t* packed, std::size_t out_features, std::size_t in_features) {
  std::size_t row = 0, weight = 0;
  unsigned field = 0;
  if (find_noncanonical<Format>(packed, out_features, in_features, row, weight, field)) {
    return noncanonical_message<Format>(row, weight, field, in_features);
  }
  return {};
}
}  // namespace detail

// Checks that a packed buffer is canonical: no ternary field holds 3 and every padding field is code 0
// (ternary) or clear (binary). Throws std::invalid_argument naming the first bad row and weight.
template <class Format>
void validate_packed(const std::uint8_t* packed, std::size_t out_features, std::size_t in_features) {
  const std::string report = detail::noncanonical_report<Format>(packed, out_features, in_features);
  if (!report.empty()) detail::fail_invalid_argument(report);
}

BITLINEAR_NAMESPACE_END
