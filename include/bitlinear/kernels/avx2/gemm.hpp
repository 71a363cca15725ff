// bitlinear internal: the GEMM of the AVX2-class families: the unpacked panel, the register tile, the driver.
#pragma once
#include "../../detail/internal_only.hpp"

// the unpacked weight panel of the AVX2-class GEMM kernels, and its unpacking from any
// execution layout (interface.hpp).
//
// A panel holds panel_rows = 16 output rows over a chunk of k (a multiple of 256, at most panel_max_k), one
// byte per weight holding u (ternary: code + 1 in {0, 1, 2}; binary: the bit in {0, 1}; see codes.hpp),
// ordered for a register tile that broadcasts 4 activations q[k .. k+3] of one token to all 8 dword lanes:
//   panel[(g * 16 + n) * 4 + e] = u[row n][k0 + 4 g + e]      (g = k-group, n = row, e = 0..3)
// so the 64 bytes of group g are two 32-byte vectors, each 8 rows x 4 consecutive k. Rows past the end of the
// output range are zero (they are computed and never stored).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../format.hpp"
#include "../interface.hpp"
#include "target.hpp"
#include <cstring>
#include "../../activations.hpp"
#include "codes.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

inline constexpr std::size_t panel_rows = 16;
inline constexpr std::size_t panel_max_k = 1024;
inline constexpr std::size_t panel_group_bytes = panel_rows * 4;
inline constexpr std::size_t panel_bytes = panel_max_k / 4 * panel_group_bytes;  // 16 KiB

