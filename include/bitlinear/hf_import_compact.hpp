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

#include "config.hpp"
#include "format_compact.hpp"
#include "hf_import.hpp"
#include "layer.hpp"
#include "options.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN

// `packed` holds packed_rows x in_features bytes (row-major), out_features = 4 * packed_rows; the rest as in
// ternary_from_hf_packed. Throws std::invalid_argument on a field value 3 (naming the byte), a non-finite or
// non-positive weight_scale, or bad dimensions.
inline CompactTernaryLinear compact_ternary_from_hf_packed(const std::uint8_t* packed, std::size_t packed_rows,
                                                           std::size_t in_features, float weight_scale,
                                                           HfScaleConvention convention, const float* bias = nullptr,
                                                           Options options = {}) {
  BITLINEAR_REQUIRE(packed != nullptr, "HF packed weights are null");
  BITLINEAR_REQUIRE(packed_rows > 0 && in_features > 0, "HF packed weights must be at least 1x1");
  BITLINEAR_REQUIRE(in_features <= max_in_features,
                    "in_features " + std::to_string(in_features) + " exceeds the limit of 2^20 = 1048576");
  BITLINEAR_REQUIRE(packed_rows <= (std::size_t{1} << 38) / in_features,
                    "HF packed weights of " + std::to_string(packed_rows) + " x " + std::to_string(in_features) +
                        " exceed the limit of 2^40 weights");
  BITLINEAR_REQUIRE(detail::is_finite_bits(weight_scale) && weight_scale > 0.0f,
                    "HF weight_scale " + std::to_string(weight_scale) + " must be finite and positive");
  const float beta = convention == HfScaleConvention::divide ? 1.0f / weight_scale : weight_scale;
  BITLINEAR_REQUIRE(detail::is_finite_bits(beta) && beta > 0.0f,
                    "HF weight_scale " + std::to_string(weight_scale) + " has no finite positive reciprocal");
  const std::size_t out_features = 4 * packed_rows;
  std::vector<float> scaled_bias;
  if (bias != nullptr && convention == HfScaleConvention::multiply) {
    scaled_bias.assign(bias, bias + out_features);
    for (float& b : scaled_bias) b *= weight_scale;
    bias = scaled_bias.data();
  }
  const std::size_t row_bytes = TernaryCompact::packed_row_bytes(in_features);
  // Output row j is unpacked row i * packed_rows + r: bits 2i..2i+1 of HF packed row r.
  const auto fill_row = [&](std::size_t j, std::uint8_t* row) {
    const unsigned shift = static_cast<unsigned>(2 * (j / packed_rows));
    const std::uint8_t* source = packed + j % packed_rows * in_features;
    for (std::size_t byte = 0; byte < row_bytes; ++byte) {
      const std::size_t k0 = byte / 64 * 320 + byte % 64;
      std::uint8_t f[5];
      for (unsigned i = 0; i < 5; ++i) {
        const std::size_t k = k0 + 64 * i;
        f[i] = 1;
        if (k >= in_features) continue;
        f[i] = static_cast<std::uint8_t>((source[k] >> shift) & 3u);
        if (f[i] == 3) {
          detail::fail_invalid_argument("bitlinear: HF packed weight byte [" + std::to_string(j % packed_rows) + "][" +
                                      std::to_string(k) + "] holds field value 3 in bits " + std::to_string(shift) +
                                      ".." + std::to_string(shift + 1) + "; valid fields are 0, 1, 2 (code + 1)");
        }
      }
      row[byte] = TernaryCompact::encode(f);
    }
  };
  return CompactTernaryLinear::from_packed_rows(fill_row, out_features, in_features, beta, bias, options);
}

// Loads `<prefix>.weight`, `<prefix>.weight_scale` and, if present, `<prefix>.bias` from a safetensors file, as
// ternary_from_hf_checkpoint does, into a compact layer.
inline CompactTernaryLinear compact_ternary_from_hf_checkpoint(const SafetensorsView& file, std::string_view prefix,
                                                               HfScaleConvention convention, Options options = {}) {
  const std::string p(prefix);
  const SafetensorsTensor& weight = file.at(p + ".weight");
  BITLINEAR_REQUIRE(weight.dtype == "U8" && weight.shape.size() == 2,
                    "\"" + weight.name + "\" must be a 2-D U8 tensor [out_features / 4, in_features], not " +
                        weight.dtype + " with " + std::to_string(weight.shape.size()) + " dimensions");
  const SafetensorsTensor& scale = file.at(p + ".weight_scale");
  BITLINEAR_REQUIRE(scale.element_count() == 1,
                    "\"" + scale.name + "\" must hold exactly 1 value, not " + std::to_string(scale.element_count()));
  const float weight_scale = safetensors_to_float(scale)[0];
  const auto rows = static_cast<std::size_t>(weight.shape[0]);
  const auto in = static_cast<std::size_t>(weight.shape[1]);
  std::vector<float> bias;
  if (const SafetensorsTensor* b = file.find(p + ".bias")) {
    BITLINEAR_REQUIRE(b->shape.size() == 1 && b->shape[0] == 4 * weight.shape[0],
                      "\"" + b->name + "\" must have shape [" + std::to_string(4 * weight.shape[0]) + "]");
    bias = safetensors_to_float(*b);
  }
  return compact_ternary_from_hf_packed(weight.data, rows, in, weight_scale, convention,
                                        bias.empty() ? nullptr : bias.data(), options);
}

BITLINEAR_NAMESPACE_END
