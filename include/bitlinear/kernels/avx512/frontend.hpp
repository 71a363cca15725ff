// bitlinear internal: the activation front-end's norm, sign flip and rotation (detail/frontend_row.hpp) in 512-bit
// registers, for the avx512 families. The same IEEE operations on the same operands in the same order as the
// portable code, element by element, so the results are the same bits:
//   - RMSNorm's factor r comes from kernels/avx2/frontend.hpp (PyTorch's 8-lane order of the sum of squares);
//   - the norm, the sign flip and the first four butterfly stages (h = 1, 2, 4, 8) run in one pass, the stages
//     inside a register: the partner of every lane comes from a permute, the lower lane of a pair keeps v + partner
//     (a_j + a_j+h) and the upper one takes partner - v (a_j - a_j+h), the portable loop's operands in its order;
//   - the later stages run two at a time (h and 2h) on four registers; the last pass also applies 1 / sqrt(B).
// Arithmetic is the {rn-sae} builtins of target.hpp: round to nearest whatever MXCSR.RC says, and, not being
// vector-extension operators, out of reach of -ffast-math's reassociation and of FMA contraction.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

#if BITLINEAR_ARCH_X86_64

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../detail/frontend_row.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

BITLINEAR_AVX512_INLINE __m512 sub_rn(__m512 a, __m512 b) { return _mm512_maskz_sub_round_ps(0xFFFF, a, b, BITLINEAR_AVX512_RN); }

// One butterfly stage inside a register: lanes whose bit `upper` is set hold a_j+h and take partner - v; the
// others hold a_j and take v + partner.
BITLINEAR_AVX512_INLINE __m512 butterfly_lanes(__m512 v, __m512 partner, __mmask16 upper) {
  return _mm512_mask_sub_round_ps(add_rn(v, partner), upper, partner, v, BITLINEAR_AVX512_RN);
}

// The h = 1, 2, 4, 8 butterfly stages of sixteen consecutive values.
BITLINEAR_AVX512_INLINE __m512 butterflies_in_register(__m512 v) {
  v = butterfly_lanes(v, _mm512_maskz_permute_ps(0xFFFF, v, 0xB1), 0xAAAA);             // lanes 1 0 3 2 ...
  v = butterfly_lanes(v, _mm512_maskz_permute_ps(0xFFFF, v, 0x4E), 0xCCCC);             // lanes 2 3 0 1 ...
  v = butterfly_lanes(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xB1), 0xF0F0);       // quarters 1 0 3 2
  return butterfly_lanes(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0x4E), 0xFF00);    // quarters 2 3 0 1
}

// Steps 1 and 2 of the front-end for one row, as avx2::transform_row: norm (r, weight; norm false = none), sign flip
// (sign_mask null = none), and the rotation (block 0 = none; else a power of two >= 64 dividing n).
BITLINEAR_AVX512_TARGET
inline void transform_row(const float* x, std::size_t n, bool norm, float r, const float* weight,
                          const std::uint32_t* sign_mask, std::size_t block, float scale, float* y) noexcept {
  const __m512 vr = _mm512_set1_ps(r);
  const bool rotate = block != 0;
  for (std::size_t k = 0; k < n; k += 16) {
    const __mmask16 m = first_lanes16(n - k);  // all lanes but in a tail, which exists only without rotation
    __m512 v = _mm512_maskz_loadu_ps(m, x + k);
    if (norm) {
      v = mul_rn(v, vr);
      v = mul_rn(v, _mm512_maskz_loadu_ps(m, weight + k));
    }
    if (sign_mask != nullptr) {
      v = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_maskz_loadu_epi32(m, sign_mask + k)));
    }
    if (rotate) v = butterflies_in_register(v);
    _mm512_mask_storeu_ps(y + k, m, v);
  }
  if (!rotate) return;
  compiler_fence();
  const __m512 vc = _mm512_set1_ps(scale);
  std::size_t h = 16;
  for (; 4 * h <= block; h *= 4) {  // stages h and 2h together; the scaling too if they are the last two
    const bool last = 4 * h == block;
    for (std::size_t i = 0; i < n; i += 4 * h) {
      float* p = y + i;
      for (std::size_t j = 0; j < h; j += 16) {
        const __m512 a = _mm512_loadu_ps(p + j), b = _mm512_loadu_ps(p + j + h);
        const __m512 c = _mm512_loadu_ps(p + j + 2 * h), d = _mm512_loadu_ps(p + j + 3 * h);
        const __m512 a1 = add_rn(a, b), b1 = sub_rn(a, b), c1 = add_rn(c, d), d1 = sub_rn(c, d);
        __m512 w0 = add_rn(a1, c1), w1 = add_rn(b1, d1), w2 = sub_rn(a1, c1), w3 = sub_rn(b1, d1);
        if (last) {
          w0 = mul_rn(w0, vc);
          w1 = mul_rn(w1, vc);
          w2 = mul_rn(w2, vc);
          w3 = mul_rn(w3, vc);
        }
        _mm512_storeu_ps(p + j, w0);
        _mm512_storeu_ps(p + j + h, w1);
        _mm512_storeu_ps(p + j + 2 * h, w2);
        _mm512_storeu_ps(p + j + 3 * h, w3);
      }
    }
    compiler_fence();
  }
  if (h < block) {  // one stage left (2h == block), fused with the scaling
    for (std::size_t i = 0; i < n; i += 2 * h) {
      float* p = y + i;
      for (std::size_t j = 0; j < h; j += 16) {
        const __m512 a = _mm512_loadu_ps(p + j), b = _mm512_loadu_ps(p + j + h);
        _mm512_storeu_ps(p + j, mul_rn(add_rn(a, b), vc));
        _mm512_storeu_ps(p + j + h, mul_rn(sub_rn(a, b), vc));
      }
    }
    compiler_fence();
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
