// bitlinear: CRC-32 (the IEEE 802.3 / zlib / PNG polynomial), used as the checksum of saved layers.
//
// Reflected polynomial 0xEDB88320, initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF: crc32("123456789") is
// 0xCBF43926, and the value equals Python's zlib.crc32 of the same bytes. Table-driven, one byte at a time.
#pragma once

#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp> or <bitlinear/serialize.hpp>"
#endif

#include <array>
#include <cstddef>
#include <cstdint>

#include "../config.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::array<std::uint32_t, 256> make_crc32_table() noexcept {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    table[byte] = crc;
  }
  return table;
}

inline constexpr std::array<std::uint32_t, 256> crc32_table = make_crc32_table();

// Running CRC: start with crc32_update(0, ...), feed further pieces with the previous result.
inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < size; ++i) crc = crc32_table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
