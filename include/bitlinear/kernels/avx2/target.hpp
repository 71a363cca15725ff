// bitlinear internal: what every AVX2-class kernel shares: the target attribute (written here once), the
// unroll hint and the horizontal sums.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

// The target attribute of every AVX2 kernel (the avxvnni family adds AVX-VNNI: avxvnni/target.hpp). _INLINE also
// forces inlining where GCC would otherwise call a small helper across a target boundary.
#define BITLINEAR_AVX2_TARGET BITLINEAR_TARGET("avx2,fma,f16c")
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVX2_INLINE BITLINEAR_AVX2_TARGET __attribute__((always_inline)) inline
#else
#define BITLINEAR_AVX2_INLINE inline
#endif

// BITLINEAR_AVX2_UNROLL before a loop over register accumulators asks for full unrolling, so
// that GCC keeps arrays of vector accumulators in registers (a loop it leaves rolled indexes them in memory).
#if defined(__clang__)
#define BITLINEAR_AVX2_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define BITLINEAR_AVX2_UNROLL _Pragma("GCC unroll 16")
#else
#define BITLINEAR_AVX2_UNROLL
#endif

// --------------------------------------------------------------------------------------------------------------
// AVX2 horizontal sums of int32 accumulators.
#include <immintrin.h>

#include <cstdint>

#include "../../config.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

BITLINEAR_AVX2_TARGET
inline std::int32_t horizontal_sum(__m256i v) noexcept {
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(h);
}

// out[r] = the sum of the eight lanes of acc[r], r < R.
template <int R>
BITLINEAR_AVX2_TARGET
inline void store_sums(const __m256i* acc, std::int32_t* out) noexcept {
  if constexpr (R == 4) {
    // hadd pairs lanes within each 128-bit half; two levels leave [r0 r1 r2 r3] partial sums in each half.
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
    const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), sums);
  } else {
    for (int r = 0; r < R; ++r) out[r] = horizontal_sum(acc[r]);
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
