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

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "layer_core.hpp"  // first: it includes the kernel headers in the order that works
#include "config.hpp"
#include "error.hpp"
#include "detail/exact_float.hpp"
#include "detail/fp_environment.hpp"
#include "kernels/interface.hpp"
#include "format.hpp"
#include "format_compact.hpp"
#include "fp16.hpp"
#include "options.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN

namespace detail {

// The grouped columns of the kernel grid follow the per-tensor ones in the same order (kernels/interface.hpp).
template <class Format>
inline constexpr WeightFormat grouped_format_of = static_cast<WeightFormat>(
    static_cast<unsigned>(weight_format_of<Format>) + static_cast<unsigned>(WeightFormat::ternary_grouped));
static_assert(grouped_format_of<Ternary> == WeightFormat::ternary_grouped &&
                  grouped_format_of<Binary> == WeightFormat::binary_grouped &&
                  grouped_format_of<TernaryCompact> == WeightFormat::ternary_compact_grouped,
              "WeightFormat lists the grouped columns in the order of the per-tensor ones");

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

// Whether one packed row of a grouped layer is canonical (what grouped_noncanonical_report checks, without
// building a message): a load's per-row check. Ternary and Binary rows have rules only in their padding (the
// fields past in_features); compact rows also in every byte.
template <class Format>
bool grouped_row_is_canonical(const std::uint8_t* row, std::size_t in_features) noexcept {
  if constexpr (std::is_same<Format, TernaryCompact>::value) {
    return noncanonical_report<TernaryCompact>(row, 1, in_features).empty();  // no allocation when canonical
  } else {
    const std::size_t padded =
        Format::packed_row_bytes(in_features) / packed_block_bytes * Format::weights_per_block;
    constexpr unsigned pad = std::is_same<Format, Ternary>::value ? 1u : 0u;
    unsigned bad = 0;
    for (std::size_t k = in_features; k < padded; ++k) {
      bad |= ((row[Format::byte_of(k)] >> Format::shift_of(k)) & ((1u << Format::bits_per_weight) - 1u)) ^ pad;
    }
    return bad == 0;
  }
}

// Whether every float of scales[0 .. n) is finite (exponent bits not all ones), in one branch-free pass.
inline bool all_finite_bits(const float* scales, std::size_t n) noexcept {
  std::uint32_t worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, scales + i, sizeof bits);
    const std::uint32_t exponent = bits & 0x7F800000u;
    worst = exponent > worst ? exponent : worst;
  }
  return worst != 0x7F800000u;
}

template <class Format>
struct GroupedLayerBuilder;  // io/layer_builder.hpp: rows in parallel on a ThreadPool

}  // namespace detail

