// bitlinear internal: NEON activation quantization (ARMv8.0 Advanced SIMD; used by both aarch64 families),
// bit-identical to ref/quantize.hpp.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../ref/quantize.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

// max |x[i]|, or a non-finite value if any x[i] is NaN or infinite. FMAX and FMAXV return NaN when an operand
// is NaN, and an infinity is its own maximum, so the vector maximum is non-finite exactly when the reference
// returns NaN; otherwise both are the largest |x[i]| (maximum is exact, so the order does not matter).
inline float absmax(const float* x, std::size_t n) noexcept {
  float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0, m2 = m0, m3 = m0;
  std::size_t k = 0;
  for (; k + 16 <= n; k += 16) {
    m0 = vmaxq_f32(m0, vabsq_f32(vld1q_f32(x + k)));
    m1 = vmaxq_f32(m1, vabsq_f32(vld1q_f32(x + k + 4)));
    m2 = vmaxq_f32(m2, vabsq_f32(vld1q_f32(x + k + 8)));
    m3 = vmaxq_f32(m3, vabsq_f32(vld1q_f32(x + k + 12)));
  }
  for (; k + 4 <= n; k += 4) m0 = vmaxq_f32(m0, vabsq_f32(vld1q_f32(x + k)));
  float m = vmaxvq_f32(vmaxq_f32(vmaxq_f32(m0, m1), vmaxq_f32(m2, m3)));
  if (k < n) {
    const float tail = ref::absmax(x + k, n - k);  // NaN if the tail holds a non-finite value
    m = vmaxvq_f32(vmaxq_f32(vdupq_n_f32(m), vdupq_n_f32(tail)));
  }
  return m;
}

// q[k] = clamp(rne(x[k] * s_x), -128, 127): FMUL (the same single rounding as the scalar x * s_x), FCVTNS
// (round to nearest, ties to even, saturating to int32), then two saturating narrows SQXTN int32 -> int16 -> int8,
// which clamp to [-128, 127] exactly like the reference's clamp of an integer-valued float. The sum is exact in
// int32 (|q| <= 128, n <= 2^20). Tails (< 16 values) use the reference's scalar code.
inline std::int32_t quantize_row(const float* x, std::size_t n, float s_x, std::int8_t* q,
                                 std::size_t padded_n) noexcept {
  const float32x4_t scale = vdupq_n_f32(s_x);
  int32x4_t sum = vdupq_n_s32(0);
  std::size_t k = 0;
  for (; k + 16 <= n; k += 16) {
    const int32x4_t r0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + k), scale));
    const int32x4_t r1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + k + 4), scale));
    const int32x4_t r2 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + k + 8), scale));
    const int32x4_t r3 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + k + 12), scale));
    const int16x8_t h01 = vcombine_s16(vqmovn_s32(r0), vqmovn_s32(r1));
    const int16x8_t h23 = vcombine_s16(vqmovn_s32(r2), vqmovn_s32(r3));
    const int8x16_t b = vcombine_s8(vqmovn_s16(h01), vqmovn_s16(h23));
    vst1q_s8(q + k, b);
    sum = vpadalq_s16(sum, vpaddlq_s8(b));
  }
  std::int32_t total = vaddvq_s32(sum);
  for (; k < n; ++k) {
    q[k] = ref::quantize_value(x[k] * s_x);
    total += q[k];
  }
  if (padded_n > n) std::memset(q + n, 0, padded_n - n);
  return total;
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
