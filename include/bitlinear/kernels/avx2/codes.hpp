// bitlinear internal: the weight formats as the AVX2-class kernels see them, and the epilogue.
#pragma once
#include "../../detail/internal_only.hpp"

// the AVX2 epilogue, from integer sums to output floats, eight outputs per vector.
//
// Every AVX2 matmul kernel computes, per token t and output j, the raw sum S = sum_k q[k] * u[j][k] over the
// padded row, with u the weight code shifted to an unsigned byte:
//   ternary: u = code + 1 in {0, 1, 2}  (the 2-bit field as stored),   code = u - 1
//   binary:  u = bit      in {0, 1}     (the stored bit),              code = 2u - 1
// so that (padding has q = 0, so it adds nothing to S or to sum q)
//   ternary: dot = sum q * (u - 1)  = S - sum_q
//   binary:  dot = sum q * (2u - 1) = 2 S - sum_q
// with sum_q = ActivationsView::sum[t], made by the quantizer. |S| <= 2 * 128 * 2^20 = 2^28, so S, 2 S and dot
// are exact in int32. Then, one IEEE float32 operation at a time in the order of kernels/interface.hpp:
//   ternary: y = (float)dot / s_x / s_w + bias
//   binary:  y = ((float)dot / s_x * beta) + bias          (the product kept apart from the sum: no_contract)
// cvtdq2ps rounds to nearest even like static_cast<float>, and vdivps/vmulps/vaddps are the IEEE operations,
// so the result equals the scalar reference bit for bit, NaN rows included (0 / NaN = the same quiet NaN).
// The four float operations are inline assembly (below): _mm256_div_ps and friends are vector-extension
// operators in GCC's and Clang's headers, which -ffast-math may reassociate, turn into a multiplication by a
// hoisted reciprocal or (Clang) an rcpps estimate. The rounding mode is MXCSR's, pinned by fp_environment.hpp.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../format.hpp"
#include "../interface.hpp"
#include "quantize.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

// One IEEE float32 operation on eight lanes that the optimizer cannot rewrite, fuse or estimate ({AT&T|Intel}
// alternatives keep the templates valid under -masm=intel). Other compilers: the intrinsics.
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVX2_EXACT_OP(name, instruction)                                                  \
  BITLINEAR_AVX2_TARGET inline __m256 name(__m256 a, __m256 b) noexcept {               \
    __m256 result;                                                                                  \
    __asm__(instruction " {%2, %1, %0|%0, %1, %2}" : "=x"(result) : "x"(a), "x"(b));                \
    return result;                                                                                  \
  }
BITLINEAR_AVX2_EXACT_OP(exact_div_ps, "vdivps")
BITLINEAR_AVX2_EXACT_OP(exact_mul_ps, "vmulps")
BITLINEAR_AVX2_EXACT_OP(exact_add_ps, "vaddps")
#undef BITLINEAR_AVX2_EXACT_OP
#else
BITLINEAR_AVX2_TARGET inline __m256 exact_div_ps(__m256 a, __m256 b) noexcept { return _mm256_div_ps(a, b); }
// The product goes through a volatile so that a contracting compiler (MSVC before VS 2022) rounds it first.
BITLINEAR_AVX2_TARGET inline __m256 exact_mul_ps(__m256 a, __m256 b) noexcept {
  volatile __m256 product = _mm256_mul_ps(a, b);
  return product;
}
BITLINEAR_AVX2_TARGET inline __m256 exact_add_ps(__m256 a, __m256 b) noexcept { return _mm256_add_ps(a, b); }
#endif

// Eight outputs from eight raw sums (see above). bias is the bias vector of these eight outputs.
template <class Format>
BITLINEAR_AVX2_TARGET
inline __m256 finish8(__m256i raw, __m256i sum_q, __m256 s_x, const Epilogue& e, __m256 bias) noexcept {
  __m256i dot;
  if constexpr (Format::bits_per_weight == 2) {
    dot = _mm256_sub_epi32(raw, sum_q);
  } else {
    dot = _mm256_sub_epi32(_mm256_slli_epi32(raw, 1), sum_q);
  }
  const __m256 scaled = exact_div_ps(_mm256_cvtepi32_ps(dot), s_x);
  if constexpr (Format::bits_per_weight == 2) {
    return exact_add_ps(exact_div_ps(scaled, _mm256_set1_ps(e.s_w)), bias);
  } else {
    return exact_add_ps(exact_mul_ps(scaled, _mm256_set1_ps(e.beta)), bias);
  }
}

// y_row[j0 + c] for c < count from raw[c]: the outputs j0 .. j0 + count - 1 of one token. Reads raw[0, count),
// e.bias[j0, j0 + count) and writes y_row[j0, j0 + count) only (masked loads and stores in the tail).
template <class Format>
BITLINEAR_AVX2_TARGET
inline void write_outputs(const std::int32_t* raw, std::size_t count, std::int32_t sum_q, float s_x,
                          const Epilogue& e, std::size_t j0, float* y_row) noexcept {
  const __m256i sum_v = _mm256_set1_epi32(sum_q);
  const __m256 s_x_v = _mm256_set1_ps(s_x);
  std::size_t c = 0;
  for (; c + 8 <= count; c += 8) {
    const __m256i raw_v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(raw + c));
    const __m256 out = finish8<Format>(raw_v, sum_v, s_x_v, e, _mm256_loadu_ps(e.bias + j0 + c));
    _mm256_storeu_ps(y_row + j0 + c, out);
  }
  if (c < count) {
    const __m256i mask = first_lanes_mask(count - c);
    const __m256i raw_v = _mm256_maskload_epi32(raw + c, mask);
    const __m256 out = finish8<Format>(raw_v, sum_v, s_x_v, e, _mm256_maskload_ps(e.bias + j0 + c, mask));
    _mm256_maskstore_ps(y_row + j0 + c, mask, out);
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
