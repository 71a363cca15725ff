// bitlinear: weight and activation quantization (the semantics of DESIGN §1).
//
// Weights (once, at construction; scalar code):
//   ternary: beta = max(mean|W|, 1e-5f) (mean summed in double, rounded to float), s_w = 1.0f / beta,
//            code = clamp(rne(W * s_w), -1, 1)
//   binary:  alpha = mean(W), beta = mean|W| (both summed in double, rounded to float),
//            code = (W - alpha > 0) ? +1 : -1
// Activations (every forward; vectorized by the kernel family, bit-identical to the scalar reference), by mode:
//   per_token:  m = max(max|x_row|, 1e-5f), s_x = (1.0f / m) * 127.0f, q = clamp(rne(x * s_x), -128, 127)
//   per_tensor: the same with m the maximum over the whole batch (one s_x for every row)
// PyTorch computes `127 / m` as reciprocal(m) * 127, which differs from a true division in the last bit for
// about a quarter of all m; the reciprocal-first order above is the one that matches it.
//   per_block (group-scaled layers only): each run of activation_block_size = 32 values of a row (the last one
//   may be shorter) is quantized like ggml's reference quantize_row_q8_0, bit for bit:
//     amax = max|x| over the block, d = amax / 127.0f, id = (d != 0) ? 1.0f / d : 0,
//     q = round_half_away_from_zero(x * id)   (|q| <= 127: no clamp ever applies)
//     block scale = fp16_to_float(float_to_fp16_bits(d))   (d rounded to fp16, nearest even; fp16.hpp)
//   and scale[row] = 1. The dot product uses the fp16-rounded block scale; q uses the unrounded id, as in ggml.
//   Two edge cases ggml leaves to the hardware: a block whose d is below 2^-128 (amax < about 3.7e-37) has
//   1 / d = infinity, and its q are all 0 here (what ggml gives on x86; its block scale rounds to fp16 0 anyway);
//   a block with amax >= 65520 * 127 (about 8.3e6) gets an infinite fp16 scale, as in ggml, which makes its row's
//   outputs infinite or NaN.
//   per_superblock (group-scaled layers only): each run of activation_superblock_size = 256 values of a row (the
//   last one may be shorter, quantized by the same formula over its values) is quantized like ggml's reference
//   quantize_row_q8_K_ref (Q8_K, the activations llama.cpp pairs with TQ1_0 / TQ2_0 weights), bit for bit:
//     max = the value of largest |x| in the block, sign kept (the first one on ties: a strictly larger |x| wins)
//     amax == 0:  d = 0, q = 0
//     otherwise:  iscale = -127.0f / max,  q = min(127, rne(iscale * x)),  d = 1.0f / iscale
//     block scale = d   (a float, not rounded to fp16)
//   and scale[row] = 1. iscale * x is rounded to float, then to the nearest integer with ties to even (what
//   ggml's nearest_int does by adding 1.5 * 2^23); the two roundings are never fused into one. The sign is
//   ggml's: the block's largest-magnitude value gets q = -127 and d has the opposite sign of max, so d * q ~ x.
//   |iscale * x| <= 127 (rounded), so the min never applies. Edge case ggml's assert leaves out: |max| below
//   127 / FLT_MAX (about 3.7e-37) makes iscale infinite; that block gets q = 0 and d = 1 / iscale, a zero with
//   the opposite sign of max (the values ggml's code computes in a build without asserts).
// Every mode: a row holding a NaN or infinite value (per_tensor: any row) gets scale NaN and q = 0 (per_block,
// per_superblock: block scales 0 too), and its outputs are NaN; ggml would instead skip NaN in amax.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "activations.hpp"
#include "config.hpp"
#include "error.hpp"
#include "detail/aligned_buffer.hpp"
#include "detail/checked_size.hpp"
#include "kernels/grid.hpp"
#include "detail/exact_float.hpp"
#include "detail/fp_environment.hpp"
#include "format.hpp"
#include "fp16.hpp"
#include "options.hpp"

