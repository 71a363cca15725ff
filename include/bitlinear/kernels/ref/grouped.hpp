// bitlinear internal: the scalar reference matmul of the grouped formats (the source of truth for every family's
// grouped kernels). It follows interface.hpp's pinned order ("Grouped formats") literally, weight by weight.
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../detail/exact_float.hpp"
#include "../../format.hpp"
#include "../../format_compact.hpp"
#include "../interface.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::ref {

// Code of weight k of a row whose block 0 is at `row`, blocks `step` bytes apart (canonical bit order inside a
// block: format.hpp, format_compact.hpp). The 2-bit field value 3 reads as +2.
template <class Format>
inline int grouped_code_at(const std::uint8_t* row, std::size_t step, std::size_t k) noexcept {
  return Format::code_at(row + k / Format::weights_per_block * step, k % Format::weights_per_block);
}

template <class Format>
inline void grouped_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  const std::size_t n = w.in_features;
  const std::size_t segment = grouped_segment(e.group_size, a.block_size, n);
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    for (std::size_t j = row_begin; j < row_end; ++j) {
      const std::uint8_t* row = w.row(j);
      const std::size_t step = w.block_step(j);
      float acc[grouped_lanes] = {};
      for (std::size_t k0 = 0; k0 < n; k0 += segment) {
        const std::size_t k1 = n - k0 < segment ? n : k0 + segment;
        std::int32_t partial[grouped_lanes] = {};
        for (std::size_t k = k0; k < k1; ++k) {
          partial[grouped_lane_of(k)] += grouped_code_at<Format>(row, step, k) * q[k];
        }
        const float c = grouped_segment_scale(e, a, t, j, k0);
        for (std::size_t l = 0; l < grouped_lanes; ++l) acc[l] = exact_fma(static_cast<float>(partial[l]), c, acc[l]);
      }
      y[t * y_stride + j] = grouped_output(grouped_lane_sum(acc), a.scale[t], e, j);
    }
  }
}

}  // namespace detail::ref
BITLINEAR_NAMESPACE_END
