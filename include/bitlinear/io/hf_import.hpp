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

#include "../config.hpp"
#include "../error.hpp"
#include "../format.hpp"
#include "../layer.hpp"
#include "../options.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN

enum class HfScaleConvention {
  divide,    // transformers BitLinear: weight_scale = 1 / beta
  multiply,  // transformers AutoBitLinear (offline): weight_scale = beta
};

// Options of an import. A packed HF weight of shape [R, in] becomes 4R rows of packed_row_bytes(in) bytes (whole
// 64-byte blocks), so a narrow matrix grows: [R, 1] takes 4R * 64 bytes from R bytes of file, 256x. The budget
// bounds what one imported layer may allocate, so that a small hostile file cannot demand gigabytes.
struct HfImportOptions {
  // 1 GiB: four times the largest BitLinear layer of any published model we know (a 53248 x 16384 FFN
  // matrix, 218 MB at 2 bits per weight). Raise it for larger layers.
  static constexpr std::size_t default_max_weight_bytes = std::size_t{1} << 30;

  Options layer;                                             // the built layer's options (kernel family, ...)
  std::size_t max_weight_bytes = default_max_weight_bytes;  // limit on the layer's packed weight bytes

  HfImportOptions() = default;
  HfImportOptions(Options layer_options) : layer(layer_options) {}  // NOLINT: implicit, so `Options` still works
};

namespace detail {

[[noreturn]] inline void throw_hf_field_3(std::size_t j, std::size_t k, std::size_t i) {
  detail::fail_invalid_argument("bitlinear: HF packed weight byte [" + std::to_string(j) + "][" + std::to_string(k) +
                              "] holds field value 3 in bits " + std::to_string(2 * i) + ".." +
                              std::to_string(2 * i + 1) + "; valid fields are 0, 1, 2 (code + 1)");
}

// Row r (0 <= r < 4 * packed_rows) of the canonical ternary matrix of an HF-packed weight, written to `row`
// (Ternary::packed_row_bytes(in_features) bytes). Row r = i * R + j lives in bits 2i..2i+1 of packed row j, as
// code + 1: the same field value as the canonical format, so each canonical byte gathers four fields.
// Throws std::invalid_argument on a field value 3.
inline void hf_canonical_row(const std::uint8_t* packed, std::size_t packed_rows, std::size_t in_features,
                             std::size_t r, std::uint8_t* row) {
  const std::size_t i = r / packed_rows, j = r % packed_rows;
  const unsigned shift = static_cast<unsigned>(2 * i);
  const std::uint8_t* src = packed + j * in_features;
  auto field = [&](std::size_t k) { return static_cast<unsigned>(src[k] >> shift) & 3u; };
  const std::size_t full_blocks = in_features / Ternary::weights_per_block;
  unsigned bad = 0;  // a field is 3 iff both of its bits are set
  for (std::size_t b = 0; b < full_blocks; ++b) {
    const std::size_t k0 = b * Ternary::weights_per_block;
    std::uint8_t* block = row + b * packed_block_bytes;
    for (std::size_t t = 0; t < packed_block_bytes; ++t) {
      const unsigned byte = field(k0 + t) | field(k0 + 64 + t) << 2 | field(k0 + 128 + t) << 4 | field(k0 + 192 + t) << 6;
      bad |= byte & (byte >> 1) & 0x55u;
      block[t] = static_cast<std::uint8_t>(byte);
    }
  }
  const std::size_t k_tail = full_blocks * Ternary::weights_per_block;
  if (k_tail < in_features) {
    std::uint8_t* block = row + full_blocks * packed_block_bytes;
    for (std::size_t t = 0; t < packed_block_bytes; ++t) block[t] = Ternary::zero_byte;
    for (std::size_t k = k_tail; k < in_features; ++k) {
      const unsigned f = field(k);
      bad |= f & (f >> 1) & 1u;
      Ternary::set_code(row, k, static_cast<int>(f) - 1);  // a field 3 is reported below
    }
  }
  if (bad != 0) {
    for (std::size_t k = 0; k < in_features; ++k) {
      if (field(k) == 3u) throw_hf_field_3(j, k, i);
    }
  }
}

// Checks the dimensions of an HF-packed weight against the library's limits and the import budget.
inline void check_hf_packed_shape(std::size_t packed_rows, std::size_t in_features, std::size_t max_weight_bytes) {
  BITLINEAR_REQUIRE(packed_rows > 0 && in_features > 0, "HF packed weights must be at least 1x1");
  BITLINEAR_REQUIRE(in_features <= max_in_features,
                    "in_features " + std::to_string(in_features) + " exceeds the limit of 2^20 = 1048576");
  // 64-bit arithmetic, so that a 32-bit size_t neither wraps nor rejects what fits.
  const std::uint64_t rows = packed_rows, in = in_features;
  BITLINEAR_REQUIRE(rows <= (std::uint64_t{1} << 38) / in, "HF packed weights of " + std::to_string(rows) + " x " +
                                                               std::to_string(in) + " exceed the limit of 2^40 weights");
  const std::uint64_t bytes = 4 * rows * Ternary::packed_row_bytes(in_features);
  BITLINEAR_REQUIRE(bytes <= max_weight_bytes,
                    "HF packed weights [" + std::to_string(rows) + ", " + std::to_string(in) + "] import to " +
                        std::to_string(4 * rows) + " x " + std::to_string(in) + " ternary weights taking " +
                        std::to_string(bytes) + " bytes, more than the import budget max_weight_bytes = " +
                        std::to_string(max_weight_bytes) + " (HfImportOptions; raise it for larger layers)");
}

// The layer's beta and bias for an HF module's weight_scale under `convention` (checked: finite, positive, with a
// finite reciprocal), computed in the default FP environment like every float operation of the library.
class HfScaling {
 public:
  HfScaling(float weight_scale, HfScaleConvention convention, const float* bias, std::size_t out_features) {
    BITLINEAR_REQUIRE(convention == HfScaleConvention::divide || convention == HfScaleConvention::multiply,
                      "HfScaleConvention holds an unknown value");
    const FpEnvironmentGuard fp_environment;
    const bool positive = is_finite_bits(weight_scale) && is_positive_bits(weight_scale);
    const float reciprocal = positive ? opaque(exact_div(1.0f, weight_scale)) : 0.0f;
    BITLINEAR_REQUIRE(positive && is_finite_bits(reciprocal),
                      "HF weight_scale " + float_text(weight_scale) +
                          " must be finite and positive, with a finite reciprocal");
    beta_ = convention == HfScaleConvention::divide ? reciprocal : weight_scale;
    bias_ = bias;
    if (bias != nullptr && convention == HfScaleConvention::multiply) {
      scaled_bias_.resize(out_features);
      for (std::size_t j = 0; j < out_features; ++j) scaled_bias_[j] = exact_mul(bias[j], weight_scale);
      bias_ = scaled_bias_.data();
    }
  }
  HfScaling(const HfScaling&) = delete;
  HfScaling& operator=(const HfScaling&) = delete;

