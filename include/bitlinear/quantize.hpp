// bitlinear: weight and activation quantization (the semantics of DESIGN §1).
//
// Weights (once, at construction; scalar code):
//   ternary: beta = max(mean|W|, 1e-5f) (mean summed in double, rounded to float), s_w = 1.0f / beta,
//            code = clamp(rne(W * s_w), -1, 1)
//   binary:  alpha = mean(W), beta = mean|W| (both summed in double, rounded to float),
//            code = (W - alpha > 0) ? +1 : -1
// Activations (every forward; vectorized by the kernel family, bit-identical to the scalar reference):
//   m = max(max|x_row|, 1e-5f), s_x = (1.0f / m) * 127.0f, q = clamp(rne(x * s_x), -128, 127)
// PyTorch computes `127 / m` as reciprocal(m) * 127, which differs from a true division in the last bit for
// about a quarter of all m; the reciprocal-first order above is the one that matches it.
#pragma once

#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "activations.hpp"
#include "config.hpp"
#include "detail/aligned_buffer.hpp"
#include "detail/dispatch.hpp"
#include "format.hpp"
#include "options.hpp"

BITLINEAR_NAMESPACE_BEGIN

namespace detail {

inline void check_finite_weights(const float* w, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isfinite(w[i])) {
      detail::fail_invalid_argument("bitlinear: weight[" + std::to_string(i) + "] = " + std::to_string(w[i]) +
                                    " is not finite; weights must be finite numbers");
    }
  }
}

// Activation scale for an absmax m as returned by an AbsmaxKernel: NaN if the input was not finite.
inline float activation_scale_from_absmax(float m) noexcept {
  if (!std::isfinite(m)) return std::numeric_limits<float>::quiet_NaN();
  const float clamped = m > 1e-5f ? m : 1e-5f;
  return (1.0f / clamped) * 127.0f;
}

// Row r of `out` from the in_features floats at x_row with scale s_x (NaN marks a non-finite row: q = 0).
inline void quantize_activation_row(const KernelTable& kernels, const float* x_row, float s_x,
                                    const MutableActivationsView& out, std::size_t r) noexcept {
  std::int8_t* q = out.q + r * out.stride;
  out.scale[r] = s_x;
  if (std::isnan(s_x)) {
    for (std::size_t k = 0; k < out.stride; ++k) q[k] = 0;
    out.sum[r] = 0;
  } else {
    out.sum[r] = kernels.quantize_row(x_row, out.in_features, s_x, q, out.stride);
  }
}

}  // namespace detail

// Quantizes a float [out_features, in_features] row-major weight matrix into the canonical packed format
// (`packed` holds packed_size<Format>(out, in) bytes) and returns weight_scale (beta). Throws
// std::invalid_argument for a non-finite weight.
template <class Format>
float quantize_weights(const float* weight, std::size_t out_features, std::size_t in_features,
                       std::uint8_t* packed) {
  const std::size_t count = out_features * in_features;
  detail::check_finite_weights(weight, count);
  double sum = 0.0, sum_abs = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    sum += static_cast<double>(weight[i]);
    sum_abs += std::fabs(static_cast<double>(weight[i]));
  }
  const float mean_abs = static_cast<float>(sum_abs / static_cast<double>(count));
  const std::size_t row_bytes = Format::packed_row_bytes(in_features);
  for (std::size_t i = 0; i < out_features * row_bytes; ++i) packed[i] = Format::zero_byte;
  if constexpr (Format::bits_per_weight == 2) {
    const float beta = mean_abs > 1e-5f ? mean_abs : 1e-5f;
    const float s_w = 1.0f / beta;
    for (std::size_t r = 0; r < out_features; ++r) {
      for (std::size_t k = 0; k < in_features; ++k) {
        const float v = std::nearbyint(weight[r * in_features + k] * s_w);
        Format::set_code(packed + r * row_bytes, k, v > 0.0f ? 1 : (v < 0.0f ? -1 : 0));
      }
    }
    return beta;
  } else {
    const float alpha = static_cast<float>(sum / static_cast<double>(count));
    for (std::size_t r = 0; r < out_features; ++r) {
      for (std::size_t k = 0; k < in_features; ++k) {
        Format::set_code(packed + r * row_bytes, k, weight[r * in_features + k] - alpha > 0.0f ? 1 : -1);
      }
    }
    return mean_abs;
  }
}