BITLINEAR_NAMESPACE_BEGIN

namespace detail {

inline void check_finite_weights(const float* w, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (!is_finite_bits(w[i])) {
      detail::fail_invalid_argument("bitlinear: weight[" + std::to_string(i) + "] = " + std::to_string(w[i]) +
                                    " is not finite; weights must be finite numbers");
    }
  }
}

// Activation scale for an absmax m as returned by an AbsmaxKernel: NaN if the input was not finite.
inline float activation_scale_from_absmax(float m) noexcept {
  if (!is_finite_bits(m)) return std::numeric_limits<float>::quiet_NaN();
  const float clamped = m > 1e-5f ? m : 1e-5f;
  return exact_mul(exact_div(1.0f, clamped), 127.0f);
}

// Row r of `out` from the in_features floats at x_row with scale s_x (NaN marks a non-finite row: q = 0).
inline void quantize_activation_row(const KernelTable& kernels, const float* x_row, float s_x,
                                    const MutableActivationsView& out, std::size_t r) noexcept {
  std::int8_t* q = out.q + r * out.stride;
  out.scale[r] = s_x;
  if (is_nan_bits(s_x)) {
    for (std::size_t k = 0; k < out.stride; ++k) q[k] = 0;
    out.sum[r] = 0;
  } else {
    out.sum[r] = kernels.quantize_row(x_row, out.in_features, s_x, q, out.stride);
  }
}

// The block size of a mode's block scales: activation_block_size (per_block), activation_superblock_size
// (per_superblock), or 0 (per_token, per_tensor: no block scales).
inline constexpr std::size_t block_size_of(ActivationScale mode) noexcept {
  return mode == ActivationScale::per_block        ? activation_block_size
         : mode == ActivationScale::per_superblock ? activation_superblock_size
                                                   : 0;
}
inline constexpr std::size_t block_count_of(std::size_t in_features, std::size_t block_size) noexcept {
  return (in_features + block_size - 1) / block_size;
}
inline const char* block_mode_name(ActivationScale mode) noexcept {
  return mode == ActivationScale::per_superblock ? "per_superblock" : "per_block";
}

// Row r of a block-scaled mode whose input holds a NaN or an infinity: scale NaN, q = 0, block scales 0.
inline void mark_non_finite_block_row(const MutableActivationsView& out, std::size_t r) noexcept {
  std::int8_t* q = out.q + r * out.stride;
  float* block_scale = out.block_scale + r * out.block_stride;
  out.scale[r] = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t k = 0; k < out.stride; ++k) q[k] = 0;
  for (std::size_t b = 0; b < block_count_of(out.in_features, out.block_size); ++b) block_scale[b] = 0.0f;
  out.sum[r] = 0;
}

// One block x[0, n) of a finite row (n <= 32) by the per_block rule at the top of this header: writes q[0, n)
// and the fp16-rounded block scale, returns the sum of the q.
inline std::int32_t quantize_q8_0_block(const float* x, std::size_t n, std::int8_t* q, float& block_scale) noexcept {
  float amax = 0.0f;
  for (std::size_t k = 0; k < n; ++k) {
    const float magnitude = float_from_bits(float_bits(x[k]) & float_magnitude_mask);
    if (magnitude > amax) amax = magnitude;
  }
  const float d = exact_div(amax, 127.0f);
  const float id = (float_bits(d) & float_magnitude_mask) != 0 ? exact_div(1.0f, d) : 0.0f;
  block_scale = fp16_to_float(float_to_fp16_bits(d));
  const bool finite_id = is_finite_bits(id);
  std::int32_t sum = 0;
  for (std::size_t k = 0; k < n; ++k) {
    std::int32_t v = finite_id ? round_half_away(exact_mul(x[k], id)) : 0;
    v = v > 127 ? 127 : (v < -128 ? -128 : v);  // never applies (|x * id| < 127.5); keeps the int8 defined
    q[k] = static_cast<std::int8_t>(v);
    sum += v;
  }
  return sum;
}

