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

#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "activations.hpp"
#include "config.hpp"
#include "error.hpp"
#include "detail/aligned_buffer.hpp"
#include "kernels/grid.hpp"  // first of the kernel headers: it includes interface.hpp in the order that works
#include "detail/checked_size.hpp"
#include "detail/exact_float.hpp"
#include "detail/fp_environment.hpp"
#include "kernels/interface.hpp"
#include "kernels/layout.hpp"
#include "format.hpp"
#include "format_compact.hpp"
#include "isa.hpp"
#include "options.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN

class ThreadPool;  // thread_pool.hpp

namespace detail {
// Importers that write validated canonical rows straight into a new layer's execution layout, in parallel
// (io/layer_builder.hpp). The only code besides the layer itself that sees its private members.
template <class Format>
struct LayerBuilder;
}  // namespace detail

template <class Format>
class BitLinear {
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

  // y[batch, out_features] = layer(x[batch, in_features]). Allocates the quantized activations; see the
  // workspace overload for an allocation-free call.
  void forward(const float* x, std::size_t batch, float* y) const { forward(x, batch, in_, y, out_); }

  // Strided: row t of x starts at x + t * x_stride, row t of y at y + t * y_stride.
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride) const {
    // The extents of x and y are checked before the workspace is allocated: a bad stride with a huge batch is an
    // invalid_argument, not an allocation of the workspace it would need.
    check_output(y != nullptr, batch, y_stride);
    detail::check_activation_input(x, batch, in_, x_stride);
    std::vector<unsigned char> workspace(workspace_size(batch));
    forward(x, batch, x_stride, y, y_stride, workspace.data(), workspace.size());
  }

  // Bytes of workspace forward() needs for `batch` rows.
  // Throws std::invalid_argument if that many bytes cannot exist (PTRDIFF_MAX; see activation_workspace_size).
  std::size_t workspace_size(std::size_t batch) const { return activation_workspace_size(batch, in_); }

  // Allocation-free forward: `workspace` is caller-owned memory of at least workspace_size(batch) bytes.
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               void* workspace, std::size_t workspace_bytes) const {
    check_output(y != nullptr, batch, y_stride);
    detail::check_activation_input(x, batch, in_, x_stride);
    const MutableActivationsView acts = activation_view_in(workspace, workspace_bytes, batch, in_);
    detail::quantize_rows(*kernels_, x, batch, x_stride, options_.activation_scale, acts);
    run_matmul(acts, 0, out_, y, y_stride);  // acts are valid by construction: no need to re-check the padding
  }

  // Multithreaded forward on a ThreadPool (thread_pool.hpp; defined in parallel_forward.hpp, which includes this
  // header; <bitlinear/bitlinear.hpp> includes both). Quantization is split over rows of x and the matmul over
  // chunks of output rows claimed by the threads (docs/threads.md). Every output is computed from its own row and
  // token alone, so the result is bit-identical to forward() for every thread count and claim order. The
  // workspace overload performs no heap allocation. Calls on one pool from several threads run one at a time.
  void forward(const float* x, std::size_t batch, float* y, ThreadPool& pool) const;
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               ThreadPool& pool) const;
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               void* workspace, std::size_t workspace_bytes, ThreadPool& pool) const;

  // Quantizes activations the way this layer does (its activation scale mode and kernel family), so that
  // one quantization can feed several layers of the same in_features (e.g. q, k and v projections).
  void quantize(const float* x, std::size_t batch, std::size_t x_stride, QuantizedActivations& out) const {
    require_not_empty();
    out.quantize(x, batch, in_, x_stride, options_.activation_scale, kernels_->isa);
  }

  // The lower layer for engines: computes outputs [row_begin, row_end) of every row of already-quantized
  // activations, writing y[t * y_stride + j] for t < acts.batch and j in the range, nothing else. Different
  // ranges may run concurrently on different threads; results do not depend on how the range is split.
  void forward_quantized(const ActivationsView& acts, std::size_t row_begin, std::size_t row_end, float* y,
                         std::size_t y_stride) const {
    check_activations(acts);
    check_output(y != nullptr, acts.batch, y_stride);
    BITLINEAR_REQUIRE(row_begin <= row_end && row_end <= out_,
                    "output range [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
                        ") is not within [0, out_features = " + std::to_string(out_) + "]");
    run_matmul(acts, row_begin, row_end, y, y_stride);
  }

  // True for a moved-from layer (see the top of this header).
  bool empty() const noexcept { return out_ == 0; }
  std::size_t in_features() const noexcept { return in_; }
  std::size_t out_features() const noexcept { return out_; }
  // beta: dequantized weight = code * weight_scale().
  float weight_scale() const noexcept { return beta_; }
  Options options() const noexcept { return options_; }
  // The kernel family this layer runs (never Isa::automatic).
  Isa isa() const noexcept { return kernels_->isa; }
  // True if the family runs this format with a kernel of its own; false where it runs the shared fallback
  // (docs/design.md, "The kernel grid").
  bool native_kernel() const noexcept { return kernels_->formats[format_column].native; }
  bool has_bias() const noexcept { return has_bias_; }
  // The bias (zeros if the layer has none), out_features values.
  const std::vector<float>& bias() const noexcept { return bias_; }

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
  // Bytes of the packed weights (canonical and in memory: the execution layout only reorders blocks).
  std::size_t packed_weights_size() const noexcept { return packed_.size(); }
  // Rows per interleaved group of the execution layout the weights are stored in (1: canonical order).
  std::size_t execution_group_rows() const noexcept { return group_rows_; }

 public:
  BitLinear(const BitLinear&) = default;
  BitLinear& operator=(const BitLinear&) = default;
  // Leaves `other` empty. Lists every member: a new member must be added here too (the move tests check that
  // a moved-to layer computes what the original did, and that the moved-from one is empty).
  BitLinear(BitLinear&& other) noexcept
      : out_(std::exchange(other.out_, 0)),
        in_(std::exchange(other.in_, 0)),
        beta_(std::exchange(other.beta_, 0.0f)),
        s_w_(std::exchange(other.s_w_, 0.0f)),
        has_bias_(std::exchange(other.has_bias_, false)),
        bias_(std::exchange(other.bias_, {})),
        packed_(std::exchange(other.packed_, {})),
        options_(std::exchange(other.options_, {})),
        kernels_(other.kernels_),
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
    std::swap(out_, other.out_);
    std::swap(in_, other.in_);
    std::swap(beta_, other.beta_);
    std::swap(s_w_, other.s_w_);
    std::swap(has_bias_, other.has_bias_);
    bias_.swap(other.bias_);
    std::swap(packed_, other.packed_);
    std::swap(options_, other.options_);
    std::swap(kernels_, other.kernels_);
    std::swap(group_rows_, other.group_rows_);
  }

  void require_not_empty() const {
    BITLINEAR_REQUIRE(!empty(), "the layer is empty (it was moved from); assign a layer to it before use");
  }

  // 1 / weight_scale in the default FP environment (the s_w of the ternary epilogue).
  static float reciprocal(float weight_scale) noexcept {
    const detail::FpEnvironmentGuard fp_environment;
    return detail::opaque(detail::exact_div(1.0f, weight_scale));  // opaque: computed before the guard ends
  }

  BitLinear(std::size_t out_features, std::size_t in_features, const float* bias, Options options)
      : out_(out_features),
        in_(in_features),
        has_bias_(bias != nullptr),
        bias_(out_features, 0.0f),
        packed_(packed_size<Format>(out_features, in_features)),
        options_(options),
        kernels_(&detail::kernel_table(resolve_isa(options.isa))),
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
    if (bias != nullptr) {
      for (std::size_t j = 0; j < out_features; ++j) {
        if (!detail::is_finite_bits(bias[j])) {
          detail::fail_invalid_argument("bitlinear: bias[" + std::to_string(j) + "] = " + std::to_string(bias[j]) +
                                        " is not finite; bias values must be finite numbers");
        }
        bias_[j] = bias[j];
      }
    }
  }

  static void check_shape(std::size_t out_features, std::size_t in_features) {
    BITLINEAR_REQUIRE(out_features > 0, "out_features is 0; it must be at least 1");
    BITLINEAR_REQUIRE(in_features > 0, "in_features is 0; it must be at least 1");
    BITLINEAR_REQUIRE(in_features <= max_in_features, "in_features " + std::to_string(in_features) +
                                                        " exceeds the limit of 2^20 = 1048576 (int32 accumulation)");
    // 2^40 weights, compared in 64-bit arithmetic whatever the width of size_t.
    BITLINEAR_REQUIRE(static_cast<std::uint64_t>(out_features) <= (std::uint64_t{1} << 40) / in_features,
                      "out_features " + std::to_string(out_features) + " x in_features " +
                          std::to_string(in_features) + " exceeds the limit of 2^40 weights");
    // The float weight matrix (and unpacked_weights()) and the packed weights must be addressable:
    // out * in * 4 and out * packed_row_bytes at most PTRDIFF_MAX bytes (only a 32-bit size_t can fail this).
    auto what = [&] {
      return "a layer of out_features " + std::to_string(out_features) + " x in_features " + std::to_string(in_features);
    };
    detail::checked_mul(detail::checked_mul(out_features, in_features, what), sizeof(float), what);
    detail::checked_mul(out_features, Format::packed_row_bytes(in_features), what);
  }

  // Takes y's nullness, not y: GCC warns (maybe-uninitialized) when a pointer to a not-yet-written output is
  // passed as const float*.
  void check_output(bool y_present, std::size_t batch, std::size_t y_stride) const {
    require_not_empty();
    BITLINEAR_REQUIRE(y_present, "output y is null");
    BITLINEAR_REQUIRE(batch > 0, "batch is 0; it must be at least 1");
    BITLINEAR_REQUIRE(y_stride >= out_, "y_stride " + std::to_string(y_stride) + " is smaller than out_features " +
                                          std::to_string(out_));
    detail::check_rows_extent(batch, y_stride, out_, sizeof(float), "output y");
  }

  void check_activations(const ActivationsView& a) const {
    require_not_empty();
    BITLINEAR_REQUIRE(a.q != nullptr && a.scale != nullptr && a.sum != nullptr, "quantized activations are null");
    BITLINEAR_REQUIRE(a.batch > 0, "quantized activations hold batch 0; it must be at least 1");
    BITLINEAR_REQUIRE(a.block_size == 0, "quantized activations are per block (block_size " +
                                             std::to_string(a.block_size) +
                                             "); a per-tensor BitLinear layer takes per-token or per-tensor "
                                             "activations (block_size 0) only");
    BITLINEAR_REQUIRE(a.in_features == in_, "quantized activations have in_features " + std::to_string(a.in_features) +
                                              " but the layer has " + std::to_string(in_));
    BITLINEAR_REQUIRE(a.stride >= activation_stride(in_) && a.stride % activation_row_multiple == 0,
                    "quantized activations have stride " + std::to_string(a.stride) +
                        "; it must be a multiple of 512 and at least activation_stride(in_features) = " +
                        std::to_string(activation_stride(in_)));
    detail::check_rows_extent(a.batch, a.stride, a.stride, 1, "quantized activations");
    const std::size_t pad_end = activation_stride(in_);
    for (std::size_t t = 0; t < a.batch; ++t) {
      for (std::size_t k = in_; k < pad_end; ++k) {
        BITLINEAR_REQUIRE(a.q[t * a.stride + k] == 0, "quantized activations row " + std::to_string(t) +
                                                        " has a nonzero value in its padding at " + std::to_string(k));
      }
    }
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

  // forward_quantized without the argument checks (callers have checked or built acts themselves).
  void run_matmul(const ActivationsView& acts, std::size_t row_begin, std::size_t row_end, float* y,
                  std::size_t y_stride) const noexcept {
    if (row_begin == row_end) return;
    const detail::FpEnvironmentGuard fp_environment;  // ThreadPool tasks call this too: each pins its own thread
    const detail::PackedWeightsView w = weights();
    const detail::Epilogue e{beta_, s_w_, bias_.data()};
    kernels_->formats[format_column].matmul(w, acts, row_begin, row_end, e, y, y_stride);
  }

  std::size_t out_ = 0;
  std::size_t in_ = 0;
  float beta_ = 0.0f;
  float s_w_ = 0.0f;
  bool has_bias_ = false;
  std::vector<float> bias_;
  detail::AlignedBytes packed_;
  Options options_;
  // The layer's row of the kernel grid (never null: a moved-from layer keeps it) and its execution layout.
  const detail::KernelTable* kernels_ = &detail::kernel_table(Isa::scalar);
  std::size_t group_rows_ = 1;
};

using TernaryLinear = BitLinear<Ternary>;
using BinaryLinear = BitLinear<Binary>;
// BitNet b1.58 at 1.6 bits per weight (format_compact.hpp): the outputs of TernaryLinear, bit for bit.
using CompactTernaryLinear = BitLinear<TernaryCompact>;

BITLINEAR_NAMESPACE_END
