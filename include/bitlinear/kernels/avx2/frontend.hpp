// bitlinear internal: the activation front-end's float steps (detail/frontend_row.hpp) in AVX2, for every x86 family
// from avx2 up. The same IEEE operations on the same operands in the same order as the portable code, element by
// element, so the results are the same bits:
//   - the sum of squares keeps PyTorch's 8-lane vectors in __m256 registers (the portable code keeps them in arrays
//     of eight floats): the same additions of the same lanes in the same order;
//   - RMSNorm, the sign flip and the first three butterfly stages (h = 1, 2, 4) run in one pass, the stages inside
//     a register: the partner of every lane comes from a permute, the lower lane of a pair takes v + partner
//     (a_j + a_j+h) and the upper takes partner - v (a_j - a_j+h), as in the portable loop;
//   - the later stages run two at a time (h and 2h) on four registers, then the 1 / sqrt(B) scaling.
// pin() (an empty asm on the value) ends every step, so -ffast-math cannot reassociate or fuse across steps
// (GCC's intrinsics are plain vector arithmetic to its optimizer).
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
namespace detail::avx2 {

BITLINEAR_AVX2_INLINE __m256 pin(__m256 v) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+x"(v));
#endif
  return v;
}

// The squares of eight floats, each rounded to float (pinned: not contracted into the addition after it).
BITLINEAR_AVX2_INLINE __m256 square(const float* at) noexcept {
  const __m256 v = _mm256_loadu_ps(at);
  return pin(_mm256_mul_ps(v, v));
}

// One group of 32 floats into the four level-0 accumulators: vector k of the group (floats 8k .. 8k + 7) into a_k.
BITLINEAR_AVX2_INLINE void add_group_squares(const float* g, __m256& a0, __m256& a1, __m256& a2, __m256& a3) noexcept {
  a0 = pin(_mm256_add_ps(a0, square(g)));
  a1 = pin(_mm256_add_ps(a1, square(g + 8)));
  a2 = pin(_mm256_add_ps(a2, square(g + 16)));
  a3 = pin(_mm256_add_ps(a3, square(g + 24)));
}

// detail::rms_norm_factor: detail::sum_of_squares with the 8-lane vectors in registers.
BITLINEAR_AVX2_TARGET
inline float rms_norm_factor(const float* x, std::size_t n, float eps) noexcept {
  if (n < 8) return detail::rms_norm_factor(x, n, eps);  // one-value "vectors": the portable code
  const std::size_t groups = n / 32;
  const unsigned p = cascade_level_power(groups);
  const std::size_t block = std::size_t{1} << p;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;  // level 0
  __m256 up[3][4];                                              // levels 1 to 3
  for (auto& level : up) {
    for (__m256& v : level) v = _mm256_setzero_ps();
  }
  std::size_t i = 0;
  for (std::size_t end = block; end <= groups; end += block) {
    for (; i < end; ++i) {
      add_group_squares(x + 32 * i, a0, a1, a2, a3);
    }
    up[0][0] = pin(_mm256_add_ps(up[0][0], a0));
    up[0][1] = pin(_mm256_add_ps(up[0][1], a1));
    up[0][2] = pin(_mm256_add_ps(up[0][2], a2));
    up[0][3] = pin(_mm256_add_ps(up[0][3], a3));
    a0 = a1 = a2 = a3 = _mm256_setzero_ps();
    for (unsigned level = 1; level < 3 && cascade_flush_up(i, level, p); ++level) {
      for (std::size_t k = 0; k < 4; ++k) {
        up[level][k] = pin(_mm256_add_ps(up[level][k], up[level - 1][k]));
        up[level - 1][k] = _mm256_setzero_ps();
      }
    }
  }
  for (; i < groups; ++i) {
    add_group_squares(x + 32 * i, a0, a1, a2, a3);
  }
  for (const auto& level : up) {
    a0 = pin(_mm256_add_ps(a0, level[0]));
    a1 = pin(_mm256_add_ps(a1, level[1]));
    a2 = pin(_mm256_add_ps(a2, level[2]));
    a3 = pin(_mm256_add_ps(a3, level[3]));
  }
  for (std::size_t u = 4 * groups; u < n / 8; ++u) a0 = pin(_mm256_add_ps(a0, square(x + 8 * u)));
  a0 = pin(_mm256_add_ps(a0, a1));
  a0 = pin(_mm256_add_ps(a0, a2));
  a0 = pin(_mm256_add_ps(a0, a3));
  float lanes[8];
  _mm256_storeu_ps(lanes, a0);
  return rms_norm_factor_from_sum(sum_of_squares_finish(x, n, lanes), n, eps);
}

