// bitlinear internal: the avx512 compact ternary matmul (GEMV below kGemmMinBatch tokens, GEMM from there on, as
// matmul.hpp does for 2-bit), registered in the family's table when the CPU has AVX-512 VBMI. Without VBMI the
// table keeps compact_matmul null and the layer runs compact_fallback.hpp through the family's 2-bit kernel.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../interface.hpp"
#include "compact_codes.hpp"
#include "compact_gemm.hpp"
#include "compact_gemv.hpp"
#include "matmul.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline void compact_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= kGemmMinBatch) {
    compact_gemm(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    compact_gemv(w, a, row_begin, row_end, e, y, y_stride);
  }
}

// `base` with the compact kernel if the CPU has VBMI (the layout stays canonical: compact_gemv.hpp streams it).
inline KernelTable with_compact_kernels(KernelTable base) noexcept {
  if (cpu_has_avx512vbmi()) {
    base.compact_matmul = &compact_matmul;
  }
  return base;
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
