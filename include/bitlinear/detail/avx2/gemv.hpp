// bitlinear internal: the AVX2 GEMV driver (one token at a time): groups of 4 output rows through a row kernel
// (ternary_gemv.hpp, binary_gemv.hpp, or another family's), 64 raw sums at a time through the epilogue.
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include <cstddef>
#include <cstdint>

#include "../../activations.hpp"
#include "../../config.hpp"
#include "../kernels.hpp"
#include "epilogue.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

// Rows::dot_rows<R>(w, row_bytes, blocks, q, prefetch_ahead, raw) writes the raw sums of R rows (R = 1..4).
template <class Format, class Rows>
BITLINEAR_TARGET("avx2,fma,f16c")
inline void gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                 const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  constexpr std::size_t chunk = 64;
  constexpr std::size_t group = 4;
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  const std::size_t group_bytes = group * w.row_bytes;
  alignas(32) std::int32_t raw[chunk];
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    for (std::size_t j0 = row_begin; j0 < row_end; j0 += chunk) {
      const std::size_t count = row_end - j0 < chunk ? row_end - j0 : chunk;
      std::size_t r = 0;
      for (; r + group <= count; r += group) {
        const std::size_t first = j0 + r;
        const std::size_t ahead = 8 != 0 && first + (8 + 1) * group <= row_end ? 8 * group_bytes : 0;  // prefetch only rows we own
        Rows::template dot_rows<4>(w.data + first * w.row_bytes, w.row_bytes, blocks, q, ahead, raw + r);
      }
      const std::uint8_t* rest = w.data + (j0 + r) * w.row_bytes;
      switch (count - r) {
        case 3: Rows::template dot_rows<3>(rest, w.row_bytes, blocks, q, 0, raw + r); break;
        case 2: Rows::template dot_rows<2>(rest, w.row_bytes, blocks, q, 0, raw + r); break;
        case 1: Rows::template dot_rows<1>(rest, w.row_bytes, blocks, q, 0, raw + r); break;
        default: break;
      }
      write_outputs<Format>(raw, count, a.sum[t], a.scale[t], e, j0, y + t * y_stride);
    }
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
