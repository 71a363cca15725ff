// bitlinear internal: what every avx512 kernel shares: the intrinsics header, the target attribute, tail masks.
//
// The avx512 family needs AVX-512 F/BW/VL + VNNI (vpdpbusd) and the OS to save zmm and opmask state (isa.hpp
// checks both). Every function that uses intrinsics carries BITLINEAR_AVX512_TARGET, so the library compiles
// with plain -O2 and no -m flags and the kernels run only when dispatch picked this family.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

#if BITLINEAR_ARCH_X86_64
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#define BITLINEAR_AVX512_TARGET BITLINEAR_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")

// Helpers called inside kernel loops: same target, forced inline so their vector arguments stay in registers.
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVX512_INLINE BITLINEAR_AVX512_TARGET __attribute__((always_inline)) inline
#else
#define BITLINEAR_AVX512_INLINE inline
#endif
// The avx512_vbmi row adds VBMI (vpermb) for the 1.6-bit decode.
#define BITLINEAR_AVX512VBMI_TARGET BITLINEAR_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c")
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVX512VBMI_INLINE BITLINEAR_AVX512VBMI_TARGET __attribute__((always_inline)) inline
#else
#define BITLINEAR_AVX512VBMI_INLINE inline
#endif

// A kernel whose large stack buffer must not join its caller's frame (a separate frame: the deepest stack is the
// larger of the two buffers, not their sum).
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVX512_NOINLINE BITLINEAR_AVX512_TARGET __attribute__((noinline)) inline
#elif defined(_MSC_VER)
#define BITLINEAR_AVX512_NOINLINE __declspec(noinline) inline
#else
#define BITLINEAR_AVX512_NOINLINE inline
#endif

// Fully unrolls a loop over a template constant, so that arrays of vector accumulators live in registers.
#if defined(__clang__)
#define BITLINEAR_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define BITLINEAR_UNROLL _Pragma("GCC unroll 32")
#else
#define BITLINEAR_UNROLL
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

// Lanes [0, count) of a 16-lane mask (count may exceed 16: all lanes).
BITLINEAR_AVX512_TARGET inline __mmask16 first_lanes16(std::size_t count) noexcept {
  return count >= 16 ? static_cast<__mmask16>(0xFFFFu) : static_cast<__mmask16>((1u << count) - 1u);
}

// GCC 12 warns "may be used uninitialized" (GCC bug 105593) inside every AVX-512 intrinsic whose unmasked form
// passes _mm512_undefined_*() as the merge source. The zero-masking forms with an all-ones mask compute the same
// thing (GCC emits the unmasked instruction) without the bogus warning; these wrappers are the ones we need.
BITLINEAR_AVX512_INLINE __m512 max_ps(__m512 a, __m512 b) { return _mm512_maskz_max_ps(0xFFFF, a, b); }
BITLINEAR_AVX512_INLINE __m512 min_ps(__m512 a, __m512 b) { return _mm512_maskz_min_ps(0xFFFF, a, b); }
BITLINEAR_AVX512_INLINE __m512i max_epu32(__m512i a, __m512i b) { return _mm512_maskz_max_epu32(0xFFFF, a, b); }
// Float arithmetic with embedded rounding {rn-sae}: round to nearest even and no exception flags, independent of
// MXCSR.RC; being builtins (not vector-extension operators), -ffast-math cannot reassociate or rewrite them.
// (FTZ/DAZ still come from MXCSR: detail/fp_environment.hpp clears them around every call.)
#define BITLINEAR_AVX512_RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
BITLINEAR_AVX512_INLINE __m512i cvtps_epi32_rn(__m512 a) { return _mm512_maskz_cvt_roundps_epi32(0xFFFF, a, BITLINEAR_AVX512_RN); }
BITLINEAR_AVX512_INLINE __m512 cvtepi32_ps_rn(__m512i a) { return _mm512_maskz_cvt_roundepi32_ps(0xFFFF, a, BITLINEAR_AVX512_RN); }
BITLINEAR_AVX512_INLINE __m512 mul_rn(__m512 a, __m512 b) { return _mm512_maskz_mul_round_ps(0xFFFF, a, b, BITLINEAR_AVX512_RN); }
BITLINEAR_AVX512_INLINE __m512 div_rn(__m512 a, __m512 b) { return _mm512_maskz_div_round_ps(0xFFFF, a, b, BITLINEAR_AVX512_RN); }
BITLINEAR_AVX512_INLINE __m512 add_rn(__m512 a, __m512 b) { return _mm512_maskz_add_round_ps(0xFFFF, a, b, BITLINEAR_AVX512_RN); }
BITLINEAR_AVX512_INLINE __m128i cvtepi32_epi8(__m512i a) { return _mm512_maskz_cvtepi32_epi8(0xFFFF, a); }
BITLINEAR_AVX512_INLINE __m256i low_half(__m512i a) { return _mm512_maskz_extracti64x4_epi64(0xFF, a, 0); }
BITLINEAR_AVX512_INLINE __m256i high_half(__m512i a) { return _mm512_maskz_extracti64x4_epi64(0xFF, a, 1); }
BITLINEAR_AVX512_INLINE __m512i concat(__m256i low, __m256i high) {
  return _mm512_maskz_inserti64x4(0xFF, _mm512_castsi256_si512(low), high, 1);
}

// acc + (sum of 4 adjacent u8 x s8 products) per int32 lane: vpdpbusd. GCC 12 compiles the intrinsic inside
// loops with a register copy of the accumulator before and after every vpdpbusd (it does not tie the
// accumulator input to the output), which doubled the instruction count of the GEMM tile; the asm form
// updates the accumulator in place. {att|intel} dialect alternatives keep it valid under -masm=intel.
BITLINEAR_AVX512_INLINE __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__("vpdpbusd {%2, %1, %0|%0, %1, %2}" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, u8, s8);
#endif
}

// Horizontal sum and max of 16 int32 / uint32 lanes.
BITLINEAR_AVX512_INLINE std::int32_t reduce_add_epi32(__m512i v) {
  __m256i s = _mm256_add_epi32(low_half(v), high_half(v));
  __m128i x = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
  return _mm_cvtsi128_si32(x);
}
BITLINEAR_AVX512_INLINE std::uint32_t reduce_max_epu32(__m512i v) {
  __m256i s = _mm256_max_epu32(low_half(v), high_half(v));
  __m128i x = _mm_max_epu32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  x = _mm_max_epu32(x, _mm_shuffle_epi32(x, 0x4E));
  x = _mm_max_epu32(x, _mm_shuffle_epi32(x, 0xB1));
  return static_cast<std::uint32_t>(_mm_cvtsi128_si32(x));
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
