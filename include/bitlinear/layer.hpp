// bitlinear: BitLinear<Format>, a drop-in replacement for an nn.Linear layer with ternary or binary weights.
//
//   y[t][j] = dot(code[j], q[t]) / s_x[t] / s_w + bias[j]        ternary (s_w = 1 / weight_scale())
//   y[t][j] = (dot(code[j], q[t]) / s_x[t]) * weight_scale() + bias[j]    binary
// with q, s_x the int8 activations and their scale (activations.hpp) and code the weight codes (format.hpp).
// Mathematically y = dot * weight_scale * absmax / 127 + bias; the order above is the pinned float32 one.
//
// A layer is immutable after construction: forward() is const and safe to call from many threads at once.
//
// Moving from a layer leaves it empty: empty() is true, in_features() and out_features() are 0, it holds no
// weights and no bias, and forward(), quantize() and forward_quantized() throw std::invalid_argument ("the
// layer is empty"). Assigning a layer to it makes it usable again; copies of an empty layer are empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "layer_core.hpp"  // first: it includes the kernel headers in the order that works
#include "config.hpp"
#include "error.hpp"
#include "detail/aligned_buffer.hpp"
#include "detail/exact_float.hpp"
#include "detail/fp_environment.hpp"
#include "kernels/interface.hpp"
#include "kernels/layout.hpp"
#include "format.hpp"
#include "format_compact.hpp"
#include "options.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN

namespace detail {
// Importers that write validated canonical rows straight into a new layer's execution layout, in parallel
// (io/layer_builder.hpp). The only code besides the layer itself that sees its private members.
template <class Format>
struct LayerBuilder;
}  // namespace detail

template <class Format>
class BitLinear : public detail::LayerCore<BitLinear<Format>> {
  using Core = detail::LayerCore<BitLinear<Format>>;
  friend Core;
  using Core::in_;
  using Core::kernels_;
  using Core::out_;
  using Core::packed_;

 public:
  using format_type = Format;
  // Ternary and TernaryCompact hold codes {-1, 0, +1} with the same semantics; Binary holds {-1, +1}.
  static constexpr bool compact_format = std::is_same<Format, TernaryCompact>::value;
  static constexpr bool ternary_codes = !std::is_same<Format, Binary>::value;
  // The layer's column of the kernel grid (kernels/interface.hpp).
  static constexpr std::size_t format_column = static_cast<std::size_t>(detail::weight_format_of<Format>);

  // Quantizes a float weight matrix W [out_features, in_features] (row-major, as nn.Linear.weight) and copies
  // the optional bias [out_features]. Throws std::invalid_argument for null pointers, zero sizes,
  // in_features > max_in_features, or a non-finite weight or bias; std::runtime_error if options.isa cannot run.
  static BitLinear from_float(const float* weight, std::size_t out_features, std::size_t in_features,
                              const float* bias = nullptr, Options options = {}) {
    check_shape(out_features, in_features);
    BITLINEAR_REQUIRE(weight != nullptr, "weight is null");
    BitLinear layer(out_features, in_features, bias, options);
    if constexpr (compact_format) {
      // Ternarized exactly as Ternary (the same codes and beta), then converted row by row.
      std::vector<std::uint8_t> ternary(packed_size<Ternary>(out_features, in_features));
      layer.beta_ = quantize_weights<Ternary>(weight, out_features, in_features, ternary.data());
      const detail::PackedWeightsView w = layer.weights();
      std::vector<std::uint8_t> row(w.row_bytes);
      const std::size_t ternary_row_bytes = Ternary::packed_row_bytes(in_features);
      for (std::size_t j = 0; j < out_features; ++j) {
        compact_row_from_ternary(ternary.data() + j * ternary_row_bytes, in_features, row.data());
        detail::scatter_row(w, j, row.data());
      }
    } else if (layer.group_rows_ == 1) {
      layer.beta_ = quantize_weights<Format>(weight, out_features, in_features, layer.packed_.data());
    } else {
      // Quantized to the canonical bytes first (a 2-bit copy, small beside the float input), then reordered.
      detail::AlignedBytes canonical(layer.packed_.size());
      layer.beta_ = quantize_weights<Format>(weight, out_features, in_features, canonical.data());
      detail::scatter_matrix(layer.weights(), canonical.data());
    }
    layer.finish_scale();
    return layer;
  }

