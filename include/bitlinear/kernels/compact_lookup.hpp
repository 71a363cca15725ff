// bitlinear internal: the lookup tables of the table-driven compact decoders (avx512_vbmi's vpermb, NEON's tbl).
// A compact byte holds five fields (format_compact.hpp); its low 6 bits c and its top 2 bits split the work:
//   f_3 = t3[c], f_4 = t4[c], w = t4s[c] | (byte >> 6), f_0 = w0[w], f_1 = w1[w], f_2 = w2[w]   (w <= 26)
// t4s[c] holds 4 * (c % 7), the part of w the low bits carry, already shifted past the two top bits.
// Every table is 64 bytes, 64-byte aligned (one zmm load; NEON loads the first 16 x 4 or 16 x 2 bytes).
#pragma once
#include "../detail/internal_only.hpp"

#include <cstdint>

#include "../config.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

struct CompactLookup {
  alignas(64) std::uint8_t t3[64];
  alignas(64) std::uint8_t t4[64];
  alignas(64) std::uint8_t t4s[64];
  alignas(64) std::uint8_t w0[64];
  alignas(64) std::uint8_t w1[64];
  alignas(64) std::uint8_t w2[64];
};

constexpr CompactLookup make_compact_lookup() {
  CompactLookup t{};
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

inline constexpr CompactLookup compact_lookup = make_compact_lookup();

}  // namespace detail
BITLINEAR_NAMESPACE_END