// Transposes 8 vectors of 8 dwords (v[r].dword[d]) in place into v[d].dword[r].
BITLINEAR_AVX2_TARGET
inline void transpose8x8_epi32(__m256i* v) noexcept {
  const __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
  // Per 128-bit half: u0 = column 0 (low half) / 4 (high half) of rows 0..3, u1 = columns 1/5, and so on.
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  v[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  v[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  v[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  v[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  v[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  v[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  v[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  v[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

// u[r] holds u of rows 8 * slab + r (r < 8) for the 32 consecutive k starting at chunk offset k (a multiple of
// 32): writes them to groups k / 4 .. k / 4 + 7 of the panel.
BITLINEAR_AVX2_TARGET
inline void store_slab(__m256i* u, std::size_t slab, std::size_t k, std::uint8_t* panel) noexcept {
  transpose8x8_epi32(u);
  std::uint8_t* out = panel + (k / 4) * panel_group_bytes + 32 * slab;
  for (int d = 0; d < 8; ++d) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(out + d * panel_group_bytes), u[d]);
  }
}

// Unpacks rows j0 .. j0 + row_count - 1 (row_count <= panel_rows), weights k0 .. k0 + kc (multiples of the
// block's weights) into `panel`. Field i of half h of block b (a 16-bit shift by b*i, masked with 2^b - 1,
// b = bits_per_weight) is u for k = weights_per_block * b + 64i + 32h + 0..31 (format.hpp).
template <class Format>
BITLINEAR_AVX2_TARGET
inline void unpack_panel(const PackedWeightsView& w, std::size_t j0, std::size_t row_count, std::size_t k0,
                         std::size_t kc, std::uint8_t* panel) noexcept {
  constexpr int bits = Format::bits_per_weight;
  constexpr int fields = 8 / bits;
  constexpr std::size_t block_weights = Format::weights_per_block;
  const __m256i mask = _mm256_set1_epi8(static_cast<char>((1 << bits) - 1));
  const std::uint8_t* row[panel_rows];  // block 0 of each row, and the bytes from one block to the next
  std::size_t step[panel_rows];
  for (std::size_t n = 0; n < row_count; ++n) {
    row[n] = w.row(j0 + n);
    step[n] = w.block_step(j0 + n);
  }
  for (std::size_t slab = 0; slab < panel_rows / 8; ++slab) {
    for (std::size_t b = k0 / block_weights; b < (k0 + kc) / block_weights; ++b) {
      BITLINEAR_AVX2_UNROLL
      for (std::size_t h = 0; h < 2; ++h) {
        __m256i packed[8];
        BITLINEAR_AVX2_UNROLL
        for (std::size_t r = 0; r < 8; ++r) {
          const std::size_t n = 8 * slab + r;
          packed[r] = n < row_count ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[n] + b * step[n] + 32 * h))
                                    : _mm256_setzero_si256();
        }
        BITLINEAR_AVX2_UNROLL
        for (int i = 0; i < fields; ++i) {
          __m256i u[8];
          BITLINEAR_AVX2_UNROLL
          for (int r = 0; r < 8; ++r) u[r] = _mm256_and_si256(_mm256_srli_epi16(packed[r], bits * i), mask);
          store_slab(u, slab, block_weights * b - k0 + 64 * static_cast<std::size_t>(i) + 32 * h, panel);
        }
      }
    }
  }
}

// --------------------------------------------------------------------------------------------------------------
// The AVX2 GEMM register tile: M tokens (1..5) x 16 output rows of a panel (above).
//
// Per k-group g (4 consecutive k): the two panel vectors of g (8 rows x 4 u each) and, per token, q[4g .. 4g+3]
// broadcast to all dwords; vpmaddubsw(u, q) adds the 4 products of each dword in two int16 pairs. A pair is in
// [2 * 2 * -128, 2 * 2 * 127] = [-512, 508], so 64 groups (256 k) sum to [-32768, 32512]: exactly within int16
// (no saturating op is involved: vpmaddubsw only saturates beyond a pair's range, vpaddw wraps but never needs
// to). Every 64 groups, vpmaddwd(., 1) folds the pairs into int32 and adds them to the tile in memory c.
// 10 int16 accumulators + 2 panel vectors + 1 broadcast + 1 product = 14 ymm registers (vpmaddubsw does not
// accumulate, so each product needs a register of its own before the add: 4 x 24 would need 17 and spills).

BITLINEAR_AVX2_TARGET
inline __m256i broadcast4(const std::int8_t* q) noexcept {
  std::int32_t four = 0;
  std::memcpy(&four, q, 4);
  return _mm256_set1_epi32(four);
}

// acc0 += maddubs(w0, q4), acc1 += maddubs(w1, q4), with q4 the 4 bytes at q broadcast to every dword.
// GCC 12 schedules the ten products of a 5-token step ahead of their additions and spills half of the
// accumulators (twice the time); the same step as one asm block per token keeps its live range to two
// scratch registers. Clang schedules the intrinsics well and gets them.
BITLINEAR_AVX2_TARGET
inline void maddubs_step(__m256i& acc0, __m256i& acc1, __m256i w0, __m256i w1, const std::int8_t* q) noexcept {
#if defined(__GNUC__) && !defined(__clang__)
  __m256i q4, product;
  __asm__(
      "vpbroadcastd {%[q], %[q4]|%[q4], %[q]}\n\t"
      "vpmaddubsw {%[q4], %[w0], %[p]|%[p], %[w0], %[q4]}\n\t"
      "vpaddw {%[p], %[a0], %[a0]|%[a0], %[a0], %[p]}\n\t"
      "vpmaddubsw {%[q4], %[w1], %[p]|%[p], %[w1], %[q4]}\n\t"
      "vpaddw {%[p], %[a1], %[a1]|%[a1], %[a1], %[p]}"
      : [a0] "+x"(acc0), [a1] "+x"(acc1), [q4] "=&x"(q4), [p] "=&x"(product)
      : [w0] "x"(w0), [w1] "x"(w1), [q] "m"(*reinterpret_cast<const std::int32_t*>(q)));
#else
  const __m256i q4 = broadcast4(q);
  acc0 = _mm256_add_epi16(acc0, _mm256_maddubs_epi16(w0, q4));
  acc1 = _mm256_add_epi16(acc1, _mm256_maddubs_epi16(w1, q4));
#endif
}

struct MaddubsTile {
  static constexpr int tokens = 5;

  // c[m * panel_rows + n] += S over `groups` k-groups (a multiple of 64) of tokens q[m] (m < M) and panel row n.
  template <int M>
  BITLINEAR_AVX2_TARGET
  static void run(const std::uint8_t* panel, std::size_t groups, const std::int8_t* const* q,
                  std::int32_t* c) noexcept {
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (std::size_t g0 = 0; g0 < groups; g0 += 64) {
      __m256i acc[M][2];
      BITLINEAR_AVX2_UNROLL
      for (int m = 0; m < M; ++m) {
        for (int v = 0; v < 2; ++v) acc[m][v] = _mm256_setzero_si256();
      }
      for (std::size_t g = g0; g < g0 + 64; ++g) {
        const std::uint8_t* p = panel + g * panel_group_bytes;
        const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32));
        BITLINEAR_AVX2_UNROLL
        for (int m = 0; m < M; ++m) maddubs_step(acc[m][0], acc[m][1], w0, w1, q[m] + 4 * g);
      }
      BITLINEAR_AVX2_UNROLL
      for (int m = 0; m < M; ++m) {
        for (int v = 0; v < 2; ++v) {
          __m256i* out = reinterpret_cast<__m256i*>(c + m * panel_rows + 8 * v);
          _mm256_store_si256(out, _mm256_add_epi32(_mm256_load_si256(out), _mm256_madd_epi16(acc[m][v], ones16)));
        }
      }
    }
  }
};

// --------------------------------------------------------------------------------------------------------------
// The GEMM driver of the AVX2-class families. For each block of up to 128 tokens and each
// panel of 16 output rows, the rows (in any execution layout) are unpacked once per k-chunk of up to 1024
// weights into a 16 KiB stack panel (above) and reused by every token of the block in register tiles of a
// few tokens (Tile: avx2/gemm.hpp, avxvnni/gemm.hpp); the int32 sums of the block (8 KiB) then go
// through the vectorized epilogue (codes.hpp).

inline constexpr std::size_t gemm_token_block = 128;

// Runs Tile::run<m> for a run-time m in 1..M.
template <class Tile, int M>
BITLINEAR_AVX2_TARGET
inline void run_tile(std::size_t m, const std::uint8_t* panel, std::size_t groups, const std::int8_t* const* q,
                     std::int32_t* c) noexcept {
  if constexpr (M > 1) {
    if (m < static_cast<std::size_t>(M)) return run_tile<Tile, M - 1>(m, panel, groups, q, c);
  }
  Tile::template run<M>(panel, groups, q, c);
}

// Tile: a register tile of up to Tile::tokens tokens, run<M>(panel, groups,
// q, c) for M = 1..Tile::tokens.
template <class Format, class Tile>
BITLINEAR_AVX2_TARGET
inline void gemm(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                 const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  alignas(64) std::uint8_t panel[panel_bytes];
  alignas(64) std::int32_t sums[gemm_token_block * panel_rows];
  const std::size_t padded_k = w.row_bytes / packed_block_bytes * Format::weights_per_block;
  for (std::size_t t0 = 0; t0 < a.batch; t0 += gemm_token_block) {
    const std::size_t tokens = a.batch - t0 < gemm_token_block ? a.batch - t0 : gemm_token_block;
    for (std::size_t j0 = row_begin; j0 < row_end; j0 += panel_rows) {
      const std::size_t rows = row_end - j0 < panel_rows ? row_end - j0 : panel_rows;
      std::memset(sums, 0, tokens * panel_rows * sizeof(std::int32_t));
      for (std::size_t k0 = 0; k0 < padded_k; k0 += panel_max_k) {
        const std::size_t kc = padded_k - k0 < panel_max_k ? padded_k - k0 : panel_max_k;
        unpack_panel<Format>(w, j0, rows, k0, kc, panel);
        constexpr std::size_t tile = Tile::tokens;
        for (std::size_t t = 0; t < tokens; t += tile) {
          const std::int8_t* q[tile];
          const std::size_t m = tokens - t < tile ? tokens - t : tile;
          for (std::size_t i = 0; i < tile; ++i) q[i] = a.q + (t0 + t + (i < m ? i : 0)) * a.stride + k0;
          run_tile<Tile, Tile::tokens>(m, panel, kc / 4, q, sums + t * panel_rows);
        }
      }
      for (std::size_t t = 0; t < tokens; ++t) {
        const std::size_t token = t0 + t;
        write_outputs<Format>(sums + t * panel_rows, rows, a.sum[token], a.scale[token], e, j0, y + token * y_stride);
      }
    }
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
