// bitlinear internal: the avx512 matmul entry points: GEMV for small batches, GEMM (packed panels, register
// tiles) from kGemmMinBatch tokens on.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../interface.hpp"
#include "codes.hpp"
#include "gemm.hpp"
#include "gemv.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

// From this many tokens on, unpacking panels and register tiles beat re-reading the packed rows per 4 tokens
// (measured with bench/avx512_micro_bench.cpp, see docs/avx512.md).
inline constexpr std::size_t kGemmMinBatch = 64;

template <class Codes>
BITLINEAR_AVX512_TARGET inline void matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= kGemmMinBatch) {
    gemm<Codes>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    gemv<Codes>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

inline void ternary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  matmul<TernaryCodes>(w, a, row_begin, row_end, e, y, y_stride);
}

inline void binary_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                          std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  matmul<BinaryCodes>(w, a, row_begin, row_end, e, y, y_stride);
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
