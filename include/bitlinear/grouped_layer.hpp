// bitlinear: GroupedLinear<Format>, a linear layer with ternary or binary weight codes and one float scale per
// group of consecutive weights of a row (the layout of ggml's Q2_0 / Q1_0 / TQ* models: docs/grouped.md).
//
//   group g of row j: weights g * group_size .. (g + 1) * group_size - 1, scale group_scales()[j * groups + g]
//   dequantized weight = code * scale of its group (the multiply convention, as BitLinear's weight_scale())
//   y[t][j] = sum over segments of (group scale x activation block scale) x (integer partial dot), in the pinned
//             float32 order of kernels/interface.hpp ("Grouped formats"), / s_x[t] + bias[j]
//
// Formats: Ternary (2-bit fields; codes -1, 0, +1 and +2, the fourth level of ggml's Q2_0), Binary (-1, +1) and
// TernaryCompact (1.6 bits per weight; -1, 0, +1). group_size is 32, 64, 128 or 256 dividing in_features, or
// in_features itself (one scale per row, any in_features). Activations: per_token, per_tensor, per_block (ggml's
// Q8_0) or per_superblock (ggml's Q8_K) (options.hpp; quantize.hpp has the rules).
//
// Like BitLinear: immutable after construction, forward() is const and thread-safe, and a moved-from layer is
// empty (empty() true, sizes 0, forward / quantize / forward_quantized throw std::invalid_argument).
#pragma once

#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "activations.hpp"
#include "config.hpp"
#include "error.hpp"
#include "detail/aligned_buffer.hpp"
#include "kernels/grid.hpp"  // first of the kernel headers (layer.hpp says why)
#include "detail/checked_size.hpp"
#include "detail/exact_float.hpp"
#include "detail/fp_environment.hpp"
#include "kernels/interface.hpp"
#include "format.hpp"
#include "format_compact.hpp"
#include "fp16.hpp"
#include "isa.hpp"
#include "options.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN

class ThreadPool;  // thread_pool.hpp

namespace detail {

template <class Format>
inline constexpr WeightFormat grouped_format_of = WeightFormat::ternary_grouped;
template <>
inline constexpr WeightFormat grouped_format_of<Binary> = WeightFormat::binary_grouped;
template <>
inline constexpr WeightFormat grouped_format_of<TernaryCompact> = WeightFormat::ternary_compact_grouped;

// The group sizes a layer takes besides in_features itself.
inline constexpr std::size_t grouped_sizes[] = {32, 64, 128, 256};

// Throws std::invalid_argument unless group_size is one of grouped_sizes dividing in_features, or in_features.
inline void check_group_size(std::size_t group_size, std::size_t in_features) {
  bool listed = false;
  for (std::size_t g : grouped_sizes) listed = listed || g == group_size;
  const bool ok = group_size == in_features || (listed && in_features % group_size == 0);
  BITLINEAR_REQUIRE(ok, "group_size " + std::to_string(group_size) + " is not allowed for in_features " +
                            std::to_string(in_features) +
                            ": it must be 32, 64, 128 or 256 and divide in_features, or equal in_features (one "
                            "scale per row)");
}

// The canonical-form check of a grouped layer's packed bytes: as validate_packed (format.hpp,
// format_compact.hpp), except that the 2-bit form also takes field value 3 (code +2) inside the row.
template <class Format>
std::string grouped_noncanonical_report(const std::uint8_t* packed, std::size_t out_features,
                                        std::size_t in_features) {
  if constexpr (std::is_same<Format, Ternary>::value) {
    const std::size_t row_bytes = Ternary::packed_row_bytes(in_features);
    const std::size_t padded = row_bytes / packed_block_bytes * Ternary::weights_per_block;
    for (std::size_t r = 0; r < out_features; ++r) {
      const std::uint8_t* row = packed + r * row_bytes;
      for (std::size_t k = in_features; k < padded; ++k) {
        const unsigned field = (row[Ternary::byte_of(k)] >> Ternary::shift_of(k)) & 3u;
        if (field != 1u) return noncanonical_message<Ternary>(r, k, field, in_features);
      }
    }
    return {};
  } else {
    return noncanonical_report<Format>(packed, out_features, in_features);
  }
}

}  // namespace detail

