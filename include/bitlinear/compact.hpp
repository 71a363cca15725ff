// bitlinear: conversions between the 2-bit ternary format (TernaryLinear) and the 1.6-bit compact one
// (CompactTernaryLinear, format_compact.hpp). Both hold the same codes, weight_scale, bias and options, so the
// converted layer's outputs equal the original's bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "format.hpp"
#include "format_compact.hpp"
#include "layer.hpp"
#include "options.hpp"

BITLINEAR_NAMESPACE_BEGIN

// Builds a compact layer from canonical 2-bit Ternary packed weights (what TernaryLinear::packed_weights() and
// save files of version 1 hold), converting row by row: the layer's own buffer is the only full copy made.
// Throws what TernaryLinear::from_packed throws (sizes, invalid or non-canonical 2-bit bytes, weight_scale).
inline CompactTernaryLinear compact_from_ternary_packed(const std::uint8_t* packed, std::size_t packed_bytes,
                                                        std::size_t out_features, std::size_t in_features,
                                                        float weight_scale, const float* bias = nullptr,
                                                        Options options = {}) {
  BITLINEAR_REQUIRE(packed != nullptr, "packed weights are null");
  BITLINEAR_REQUIRE(in_features > 0 && in_features <= max_in_features,
                    "in_features " + std::to_string(in_features) + " must be in 1 ..= 2^20");
  const std::size_t ternary_row_bytes = Ternary::packed_row_bytes(in_features);
  BITLINEAR_REQUIRE(out_features > 0 && packed_bytes / ternary_row_bytes == out_features &&
                        packed_bytes % ternary_row_bytes == 0,
                    "packed 2-bit weights hold " + std::to_string(packed_bytes) + " bytes; ternary " +
                        std::to_string(out_features) + "x" + std::to_string(in_features) + " needs exactly " +
                        std::to_string(out_features * ternary_row_bytes));
  return CompactTernaryLinear::from_packed_rows(
      [&](std::size_t j, std::uint8_t* row) {
        const std::uint8_t* source = packed + j * ternary_row_bytes;
        const std::string report = detail::noncanonical_report<Ternary>(source, 1, in_features);
        if (!report.empty()) detail::fail_invalid_argument(report + " (in row " + std::to_string(j) + " of the matrix)");
        compact_row_from_ternary(source, in_features, row);
      },
      out_features, in_features, weight_scale, bias, options);
}

// The compact form of a 2-bit layer (same codes, scale, bias, options and kernel family choice).
inline CompactTernaryLinear to_compact(const TernaryLinear& layer) {
  const std::vector<std::uint8_t> packed = layer.packed_weights();
  Options options = layer.options();
  return compact_from_ternary_packed(packed.data(), packed.size(), layer.out_features(), layer.in_features(),
                                     layer.weight_scale(), layer.has_bias() ? layer.bias().data() : nullptr, options);
}

// The 2-bit form of a compact layer.
inline TernaryLinear to_ternary(const CompactTernaryLinear& layer) {
  const std::vector<std::uint8_t> packed = layer.packed_weights();
  const std::size_t in = layer.in_features();
  const std::size_t compact_row_bytes = TernaryCompact::packed_row_bytes(in);
  return TernaryLinear::from_packed_rows(
      [&](std::size_t j, std::uint8_t* row) { ternary_row_from_compact(packed.data() + j * compact_row_bytes, in, row); },
      layer.out_features(), in, layer.weight_scale(), layer.has_bias() ? layer.bias().data() : nullptr,
      layer.options());
}

BITLINEAR_NAMESPACE_END