  // Builds a layer from weights already in the canonical packed format (format.hpp) and their weight_scale,
  // as exported by packed_weights() and weight_scale(). Throws std::invalid_argument if packed_bytes is not
  // packed_size<Format>(out_features, in_features), if the bytes are not canonical, or if weight_scale is not
  // finite (or, for ternary, not positive; binary accepts 0, the scale of an all-zero matrix).
  static BitLinear from_packed(const std::uint8_t* packed, std::size_t packed_bytes, std::size_t out_features,
                               std::size_t in_features, float weight_scale, const float* bias = nullptr,
                               Options options = {}) {
    check_shape(out_features, in_features);
    BITLINEAR_REQUIRE(packed != nullptr, "packed weights are null");
    const std::size_t expected = packed_size<Format>(out_features, in_features);
    BITLINEAR_REQUIRE(packed_bytes == expected,
                    "packed weights hold " + std::to_string(packed_bytes) + " bytes; " + Format::name + " " +
                        std::to_string(out_features) + "x" + std::to_string(in_features) + " needs exactly " +
                        std::to_string(expected));
    check_weight_scale(weight_scale);
    validate_packed<Format>(packed, out_features, in_features);
    BitLinear layer(out_features, in_features, bias, options);
    detail::scatter_matrix(layer.weights(), packed);
    layer.beta_ = weight_scale;
    layer.finish_scale();
    return layer;
  }

  // Like from_packed, but the canonical bytes come one row at a time: fill_row(j, row) must write the
  // Format::packed_row_bytes(in_features) canonical bytes of row j (j = 0 .. out_features - 1, in order) to
  // `row`. Each row is validated as it arrives, and the layer's own buffer is the only full copy ever made
  // (what importers of large checkpoints need). Throws what from_packed throws, and whatever fill_row throws.
  template <class FillRow>
  static BitLinear from_packed_rows(FillRow&& fill_row, std::size_t out_features, std::size_t in_features,
                                    float weight_scale, const float* bias = nullptr, Options options = {}) {
    check_shape(out_features, in_features);
    check_weight_scale(weight_scale);
    BitLinear layer(out_features, in_features, bias, options);
    const detail::PackedWeightsView w = layer.weights();
    std::vector<std::uint8_t> row(w.row_bytes);
    for (std::size_t j = 0; j < out_features; ++j) {
      fill_row(j, row.data());
      const std::string report = detail::noncanonical_report<Format>(row.data(), 1, in_features);
      // The report counts this single row as row 0: name the real one too.
      if (!report.empty()) detail::fail_invalid_argument(report + " (in row " + std::to_string(j) + " of the matrix)");
      detail::scatter_row(w, j, row.data());
    }
    layer.beta_ = weight_scale;
    layer.finish_scale();
    return layer;
  }

  // beta: dequantized weight = code * weight_scale().
  float weight_scale() const noexcept { return beta_; }

  // Codes [out_features, in_features] row-major, each in {-1, 0, +1} (binary: {-1, +1}).
  std::vector<std::int8_t> unpacked_weights() const {
    std::vector<std::int8_t> codes(out_ * in_);
    const detail::PackedWeightsView w = weights();
    std::vector<std::uint8_t> row(w.row_bytes);
    for (std::size_t j = 0; j < out_; ++j) {
      detail::gather_row(w, j, row.data());
      unpack_codes<Format>(row.data(), 1, in_, codes.data() + j * in_);
    }
    return codes;
  }
  // The canonical packed weights (format.hpp), the bytes from_packed() takes and save() writes. The layer
  // stores the same blocks in its kernel family's execution layout, so this is a converted copy.
  std::vector<std::uint8_t> packed_weights() const {
    std::vector<std::uint8_t> canonical(packed_.size());
    detail::gather_matrix(weights(), canonical.data());
    return canonical;
  }
  // Writes the canonical packed weights to caller memory of `bytes` >= packed_weights_size() bytes.
  void copy_packed_weights(std::uint8_t* out, std::size_t bytes) const {
    BITLINEAR_REQUIRE(out != nullptr, "copy_packed_weights: output is null");
    BITLINEAR_REQUIRE(bytes >= packed_.size(), "copy_packed_weights: output holds " + std::to_string(bytes) +
                                                   " bytes; the packed weights need " + std::to_string(packed_.size()));
    detail::gather_matrix(weights(), out);
  }
  // Rows per interleaved group of the execution layout the weights are stored in (1: canonical order).
  std::size_t execution_group_rows() const noexcept { return group_rows_; }