template <class Format>
class GroupedLinear {
  static_assert(std::is_same<Format, Ternary>::value || std::is_same<Format, Binary>::value ||
                    std::is_same<Format, TernaryCompact>::value,
                "GroupedLinear<Format>: Format is Ternary, Binary or TernaryCompact");

 public:
  using format_type = Format;
  static constexpr bool compact_format = std::is_same<Format, TernaryCompact>::value;
  static constexpr bool ternary_codes = !std::is_same<Format, Binary>::value;
  // The largest code the format holds: +2 for the 2-bit form (field value 3), +1 otherwise.
  static constexpr int max_code = std::is_same<Format, Ternary>::value ? 2 : 1;
  // The layer's column of the kernel grid (kernels/interface.hpp).
  static constexpr std::size_t format_column = static_cast<std::size_t>(detail::grouped_format_of<Format>);

  // Quantizes a float weight matrix W [out_features, in_features] (row-major, as nn.Linear.weight) group by group
  // with the per-tensor rules of quantize.hpp applied to each group of group_size weights:
  //   ternary (Ternary, TernaryCompact):  scale = max(mean|w|, 1e-5f)  (mean summed in double in index order,
  //                                       rounded to float), s = 1.0f / scale, code = clamp(rne(w * s), -1, 1)
  //   binary:  alpha = mean(w), scale = mean|w| (both summed in double, rounded to float),
  //            code = (w - alpha > 0) ? +1 : -1
  // tests/pytorch/make_grouped_reference.py is this rule in PyTorch float32 (checked bit for bit). from_float
  // never writes code +2. Throws std::invalid_argument for null pointers, zero sizes, in_features > 2^20, a
  // group_size the layer does not take, or a non-finite weight or bias; std::runtime_error if options.isa
  // cannot run.
  static GroupedLinear from_float(const float* weight, std::size_t out_features, std::size_t in_features,
                                  std::size_t group_size, const float* bias = nullptr, Options options = {}) {
    check_shape(out_features, in_features, group_size);
    BITLINEAR_REQUIRE(weight != nullptr, "weight is null");
    detail::check_finite_weights(weight, out_features * in_features);
    GroupedLinear layer(out_features, in_features, group_size, bias, options);
    const detail::FpEnvironmentGuard fp_environment;
    const std::size_t row_bytes = Format::packed_row_bytes(in_features);
    for (std::size_t j = 0; j < out_features; ++j) {
      std::uint8_t* row = layer.packed_.data() + j * row_bytes;
      const float* w = weight + j * in_features;
      for (std::size_t g = 0; g < layer.groups_; ++g) {
        const std::size_t k0 = g * group_size;
        layer.scales_[j * layer.groups_ + g] = quantize_group(w + k0, group_size, row, k0);
      }
    }
    return layer;
  }

  // Builds a layer from canonical packed codes (format.hpp / format_compact.hpp; the 2-bit form may hold field
  // value 3 = code +2) and float group scales [out_features * groups] (any finite value: negative and zero
  // scales are allowed), as exported by packed_weights() and group_scales(). Throws std::invalid_argument for a
  // size mismatch, non-canonical bytes (invalid field or byte, padding not code 0), a non-finite scale or bias,
  // or a group_size the layer does not take.
  static GroupedLinear from_packed(const std::uint8_t* packed, std::size_t packed_bytes, std::size_t out_features,
                                   std::size_t in_features, std::size_t group_size, const float* scales,
                                   std::size_t scale_count, const float* bias = nullptr, Options options = {}) {
    check_shape(out_features, in_features, group_size);
    check_packed_size(packed, packed_bytes, out_features, in_features);
    check_scale_count(scales != nullptr, scale_count, out_features, in_features / group_size);
    for (std::size_t i = 0; i < scale_count; ++i) check_scale(scales[i], i);
    const std::string report = detail::grouped_noncanonical_report<Format>(packed, out_features, in_features);
    if (!report.empty()) detail::fail_invalid_argument(report);
    GroupedLinear layer(out_features, in_features, group_size, bias, options);
    for (std::size_t i = 0; i < packed_bytes; ++i) layer.packed_.data()[i] = packed[i];
    for (std::size_t i = 0; i < scale_count; ++i) layer.scales_[i] = scales[i];
    return layer;
  }

