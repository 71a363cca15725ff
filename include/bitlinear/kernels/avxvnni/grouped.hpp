// bitlinear internal: the avxvnni grouped kernels: avx2/grouped.hpp with VEX vpdpbusd as the dot product.
#pragma once
#include "../../detail/internal_only.hpp"

#include <immintrin.h>

#include <cstddef>

#include "../../config.hpp"
#include "../avx2/grouped.hpp"
#include "../avx2/target.hpp"
#include "../interface.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avxvnni {

// acc + the 4-byte dot products u8 x s8 per int32 lane in one instruction. The row kernel is compiled for AVX2, so
// GCC and Clang get the instruction as inline asm (the intrinsic needs the avxvnni target in its caller, see
// gemv.hpp); other compilers the intrinsic.
struct VnniDot {
  BITLINEAR_AVX2_INLINE static __m256i dot(__m256i acc, __m256i u, __m256i q) {
#if defined(__GNUC__) || defined(__clang__)
    __asm__("%{vex%} vpdpbusd {%[q], %[u], %[acc]|%[acc], %[u], %[q]}" : [acc] "+x"(acc) : [u] "x"(u), [q] "x"(q));
    return acc;
#else
    return _mm256_dpbusd_avx_epi32(acc, u, q);
#endif
  }
};

// The GEMV does one row at a time (two tokens per pass), so the GEMM (rows kept in cache) pays from 8 tokens on.
inline constexpr std::size_t grouped_gemm_min_batch = 8;

inline void ternary_grouped_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                   std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  avx2::grouped_matmul<avx2::GroupedTernaryFields, VnniDot, grouped_gemm_min_batch>(w, a, row_begin, row_end, e, y,
                                                                                    y_stride);
}
inline void binary_grouped_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                  std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  avx2::grouped_matmul<avx2::GroupedBinaryFields, VnniDot, grouped_gemm_min_batch>(w, a, row_begin, row_end, e, y,
                                                                                   y_stride);
}

}  // namespace detail::avxvnni
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
