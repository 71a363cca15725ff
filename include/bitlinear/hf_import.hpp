// bitlinear: build a TernaryLinear from the packed BitNet b1.58 weights of Hugging Face transformers checkpoints.
//
// The packed form (transformers' integrations/bitnet.py, class BitLinear; e.g. microsoft/bitnet-b1.58-2B-4T):
//   `<prefix>.weight`        uint8 [out_features / 4, in_features]. With R = out_features / 4, row r = i*R + j of
//                            the unpacked code matrix (i = 0..3, j = 0..R-1) is stored as code + 1 (0, 1, 2) in bits
//                            2i..2i+1 of packed row j. The field value 3 is invalid.
//   `<prefix>.weight_scale`  a 1-element floating tensor (usually BF16).
//   `<prefix>.bias`          optional, [out_features].
//
// Whether weight_scale multiplies or divides depends on which transformers class reads the checkpoint, so the
// caller must say which (HfScaleConvention has no default):
//   divide   - transformers `BitLinear` (quantization_config.linear_class "bitlinear", the default of
//              BitNetQuantConfig): forward computes y = dot(q, code) / (weight_scale * s_x) (post_quant_process
//              receives weight_scale and the activation scale and divides by their product), so weight_scale is
//              s_w = 1 / beta, the reciprocal of the dequantization scale. We set beta = 1 / weight_scale.
//   multiply - transformers `AutoBitLinear` in offline mode (linear_class "autobitlinear"): forward computes
//              F.linear(dequantized x, code) * weight_scale, so weight_scale is beta itself.
// Read `quantization_config.linear_class` in the checkpoint's config.json to choose. A bias (BitNet checkpoints
// have none, but the classes accept one) is added after the scaling by BitLinear and before it by AutoBitLinear
// (F.linear(x, w, bias) * weight_scale), so for `multiply` the layer's bias is bias * weight_scale.
// Our layer then computes
// dot / s_x / s_w with s_w = 1 / beta (DESIGN §1): the same value up to the rounding of the last float ops
// (a few ulp), while the quantized activations are bit-identical to PyTorch's.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "format.hpp"
#include "layer.hpp"
#include "options.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN

enum class HfScaleConvention {
  divide,    // transformers BitLinear: weight_scale = 1 / beta
  multiply,  // transformers AutoBitLinear (offline): weight_scale = beta
};

// Builds a TernaryLinear from HF-packed weights: `packed` holds packed_rows x in_features bytes (row-major), so
// out_features = 4 * packed_rows. `bias` is null or out_features values, as stored in the checkpoint. Throws std::invalid_argument on a field
// value 3, a non-finite or non-positive weight_scale, or bad dimensions.
inline TernaryLinear ternary_from_hf_packed(const std::uint8_t* packed, std::size_t packed_rows,
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
  BITLINEAR_REQUIRE(std::isfinite(weight_scale) && weight_scale > 0.0f,
                    "HF weight_scale " + std::to_string(weight_scale) + " must be finite and positive");
  const float beta = convention == HfScaleConvention::divide ? 1.0f / weight_scale : weight_scale;
  BITLINEAR_REQUIRE(std::isfinite(beta) && beta > 0.0f,
                    "HF weight_scale " + std::to_string(weight_scale) + " has no finite positive reciprocal");
  const std::size_t out_features = 4 * packed_rows;
  std::vector<float> scaled_bias;
  if (bias != nullptr && convention == HfScaleConvention::multiply) {
    scaled_bias.assign(bias, bias + out_features);
    for (float& b : scaled_bias) b *= weight_scale;
    bias = scaled_bias.data();
  }
  const std::size_t row_bytes = Ternary::packed_row_bytes(in_features);
  std::vector<std::uint8_t> canonical(out_features * row_bytes, Ternary::zero_byte);
  for (std::size_t j = 0; j < packed_rows; ++j) {
    const std::uint8_t* source = packed + j * in_features;
    for (std::size_t k = 0; k < in_features; ++k) {
      const unsigned byte = source[k];
      for (unsigned i = 0; i < 4; ++i) {
        const unsigned field = (byte >> (2 * i)) & 3u;
        if (field == 3u) {
          detail::fail_invalid_argument("bitlinear: HF packed weight byte [" + std::to_string(j) + "][" +
                                        std::to_string(k) + "] holds field value 3 in bits " + std::to_string(2 * i) +
                                        ".." + std::to_string(2 * i + 1) + "; valid fields are 0, 1, 2 (code + 1)");
        }
        Ternary::set_code(canonical.data() + (i * packed_rows + j) * row_bytes, k, static_cast<int>(field) - 1);
      }
    }
  }
  return TernaryLinear::from_packed(canonical.data(), canonical.size(), out_features, in_features, beta, bias,
                                    options);
}

// Loads `<prefix>.weight`, `<prefix>.weight_scale` and, if present, `<prefix>.bias` from a safetensors file.
// Throws std::invalid_argument if a tensor is missing or has the wrong dtype or shape.
inline TernaryLinear ternary_from_hf_checkpoint(const SafetensorsView& file, std::string_view prefix,
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
  // Shapes were checked against the data size, so rows * in fits in size_t; from_packed limits them further.
  const auto rows = static_cast<std::size_t>(weight.shape[0]);
  const auto in = static_cast<std::size_t>(weight.shape[1]);
  std::vector<float> bias;
  if (const SafetensorsTensor* b = file.find(p + ".bias")) {
    BITLINEAR_REQUIRE(b->shape.size() == 1 && b->shape[0] == 4 * weight.shape[0],
                      "\"" + b->name + "\" must have shape [" + std::to_string(4 * weight.shape[0]) + "]");
    bias = safetensors_to_float(*b);
  }
  return ternary_from_hf_packed(weight.data, rows, in, weight_scale, convention, bias.empty() ? nullptr : bias.data(),
                                options);
}

BITLINEAR_NAMESPACE_END
