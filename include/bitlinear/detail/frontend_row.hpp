// bitlinear internal: the float part of the activation front-end (frontend.hpp), one row at a time.
//
// RMSNorm (PyTorch's float32 order, bit for bit; see sum_of_squares below for the order of the sum):
//   ss   = sum of q_k = x_k * x_k in float, in the order of PyTorch 1.13's AVX2 cascade_sum
//   ms   = ss / (float)n                   (one float division, as mean = sum / n)
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

// The mean of squares, PyTorch 1.13's order. `x.pow(2).mean(-1)` on a float32 CPU tensor squares each value in
// float (x * x, one rounding), sums every row with ATen's cascade_sum (aten/src/ATen/native/cpu/SumKernel.cpp,
// the contiguous inner reduction: vectorized_inner_sum, row_sum, multi_row_sum), then divides the sum by n in
// float (mean is sum(...).div_(n)). With the AVX2 (and the default) CPU capability a vector is 8 floats; the
// AVX-512 capability uses 16 and so another order, which the library does not follow (docs/frontend.md).
// With q_k = x_k * x_k and V_u = (q_8u, ..., q_8u+7) the u-th vector of squares, m = n / 8 vectors:
//   n >= 8:
//     g = m / 4 groups of four vectors; group i adds V_4i+k to accumulator k (k = 0..3) of level 0, lane by lane.
//     Four levels of four 8-lane accumulators, all zero at first. P = max(4, ceil_log2(g) / 4), with
//     ceil_log2(v) = 1 for v <= 2, else the bit length of v - 1. After every 2^P groups (i groups done so far):
//       level 1 += level 0, level 0 = 0; then, if i is a multiple of 2^2P, level 2 += level 1, level 1 = 0; then,
//       if i is a multiple of 2^3P, level 3 += level 2, level 2 = 0.
//     The groups after the last full 2^P go into level 0. Then level 0 = ((level 0 + level 1) + level 2) + level 3
//     per accumulator; the vectors V_4g .. V_m-1 go into accumulator 0 in order; S = ((A0 + A1) + A2) + A3.
//     ss = (((0 + q_8m) + q_8m+1) + ... + q_n-1) + S[0] + S[1] + ... + S[7], left to right.
//   n < 8: the same with one-value "vectors" (m = n, one lane) and no tail: ss = S.
// Every addition is one float addition of two values in that order (the squares are non-negative, so the zeros
// added along the way change nothing, and a zero accumulator plus v is v).
// ceil_log2 as ATen's utils::CeilLog2 defines it for the level size.
inline unsigned cascade_ceil_log2(std::size_t v) noexcept {
  if (v <= 2) return 1;
  unsigned bits = 0;
  for (std::size_t w = v - 1; w != 0; w >>= 1) ++bits;
  return bits;
}
inline unsigned cascade_level_power(std::size_t groups) noexcept {
  const unsigned p = cascade_ceil_log2(groups) / 4;
  return p > 4 ? p : 4;
}
// Whether level `level` (1 or 2) flushes up after i groups: i (a multiple of 2^P) has its bits
// [level * P, (level + 1) * P) clear, i.e. is a multiple of 2^((level + 1) P).
inline bool cascade_flush_up(std::size_t i, unsigned level, unsigned p) noexcept {
  return ((i >> (level * p)) & ((std::size_t{1} << p) - 1)) == 0;
}

// The square x * x rounded to float, behind opaque() so that it cannot be contracted into the addition after it.
inline float exact_square(float v) noexcept { return opaque(v * v); }

// The end of the sum for n >= 8: the squares after the last whole vector, in order, from zero, then the eight
// lanes of S in lane order.
inline float sum_of_squares_finish(const float* x, std::size_t n, const float* lanes) noexcept {
  float s = 0.0f;
  for (std::size_t k = n - n % 8; k < n; ++k) s = opaque(s + exact_square(x[k]));
  for (std::size_t l = 0; l < 8; ++l) s = opaque(s + lanes[l]);
  return s;
}

// ss of a row of n floats in the order at the top of this block (every family; kernels/avx2/frontend.hpp holds
// the same order in registers). opaque() on every sum keeps each accumulator a chain in this order under
// -fassociative-math too.
inline float sum_of_squares(const float* x, std::size_t n) noexcept {
  const std::size_t width = n >= 8 ? 8 : 1;
  const std::size_t units = n / width;
  const std::size_t groups = units / 4;
  const unsigned p = cascade_level_power(groups);
  const std::size_t block = std::size_t{1} << p;
  float acc[4][4][8] = {};  // [level][accumulator][lane]
  const auto add_unit = [&](float* a, std::size_t u) {
    for (std::size_t l = 0; l < width; ++l) a[l] = opaque(a[l] + exact_square(x[u * width + l]));
  };
  std::size_t i = 0;
  while (i + block <= groups) {
    for (std::size_t j = 0; j < block; ++j, ++i) {
      for (std::size_t k = 0; k < 4; ++k) add_unit(acc[0][k], 4 * i + k);
    }
    for (unsigned level = 1; level < 4; ++level) {
      for (std::size_t k = 0; k < 4; ++k) {
        for (std::size_t l = 0; l < width; ++l) {
          acc[level][k][l] = opaque(acc[level][k][l] + acc[level - 1][k][l]);
          acc[level - 1][k][l] = 0.0f;
        }
      }
      if (level == 3 || !cascade_flush_up(i, level, p)) break;
    }
  }
  for (; i < groups; ++i) {
    for (std::size_t k = 0; k < 4; ++k) add_unit(acc[0][k], 4 * i + k);
  }
  for (unsigned level = 1; level < 4; ++level) {
    for (std::size_t k = 0; k < 4; ++k) {
      for (std::size_t l = 0; l < width; ++l) acc[0][k][l] = opaque(acc[0][k][l] + acc[level][k][l]);
    }
  }
  for (std::size_t u = 4 * groups; u < units; ++u) add_unit(acc[0][0], u);
  for (std::size_t k = 1; k < 4; ++k) {
    for (std::size_t l = 0; l < width; ++l) acc[0][0][l] = opaque(acc[0][0][l] + acc[0][k][l]);
  }
  if (width == 1) return acc[0][0][0];
  return sum_of_squares_finish(x, n, acc[0][0]);
}

// r = 1 / sqrt(ss / (float)n + eps), each operation one rounding (exact_*: no flag can rewrite them).
// A row holding an infinity, or whose float sum of squares overflows, gives ss = inf and r = 0 (then x * 0: zeros
// for finite x, NaN for an infinity); a NaN gives r = NaN.
inline float rms_norm_factor_from_sum(float ss, std::size_t n, float eps) noexcept {
  const float ms = exact_div(ss, static_cast<float>(n));
  return exact_div(1.0f, exact_sqrt(exact_add(ms, eps)));
}

// The RMSNorm factor r of a row of n floats (see the top of this header).
inline float rms_norm_factor(const float* x, std::size_t n, float eps) noexcept {
  return rms_norm_factor_from_sum(sum_of_squares(x, n), n, eps);
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