// One super-block x[0, n) of a finite row (n <= 256) by the per_superblock rule at the top of this header:
// writes q[0, n) and the block scale d, returns the sum of the q.
inline std::int32_t quantize_superblock(const float* x, std::size_t n, std::int8_t* q, float& d) noexcept {
  float amax = 0.0f;        // the largest |x| of the block
  float signed_max = 0.0f;  // the first value with that magnitude, sign kept
  for (std::size_t k = 0; k < n; ++k) {
    const float magnitude = float_from_bits(float_bits(x[k]) & float_magnitude_mask);
    if (magnitude > amax) {
      amax = magnitude;
      signed_max = x[k];
    }
  }
  const float iscale = float_bits(amax) != 0 ? exact_div(-127.0f, signed_max) : 0.0f;
  d = float_bits(amax) != 0 ? exact_div(1.0f, iscale) : 0.0f;  // +-0 when iscale is infinite
  const bool quantizable = float_bits(amax) != 0 && is_finite_bits(iscale);  // not all zero, |max| >= 127 / FLT_MAX
  std::int32_t sum = 0;
  for (std::size_t k = 0; k < n; ++k) {
    // The product rounded to float first, then to an integer (half to even): never fused into one rounding.
    std::int32_t v = quantizable ? round_half_even(exact_mul(iscale, x[k])) : 0;
    v = v > 127 ? 127 : (v < -128 ? -128 : v);  // never applies (|iscale * x| <= 127); keeps the int8 defined
    q[k] = static_cast<std::int8_t>(v);
    sum += v;
  }
  return sum;
}

// Row r of a block-scaled mode, scalar: each run of `block_size` values (the last may be shorter) by `block`
// (quantize_q8_0_block or quantize_superblock); `kernels` only tells finite rows from others.
template <class BlockQuantizer>
inline void quantize_blocks_of_row(const KernelTable& kernels, const float* x_row, const MutableActivationsView& out,
                                   std::size_t r, std::size_t block_size, BlockQuantizer block) noexcept {
  const std::size_t n = out.in_features;
  if (!is_finite_bits(kernels.absmax(x_row, n))) {
    mark_non_finite_block_row(out, r);
    return;
  }
  std::int8_t* q = out.q + r * out.stride;
  float* block_scale = out.block_scale + r * out.block_stride;
  out.scale[r] = 1.0f;
  std::int32_t sum = 0;
  for (std::size_t b = 0; b < block_count_of(n, block_size); ++b) {
    const std::size_t k0 = b * block_size;
    const std::size_t length = n - k0 < block_size ? n - k0 : block_size;
    sum += block(x_row + k0, length, q + k0, block_scale[b]);
  }
  for (std::size_t k = n; k < out.stride; ++k) q[k] = 0;
  out.sum[r] = sum;
}

// Row r of a block-scaled mode (per_block or per_superblock).
inline void quantize_blocked_row(const KernelTable& kernels, const float* x_row, ActivationScale mode,
                                 const MutableActivationsView& out, std::size_t r) noexcept {
  if (mode == ActivationScale::per_superblock) {
    quantize_blocks_of_row(kernels, x_row, out, r, activation_superblock_size, &quantize_superblock);
  } else {
    quantize_blocks_of_row(kernels, x_row, out, r, activation_block_size, &quantize_q8_0_block);
  }
}

// The per-tensor maximum so far, folded with one row's absmax: a non-finite row makes (and keeps) it non-finite.
inline float fold_tensor_absmax(float m, float row_max) noexcept {
  if (!is_finite_bits(m)) return m;
  if (!is_finite_bits(row_max)) return row_max;
  return row_max > m ? row_max : m;
}