  // from_packed with the scales as fp16 bit patterns (what GGUF and safetensors files hold), converted exactly
  // (fp16.hpp). An infinite or NaN fp16 scale is refused (std::invalid_argument naming its index).
  static GroupedLinear from_packed_fp16(const std::uint8_t* packed, std::size_t packed_bytes,
                                        std::size_t out_features, std::size_t in_features, std::size_t group_size,
                                        const std::uint16_t* scale_bits, std::size_t scale_count,
                                        const float* bias = nullptr, Options options = {}) {
    check_shape(out_features, in_features, group_size);
    check_scale_count(scale_bits != nullptr, scale_count, out_features, in_features / group_size);
    std::vector<float> scales(scale_count);
    for (std::size_t i = 0; i < scale_count; ++i) scales[i] = scale_from_fp16(scale_bits[i], i);
    return from_packed(packed, packed_bytes, out_features, in_features, group_size, scales.data(), scale_count, bias,
                       options);
  }

  // Like from_packed, but row by row: fill_row(j, row, row_scales) must write the Format::packed_row_bytes(in)
  // canonical bytes of row j to `row` and its groups() float scales to `row_scales` (j = 0 .. out_features - 1,
  // in order). Each row is validated as it arrives, and the layer's own buffers are the only full copy ever
  // made. Throws what from_packed throws (naming the row), and whatever fill_row throws.
  template <class FillRow>
  static GroupedLinear from_packed_rows(FillRow&& fill_row, std::size_t out_features, std::size_t in_features,
                                        std::size_t group_size, const float* bias = nullptr, Options options = {}) {
    check_shape(out_features, in_features, group_size);
    GroupedLinear layer(out_features, in_features, group_size, bias, options);
    const std::size_t row_bytes = Format::packed_row_bytes(in_features);
    for (std::size_t j = 0; j < out_features; ++j) {
      std::uint8_t* row = layer.packed_.data() + j * row_bytes;
      float* row_scales = layer.scales_.data() + j * layer.groups_;
      fill_row(j, row, row_scales);
      const std::string report = detail::grouped_noncanonical_report<Format>(row, 1, in_features);
      if (!report.empty()) detail::fail_invalid_argument(report + " (in row " + std::to_string(j) + " of the matrix)");
      for (std::size_t g = 0; g < layer.groups_; ++g) check_scale(row_scales[g], j * layer.groups_ + g);
    }
    return layer;
  }

  // y[batch, out_features] = layer(x[batch, in_features]). Allocates the quantized activations; see the
  // workspace overload for an allocation-free call.
  void forward(const float* x, std::size_t batch, float* y) const { forward(x, batch, in_, y, out_); }

