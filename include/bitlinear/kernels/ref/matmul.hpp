// bitlinear internal: the scalar reference matmuls (the source of truth), every format.
#pragma once
#include "../../detail/internal_only.hpp"

// One multiply-free loop per output. The epilogue is interface.hpp's ternary_output / binary_output: the float32
// operations of the MatmulKernel contract, one at a time, that -ffast-math cannot rewrite or fuse.
#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../format.hpp"
#include "../../detail/exact_float.hpp"
#include "../interface.hpp"
#include "../../format_compact.hpp"

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

// --------------------------------------------------------------------------------------------------------------
// The scalar reference matmul of the compact ternary format (format_compact.hpp): one plain
// loop per output, decoding each byte into its five codes. The source of truth for the compact kernels.

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

// Forced inline into each format's named kernel below (left to GCC, its loops took 20-40% more instructions).
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_REF_INLINE __attribute__((always_inline)) inline
#else
#define BITLINEAR_REF_INLINE inline
#endif

// The MatmulKernel contract of interface.hpp: y = Output(Dot(row j, token t)) for every token and row of the range,
// Output the format's epilogue (ternary_output: y = (float)dot / s_x / s_w + bias; binary_output).
template <std::int32_t (*Dot)(const PackedWeightsView&, std::size_t, const std::int8_t*),
          float (*Output)(std::int32_t, float, const Epilogue&, std::size_t) noexcept>
BITLINEAR_REF_INLINE void matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                 std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    for (std::size_t j = row_begin; j < row_end; ++j) {
      const std::int32_t dot = Dot(w, j, q);
      y[t * y_stride + j] = Output(dot, a.scale[t], e, j);
    }
  }
}

inline void ternary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  matmul<&dot_row<Ternary>, &ternary_output>(w, a, row_begin, row_end, e, y, y_stride);
}
inline void binary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                          std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  matmul<&dot_row<Binary>, &binary_output>(w, a, row_begin, row_end, e, y, y_stride);
}
// The source of truth for the compact kernels.
inline void compact_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  matmul<&compact_dot_row, &ternary_output>(w, a, row_begin, row_end, e, y, y_stride);
}

}  // namespace detail::ref
BITLINEAR_NAMESPACE_END
