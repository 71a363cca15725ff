// bitlinear internal: scalar reference matmuls, one multiply-free loop per output (the source of truth).
// The epilogue is written with exact_div / exact_mul / exact_add (detail/exact_float.hpp): the float32
// operations of detail/kernels.hpp, one at a time, that -ffast-math cannot rewrite or fuse.
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../format.hpp"
#include "../../detail/exact_float.hpp"
#include "../interface.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::ref {

// Row j of any execution layout: block b of the row is at w.row(j) + b * w.block_step(j), and inside a block
// the canonical bit order holds (format.hpp).
template <class Format>
inline std::int32_t dot_row(const PackedWeightsView& w, std::size_t j, const std::int8_t* q) {
  const std::uint8_t* row = w.row(j);
  const std::size_t step = w.block_step(j);
  std::int32_t dot = 0;
  for (std::size_t k = 0; k < w.in_features; ++k) {
    const std::size_t block = k / Format::weights_per_block;
    const int code = Format::code_at(row + block * step, k % Format::weights_per_block);
    dot += code > 0 ? q[k] : (code < 0 ? -q[k] : 0);  // the weight selects add, subtract or skip
  }
  return dot;
}

inline void ternary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    for (std::size_t j = row_begin; j < row_end; ++j) {
      const std::int32_t dot = dot_row<Ternary>(w, j, q);
      y[t * y_stride + j] = exact_add(exact_div(exact_div(static_cast<float>(dot), a.scale[t]), e.s_w), e.bias[j]);
    }
  }
}

inline void binary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                          std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    for (std::size_t j = row_begin; j < row_end; ++j) {
      const std::int32_t dot = dot_row<Binary>(w, j, q);
      y[t * y_stride + j] = exact_add(exact_mul(exact_div(static_cast<float>(dot), a.scale[t]), e.beta), e.bias[j]);
    }
  }
}

}  // namespace detail::ref
BITLINEAR_NAMESPACE_END