// The argument checks of quantize_activations() on the input side; throws std::invalid_argument.
inline void check_activation_input(const float* x, std::size_t batch, std::size_t in_features, std::size_t x_stride) {
  BITLINEAR_REQUIRE(x != nullptr, "input x is null");
  BITLINEAR_REQUIRE(batch > 0, "batch is 0; it must be at least 1");
  BITLINEAR_REQUIRE(in_features > 0, "in_features is 0; it must be at least 1");
  BITLINEAR_REQUIRE(in_features <= max_in_features, "in_features " + std::to_string(in_features) +
                                                        " exceeds the limit of 2^20 = 1048576 (int32 accumulation)");
  BITLINEAR_REQUIRE(x_stride >= in_features, "x_stride " + std::to_string(x_stride) +
                                                 " is smaller than in_features " + std::to_string(in_features));
  check_rows_extent(batch, x_stride, in_features, sizeof(float), "input x");
}

// Quantizes rows [0, batch) of x into `out`; arguments already checked. Runs in the default FP environment.
inline void quantize_rows(const KernelTable& kernels, const float* x, std::size_t batch, std::size_t x_stride,
                          ActivationScale mode, const MutableActivationsView& out) noexcept {
  const FpEnvironmentGuard fp_environment;
  const std::size_t in_features = out.in_features;
  if (mode == ActivationScale::per_token) {
    for (std::size_t r = 0; r < batch; ++r) {
      const float* row = x + r * x_stride;
      quantize_activation_row(kernels, row, activation_scale_from_absmax(kernels.absmax(row, in_features)), out, r);
    }
  } else if (block_size_of(mode) != 0) {
    for (std::size_t r = 0; r < batch; ++r) quantize_blocked_row(kernels, x + r * x_stride, mode, out, r);
  } else {
    float m = 0.0f;
    for (std::size_t r = 0; r < batch && is_finite_bits(m); ++r) {
      m = fold_tensor_absmax(m, kernels.absmax(x + r * x_stride, in_features));
    }
    const float s_x = activation_scale_from_absmax(m);
    for (std::size_t r = 0; r < batch; ++r) quantize_activation_row(kernels, x + r * x_stride, s_x, out, r);
  }
}

}  // namespace detail

namespace detail {

// The two sums the BitNet weight rule needs, in double, added weight by weight in index order: over a whole
// matrix at once, or a piece (a row, say) at a time, with the same result. Add inside an FpEnvironmentGuard.
class WeightSums {
 public:
  // Adds n weights after those added before.
  void add(const float* w, std::size_t n) noexcept {
    // opaque() keeps -fassociative-math from reordering (vectorizing) the sums, and on the results keeps the
    // compiler from sinking float work past the guard's end (Clang moves register-only arithmetic across the
    // MXCSR write; a volatile asm consuming the value pins it inside the scope).
    for (std::size_t i = 0; i < n; ++i) {
      sum_ = opaque(sum_ + static_cast<double>(w[i]));
      sum_abs_ = opaque(sum_abs_ + static_cast<double>(abs_bits(w[i])));  // branch-free |w| (exact_float.hpp)
    }
    count_ += n;
  }
  double sum() const noexcept { return sum_; }
  double sum_abs() const noexcept { return sum_abs_; }
  std::uint64_t count() const noexcept { return count_; }

 private:
  double sum_ = 0.0;
  double sum_abs_ = 0.0;
  std::uint64_t count_ = 0;
};

// The BitNet weight rule over n finite weights (a whole matrix, or one group of a grouped layer); construct and
// use it inside an FpEnvironmentGuard:
//   ternary: scale = max(mean|w|, 1e-5f), s = 1.0f / scale, code = clamp(rne(w * s), -1, 1)
//   binary:  alpha = mean(w), scale = mean|w|, code = (w - alpha > 0) ? +1 : -1
// The means are summed in double in index order (WeightSums) and rounded to float.
template <bool TernaryCodes>
class WeightRule {
 public:
  WeightRule(const float* w, std::size_t n) noexcept : WeightRule(sums_of(w, n)) {}