  // Strided: row t of x starts at x + t * x_stride, row t of y at y + t * y_stride.
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride) const {
    // The extents of x and y are checked before the workspace is allocated (as BitLinear does).
    check_output(y != nullptr, batch, y_stride);
    detail::check_activation_input(x, batch, in_, x_stride);
    std::vector<unsigned char> workspace(workspace_size(batch));
    forward(x, batch, x_stride, y, y_stride, workspace.data(), workspace.size());
  }

  // Bytes of workspace forward() needs for `batch` rows (per_block / per_superblock activations need room for
  // block scales).
  std::size_t workspace_size(std::size_t batch) const {
    return activation_workspace_size(batch, in_, options_.activation_scale);
  }

  // Allocation-free forward: `workspace` is caller-owned memory of at least workspace_size(batch) bytes.
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               void* workspace, std::size_t workspace_bytes) const {
    check_output(y != nullptr, batch, y_stride);
    detail::check_activation_input(x, batch, in_, x_stride);
    const MutableActivationsView acts =
        activation_view_in(workspace, workspace_bytes, batch, in_, options_.activation_scale);
    detail::quantize_rows(*kernels_, x, batch, x_stride, options_.activation_scale, acts);
    run_matmul(acts, 0, out_, y, y_stride);
  }

  // Multithreaded forward on a ThreadPool (defined below when the build has threads), with BitLinear's split
  // (parallel_forward.hpp): bit-identical to forward() for every thread count.
  void forward(const float* x, std::size_t batch, float* y, ThreadPool& pool) const;
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               ThreadPool& pool) const;
  void forward(const float* x, std::size_t batch, std::size_t x_stride, float* y, std::size_t y_stride,
               void* workspace, std::size_t workspace_bytes, ThreadPool& pool) const;

  // Quantizes activations the way this layer does (its activation scale mode and kernel family).
  void quantize(const float* x, std::size_t batch, std::size_t x_stride, QuantizedActivations& out) const {
    require_not_empty();
    out.quantize(x, batch, in_, x_stride, options_.activation_scale, kernels_->isa);
  }

  // Outputs [row_begin, row_end) of every row of already-quantized activations (any mode: per token, per
  // tensor, per block with block_size == activation_block_size, or per super-block with block_size ==
  // activation_superblock_size, whatever the layer's own mode), writing y[t * y_stride + j] for
  // t < acts.batch and j in the range, nothing else. Ranges may run concurrently; results do not depend on
  // the split.
  void forward_quantized(const ActivationsView& acts, std::size_t row_begin, std::size_t row_end, float* y,
                         std::size_t y_stride) const {
    check_activations(acts);
    check_output(y != nullptr, acts.batch, y_stride);
    BITLINEAR_REQUIRE(row_begin <= row_end && row_end <= out_,
                      "output range [" + std::to_string(row_begin) + ", " + std::to_string(row_end) +
                          ") is not within [0, out_features = " + std::to_string(out_) + "]");
    run_matmul(acts, row_begin, row_end, y, y_stride);
  }

  bool empty() const noexcept { return out_ == 0; }
  std::size_t in_features() const noexcept { return in_; }
  std::size_t out_features() const noexcept { return out_; }
  // Weights per group (in_features for one scale per row) and groups per row.
  std::size_t group_size() const noexcept { return group_size_; }
  std::size_t groups() const noexcept { return groups_; }
  // The group scales [out_features * groups()], row-major: dequantized weight = code * scale of its group.
  const std::vector<float>& group_scales() const noexcept { return scales_; }
  Options options() const noexcept { return options_; }
  Isa isa() const noexcept { return kernels_->isa; }
  // True if the family runs this format with a kernel of its own; false where it runs a shared fallback.
  bool native_kernel() const noexcept { return kernels_->formats[format_column].native; }
  bool has_bias() const noexcept { return has_bias_; }
  const std::vector<float>& bias() const noexcept { return bias_; }

  // Codes [out_features, in_features] row-major: {-1, 0, +1, +2} (2-bit), {-1, 0, +1} (compact), {-1, +1}.
  std::vector<std::int8_t> unpacked_weights() const {
    std::vector<std::int8_t> codes(out_ * in_);
    unpack_codes<Format>(packed_.data(), out_, in_, codes.data());
    return codes;
  }
  // The canonical packed codes (the layer stores them in the canonical layout), what from_packed takes.
  std::vector<std::uint8_t> packed_weights() const {
    return std::vector<std::uint8_t>(packed_.data(), packed_.data() + packed_.size());
  }
  std::size_t packed_weights_size() const noexcept { return packed_.size(); }
  // Bits per weight of codes and float scales as files store them (fp16 scales): (packed + 2 * scales) * 8 / n.
  double bits_per_weight_fp16() const noexcept {
    return empty() ? 0.0
                   : (static_cast<double>(packed_.size()) + 2.0 * static_cast<double>(scales_.size())) * 8.0 /
                         (static_cast<double>(out_) * static_cast<double>(in_));
  }

  GroupedLinear(const GroupedLinear&) = default;
  GroupedLinear& operator=(const GroupedLinear&) = default;
  // Leaves `other` empty. Lists every member: a new member must be added here and in swap() too.
  GroupedLinear(GroupedLinear&& other) noexcept
      : out_(std::exchange(other.out_, 0)),
        in_(std::exchange(other.in_, 0)),
        group_size_(std::exchange(other.group_size_, 0)),
        groups_(std::exchange(other.groups_, 0)),
        has_bias_(std::exchange(other.has_bias_, false)),
        bias_(std::exchange(other.bias_, {})),
        scales_(std::exchange(other.scales_, {})),
        packed_(std::exchange(other.packed_, {})),
        options_(std::exchange(other.options_, {})),
        kernels_(other.kernels_) {}
  GroupedLinear& operator=(GroupedLinear&& other) noexcept {
    if (this != &other) {
      GroupedLinear moved(std::move(other));
      swap(moved);
    }
    return *this;
  }
  ~GroupedLinear() = default;

 private:
  void swap(GroupedLinear& other) noexcept {
    std::swap(out_, other.out_);
    std::swap(in_, other.in_);
    std::swap(group_size_, other.group_size_);
    std::swap(groups_, other.groups_);
    std::swap(has_bias_, other.has_bias_);
    bias_.swap(other.bias_);
    scales_.swap(other.scales_);
    std::swap(packed_, other.packed_);
    std::swap(options_, other.options_);
    std::swap(kernels_, other.kernels_);
  }

  GroupedLinear(std::size_t out_features, std::size_t in_features, std::size_t group_size, const float* bias,
                Options options)
      : out_(out_features),
        in_(in_features),
        group_size_(group_size),
        groups_(in_features / group_size),
        has_bias_(bias != nullptr),
        bias_(out_features, 0.0f),
        scales_(out_features * (in_features / group_size), 0.0f),
        packed_(packed_size<Format>(out_features, in_features)),
        options_(options),
        kernels_(&detail::kernel_table(resolve_isa(options.isa))) {
    BITLINEAR_REQUIRE(options.activation_scale == ActivationScale::per_token ||
                          options.activation_scale == ActivationScale::per_tensor ||
                          options.activation_scale == ActivationScale::per_block ||
                          options.activation_scale == ActivationScale::per_superblock,
                      "options.activation_scale holds an unknown value");
    // from_packed_rows validates the rows as they arrive: start from canonical padding.
    for (std::size_t i = 0; i < packed_.size(); ++i) packed_.data()[i] = Format::zero_byte;
    if (bias != nullptr) {
      for (std::size_t j = 0; j < out_features; ++j) {
        if (!detail::is_finite_bits(bias[j])) {
          detail::fail_invalid_argument("bitlinear: bias[" + std::to_string(j) + "] = " +
                                        detail::float_text(bias[j]) +
                                        " is not finite; bias values must be finite numbers");
        }
        bias_[j] = bias[j];
      }
    }
  }

  static void check_shape(std::size_t out_features, std::size_t in_features, std::size_t group_size) {
    BITLINEAR_REQUIRE(out_features > 0, "out_features is 0; it must be at least 1");
    BITLINEAR_REQUIRE(in_features > 0, "in_features is 0; it must be at least 1");
    BITLINEAR_REQUIRE(in_features <= max_in_features, "in_features " + std::to_string(in_features) +
                                                          " exceeds the limit of 2^20 = 1048576 (int32 accumulation)");
    BITLINEAR_REQUIRE(static_cast<std::uint64_t>(out_features) <= (std::uint64_t{1} << 40) / in_features,
                      "out_features " + std::to_string(out_features) + " x in_features " +
                          std::to_string(in_features) + " exceeds the limit of 2^40 weights");
    detail::check_group_size(group_size, in_features);
    auto what = [&] {
      return "a layer of out_features " + std::to_string(out_features) + " x in_features " + std::to_string(in_features);
    };
    detail::checked_mul(detail::checked_mul(out_features, in_features, what), sizeof(float), what);
    detail::checked_mul(out_features, Format::packed_row_bytes(in_features), what);
  }

  static void check_packed_size(const std::uint8_t* packed, std::size_t packed_bytes, std::size_t out_features,
                                std::size_t in_features) {
    BITLINEAR_REQUIRE(packed != nullptr, "packed weights are null");
    const std::size_t expected = packed_size<Format>(out_features, in_features);
    BITLINEAR_REQUIRE(packed_bytes == expected,
                      "packed weights hold " + std::to_string(packed_bytes) + " bytes; grouped " + Format::name +
                          " " + std::to_string(out_features) + "x" + std::to_string(in_features) +
                          " needs exactly " + std::to_string(expected));
  }

  static void check_scale_count(bool present, std::size_t scale_count, std::size_t out_features, std::size_t groups) {
    BITLINEAR_REQUIRE(present, "group scales are null");
    BITLINEAR_REQUIRE(scale_count == out_features * groups,
                      "group scales hold " + std::to_string(scale_count) + " values; out_features " +
                          std::to_string(out_features) + " x " + std::to_string(groups) +
                          " groups per row needs exactly " + std::to_string(out_features * groups));
  }

  static void check_scale(float scale, std::size_t index) {
    if (!detail::is_finite_bits(scale)) {
      detail::fail_invalid_argument("bitlinear: group scale [" + std::to_string(index) + "] = " +
                                    detail::float_text(scale) + " is not finite; group scales must be finite numbers");
    }
  }

  static float scale_from_fp16(std::uint16_t bits, std::size_t index) {
    if (!fp16_is_finite(bits)) {
      detail::fail_invalid_argument("bitlinear: fp16 group scale [" + std::to_string(index) + "] has bits 0x" +
                                    hex16(bits) + ", an infinity or NaN; group scales must be finite numbers");
    }
    return fp16_to_float(bits);
  }

  static std::string hex16(std::uint16_t v) {
    const char* digits = "0123456789ABCDEF";
    std::string s(4, '0');
    for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(3 - i)] = digits[(v >> (4 * i)) & 0xFu];
    return s;
  }

  // Quantizes the n weights at w (one group, finite) into codes k0 .. k0 + n - 1 of `row`; returns the scale.
  // Runs inside from_float's FpEnvironmentGuard; opaque() keeps the sums in index order (quantize.hpp).
  static float quantize_group(const float* w, std::size_t n, std::uint8_t* row, std::size_t k0) noexcept {
    double sum = 0.0, sum_abs = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = static_cast<double>(w[i]);
      sum = detail::opaque(sum + v);
      sum_abs = detail::opaque(sum_abs + (v < 0.0 ? -v : v));
    }
    const double count = static_cast<double>(n);
    const float mean_abs = detail::opaque(static_cast<float>(detail::opaque(sum_abs / detail::opaque(count))));
    if constexpr (ternary_codes) {
      const float scale = mean_abs > 1e-5f ? mean_abs : 1e-5f;
      const float s = detail::opaque(detail::exact_div(1.0f, scale));
      for (std::size_t i = 0; i < n; ++i) {
        // clamp(rne(v), -1, 1) is +1 exactly when v > 0.5 and -1 exactly when v < -0.5 (rne(+-0.5) = 0).
        const float v = detail::exact_mul(w[i], s);
        Format::set_code(row, k0 + i, v > 0.5f ? 1 : (v < -0.5f ? -1 : 0));
      }
      return scale;
    } else {
      const float alpha = detail::opaque(static_cast<float>(detail::opaque(sum / detail::opaque(count))));
      for (std::size_t i = 0; i < n; ++i) Format::set_code(row, k0 + i, w[i] > alpha ? 1 : -1);
      return mean_abs;
    }
  }

  void require_not_empty() const {
    BITLINEAR_REQUIRE(!empty(), "the layer is empty (it was moved from); assign a layer to it before use");
  }

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
    BITLINEAR_REQUIRE(a.in_features == in_, "quantized activations have in_features " + std::to_string(a.in_features) +
                                                " but the layer has " + std::to_string(in_));
    BITLINEAR_REQUIRE(a.stride >= activation_stride(in_) && a.stride % activation_row_multiple == 0,
                      "quantized activations have stride " + std::to_string(a.stride) +
                          "; it must be a multiple of 512 and at least activation_stride(in_features) = " +
                          std::to_string(activation_stride(in_)));
    detail::check_rows_extent(a.batch, a.stride, a.stride, 1, "quantized activations");
    if (a.block_size != 0) {
      BITLINEAR_REQUIRE(a.block_size == activation_block_size || a.block_size == activation_superblock_size,
                        "quantized activations have block_size " + std::to_string(a.block_size) +
                            "; a grouped layer takes 0 (per token or per tensor), " +
                            std::to_string(activation_block_size) + " (per block) or " +
                            std::to_string(activation_superblock_size) + " (per super-block)");
      BITLINEAR_REQUIRE(a.block_scale != nullptr, "per-block quantized activations have no block scales (null)");
      const std::size_t blocks = detail::block_count_of(in_, a.block_size);
      BITLINEAR_REQUIRE(a.block_stride >= blocks,
                        "quantized activations have block_stride " + std::to_string(a.block_stride) +
                            "; it must be at least ceil(in_features / block_size) = " + std::to_string(blocks));
      detail::check_rows_extent(a.batch, a.block_stride, a.block_stride, sizeof(float), "activation block scales");
    }
    const std::size_t pad_end = activation_stride(in_);
    for (std::size_t t = 0; t < a.batch; ++t) {
      for (std::size_t k = in_; k < pad_end; ++k) {
        BITLINEAR_REQUIRE(a.q[t * a.stride + k] == 0, "quantized activations row " + std::to_string(t) +
                                                          " has a nonzero value in its padding at " + std::to_string(k));
      }
    }
  }

  // forward_quantized without the argument checks.
  void run_matmul(const ActivationsView& acts, std::size_t row_begin, std::size_t row_end, float* y,
                  std::size_t y_stride) const noexcept {
    if (row_begin == row_end) return;
    const detail::FpEnvironmentGuard fp_environment;
    const detail::PackedWeightsView w{packed_.data(), out_, in_, Format::packed_row_bytes(in_), 1};
    detail::Epilogue e;
    e.bias = bias_.data();
    e.group_scale = scales_.data();
    e.group_size = group_size_;
    e.groups_per_row = groups_;
    kernels_->formats[format_column].matmul(w, acts, row_begin, row_end, e, y, y_stride);
  }

  std::size_t out_ = 0;
  std::size_t in_ = 0;
  std::size_t group_size_ = 0;
  std::size_t groups_ = 0;
  bool has_bias_ = false;
  std::vector<float> bias_;
  std::vector<float> scales_;
  detail::AlignedBytes packed_;  // canonical layout (group rows 1)
  Options options_;
  const detail::KernelTable* kernels_ = &detail::kernel_table(Isa::scalar);
};

// 2-bit ternary codes {-1, 0, +1, +2} with group scales (ggml Q2_0 / PQ2_0, TQ2_0 after reordering).
using GroupedTernaryLinear = GroupedLinear<Ternary>;
// 1-bit codes {-1, +1} with group scales (ggml Q1_0).
using GroupedBinaryLinear = GroupedLinear<Binary>;
// Ternary codes {-1, 0, +1} at 1.6 bits per weight with group scales.
using GroupedCompactTernaryLinear = GroupedLinear<TernaryCompact>;

BITLINEAR_NAMESPACE_END