// Bytes of caller-owned memory quantize_activations() needs for `batch` rows of `in_features`.
inline constexpr std::size_t activation_workspace_size(std::size_t batch, std::size_t in_features) noexcept {
  const std::size_t q_bytes = batch * activation_stride(in_features);
  const std::size_t scale_bytes = (batch * sizeof(float) + 63) / 64 * 64;
  return q_bytes + scale_bytes + batch * sizeof(std::int32_t) + detail::buffer_alignment;  // + alignment slack
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

// Quantizes `batch` rows of x (row r starts at x + r * x_stride) into `out` (sized for batch and in_features)
// with the kernels of family `isa`. No allocation. Non-finite inputs are not errors: they mark their row
// (per-tensor: every row) with scale NaN, which makes those outputs NaN.
inline void quantize_activations(const float* x, std::size_t batch, std::size_t in_features, std::size_t x_stride,
                                 ActivationScale mode, const MutableActivationsView& out, Isa isa = Isa::automatic) {
  BITLINEAR_REQUIRE(x != nullptr, "input x is null");
  BITLINEAR_REQUIRE(batch > 0, "batch is 0; it must be at least 1");
  BITLINEAR_REQUIRE(in_features > 0, "in_features is 0; it must be at least 1");
  BITLINEAR_REQUIRE(x_stride >= in_features, "x_stride " + std::to_string(x_stride) +
                                               " is smaller than in_features " + std::to_string(in_features));
  BITLINEAR_REQUIRE(out.q != nullptr && out.scale != nullptr && out.sum != nullptr, "activation buffers are null");
  BITLINEAR_REQUIRE(out.batch == batch && out.in_features == in_features && out.stride >= activation_stride(in_features),
                  "activation buffers were sized for batch " + std::to_string(out.batch) + " x in_features " +
                      std::to_string(out.in_features) + ", not " + std::to_string(batch) + " x " +
                      std::to_string(in_features));
  const detail::KernelTable& kernels = detail::kernel_table(resolve_isa(isa));
  auto quantize_row = [&](std::size_t r, float s_x) {
    detail::quantize_activation_row(kernels, x + r * x_stride, s_x, out, r);
  };
  if (mode == ActivationScale::per_token) {
    for (std::size_t r = 0; r < batch; ++r) {
      quantize_row(r, detail::activation_scale_from_absmax(kernels.absmax(x + r * x_stride, in_features)));
    }
  } else {
    float m = 0.0f;
    for (std::size_t r = 0; r < batch && std::isfinite(m); ++r) {
      const float row_max = kernels.absmax(x + r * x_stride, in_features);
      m = std::isfinite(row_max) ? (row_max > m ? row_max : m) : row_max;
    }
    const float s_x = detail::activation_scale_from_absmax(m);
    for (std::size_t r = 0; r < batch; ++r) quantize_row(r, s_x);
  }
}

// Owning, reusable storage for quantized activations: quantize() grows the buffer only when a larger batch
// or wider row arrives, so a reused object stops allocating after its first calls.
class QuantizedActivations {
 public:
  void quantize(const float* x, std::size_t batch, std::size_t in_features, std::size_t x_stride,
                ActivationScale mode = ActivationScale::per_token, Isa isa = Isa::automatic) {
    BITLINEAR_REQUIRE(batch > 0 && in_features > 0, "batch and in_features must be at least 1");
    const std::size_t need = activation_workspace_size(batch, in_features);
    if (buffer_.size() < need) buffer_ = detail::AlignedBytes(need);
    view_ = activation_view_in(buffer_.data(), buffer_.size(), batch, in_features);
    quantize_activations(x, batch, in_features, x_stride, mode, view_, isa);
  }
  ActivationsView view() const noexcept { return view_; }

 private:
  detail::AlignedBytes buffer_;
  MutableActivationsView view_;
};

BITLINEAR_NAMESPACE_END
