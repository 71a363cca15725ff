// bitlinear internal: the unpacked weight panel of the AVX2-class GEMM kernels, and its unpacking from any
// execution layout (kernels.hpp).
//
// A panel holds panel_rows = 16 output rows over a chunk of k (a multiple of 256, at most panel_max_k), one
// byte per weight holding u (ternary: code + 1 in {0, 1, 2}; binary: the bit in {0, 1}; see epilogue.hpp),
// ordered for a register tile that broadcasts 4 activations q[k .. k+3] of one token to all 8 dword lanes:
//   panel[(g * 16 + n) * 4 + e] = u[row n][k0 + 4 g + e]      (g = k-group, n = row, e = 0..3)
// so the 64 bytes of group g are two 32-byte vectors, each 8 rows x 4 consecutive k. Rows past the end of the
// output range are zero (they are computed and never stored).
#pragma once
#include "../../detail/internal_only.hpp"

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../format.hpp"
#include "../interface.hpp"
#include "unroll.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

inline constexpr std::size_t panel_rows = 16;
inline constexpr std::size_t panel_max_k = 1024;
inline constexpr std::size_t panel_group_bytes = panel_rows * 4;
inline constexpr std::size_t panel_bytes = panel_max_k / 4 * panel_group_bytes;  // 16 KiB

// Transposes 8 vectors of 8 dwords (v[r].dword[d]) in place into v[d].dword[r].
BITLINEAR_TARGET("avx2,fma,f16c")
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
BITLINEAR_TARGET("avx2,fma,f16c")
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
BITLINEAR_TARGET("avx2,fma,f16c")
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

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