  // The rule of the weights `sums` added up (at least one).
  explicit WeightRule(const WeightSums& sums) noexcept {
    const double count = static_cast<double>(sums.count());  // exact: at most 2^40 weights
    const float mean_abs = opaque(static_cast<float>(opaque(sums.sum_abs() / opaque(count))));
    if constexpr (TernaryCodes) {
      scale_ = mean_abs > 1e-5f ? mean_abs : 1e-5f;
      threshold_ = opaque(exact_div(1.0f, scale_));  // s
    } else {
      scale_ = mean_abs;
      threshold_ = opaque(static_cast<float>(opaque(sums.sum() / opaque(count))));  // alpha
    }
  }

  // weight_scale (per tensor) or the group's scale: dequantized weight = code * scale().
  float scale() const noexcept { return scale_; }

  int code(float w) const noexcept {
    if constexpr (TernaryCodes) {
      // clamp(rne(v), -1, 1) is +1 exactly when v > 0.5 and -1 exactly when v < -0.5 (rne(+-0.5) = 0).
      // (As a difference of comparisons: no branch for random weights to mispredict; v is never NaN.)
      const float v = exact_mul(w, threshold_);
      return static_cast<int>(v > 0.5f) - static_cast<int>(v < -0.5f);
    } else {
      // W - alpha > 0 exactly when W > alpha: a difference of two floats is zero only if they are equal
      // (gradual underflow), and rounding keeps its sign.
      return w > threshold_ ? 1 : -1;
    }
  }

 private:
  static WeightSums sums_of(const float* w, std::size_t n) noexcept {
    WeightSums sums;
    sums.add(w, n);
    return sums;
  }

  float scale_ = 0.0f;
  float threshold_ = 0.0f;  // ternary: s = 1 / scale; binary: alpha
};

}  // namespace detail

// Quantizes a float [out_features, in_features] row-major weight matrix into the canonical packed format
// (`packed` holds packed_size<Format>(out, in) bytes) with the rule of detail::WeightRule over the whole matrix,
// and returns weight_scale (beta). Throws std::invalid_argument for a non-finite weight. out_features *
// in_features must fit in size_t (layers check it).
template <class Format>
float quantize_weights(const float* weight, std::size_t out_features, std::size_t in_features,
                       std::uint8_t* packed) {
  const std::size_t count = out_features * in_features;
  detail::check_finite_weights(weight, count);
  const detail::FpEnvironmentGuard fp_environment;
  const detail::WeightRule<Format::bits_per_weight == 2> rule(weight, count);
  const std::size_t row_bytes = Format::packed_row_bytes(in_features);
  for (std::size_t i = 0; i < out_features * row_bytes; ++i) packed[i] = Format::zero_byte;
  for (std::size_t r = 0; r < out_features; ++r) {
    for (std::size_t k = 0; k < in_features; ++k) {
      Format::set_code(packed + r * row_bytes, k, rule.code(weight[r * in_features + k]));
    }
  }
  return rule.scale();
}

// Bytes of caller-owned memory quantize_activations() needs for `batch` rows of `in_features`. Throws
// std::invalid_argument if in_features exceeds 2^20 or the size does not fit in memory (PTRDIFF_MAX bytes).
inline std::size_t activation_workspace_size(std::size_t batch, std::size_t in_features) {
  BITLINEAR_REQUIRE(in_features <= max_in_features, "in_features " + std::to_string(in_features) +
                                                        " exceeds the limit of 2^20 = 1048576 (int32 accumulation)");
  auto what = [&] {
    return "the activation workspace for batch " + std::to_string(batch) + " x in_features " +
           std::to_string(in_features);
  };
  const std::size_t q_bytes = detail::checked_mul(batch, activation_stride(in_features), what);
  const std::size_t float_bytes = detail::checked_mul(batch, sizeof(float), what);
  const std::size_t scale_bytes = detail::checked_add(float_bytes, 63, what) / 64 * 64;
  const std::size_t sum_bytes = detail::checked_mul(batch, sizeof(std::int32_t), what);
  std::size_t total = detail::checked_add(q_bytes, scale_bytes, what);
  total = detail::checked_add(total, sum_bytes, what);
  return detail::checked_add(total, detail::buffer_alignment, what);  // + alignment slack
}

