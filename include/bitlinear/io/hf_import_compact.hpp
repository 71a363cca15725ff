// bitlinear: build a CompactTernaryLinear (1.6 bits per weight, format_compact.hpp) straight from the packed
// BitNet b1.58 weights of Hugging Face checkpoints (the packed form and HfScaleConvention: hf_import.hpp). Rows are
// converted straight into the layer's own buffer (io/repack.hpp), in parallel on HfImportOptions::pool if given:
// no 2-bit copy of the matrix is made.
// The result equals to_compact(ternary_from_hf_packed(...)) exactly.
#pragma once

#include <atomic>
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
// bound of the compact one). Each source row is checked in bulk for field values 3, split into its four rows'
// fields and encoded five fields to a byte, straight into the layer's buffer.
inline CompactTernaryLinear compact_ternary_from_hf_packed(const std::uint8_t* packed, std::size_t packed_rows,
                                                           std::size_t in_features, float weight_scale,
                                                           HfScaleConvention convention, const float* bias = nullptr,
                                                           const HfImportOptions& options = {}) {
  const std::size_t padded =
      TernaryCompact::packed_row_bytes(in_features) / packed_block_bytes * TernaryCompact::weights_per_block;
  return detail::build_from_hf_packed<TernaryCompact>(
      packed, packed_rows, in_features, weight_scale, convention, bias, options,
      [&](const detail::PackedWeightsView& w, std::size_t begin, std::size_t end) {
        std::vector<std::uint8_t> fields(padded);  // one row's fields: per task, a few KiB
        return detail::hf_compact_rows(packed, packed_rows, in_features, w, begin, end, fields.data());
      });
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
