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
#include "../format.hpp"
#include "../layer.hpp"
#include "../options.hpp"
#include "layer_builder.hpp"
#include "online_quantize.hpp"
#include "repack.hpp"
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
  // Threads for the conversion: rows are converted in parallel on this pool (null: on the calling thread).
  // The result is the same for every pool. Builds without std::thread (BITLINEAR_HAS_THREADS 0) ignore it.
  ThreadPool* pool = nullptr;

  HfImportOptions() = default;
  HfImportOptions(Options layer_options) : layer(layer_options) {}  // NOLINT: implicit, so `Options` still works
};

namespace detail {

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

// What the HF packed importers share: the checks, the scaling, and a layer of Format whose rows
// repack_rows(w, begin, end) writes from source rows [begin, end) into the layer's execution layout w, returning
// false if those source rows hold a field value 3 (the first one is then named in the error).
template <class Format, class RepackRows>
BitLinear<Format> build_from_hf_packed(const std::uint8_t* packed, std::size_t packed_rows, std::size_t in_features,
                                       float weight_scale, HfScaleConvention convention, const float* bias,
                                       const HfImportOptions& options, RepackRows&& repack_rows) {
  BITLINEAR_REQUIRE(packed != nullptr, "HF packed weights are null");
  check_hf_packed_shape(packed_rows, in_features, options.max_weight_bytes);
  const std::size_t out_features = 4 * packed_rows;
  const HfScaling scaling(weight_scale, convention, bias, out_features);
  std::atomic<bool> bad{false};
  BitLinear<Format> layer = LayerBuilder<Format>::build(
      out_features, in_features, scaling.beta(), scaling.bias(), options.layer, packed_rows,
      hf_rows_per_task(in_features), options.pool, [&](const PackedWeightsView& w, std::size_t begin, std::size_t end) {
        if (!repack_rows(w, begin, end)) bad = true;
      });
  if (bad) throw_first_hf_field_3(packed, packed_rows, in_features);
  return layer;
}

}  // namespace detail

// Builds a TernaryLinear from HF-packed weights: `packed` holds packed_rows x in_features bytes (row-major), so
// out_features = 4 * packed_rows. `bias` is null or out_features values, as stored in the checkpoint. Throws
// std::invalid_argument on a field value 3, a weight_scale that is not finite and positive (or whose
// reciprocal is not finite), bad dimensions, or a layer larger than options.max_weight_bytes.
inline TernaryLinear ternary_from_hf_packed(const std::uint8_t* packed, std::size_t packed_rows,
                                            std::size_t in_features, float weight_scale,
                                            HfScaleConvention convention, const float* bias = nullptr,
                                            const HfImportOptions& options = {}) {
  // Source rows are repacked straight into the layer's own buffer (in its execution layout), checked in bulk as
  // they are read (io/repack.hpp): the layer is the only full copy of the weights ever made.
  return detail::build_from_hf_packed<Ternary>(
      packed, packed_rows, in_features, weight_scale, convention, bias, options,
      [&](const detail::PackedWeightsView& w, std::size_t begin, std::size_t end) {
        return detail::hf_repack_rows(packed, packed_rows, in_features, w, begin, end);
      });
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
// AutoBitLinear does in online mode (the same absmean rule as from_float, the same codes and scale), with an
// optional bias. The weights are read twice from the tensor's bytes (io/online_quantize.hpp): once for the
// scale, then row by row into the layer, in parallel on options.pool if given; no float copy of the matrix.
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
  const detail::FloatDtype dtype = detail::float_dtype_of(weight);
  std::vector<float> bias_values;
  if (bias != nullptr) {
    BITLINEAR_REQUIRE(bias->shape.size() == 1 && bias->shape[0] == weight.shape[0],
                      "\"" + bias->name + "\" must have shape [" + std::to_string(weight.shape[0]) + "]");
    bias_values = safetensors_to_float(*bias);
  }
  const auto out = static_cast<std::size_t>(weight.shape[0]), in = static_cast<std::size_t>(weight.shape[1]);
  // In from_float's order: shape, bias and options (the empty layer), then the weights and their scale.
  TernaryLinear layer =
      detail::LayerBuilder<Ternary>::make(out, in, bias_values.empty() ? nullptr : bias_values.data(), options.layer);
  const detail::WeightRule<true> rule = detail::ternary_rule_of(dtype, weight.data, out, in);
  const std::size_t padded = Ternary::packed_row_bytes(in) / packed_block_bytes * Ternary::weights_per_block;
  detail::LayerBuilder<Ternary>::fill_rows(
      layer, out, detail::hf_rows_per_task(in * detail::float_dtype_size(dtype)), options.pool,
      [&](const detail::PackedWeightsView& w, std::size_t begin, std::size_t end) {
        std::vector<float> row(padded);  // per task: one row of floats
        detail::ternary_quantize_rows(dtype, weight.data, in, rule, w, begin, end, row.data());
      });
  detail::LayerBuilder<Ternary>::finish(layer, rule.scale());
  return layer;
}

BITLINEAR_NAMESPACE_END
