// bench baseline (d): BF16 GEMM/GEMV with AVX512-BF16, the way llama.cpp's BF16 type runs on CPUs that have it:
// weights stored as bfloat16, activations rounded to bfloat16 once per call (inside the timed region), and
// vdpbf16ps multiplying pairs of bf16 values exactly and adding them into float32 accumulators.
//
//   y[t][j] = sum_k float(wb[j][k]) * float(bf16(x[t][k]))
//
// Same register tiling and cache blocking as the FP16 baseline (fp16_gemm.hpp): RM x RN tiles of zmm float32
// accumulators, 32 k per step (16 pairs), 8x1 for GEMV; lanes summed at the end of k. Weight-row tails use
// masked loads; the bf16 activation rows are padded with zeros to a multiple of 32 in the workspace.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu.hpp"

namespace bench::bf16 {

// Float32 -> bfloat16 bits, round to nearest even (finite inputs), and back.
inline std::uint16_t from_float(float f) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}
inline float to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f = 0.0f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline std::size_t padded(std::size_t in) { return (in + 31) / 32 * 32; }

#if BENCH_X86
#define BENCH_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Rounds `batch` rows of x to bf16 rows of padded(in) values (zero padded). Part of every timed call.
BENCH_BF16_TARGET inline void convert_activations(const float* x, std::size_t batch, std::size_t in,
                                                  std::uint16_t* xb) {
  const std::size_t ld = padded(in);
  for (std::size_t t = 0; t < batch; ++t) {
    const float* row = x + t * in;
    for (std::size_t p = 0; p < ld; p += 32) {
      const std::size_t left = in > p ? in - p : 0;
      const __mmask16 lo = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
      const std::size_t left_hi = left > 16 ? left - 16 : 0;
      const __mmask16 hi = left_hi >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left_hi) - 1u);
      const __m512 a = _mm512_maskz_loadu_ps(lo, row + p);
      const __m512 b = _mm512_maskz_loadu_ps(hi, row + p + 16);
      _mm512_storeu_si512(xb + t * ld + p, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
    }
  }
}

template <int RM, int RN>
BENCH_BF16_TARGET inline void tile(const std::uint16_t* w, std::size_t ldw, const std::uint16_t* x, std::size_t ldx,
                                   std::size_t k, float* y, std::size_t ldy) {
  __m512 acc[RM][RN];
#pragma GCC unroll 8
  for (int i = 0; i < RM; ++i) {
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) acc[i][t] = _mm512_setzero_ps();
  }
  for (std::size_t p = 0; p < k; p += 32) {
    const __mmask32 m = k - p >= 32 ? ~__mmask32(0) : static_cast<__mmask32>((1u << (k - p)) - 1u);
    __m512i wv[RM];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) wv[i] = _mm512_maskz_loadu_epi16(m, w + i * ldw + p);
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const __m512i xv = _mm512_loadu_si512(x + t * ldx + p);  // padded row: whole vectors are inside it
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) {
        acc[i][t] = _mm512_dpbf16_ps(acc[i][t], reinterpret_cast<__m512bh>(wv[i]), reinterpret_cast<__m512bh>(xv));
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) {
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) y[t * ldy + i] = hsum(acc[i][t]);
  }
}

template <int RM>
BENCH_BF16_TARGET inline void tile_rows(int rn, const std::uint16_t* w, std::size_t ldw, const std::uint16_t* x,
                                        std::size_t ldx, std::size_t k, float* y, std::size_t ldy) {
  switch (rn) {
    case 1: tile<RM, 1>(w, ldw, x, ldx, k, y, ldy); break;
    case 2: tile<RM, 2>(w, ldw, x, ldx, k, y, ldy); break;
    case 3: tile<RM, 3>(w, ldw, x, ldx, k, y, ldy); break;
    case 4: tile<RM, 4>(w, ldw, x, ldx, k, y, ldy); break;
    case 5: tile<RM, 5>(w, ldw, x, ldx, k, y, ldy); break;
    default: tile<RM, 6>(w, ldw, x, ldx, k, y, ldy); break;
  }
}

BENCH_BF16_TARGET inline void tile_any(int rm, int rn, const std::uint16_t* w, std::size_t ldw, const std::uint16_t* x,
                                       std::size_t ldx, std::size_t k, float* y, std::size_t ldy) {
  switch (rm) {
    case 1: tile_rows<1>(rn, w, ldw, x, ldx, k, y, ldy); break;
    case 2: tile_rows<2>(rn, w, ldw, x, ldx, k, y, ldy); break;
    case 3: tile_rows<3>(rn, w, ldw, x, ldx, k, y, ldy); break;
    default: tile_rows<4>(rn, w, ldw, x, ldx, k, y, ldy); break;
  }
}

// y [batch][out] = bf16(x) [batch][in] * wb^T, wb [out][in]; xb: workspace of batch * padded(in) values.
// Requires cpu_has_avx512_bf16().
BENCH_BF16_TARGET inline void gemm(const std::uint16_t* w, std::size_t out, std::size_t in, const float* x,
                                   std::size_t batch, float* y, std::uint16_t* xb) {
  convert_activations(x, batch, in, xb);
  const std::size_t ldx = padded(in);
  if (batch == 1) {
    std::size_t j = 0;
    for (; j + 8 <= out; j += 8) tile<8, 1>(w + j * in, in, xb, ldx, in, y + j, out);
    for (; j < out; j += 4) tile_any(static_cast<int>(std::min<std::size_t>(4, out - j)), 1, w + j * in, in, xb, ldx,
                                     in, y + j, out);
    return;
  }
  constexpr std::size_t rm = 4, rn = 6;
  constexpr std::size_t l2_budget = 512 * 1024;
  const std::size_t block = std::max<std::size_t>(rn, l2_budget / (ldx * sizeof(std::uint16_t)) / rn * rn);
  for (std::size_t t0 = 0; t0 < batch; t0 += block) {
    const std::size_t t_end = std::min(batch, t0 + block);
    for (std::size_t j = 0; j < out; j += rm) {
      const int rows = static_cast<int>(std::min(rm, out - j));
      for (std::size_t t = t0; t < t_end; t += rn) {
        const int toks = static_cast<int>(std::min(rn, t_end - t));
        tile_any(rows, toks, w + j * in, in, xb + t * ldx, ldx, in, y + t * out + j, out);
      }
    }
  }
}
#undef BENCH_BF16_TARGET
#endif  // BENCH_X86

}  // namespace bench::bf16
