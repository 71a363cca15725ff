// bitlinear internal: the avxvnni GEMV step (the row kernel and driver are avx2/gemv.hpp).
#pragma once
#include "../../detail/internal_only.hpp"

// the multiply-accumulate of the avxvnni GEMV row kernel (avx2/gemv.hpp): VEX
// vpdpbusd adds the 4 products u * q of each dword straight into the int32 accumulator (no int16 stage).
// The row kernel is one template for both families, compiled for AVX2; GCC and Clang get the instruction as
// inline asm (the intrinsic needs the avxvnni target in its caller), other compilers the intrinsic.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../avx2/target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avxvnni {

struct DpbusdMac {
  static constexpr std::size_t int16_blocks = 0;
  BITLINEAR_AVX2_TARGET
  static __m256i mac(__m256i acc, __m256i u, const std::int8_t* q) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __asm__("%{vex%} vpdpbusd {%[q], %[u], %[acc]|%[acc], %[u], %[q]}"
            : [acc] "+x"(acc)
            : [u] "x"(u), [q] "m"(*reinterpret_cast<const __m256i*>(q)));
    return acc;
#else
    return _mm256_dpbusd_avx_epi32(acc, u, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
#endif
  }
};

}  // namespace detail::avxvnni
BITLINEAR_NAMESPACE_END