// activation_workspace_size() for a mode: per_block and per_superblock add room for the block scales (batch x
// activation_block_count(in_features) or activation_superblock_count(in_features) floats); the other modes need
// exactly the two-argument size.
inline std::size_t activation_workspace_size(std::size_t batch, std::size_t in_features, ActivationScale mode) {
  const std::size_t base = activation_workspace_size(batch, in_features);
  const std::size_t block_size = detail::block_size_of(mode);
  if (block_size == 0) return base;
  auto what = [&] {
    return std::string("the ") + detail::block_mode_name(mode) + " activation workspace for batch " +
           std::to_string(batch) + " x in_features " + std::to_string(in_features);
  };
  const std::size_t blocks = detail::block_count_of(in_features, block_size);
  const std::size_t scales = detail::checked_mul(detail::checked_mul(batch, blocks, what), sizeof(float), what);
  // + 64: the sums' area is rounded up to 64 bytes before the block scales start.
  return detail::checked_add(detail::checked_add(base, 64, what), detail::checked_add(scales, 63, what) / 64 * 64, what);
}

// Carves a MutableActivationsView for `batch` rows out of caller-owned memory (at least
// activation_workspace_size(batch, in_features) bytes, any alignment).
inline MutableActivationsView activation_view_in(void* workspace, std::size_t workspace_bytes, std::size_t batch,
                                                 std::size_t in_features) {
  BITLINEAR_REQUIRE(workspace != nullptr, "activation workspace is null");
  const std::size_t need = activation_workspace_size(batch, in_features);
  if (workspace_bytes < need) {
    detail::fail_invalid_argument("bitlinear: activation workspace of " + std::to_string(workspace_bytes) +
                                  " bytes is too small; batch " + std::to_string(batch) + " of in_features " +
                                  std::to_string(in_features) + " needs " + std::to_string(need));
  }
  const auto address = reinterpret_cast<std::uintptr_t>(workspace);
  const std::size_t skip = (detail::buffer_alignment - address % detail::buffer_alignment) % detail::buffer_alignment;
  auto* base = static_cast<unsigned char*>(workspace) + skip;
  MutableActivationsView view;
  view.batch = batch;
  view.in_features = in_features;
  view.stride = activation_stride(in_features);
  view.q = reinterpret_cast<std::int8_t*>(base);
  view.scale = reinterpret_cast<float*>(base + batch * view.stride);
  view.sum = reinterpret_cast<std::int32_t*>(base + batch * view.stride + (batch * sizeof(float) + 63) / 64 * 64);
  return view;
}

// activation_view_in() for a mode: per_block and per_superblock also carve the block scales (needs
// activation_workspace_size(batch, in_features, mode) bytes) and set block_size (32 or 256) and block_stride.
inline MutableActivationsView activation_view_in(void* workspace, std::size_t workspace_bytes, std::size_t batch,
                                                 std::size_t in_features, ActivationScale mode) {
  const std::size_t block_size = detail::block_size_of(mode);
  if (block_size == 0) return activation_view_in(workspace, workspace_bytes, batch, in_features);
  const std::size_t need = activation_workspace_size(batch, in_features, mode);
  BITLINEAR_REQUIRE(workspace != nullptr, "activation workspace is null");
  if (workspace_bytes < need) {
    detail::fail_invalid_argument("bitlinear: activation workspace of " + std::to_string(workspace_bytes) +
                                  " bytes is too small; " + detail::block_mode_name(mode) + " batch " +
                                  std::to_string(batch) +
                                  " of in_features " + std::to_string(in_features) + " needs " + std::to_string(need));
  }
  MutableActivationsView view = activation_view_in(workspace, workspace_bytes, batch, in_features);
  auto* sums_end = reinterpret_cast<unsigned char*>(view.sum) + (batch * sizeof(std::int32_t) + 63) / 64 * 64;
  view.block_scale = reinterpret_cast<float*>(sums_end);
  view.block_size = block_size;
  view.block_stride = detail::block_count_of(in_features, block_size);
  return view;
}

