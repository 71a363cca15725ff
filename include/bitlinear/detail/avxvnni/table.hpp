// bitlinear internal: the avxvnni family (AVX2 + VEX-encoded AVX-VNNI, Alder Lake, Zen 5): the avx2 family
// with vpdpbusd in the GEMV row kernels and the GEMM register tile; quantization, panels and epilogue are avx2's.
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include <cstddef>
#include <cstdint>

#include "../../activations.hpp"
#include "../../config.hpp"
#include "../../format.hpp"
#include "../avx2/table.hpp"
#include "../kernels.hpp"
#include "binary_gemv.hpp"
#include "gemm_tile.hpp"
#include "ternary_gemv.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avxvnni {

struct TernaryRows {
  template <int R>
  BITLINEAR_TARGET("avxvnni,avx2,fma,f16c")
  static void dot_rows(const std::uint8_t* w, std::size_t row_bytes, std::size_t blocks, const std::int8_t* q,
                       std::size_t prefetch_ahead, std::int32_t* raw) noexcept {
    ternary_dot_rows<R>(w, row_bytes, blocks, q, prefetch_ahead, raw);
  }
};

struct BinaryRows {
  template <int R>
  BITLINEAR_TARGET("avxvnni,avx2,fma,f16c")
  static void dot_rows(const std::uint8_t* w, std::size_t row_bytes, std::size_t blocks, const std::int8_t* q,
                       std::size_t prefetch_ahead, std::int32_t* raw) noexcept {
    binary_dot_rows<R>(w, row_bytes, blocks, q, prefetch_ahead, raw);
  }
};

// Batches from this size on take the GEMM path (bench/avx2_micro_bench.cpp).
inline constexpr std::size_t gemm_min_batch = 4;

BITLINEAR_TARGET("avxvnni,avx2,fma,f16c")
inline void ternary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= gemm_min_batch) {
    avx2::gemm<Ternary, avx2::TernaryPanel, DpbusdTile>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    avx2::gemv<Ternary, TernaryRows>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

BITLINEAR_TARGET("avxvnni,avx2,fma,f16c")
inline void binary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                          std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= gemm_min_batch) {
    avx2::gemm<Binary, avx2::BinaryPanel, DpbusdTile>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    avx2::gemv<Binary, BinaryRows>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

inline const KernelTable& kernel_table() noexcept {
  static constexpr KernelTable table{Isa::avxvnni,
                                     &avx2::absmax,
                                     &avx2::quantize_row,
                                     &ternary_matmul,
                                     &binary_matmul,
                                     1,
                                     1,
                                     &avx2::compact_matmul<&avx2::compact_gemv_avxvnni, &ternary_matmul>,
                                     1};
  return table;
}

}  // namespace detail::avxvnni
BITLINEAR_NAMESPACE_END
