// bitlinear: conversions between the 2-bit grouped form (GroupedTernaryLinear) and the 1.6-bit compact grouped
// form (GroupedCompactTernaryLinear). The converted layer holds the same codes, group scales, bias and options,
// so its outputs equal the original's bit for bit. The compact form cannot hold code +2 (field value 3 of the
// 2-bit form, ggml Q2_0's fourth level): converting a layer that has one is refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "format.hpp"
#include "format_compact.hpp"
#include "grouped_layer.hpp"

BITLINEAR_NAMESPACE_BEGIN

// The compact form of a 2-bit grouped layer. Throws std::invalid_argument naming the first weight with code +2.
inline GroupedCompactTernaryLinear to_compact(const GroupedTernaryLinear& layer) {
  BITLINEAR_REQUIRE(!layer.empty(), "cannot convert an empty layer (it was moved from)");
  const std::vector<std::uint8_t> packed = layer.packed_weights();
  const std::size_t in = layer.in_features();
  const std::size_t groups = layer.groups();
  const std::size_t row_bytes = Ternary::packed_row_bytes(in);
  const std::vector<float>& scales = layer.group_scales();
  return GroupedCompactTernaryLinear::from_packed_rows(
      [&](std::size_t j, std::uint8_t* row, float* row_scales) {
        const std::uint8_t* source = packed.data() + j * row_bytes;
        for (std::size_t k = 0; k < in; ++k) {
          if (Ternary::code_at(source, k) > 1) {
            detail::fail_invalid_argument(
                "bitlinear: to_compact: row " + std::to_string(j) + ", weight " + std::to_string(k) +
                " has code +2 (2-bit field value 3), which the compact ternary form cannot hold (codes -1, 0, +1)");
          }
        }
        compact_row_from_ternary(source, in, row);
        for (std::size_t g = 0; g < groups; ++g) row_scales[g] = scales[j * groups + g];
      },
      layer.out_features(), in, layer.group_size(), layer.has_bias() ? layer.bias().data() : nullptr,
      layer.options());
}

// The 2-bit form of a compact grouped layer (always possible).
inline GroupedTernaryLinear to_ternary(const GroupedCompactTernaryLinear& layer) {
  BITLINEAR_REQUIRE(!layer.empty(), "cannot convert an empty layer (it was moved from)");
  const std::vector<std::uint8_t> packed = layer.packed_weights();
  const std::size_t in = layer.in_features();
  const std::size_t groups = layer.groups();
  const std::size_t row_bytes = TernaryCompact::packed_row_bytes(in);
  const std::vector<float>& scales = layer.group_scales();
  return GroupedTernaryLinear::from_packed_rows(
      [&](std::size_t j, std::uint8_t* row, float* row_scales) {
        ternary_row_from_compact(packed.data() + j * row_bytes, in, row);
        for (std::size_t g = 0; g < groups; ++g) row_scales[g] = scales[j * groups + g];
      },
      layer.out_features(), in, layer.group_size(), layer.has_bias() ? layer.bias().data() : nullptr,
      layer.options());
}

BITLINEAR_NAMESPACE_END
