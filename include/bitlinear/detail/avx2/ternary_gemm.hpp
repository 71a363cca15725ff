// bitlinear internal: AVX2 unpacking of canonical ternary rows into a GEMM panel (panel.hpp).
// Half h of block b, shifted right by 2i and masked with 3, holds u = code + 1 for k = 256b + 64i + 32h + 0..31.
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "unroll.hpp"
#include "../../format.hpp"
#include "panel.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

struct TernaryPanel {
  static constexpr std::size_t block_weights = Ternary::weights_per_block;

  // Rows rows + n * row_bytes (n < row_count <= panel_rows), weights k0 .. k0 + kc (multiples of 256).
  BITLINEAR_TARGET("avx2,fma,f16c")
  static void unpack(const std::uint8_t* rows, std::size_t row_bytes, std::size_t row_count, std::size_t k0,
                     std::size_t kc, std::uint8_t* panel) noexcept {
    const __m256i low2 = _mm256_set1_epi8(3);
    for (std::size_t slab = 0; slab < panel_rows / 8; ++slab) {
      for (std::size_t b = k0 / 256; b < (k0 + kc) / 256; ++b) {
        BITLINEAR_AVX2_UNROLL
        for (std::size_t h = 0; h < 2; ++h) {
          __m256i packed[8];
          BITLINEAR_AVX2_UNROLL
          for (std::size_t r = 0; r < 8; ++r) {
            const std::size_t n = 8 * slab + r;
            packed[r] = n < row_count ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + n * row_bytes + 64 * b + 32 * h))
                                      : _mm256_setzero_si256();
          }
          BITLINEAR_AVX2_UNROLL
          for (int i = 0; i < 4; ++i) {
            __m256i u[8];
            BITLINEAR_AVX2_UNROLL
            for (int r = 0; r < 8; ++r) u[r] = _mm256_and_si256(_mm256_srli_epi16(packed[r], 2 * i), low2);
            store_slab(u, slab, 256 * b - k0 + 64 * static_cast<std::size_t>(i) + 32 * h, panel);
          }
        }
      }
    }
  }
};

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