// Quantizes `batch` rows of x (row r starts at x + r * x_stride) into `out` (sized for batch and in_features)
// with the kernels of family `isa`. No allocation. Non-finite inputs are not errors: they mark their row
// (per-tensor: every row) with scale NaN, which makes those outputs NaN. Throws std::invalid_argument on bad
// arguments (nothing is written then), std::runtime_error if `isa` cannot run.
inline void quantize_activations(const float* x, std::size_t batch, std::size_t in_features, std::size_t x_stride,
                                 ActivationScale mode, const MutableActivationsView& out, Isa isa = Isa::automatic) {
  detail::check_activation_input(x, batch, in_features, x_stride);
  BITLINEAR_REQUIRE(out.q != nullptr && out.scale != nullptr && out.sum != nullptr, "activation buffers are null");
  BITLINEAR_REQUIRE(out.batch == batch && out.in_features == in_features && out.stride >= activation_stride(in_features),
                  "activation buffers were sized for batch " + std::to_string(out.batch) + " x in_features " +
                      std::to_string(out.in_features) + ", not " + std::to_string(batch) + " x " +
                      std::to_string(in_features));
  detail::check_rows_extent(batch, out.stride, out.stride, 1, "quantized activations");
  const std::size_t block_size = detail::block_size_of(mode);
  if (block_size != 0) {
    const std::size_t blocks = detail::block_count_of(in_features, block_size);
    const std::string name = detail::block_mode_name(mode);
    BITLINEAR_REQUIRE(out.block_scale != nullptr && out.block_size == block_size && out.block_stride >= blocks,
                      name + " activations need block scales: block_size " + std::to_string(out.block_size) +
                          " must be " + std::to_string(block_size) + " and block_stride " +
                          std::to_string(out.block_stride) + " at least " + std::to_string(blocks) +
                          " (carve the view with activation_view_in(..., ActivationScale::" + name + "))");
  } else {
    BITLINEAR_REQUIRE(mode == ActivationScale::per_token || mode == ActivationScale::per_tensor,
                      "activation scale mode holds an unknown value");
  }
  const detail::KernelTable& kernels = detail::kernel_table(resolve_isa(isa));
  detail::quantize_rows(kernels, x, batch, x_stride, mode, out);
}

// Owning, reusable storage for quantized activations: quantize() grows the buffer only when a larger batch
// or wider row arrives, so a reused object stops allocating after its first calls.
// Strong exception guarantee: if quantize() throws (bad argument, unusable isa, out of memory), the object is
// unchanged: view() still describes the previous, fully quantized activations.
class QuantizedActivations {
 public:
  void quantize(const float* x, std::size_t batch, std::size_t in_features, std::size_t x_stride,
                ActivationScale mode = ActivationScale::per_token, Isa isa = Isa::automatic) {
    // Everything that can throw happens before the first write to this object's memory.
    detail::check_activation_input(x, batch, in_features, x_stride);
    const detail::KernelTable& kernels = detail::kernel_table(resolve_isa(isa));
    BITLINEAR_REQUIRE(mode == ActivationScale::per_token || mode == ActivationScale::per_tensor ||
                          mode == ActivationScale::per_block || mode == ActivationScale::per_superblock,
                      "activation scale mode holds an unknown value");
    const std::size_t need = activation_workspace_size(batch, in_features, mode);
    detail::AlignedBytes grown;
    if (buffer_.size() < need) grown = detail::AlignedBytes(need);
    detail::AlignedBytes& target = grown.size() != 0 ? grown : buffer_;
    const MutableActivationsView view = activation_view_in(target.data(), target.size(), batch, in_features, mode);
    detail::quantize_rows(kernels, x, batch, x_stride, mode, view);  // noexcept
    if (grown.size() != 0) buffer_ = std::move(grown);
    view_ = view;
  }
  ActivationsView view() const noexcept { return view_; }

 private:
  detail::AlignedBytes buffer_;
  MutableActivationsView view_;
};

BITLINEAR_NAMESPACE_END
