// bench baseline (a): FP16 GEMM/GEMV the way x86 CPUs without AVX512-FP16 run FP16 layers (llama.cpp's F16 type,
// llamafile's tinyBLAS): weights stored as IEEE binary16, converted to float32 with F16C (vcvtph2ps) right after
// the load, products accumulated with float32 FMA. Activations and outputs stay float32.
//
//   y[t][j] = sum_k float(w16[j][k]) * x[t][k]        w16 [out][in] row-major (nn.Linear layout), x [batch][in]
//
// Kernel shape (AVX-512, 32 zmm registers): a register tile of RM weight rows x RN tokens keeps RM*RN float32
// accumulators of 16 lanes (k-slices of the dot products); per 16-wide k step it loads and converts RM weight
// vectors once and reuses each over the RN tokens, then RM*RN FMAs. 4x6 = 24 accumulators + 4 weights + 1
// activation = 29 registers. Lanes are summed once at the end of k (the dot-product form, as tinyBLAS does).
// Batch 1 (GEMV) uses 8x1: eight independent rows keep both FMA pipes busy and stream 8 rows at once.
// Cache blocking: tokens are taken in blocks whose activations (block x in x 4 bytes) fit in half of L2, so each
// weight tile (RM rows, RM*in*2 bytes: 32 KiB for in = 4096, L1-sized) is loaded from memory once per token
// block and reused from L1 across all token tiles of the block. k tails use masked loads, so any in works.
// The kernels carry target attributes (like bitlinear's own), so the program needs no -m flags.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu.hpp"

namespace bench::fp16 {

#if BENCH_X86
// Float32 -> binary16 bits (round to nearest even) and back, for setting up weights and for the reference.
__attribute__((target("avx,f16c"))) inline void to_half(const float* src, std::size_t n, std::uint16_t* dst) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) dst[i] = static_cast<std::uint16_t>(_cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT));
}

__attribute__((target("avx,f16c"))) inline float half_to_float(std::uint16_t h) { return _cvtsh_ss(h); }

#define BENCH_FP16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

// One RM x RN register tile: y[t][j] for j < RM rows starting at w, t < RN tokens starting at x.
template <int RM, int RN>
BENCH_FP16_TARGET inline void tile_avx512(const std::uint16_t* w, std::size_t ldw, const float* x, std::size_t ldx,
                                          std::size_t k, float* y, std::size_t ldy) {
  __m512 acc[RM][RN];
#pragma GCC unroll 8
  for (int i = 0; i < RM; ++i) {
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) acc[i][t] = _mm512_setzero_ps();
  }
  std::size_t p = 0;
  for (; p + 16 <= k; p += 16) {
    __m512 wv[RM];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) {
      wv[i] = _mm512_maskz_cvtph_ps(__mmask16(0xFFFF), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i * ldw + p)));
    }
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const __m512 xv = _mm512_loadu_ps(x + t * ldx + p);
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
    }
  }
  if (p < k) {  // k tail: masked loads read nothing past the rows
    const __mmask16 m = static_cast<__mmask16>((1u << (k - p)) - 1u);
    __m512 wv[RM];
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) wv[i] = _mm512_maskz_cvtph_ps(__mmask16(0xFFFF), _mm256_maskz_loadu_epi16(m, w + i * ldw + p));
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * ldx + p);
#pragma GCC unroll 8
      for (int i = 0; i < RM; ++i) acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) {
#pragma GCC unroll 8
    for (int i = 0; i < RM; ++i) y[t * ldy + i] = hsum(acc[i][t]);
  }
}

template <int RM>
BENCH_FP16_TARGET inline void tile_rows(int rn, const std::uint16_t* w, std::size_t ldw, const float* x,
                                        std::size_t ldx, std::size_t k, float* y, std::size_t ldy) {
  switch (rn) {
    case 1: tile_avx512<RM, 1>(w, ldw, x, ldx, k, y, ldy); break;
    case 2: tile_avx512<RM, 2>(w, ldw, x, ldx, k, y, ldy); break;
    case 3: tile_avx512<RM, 3>(w, ldw, x, ldx, k, y, ldy); break;
    case 4: tile_avx512<RM, 4>(w, ldw, x, ldx, k, y, ldy); break;
    case 5: tile_avx512<RM, 5>(w, ldw, x, ldx, k, y, ldy); break;
    default: tile_avx512<RM, 6>(w, ldw, x, ldx, k, y, ldy); break;
  }
}

BENCH_FP16_TARGET inline void tile_any(int rm, int rn, const std::uint16_t* w, std::size_t ldw, const float* x,
                                       std::size_t ldx, std::size_t k, float* y, std::size_t ldy) {
  switch (rm) {
    case 1: tile_rows<1>(rn, w, ldw, x, ldx, k, y, ldy); break;
    case 2: tile_rows<2>(rn, w, ldw, x, ldx, k, y, ldy); break;
    case 3: tile_rows<3>(rn, w, ldw, x, ldx, k, y, ldy); break;
    default: tile_rows<4>(rn, w, ldw, x, ldx, k, y, ldy); break;
  }
}

// y [batch][out] = x [batch][in] * w16^T, w16 [out][in]. Requires cpu_has_avx512().
BENCH_FP16_TARGET inline void gemm_avx512(const std::uint16_t* w, std::size_t out, std::size_t in, const float* x,
                                          std::size_t batch, float* y) {
  if (batch == 1) {  // GEMV: 8 rows per tile
    std::size_t j = 0;
    for (; j + 8 <= out; j += 8) tile_avx512<8, 1>(w + j * in, in, x, in, in, y + j, out);
    for (; j < out; j += 4) tile_any(static_cast<int>(std::min<std::size_t>(4, out - j)), 1, w + j * in, in, x, in, in,
                                     y + j, out);
    return;
  }
  constexpr std::size_t rm = 4, rn = 6;
  constexpr std::size_t l2_budget = 512 * 1024;  // half of a 1 MiB L2 for the activation block
  std::size_t block = std::max<std::size_t>(rn, l2_budget / (in * sizeof(float)) / rn * rn);
  for (std::size_t t0 = 0; t0 < batch; t0 += block) {
    const std::size_t t_end = std::min(batch, t0 + block);
    for (std::size_t j = 0; j < out; j += rm) {
      const int rows = static_cast<int>(std::min(rm, out - j));
      for (std::size_t t = t0; t < t_end; t += rn) {
        const int toks = static_cast<int>(std::min(rn, t_end - t));
        tile_any(rows, toks, w + j * in, in, x + t * in, in, in, y + t * out + j, out);
      }
    }
  }
}
#undef BENCH_FP16_TARGET
#endif  // BENCH_X86

}  // namespace bench::fp16