  float beta() const noexcept { return beta_; }
  const float* bias() const noexcept { return bias_; }  // the caller's bias, or the scaled copy

 private:
  float beta_ = 0.0f;
  const float* bias_ = nullptr;
  std::vector<float> scaled_bias_;
};

}  // namespace detail

// Builds a TernaryLinear from HF-packed weights: `packed` holds packed_rows x in_features bytes (row-major), so
// out_features = 4 * packed_rows. `bias` is null or out_features values, as stored in the checkpoint. Throws
// std::invalid_argument on a field value 3, a weight_scale that is not finite and positive (or whose
// reciprocal is not finite), bad dimensions, or a layer larger than options.max_weight_bytes.
inline TernaryLinear ternary_from_hf_packed(const std::uint8_t* packed, std::size_t packed_rows,
                                            std::size_t in_features, float weight_scale,
                                            HfScaleConvention convention, const float* bias = nullptr,
                                            const HfImportOptions& options = {}) {
  BITLINEAR_REQUIRE(packed != nullptr, "HF packed weights are null");
  detail::check_hf_packed_shape(packed_rows, in_features, options.max_weight_bytes);
  const std::size_t out_features = 4 * packed_rows;
  const detail::HfScaling scaling(weight_scale, convention, bias, out_features);
  // One canonical row at a time, straight into the layer's own buffer (in its execution layout): the layer is
  // the only full copy of the weights ever made.
  return TernaryLinear::from_packed_rows(
      [&](std::size_t r, std::uint8_t* row) { detail::hf_canonical_row(packed, packed_rows, in_features, r, row); },
      out_features, in_features, scaling.beta(), scaling.bias(), options.layer);
}

