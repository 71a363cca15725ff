// bitlinear internal: the kernel tables of the aarch64 families `neon` (ARMv8.0-A Advanced SIMD) and
// `neon_dotprod` (plus SDOT). Both quantize activations with the same NEON code; they differ in their matmuls.
// A matmul call with at most gemv_max_batch tokens runs the GEMV loops of gemv.hpp token by token (weights read
// straight from the packed rows, four rows sharing each activation load); larger batches run the GEMM of
// gemm.hpp (weight panel unpacked once per chunk and reused across tokens).
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>

#include "../../format.hpp"
#include "../kernels.hpp"
#include "common.hpp"
#include "compact.hpp"
#include "gemm.hpp"
#include "gemv.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

inline constexpr std::size_t gemv_max_batch = 2;

// `rows` (1 or 4) consecutive outputs starting at row j of one token: field or bit dot products.
template <class Format, bool DOTPROD, int ROWS>
inline void gemv_rows(const PackedWeightsView& w, const std::int8_t* q, std::size_t j, std::int32_t* dots) noexcept {
  const std::uint8_t* rows = w.data + j * w.row_bytes;
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  if constexpr (Format::bits_per_weight == 2) {
    if constexpr (DOTPROD) {
      ternary_gemv_dotprod<ROWS>(rows, w.row_bytes, q, blocks, dots);
    } else {
      ternary_gemv_neon<ROWS>(rows, w.row_bytes, q, blocks, dots);
    }
  } else {
    if constexpr (DOTPROD) {
      binary_gemv_dotprod<ROWS>(rows, w.row_bytes, q, blocks, dots);
    } else {
      binary_gemv_neon<ROWS>(rows, w.row_bytes, q, blocks, dots);
    }
  }
}

// GEMV over every token of `a` (any batch; matmul() uses it for small ones).
template <class Format, bool DOTPROD>
inline void gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                 const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    float* y_row = y + t * y_stride;
    auto finish = [&](std::size_t j, std::int32_t raw) {
      if constexpr (Format::bits_per_weight == 2) {
        y_row[j] = ternary_output(raw - a.sum[t], a.scale[t], e, j);  // raw = sum (code + 1) * q
      } else {
        y_row[j] = binary_output(2 * raw - a.sum[t], a.scale[t], e, j);  // raw = sum bit * q
      }
    };
    std::size_t j = row_begin;
    for (; j + 4 <= row_end; j += 4) {
      std::int32_t dots[4];
      gemv_rows<Format, DOTPROD, 4>(w, q, j, dots);
      for (std::size_t r = 0; r < 4; ++r) finish(j + r, dots[r]);
    }
    for (; j < row_end; ++j) {
      std::int32_t dot[1];
      gemv_rows<Format, DOTPROD, 1>(w, q, j, dot);
      finish(j, dot[0]);
    }
  }
}

template <class Format, bool DOTPROD>
inline void matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                   const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch <= gemv_max_batch) {
    gemv<Format, DOTPROD>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    gemm<Format, DOTPROD>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

inline const KernelTable& neon_kernel_table() noexcept {
  static constexpr KernelTable table{Isa::neon, &absmax, &quantize_row, &matmul<Ternary, false>,
                                     &matmul<Binary, false>, 1, 1,
                                     &compact_matmul<false, &matmul<Ternary, false>>, 1};
  return table;
}

inline const KernelTable& neon_dotprod_kernel_table() noexcept {
  static constexpr KernelTable table{Isa::neon_dotprod, &absmax, &quantize_row, &matmul<Ternary, true>,
                                     &matmul<Binary, true>, 1, 1,
                                     &compact_matmul<true, &matmul<Ternary, true>>, 1};
  return table;
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
