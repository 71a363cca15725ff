// bitlinear internal: the scalar reference matmul of the compact ternary format (format_compact.hpp): one plain
// loop per output, decoding each byte into its five codes. The source of truth for the compact kernels.
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../format_compact.hpp"
#include "../../detail/exact_float.hpp"
#include "../interface.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::ref {

// Row j of any execution layout: block b at w.row(j) + b * w.block_step(j); byte i of a block holds the weights
// 320 b + 64 f + i, f = 0..4. Weights past in_features are skipped (their activations are zero anyway).
inline std::int32_t compact_dot_row(const PackedWeightsView& w, std::size_t j, const std::int8_t* q) {
  const std::uint8_t* row = w.row(j);
  const std::size_t step = w.block_step(j);
  std::int32_t dot = 0;
  for (std::size_t b = 0; b * TernaryCompact::weights_per_block < w.in_features; ++b) {
    for (std::size_t i = 0; i < packed_block_bytes; ++i) {
      const std::uint8_t byte = row[b * step + i];
      for (unsigned f = 0; f < 5; ++f) {
        const std::size_t k = b * TernaryCompact::weights_per_block + 64 * f + i;
        if (k >= w.in_features) continue;
        const int code = static_cast<int>(TernaryCompact::field(byte, f)) - 1;
        dot += code > 0 ? q[k] : (code < 0 ? -q[k] : 0);  // the weight selects add, subtract or skip
      }
    }
  }
  return dot;
}

// The MatmulKernel contract of kernels.hpp with the ternary epilogue: y = (float)dot / s_x / s_w + bias.
inline void compact_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    for (std::size_t j = row_begin; j < row_end; ++j) {
      const std::int32_t dot = compact_dot_row(w, j, q);
      y[t * y_stride + j] = exact_add(exact_div(exact_div(static_cast<float>(dot), a.scale[t]), e.s_w), e.bias[j]);
    }
  }
}

}  // namespace detail::ref
BITLINEAR_NAMESPACE_END