namespace detail {

// The tensors of one packed HF BitLinear module, checked and read: `weight` (U8 [out/4, in]), `weight_scale`
// (one floating value) and an optional `bias` ([out], floating).
struct HfPackedModule {
  const std::uint8_t* packed = nullptr;
  std::size_t rows = 0, in = 0;
  float weight_scale = 0.0f;
  std::vector<float> bias;  // empty: no bias
  const float* bias_data() const noexcept { return bias.empty() ? nullptr : bias.data(); }
};
inline HfPackedModule read_hf_packed_module(const SafetensorsTensor& weight, const SafetensorsTensor& scale,
                                            const SafetensorsTensor* bias) {
  BITLINEAR_REQUIRE(weight.dtype == "U8" && weight.shape.size() == 2,
                    "\"" + weight.name + "\" must be a 2-D U8 tensor [out_features / 4, in_features], not " +
                        weight.dtype + " with " + std::to_string(weight.shape.size()) + " dimensions");
  BITLINEAR_REQUIRE(scale.element_count() == 1,
                    "\"" + scale.name + "\" must hold exactly 1 value, not " + std::to_string(scale.element_count()));
  HfPackedModule m;
  m.packed = weight.data;
  m.weight_scale = safetensors_to_float(scale)[0];
  // Shapes were checked against the data size, so rows * in fits in size_t; the import checks them further.
  m.rows = static_cast<std::size_t>(weight.shape[0]);
  m.in = static_cast<std::size_t>(weight.shape[1]);
  if (bias != nullptr) {
    BITLINEAR_REQUIRE(bias->shape.size() == 1 && bias->shape[0] == 4 * weight.shape[0],
                      "\"" + bias->name + "\" must have shape [" + std::to_string(4 * weight.shape[0]) + "]");
    m.bias = safetensors_to_float(*bias);
  }
  return m;
}

}  // namespace detail

// Builds a layer from the tensors of one packed HF BitLinear module: `weight` (U8 [out/4, in]), `weight_scale`
// (one floating value) and an optional `bias` ([out], floating). Throws std::invalid_argument if a tensor has
// the wrong dtype or shape, or for anything ternary_from_hf_packed rejects.
inline TernaryLinear ternary_from_hf_tensors(const SafetensorsTensor& weight, const SafetensorsTensor& scale,
                                             const SafetensorsTensor* bias, HfScaleConvention convention,
                                             const HfImportOptions& options = {}) {
  const detail::HfPackedModule m = detail::read_hf_packed_module(weight, scale, bias);
  return ternary_from_hf_packed(m.packed, m.rows, m.in, m.weight_scale, convention, m.bias_data(), options);
}

// Loads `<prefix>.weight`, `<prefix>.weight_scale` and, if present, `<prefix>.bias` from a safetensors file.
// Throws std::invalid_argument if a tensor is missing or has the wrong dtype or shape, or if the layer would
// exceed options.max_weight_bytes.
inline TernaryLinear ternary_from_hf_checkpoint(const SafetensorsView& file, std::string_view prefix,
                                                HfScaleConvention convention, const HfImportOptions& options = {}) {
  const std::string p(prefix);
  return ternary_from_hf_tensors(file.at(p + ".weight"), file.at(p + ".weight_scale"), file.find(p + ".bias"),
                                 convention, options);
}

// Builds a layer from a float weight tensor ([out, in]; F32, F16, BF16 or F64) quantized now, as transformers'
// AutoBitLinear does in online mode (the same absmean rule as from_float), with an optional bias. The float
// copy of the matrix is transient (4 bytes per weight while the layer is built).
inline TernaryLinear ternary_from_float_tensor(const SafetensorsTensor& weight, const SafetensorsTensor* bias,
                                               const HfImportOptions& options = {}) {
  BITLINEAR_REQUIRE(weight.shape.size() == 2 && weight.shape[0] > 0 && weight.shape[1] > 0,
                    "\"" + weight.name + "\" must be a non-empty 2-D tensor [out_features, in_features]");
  BITLINEAR_REQUIRE(weight.shape[1] <= max_in_features, "\"" + weight.name + "\": in_features " +
                                                            std::to_string(weight.shape[1]) + " exceeds 2^20");
  const std::uint64_t bytes = weight.shape[0] * Ternary::packed_row_bytes(static_cast<std::size_t>(weight.shape[1]));
  BITLINEAR_REQUIRE(weight.shape[0] <= (std::uint64_t{1} << 40) / weight.shape[1] && bytes <= options.max_weight_bytes,
                    "\"" + weight.name + "\" [" + std::to_string(weight.shape[0]) + ", " + std::to_string(weight.shape[1]) +
                        "] needs " + std::to_string(bytes) + " bytes of ternary weights, more than the import budget "
                        "max_weight_bytes = " + std::to_string(options.max_weight_bytes));
  const std::vector<float> w = safetensors_to_float(weight);
  std::vector<float> bias_values;
  if (bias != nullptr) {
    BITLINEAR_REQUIRE(bias->shape.size() == 1 && bias->shape[0] == weight.shape[0],
                      "\"" + bias->name + "\" must have shape [" + std::to_string(weight.shape[0]) + "]");
    bias_values = safetensors_to_float(*bias);
  }
  return TernaryLinear::from_float(w.data(), static_cast<std::size_t>(weight.shape[0]),
                                   static_cast<std::size_t>(weight.shape[1]),
                                   bias_values.empty() ? nullptr : bias_values.data(), options.layer);
}

BITLINEAR_NAMESPACE_END