template <class Format>
class GroupedLinear : public detail::LayerCore<GroupedLinear<Format>> {
  using Core = detail::LayerCore<GroupedLinear<Format>>;
  friend Core;
  using Core::in_;
  using Core::kernels_;
  using Core::options_;
  using Core::out_;
  using Core::packed_;
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
    if (packed_bytes > 0) std::memcpy(layer.packed_.data(), packed, packed_bytes);
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
    for (std::size_t j = 0; j < out_features; ++j) {
      fill_row(j, layer.row_codes(j), layer.row_scales(j));
      if (!layer.row_valid(j)) layer.fail_row(j);
    }
    return layer;
  }

  // Weights per group (in_features for one scale per row) and groups per row.
  std::size_t group_size() const noexcept { return group_size_; }
  std::size_t groups() const noexcept { return groups_; }
  // The group scales [out_features * groups()], row-major: dequantized weight = code * scale of its group.
  const std::vector<float>& group_scales() const noexcept { return scales_; }
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
  // Bits per weight of codes and float scales as files store them (fp16 scales): (packed + 2 * scales) * 8 / n.
  double bits_per_weight_fp16() const noexcept {
    return this->empty() ? 0.0
                   : (static_cast<double>(packed_.size()) + 2.0 * static_cast<double>(scales_.size())) * 8.0 /
                         (static_cast<double>(out_) * static_cast<double>(in_));
  }

  GroupedLinear(const GroupedLinear&) = default;
  GroupedLinear& operator=(const GroupedLinear&) = default;
  // Leaves `other` empty. Lists every member of this class: a new one must be added here and in swap() too.
  GroupedLinear(GroupedLinear&& other) noexcept
      : Core(std::move(other)),
        group_size_(std::exchange(other.group_size_, 0)),
        groups_(std::exchange(other.groups_, 0)),
        scales_(std::exchange(other.scales_, {})) {}
  GroupedLinear& operator=(GroupedLinear&& other) noexcept {
    if (this != &other) {
      GroupedLinear moved(std::move(other));
      swap(moved);
    }
    return *this;
  }
  ~GroupedLinear() = default;

 private:
  template <class>
  friend struct detail::GroupedLayerBuilder;

  // Row j's codes and scales in the layer's own buffers (what from_packed_rows fills).
  std::uint8_t* row_codes(std::size_t j) noexcept { return packed_.data() + j * Format::packed_row_bytes(in_); }
  float* row_scales(std::size_t j) noexcept { return scales_.data() + j * groups_; }
  // Whether row j is canonical with finite scales: the per-row check of from_packed_rows, without messages.
  bool row_valid(std::size_t j) noexcept {
    return detail::grouped_row_is_canonical<Format>(row_codes(j), in_) && detail::all_finite_bits(row_scales(j), groups_);
  }
  // Throws what from_packed_rows reports for an invalid row j: its first non-canonical field, else its first
  // non-finite scale.
  [[noreturn]] void fail_row(std::size_t j) {
    const std::string report = detail::grouped_noncanonical_report<Format>(row_codes(j), 1, in_);
    if (!report.empty()) detail::fail_invalid_argument(report + " (in row " + std::to_string(j) + " of the matrix)");
    for (std::size_t g = 0; g < groups_; ++g) check_scale(row_scales(j)[g], j * groups_ + g);
    detail::fail_runtime_error("bitlinear: a grouped row reported invalid is valid");
  }

  void swap(GroupedLinear& other) noexcept {
    Core::swap_core(other);
    std::swap(group_size_, other.group_size_);
    std::swap(groups_, other.groups_);
    scales_.swap(other.scales_);
  }

  // clear_codes false leaves the codes unwritten (GroupedLayerBuilder, whose rows are all written before use).
  GroupedLinear(std::size_t out_features, std::size_t in_features, std::size_t group_size, const float* bias,
                Options options, bool clear_codes = true)
      : Core(out_features, in_features, packed_size<Format>(out_features, in_features), bias, options),
        group_size_(group_size),
        groups_(in_features / group_size),
        scales_(out_features * (in_features / group_size), 0.0f) {
    BITLINEAR_REQUIRE(options.activation_scale == ActivationScale::per_token ||
                          options.activation_scale == ActivationScale::per_tensor ||
                          options.activation_scale == ActivationScale::per_block ||
                          options.activation_scale == ActivationScale::per_superblock,
                      "options.activation_scale holds an unknown value");
    // from_packed_rows validates the rows as they arrive: start from canonical padding. (One memset: a byte loop
    // through data() reloads the size after every store, which may alias it.)
    if (clear_codes && packed_.size() > 0) std::memset(packed_.data(), Format::zero_byte, packed_.size());
  }

  static void check_shape(std::size_t out_features, std::size_t in_features, std::size_t group_size) {
    Core::check_core_shape(out_features, in_features);
    detail::check_group_size(group_size, in_features);
    Core::check_addressable(out_features, in_features, Format::packed_row_bytes(in_features));
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

  // Quantizes the n weights at w (one group, finite) into codes k0 .. k0 + n - 1 of `row` with the rule of
  // detail::WeightRule (quantize.hpp); returns the group's scale. Runs inside from_float's FpEnvironmentGuard.
  static float quantize_group(const float* w, std::size_t n, std::uint8_t* row, std::size_t k0) noexcept {
    const detail::WeightRule<ternary_codes> rule(w, n);
    for (std::size_t i = 0; i < n; ++i) Format::set_code(row, k0 + i, rule.code(w[i]));
    return rule.scale();
  }

  // The block rule of forward_quantized (LayerCore checks the rest): any mode, whatever the layer's own.
  void check_activation_blocks(const ActivationsView& a) const {
    BITLINEAR_REQUIRE(a.block_size == 0 || a.block_size == activation_block_size ||
                          a.block_size == activation_superblock_size,
                      "quantized activations have block_size " + std::to_string(a.block_size) +
                          "; a grouped layer takes 0 (per token or per tensor), " +
                          std::to_string(activation_block_size) + " (per block) or " +
                          std::to_string(activation_superblock_size) + " (per super-block)");
  }

  detail::PackedWeightsView weights() const noexcept {
    return {packed_.data(), out_, in_, Format::packed_row_bytes(in_), 1};
  }
  detail::Epilogue epilogue() const noexcept {
    detail::Epilogue e;
    e.bias = this->bias_.data();
    e.group_scale = scales_.data();
    e.group_size = group_size_;
    e.groups_per_row = groups_;
    return e;
  }
  // The decode split sizes its chunks by weight bytes per row: codes plus float scales (as RowChunks(layer, n)).
  std::size_t decode_row_bytes() const noexcept { return Format::packed_row_bytes(in_) + groups_ * sizeof(float); }

  std::size_t group_size_ = 0;
  std::size_t groups_ = 0;
  std::vector<float> scales_;  // the codes (LayerCore::packed_) are in the canonical layout (group rows 1)
};

// 2-bit ternary codes {-1, 0, +1, +2} with group scales (ggml Q2_0 / PQ2_0, TQ2_0 after reordering).
using GroupedTernaryLinear = GroupedLinear<Ternary>;
// 1-bit codes {-1, +1} with group scales (ggml Q1_0).
using GroupedBinaryLinear = GroupedLinear<Binary>;
// Ternary codes {-1, 0, +1} at 1.6 bits per weight with group scales.
using GroupedCompactTernaryLinear = GroupedLinear<TernaryCompact>;

BITLINEAR_NAMESPACE_END