 public:
  BitLinear(const BitLinear&) = default;
  BitLinear& operator=(const BitLinear&) = default;
  // Leaves `other` empty (the move tests check that a moved-to layer computes what the original did, and that the
  // moved-from one is empty). Lists every member of this class: a new one must be added here and in swap().
  BitLinear(BitLinear&& other) noexcept
      : Core(std::move(other)),
        beta_(std::exchange(other.beta_, 0.0f)),
        s_w_(std::exchange(other.s_w_, 0.0f)),
        group_rows_(other.group_rows_) {}
  BitLinear& operator=(BitLinear&& other) noexcept {
    if (this != &other) {
      BitLinear moved(std::move(other));
      swap(moved);
    }
    return *this;
  }
  ~BitLinear() = default;

 private:
  template <class>
  friend struct detail::LayerBuilder;

  void swap(BitLinear& other) noexcept {
    Core::swap_core(other);
    std::swap(beta_, other.beta_);
    std::swap(s_w_, other.s_w_);
    std::swap(group_rows_, other.group_rows_);
  }

  // 1 / weight_scale in the default FP environment (the s_w of the ternary epilogue).
  static float reciprocal(float weight_scale) noexcept {
    const detail::FpEnvironmentGuard fp_environment;
    return detail::opaque(detail::exact_div(1.0f, weight_scale));  // opaque: computed before the guard ends
  }

  BitLinear(std::size_t out_features, std::size_t in_features, const float* bias, Options options)
      : Core(out_features, in_features, packed_size<Format>(out_features, in_features), bias, options),
        group_rows_(kernels_->formats[format_column].group_rows) {
    BITLINEAR_REQUIRE(options.activation_scale != ActivationScale::per_block,
                      "options.activation_scale is per_block, which only group-scaled layers (GroupedLinear) take; a "
                      "per-tensor BitLinear layer takes per_token or per_tensor");
    BITLINEAR_REQUIRE(options.activation_scale != ActivationScale::per_superblock,
                      "options.activation_scale is per_superblock, which only group-scaled layers (GroupedLinear) "
                      "take; a per-tensor BitLinear layer takes per_token or per_tensor");
    BITLINEAR_REQUIRE(options.activation_scale == ActivationScale::per_token ||
                          options.activation_scale == ActivationScale::per_tensor,
                      "options.activation_scale holds an unknown value");
  }

  static void check_shape(std::size_t out_features, std::size_t in_features) {
    Core::check_core_shape(out_features, in_features);
    Core::check_addressable(out_features, in_features, Format::packed_row_bytes(in_features));
  }

  // The block rule of forward_quantized (LayerCore checks the rest).
  void check_activation_blocks(const ActivationsView& a) const {
    BITLINEAR_REQUIRE(a.block_size == 0, "quantized activations are per block (block_size " +
                                             std::to_string(a.block_size) +
                                             "); a per-tensor BitLinear layer takes per-token or per-tensor "
                                             "activations (block_size 0) only");
  }

  // Sign tests on the bit pattern: a denormal scale must reach the reciprocal check below even when the caller's
  // environment treats denormals as zero (DAZ, set at startup by programs linked with -ffast-math).
  static void check_weight_scale(float weight_scale) {
    const bool sign_ok = ternary_codes ? detail::is_positive_bits(weight_scale) : !detail::is_negative_bits(weight_scale);
    const bool scale_ok = detail::is_finite_bits(weight_scale) && sign_ok;
    BITLINEAR_REQUIRE(scale_ok, "weight_scale " + std::to_string(weight_scale) + " must be finite and " +
                                  (ternary_codes ? "positive" : "non-negative"));
    // Ternary outputs divide by s_w = 1 / weight_scale: a scale below about 2.9e-39 has no finite reciprocal.
    BITLINEAR_REQUIRE(!ternary_codes || detail::is_finite_bits(reciprocal(weight_scale)),
                      "weight_scale " + detail::float_text(weight_scale) +
                          " is too small: its reciprocal 1 / weight_scale is not a finite float");
  }

  void finish_scale() { s_w_ = reciprocal(beta_); }

  detail::PackedWeightsView weights() const noexcept {
    return {packed_.data(), out_, in_, Format::packed_row_bytes(in_), group_rows_};
  }
  detail::Epilogue epilogue() const noexcept { return {beta_, s_w_, this->bias_.data()}; }
  std::size_t decode_row_bytes() const noexcept { return Format::packed_row_bytes(in_); }

  float beta_ = 0.0f;
  float s_w_ = 0.0f;
  std::size_t group_rows_ = 1;  // the execution layout of the family (kernels/layout.hpp)
};

using TernaryLinear = BitLinear<Ternary>;
using BinaryLinear = BitLinear<Binary>;
// BitNet b1.58 at 1.6 bits per weight (format_compact.hpp): the outputs of TernaryLinear, bit for bit.
using CompactTernaryLinear = BitLinear<TernaryCompact>;

BITLINEAR_NAMESPACE_END