// The h = 1, 2, 4 butterfly stages of eight consecutive values.
BITLINEAR_AVX2_INLINE __m256 butterflies_in_register(__m256 v) noexcept {
  __m256 partner = _mm256_permute_ps(v, 0xB1);  // lanes 1 0 3 2 ...
  v = pin(_mm256_blend_ps(_mm256_add_ps(v, partner), _mm256_sub_ps(partner, v), 0xAA));
  partner = _mm256_permute_ps(v, 0x4E);  // lanes 2 3 0 1 ...
  v = pin(_mm256_blend_ps(_mm256_add_ps(v, partner), _mm256_sub_ps(partner, v), 0xCC));
  partner = _mm256_permute2f128_ps(v, v, 0x01);  // the other half
  return pin(_mm256_blend_ps(_mm256_add_ps(v, partner), _mm256_sub_ps(partner, v), 0xF0));
}

// Steps 1 and 2 of the front-end for one row (see detail/frontend_row.hpp for the portable twin):
// norm (r, weight; weight null = no norm), sign flip (sign_mask null = none), and the rotation (block 0 = none).
BITLINEAR_AVX2_TARGET
inline void transform_row(const float* x, std::size_t n, bool norm, float r, const float* weight,
                          const std::uint32_t* sign_mask, std::size_t block, float scale, float* y) noexcept {
  const __m256 vr = _mm256_set1_ps(r);
  const bool rotate = block != 0;  // then n is a multiple of block >= 64
  std::size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 v = _mm256_loadu_ps(x + k);
    if (norm) {
      v = pin(_mm256_mul_ps(v, vr));
      v = pin(_mm256_mul_ps(v, _mm256_loadu_ps(weight + k)));
    }
    if (sign_mask != nullptr) {
      v = _mm256_xor_ps(v, _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sign_mask + k))));
    }
    if (rotate) v = butterflies_in_register(v);
    _mm256_storeu_ps(y + k, v);
  }
  if (k < n) {  // only without rotation: the norm's last values, as the portable code computes them
    if (norm) {
      rms_norm_apply(x + k, n - k, r, weight + k, sign_mask != nullptr ? sign_mask + k : nullptr, y + k);
    } else if (sign_mask != nullptr) {
      flip_signs(x + k, n - k, sign_mask + k, y + k);
    } else {
      for (; k < n; ++k) y[k] = x[k];
    }
  }
  if (!rotate) return;
  std::size_t h = 8;
  for (; 4 * h <= block; h *= 4) {  // stages h and 2h together
    for (std::size_t i = 0; i < n; i += 4 * h) {
      float* p = y + i;
      for (std::size_t j = 0; j < h; j += 8) {
        const __m256 a = _mm256_loadu_ps(p + j), b = _mm256_loadu_ps(p + j + h);
        const __m256 c = _mm256_loadu_ps(p + j + 2 * h), d = _mm256_loadu_ps(p + j + 3 * h);
        const __m256 a1 = pin(_mm256_add_ps(a, b)), b1 = pin(_mm256_sub_ps(a, b));
        const __m256 c1 = pin(_mm256_add_ps(c, d)), d1 = pin(_mm256_sub_ps(c, d));
        _mm256_storeu_ps(p + j, _mm256_add_ps(a1, c1));
        _mm256_storeu_ps(p + j + h, _mm256_add_ps(b1, d1));
        _mm256_storeu_ps(p + j + 2 * h, _mm256_sub_ps(a1, c1));
        _mm256_storeu_ps(p + j + 3 * h, _mm256_sub_ps(b1, d1));
      }
    }
    compiler_fence();
  }
  const __m256 vc = _mm256_set1_ps(scale);
  if (h < block) {  // one stage left, fused with the scaling
    for (std::size_t i = 0; i < n; i += 2 * h) {
      float* p = y + i;
      for (std::size_t j = 0; j < h; j += 8) {
        const __m256 a = _mm256_loadu_ps(p + j), b = _mm256_loadu_ps(p + j + h);
        _mm256_storeu_ps(p + j, _mm256_mul_ps(pin(_mm256_add_ps(a, b)), vc));
        _mm256_storeu_ps(p + j + h, _mm256_mul_ps(pin(_mm256_sub_ps(a, b)), vc));
      }
    }
  } else {
    for (std::size_t j = 0; j < n; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_loadu_ps(y + j), vc));
  }
  compiler_fence();
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
