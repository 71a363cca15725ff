// bitlinear: build a CompactTernaryLinear (1.6 bits per weight, format_compact.hpp) straight from the packed
// BitNet b1.58 weights of Hugging Face checkpoints (the packed form and HfScaleConvention: hf_import.hpp). Rows are
// converted one at a time into the layer's own buffer (from_packed_rows): no 2-bit copy of the matrix is made.
// The result equals to_compact(ternary_from_hf_packed(...)) exactly.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../format_compact.hpp"
#include "hf_import.hpp"
#include "../layer.hpp"
#include "../options.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN

// `packed` holds packed_rows x in_features bytes (row-major), out_features = 4 * packed_rows; everything else as
// in ternary_from_hf_packed (same checks, same errors; the weight-byte budget is applied to the 2-bit size, an upper
// bound of the compact one). Each row goes HF bytes -> canonical 2-bit row (detail::hf_canonical_row) -> compact
// row, straight into the layer's buffer.
inline CompactTernaryLinear compact_ternary_from_hf_packed(const std::uint8_t* packed, std::size_t packed_rows,
                                                           std::size_t in_features, float weight_scale,
                                                           HfScaleConvention convention, const float* bias = nullptr,
                                                           const HfImportOptions& options = {}) {
  BITLINEAR_REQUIRE(packed != nullptr, "HF packed weights are null");
  detail::check_hf_packed_shape(packed_rows, in_features, options.max_weight_bytes);
  const std::size_t out_features = 4 * packed_rows;
  const detail::HfScaling scaling(weight_scale, convention, bias, out_features);
  std::vector<std::uint8_t> two_bit(Ternary::packed_row_bytes(in_features));
  return CompactTernaryLinear::from_packed_rows(
      [&](std::size_t r, std::uint8_t* row) {
        detail::hf_canonical_row(packed, packed_rows, in_features, r, two_bit.data());
        compact_row_from_ternary(two_bit.data(), in_features, row);
      },
      out_features, in_features, scaling.beta(), scaling.bias(), options.layer);
}

// Loads `<prefix>.weight`, `<prefix>.weight_scale` and, if present, `<prefix>.bias` from a safetensors file, as
// ternary_from_hf_checkpoint does, into a compact layer.
inline CompactTernaryLinear compact_ternary_from_hf_checkpoint(const SafetensorsView& file, std::string_view prefix,
                                                               HfScaleConvention convention,
                                                               const HfImportOptions& options = {}) {
  const std::string p(prefix);
  const SafetensorsTensor& weight = file.at(p + ".weight");
  const SafetensorsTensor& scale = file.at(p + ".weight_scale");
  const detail::HfPackedModule m = detail::read_hf_packed_module(weight, scale, file.find(p + ".bias"));
  return compact_ternary_from_hf_packed(m.packed, m.rows, m.in, m.weight_scale, convention, m.bias_data(), options);
}

BITLINEAR_NAMESPACE_END
