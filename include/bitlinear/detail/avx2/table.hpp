// bitlinear internal: the avx2 family (AVX2 + FMA + F16C): its matmul entry points and kernel table.
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include <cstddef>
#include <cstdint>

#include "../../activations.hpp"
#include "../../config.hpp"
#include "../../format.hpp"
#include "../kernels.hpp"
#include "binary_gemm.hpp"
#include "compact.hpp"
#include "binary_gemv.hpp"
#include "gemm.hpp"
#include "gemm_tile.hpp"
#include "gemv.hpp"
#include "quantize.hpp"
#include "ternary_gemm.hpp"
#include "ternary_gemv.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

struct TernaryRows {
  template <int R>
  BITLINEAR_TARGET("avx2,fma,f16c")
  static void dot_rows(const std::uint8_t* w, std::size_t row_bytes, std::size_t blocks, const std::int8_t* q,
                       std::size_t prefetch_ahead, std::int32_t* raw) noexcept {
    ternary_dot_rows<R>(w, row_bytes, blocks, q, prefetch_ahead, raw);
  }
};

struct BinaryRows {
  template <int R>
  BITLINEAR_TARGET("avx2,fma,f16c")
  static void dot_rows(const std::uint8_t* w, std::size_t row_bytes, std::size_t blocks, const std::int8_t* q,
                       std::size_t prefetch_ahead, std::int32_t* raw) noexcept {
    binary_dot_rows<R>(w, row_bytes, blocks, q, prefetch_ahead, raw);
  }
};

// Batches from this size on take the GEMM path (panel unpacked once, reused across tokens); smaller ones run
// the GEMV kernel once per token, which reads the packed weights directly (bench/avx2_micro_bench.cpp).
inline constexpr std::size_t gemm_min_batch = 4;

BITLINEAR_TARGET("avx2,fma,f16c")
inline void ternary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= gemm_min_batch) {
    gemm<Ternary, TernaryPanel, MaddubsTile>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    gemv<Ternary, TernaryRows>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

BITLINEAR_TARGET("avx2,fma,f16c")
inline void binary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                          std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= gemm_min_batch) {
    gemm<Binary, BinaryPanel, MaddubsTile>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    gemv<Binary, BinaryRows>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

inline const KernelTable& kernel_table() noexcept {
  static constexpr KernelTable table{Isa::avx2,      &absmax, &quantize_row, &ternary_matmul, &binary_matmul, 1, 1,
                                     &compact_matmul<&compact_gemv_avx2, &ternary_matmul>, 1};
  return table;
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
