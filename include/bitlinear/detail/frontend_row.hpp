// bitlinear internal: the float part of the activation front-end (frontend.hpp), one row at a time.
//
// RMSNorm (PyTorch's order, float32 except the mean of squares):
//   ss   = sum of x_k^2 in double, over eight lanes (lane = k mod 8, each summed in index order), then the fixed
//          tree ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)); x_k^2 is exact in double
//   ms   = (float)(ss / n)                 (double division, rounded once to float)
//   r    = 1.0f / sqrtf(ms + eps)          (PyTorch's CPU rsqrt is 1 / sqrt: two roundings)
//   y_k  = (x_k * r) * weight_k
// Signed blockwise Walsh-Hadamard transform (normalized Sylvester order) of v = s (.) y, per block of B values:
//   for h = 1, 2, 4, ..., B / 2: for every pair (j, j + h) with j mod 2h < h: (v_j, v_j+h) <- (v_j + v_j+h, v_j - v_j+h)
//   then v_j <- v_j * c with c = (float)(1 / sqrt(B)) (a power of two when log2 B is even)
// Every step is one IEEE float operation per element on values loaded from memory, and a compiler fence separates
// the steps, so no flag can fuse a product into the next add (no FMA contraction) or reassociate across steps:
// the same results whatever vector width the compiler picks. The sign flip is an exclusive-or of the sign bit
// (the same as multiplying by +-1, also for NaN and zeros).
#pragma once
#include "internal_only.hpp"

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "exact_float.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Makes every store before it visible to every load after it, as far as the compiler is concerned: values cross
// it through memory, so arithmetic on the two sides cannot be fused or reassociated.
inline void compiler_fence() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

// sqrt rounded once (IEEE), as one instruction the optimizer cannot replace by an estimate.
inline float exact_sqrt(float v) noexcept {
#if BITLINEAR_EXACT_FLOAT_ASM && BITLINEAR_ARCH_X86_64
  float result;
#if defined(__AVX__)
  __asm__("vsqrtss {%1, %1, %0|%0, %1, %1}" : "=x"(result) : "x"(v));
#else
  result = v;
  __asm__("sqrtss {%0, %0|%0, %0}" : "+x"(result));
#endif
  return result;
#elif BITLINEAR_EXACT_FLOAT_ASM && BITLINEAR_ARCH_AARCH64
  float result;
  __asm__("fsqrt %s0, %s1" : "=w"(result) : "w"(v));
  return result;
#else
  return std::sqrt(v);
#endif
}

// r = 1 / sqrt((float)(ss / n) + eps) from the eight lane sums of squares (the tree at the top of this header).
inline float rms_norm_factor_from_lanes(const double* lane, std::size_t n, float eps) noexcept {
  const double ss = opaque(opaque(opaque(lane[0] + lane[4]) + opaque(lane[2] + lane[6])) +
                           opaque(opaque(lane[1] + lane[5]) + opaque(lane[3] + lane[7])));
  const double mean = opaque(ss / opaque(static_cast<double>(n)));
  const float ms = static_cast<float>(mean);
  return exact_div(1.0f, exact_sqrt(exact_add(ms, eps)));
}

// The RMSNorm factor r = 1 / sqrt((float)(ss / n) + eps) of a row of n floats (see the top of this header).
// A row holding an infinity gives ss = inf and r = 0 (then inf * 0 = NaN in y); a NaN gives r = NaN.
inline float rms_norm_factor(const float* x, std::size_t n, float eps) noexcept {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t k = 0;
  // opaque() keeps each lane a chain in index order under -fassociative-math too; the eight chains are
  // independent, so they still overlap in the pipeline. v * v is exact in double (a contracted fma is the same).
  for (; k + 8 <= n; k += 8) {
    for (std::size_t j = 0; j < 8; ++j) {
      const double v = static_cast<double>(x[k + j]);
      lane[j] = opaque(lane[j] + v * v);
    }
  }
  for (std::size_t j = 0; k + j < n; ++j) {
    const double v = static_cast<double>(x[k + j]);
    lane[j] = opaque(lane[j] + v * v);
  }
  return rms_norm_factor_from_lanes(lane, n, eps);
}

// y_k = x_k with the sign bit flipped where sign_mask_k is set (the rotation without RMSNorm). y may equal x.
inline void flip_signs(const float* x, std::size_t n, const std::uint32_t* sign_mask, float* y) noexcept {
  for (std::size_t k = 0; k < n; ++k) {
    std::uint32_t b;
    std::memcpy(&b, x + k, sizeof b);
    b ^= sign_mask[k];
    std::memcpy(y + k, &b, sizeof b);
  }
  compiler_fence();
}

// y_k = ((x_k * r) * weight_k) with the sign bit flipped where sign_mask_k is set (sign_mask null: no flip;
// weight null: no weight). y may equal x.
inline void rms_norm_apply(const float* x, std::size_t n, float r, const float* weight, const std::uint32_t* sign_mask,
                           float* y) noexcept {
  for (std::size_t k = 0; k < n; ++k) y[k] = x[k] * r;
  compiler_fence();
  if (weight != nullptr) {
    for (std::size_t k = 0; k < n; ++k) y[k] = y[k] * weight[k];
    compiler_fence();
  }
  if (sign_mask != nullptr) flip_signs(y, n, sign_mask, y);
}

// In place: the normalized Walsh-Hadamard transform of each block of `block` values of v[0, n) (block a power of
// two dividing n), scaled by c = (float)(1 / sqrt(block)).
inline void hadamard_blocks(float* v, std::size_t n, std::size_t block, float c) noexcept {
  for (std::size_t h = 1; h < block; h *= 2) {
    if (h == 1) {
      for (std::size_t j = 0; j < n; j += 2) {
        const float a = v[j], b = v[j + 1];
        v[j] = a + b;
        v[j + 1] = a - b;
      }
    } else {
      // Every block's pairs of this stage: runs of h consecutive values, which vectorize.
      for (std::size_t i = 0; i < n; i += 2 * h) {
        float* lo = v + i;
        float* hi = v + i + h;
        for (std::size_t j = 0; j < h; ++j) {
          const float a = lo[j], b = hi[j];
          lo[j] = a + b;
          hi[j] = a - b;
        }
      }
    }
    compiler_fence();
  }
  for (std::size_t k = 0; k < n; ++k) v[k] = v[k] * c;
  compiler_fence();
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
