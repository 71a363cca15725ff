// bitlinear internal: aarch64 GEMM (several tokens): a panel of gemm_rows weight rows is unpacked once per
// chunk of gemm_chunk weights into int8 (ternary: field = code + 1 in {0, 1, 2}; binary: -bit in {0, -1}) and
// reused by every token in register tiles of up to gemm_tokens tokens x gemm_rows rows.
//
// Per 16 weights of one (token, row) pair a tile does one SDOT (neon_dotprod) or SMLAL + SMLAL2 into int16 lanes
// (neon); the weight vectors are loaded once per tile step and shared by its tokens, the activation vectors shared
// by its rows. Integer results per (token, row) over the whole row:
//   ternary: panel_dot = sum_k (code + 1) * q         -> dot = panel_dot - sum(q)
//   binary:  panel_dot = -sum_k bit * q               -> dot = 2 * sum_k bit * q - sum(q) = -2 * panel_dot - sum(q)
// (|dot| <= 2^28, activations.hpp/format.hpp: no int32 overflow). neon int16 lanes take at most 64 products of
// magnitude <= 256 (one 512-weight sub-chunk) before they are widened: <= 16384.
// The weights are read in any execution layout (interface.hpp), block-major within a panel (unpack_panel), so a
// panel of one 4-row group is one linear read; panels start at multiples of 4 rows.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../format.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

inline constexpr int gemm_rows = 4;                  // rows per panel (and per register tile)
inline constexpr int gemm_tokens = 4;                // tokens per register tile
inline constexpr std::size_t gemm_chunk = 2048;      // weights per unpacked chunk: 4 x 2 KB panel, on the stack
inline constexpr std::size_t gemm_token_block = 128; // tokens whose partial sums are kept while chunks advance

// One 64-byte ternary block (256 weights, canonical order inside the block) to fields in {0, 1, 2}.
inline void unpack_ternary_block(const std::uint8_t* block, std::int8_t* dst) noexcept {
  const uint8x16_t mask = vdupq_n_u8(0x03);
  for (std::size_t s = 0; s < slices_per_block; ++s) {
    const uint8x16_t v = vld1q_u8(block + 16 * s);
    vst1q_s8(dst + 16 * s, vreinterpretq_s8_u8(vandq_u8(v, mask)));
    vst1q_s8(dst + 64 + 16 * s, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), mask)));
    vst1q_s8(dst + 128 + 16 * s, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), mask)));
    vst1q_s8(dst + 192 + 16 * s, vreinterpretq_s8_u8(vshrq_n_u8(v, 6)));
  }
}

// One 64-byte binary block (512 weights) to -bit in {0, -1}.
inline void unpack_binary_block(const std::uint8_t* block, std::int8_t* dst) noexcept {
  for (std::size_t s = 0; s < slices_per_block; ++s) {
    const uint8x16_t v = vld1q_u8(block + 16 * s);
    for (unsigned i = 0; i < 8; ++i) {
      const uint8x16_t bit = vdupq_n_u8(static_cast<std::uint8_t>(1u << i));
      vst1q_s8(dst + 64 * i + 16 * s, vreinterpretq_s8_u8(vtstq_u8(v, bit)));
    }
  }
}

// Unpacks blocks [block0, block0 + blocks) of rows j0 .. j0 + rows - 1 (any layout, interface.hpp) into
// panel[r][(b - block0) * weights_per_block ..]. Block-major order (block b of every row, then block b + 1):
// in an interleaved layout of 4-row groups the panel of a group is one linear read, prefetched ahead.
template <class Format>
inline void unpack_panel(const PackedWeightsView& w, std::size_t j0, std::size_t rows, std::size_t block0,
                         std::size_t blocks, std::size_t distance, std::int8_t (*panel)[gemm_chunk]) noexcept {
  const std::uint8_t* row_block[gemm_rows];
  std::size_t step[gemm_rows];
  for (std::size_t r = 0; r < rows; ++r) {
    step[r] = w.block_step(j0 + r);
    row_block[r] = w.row(j0 + r) + block0 * step[r];
  }
  // The last row's last block is the farthest one the panel reads (rows and blocks ascend in every layout).
  const std::size_t offset = prefetch_within(w, row_block[rows - 1] + (blocks - 1) * step[rows - 1], distance);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t r = 0; r < rows; ++r) {
      const std::uint8_t* block = row_block[r] + b * step[r];
      prefetch(block + offset);
      if constexpr (Format::bits_per_weight == 2) {
        unpack_ternary_block(block, panel[r] + b * Format::weights_per_block);
      } else {
        unpack_binary_block(block, panel[r] + b * Format::weights_per_block);
      }
    }
  }
}

// partial[t][r] += sum_{k < len} panel[r][k] * q[t][k] for t < TOKENS, r < gemm_rows (len a multiple of 16).
template <int TOKENS>
BITLINEAR_NEON_DOTPROD_TARGET inline void gemm_tile_dotprod(const std::int8_t* panel, std::size_t panel_stride,
                                                            const std::int8_t* q, std::size_t q_stride,
                                                            std::size_t len, std::int32_t (*partial)[gemm_rows]) noexcept {
  int32x4_t acc[TOKENS][gemm_rows];
  for (int t = 0; t < TOKENS; ++t)
    for (int r = 0; r < gemm_rows; ++r) acc[t][r] = vdupq_n_s32(0);
  for (std::size_t k = 0; k < len; k += 16) {
    int8x16_t wv[gemm_rows];
    for (int r = 0; r < gemm_rows; ++r) wv[r] = vld1q_s8(panel + r * panel_stride + k);
    for (int t = 0; t < TOKENS; ++t) {
      const int8x16_t a = vld1q_s8(q + t * q_stride + k);
      for (int r = 0; r < gemm_rows; ++r) acc[t][r] = sdot(acc[t][r], wv[r], a);
    }
  }
  for (int t = 0; t < TOKENS; ++t)
    for (int r = 0; r < gemm_rows; ++r) partial[t][r] += vaddvq_s32(acc[t][r]);
}

template <int TOKENS>
inline void gemm_tile_neon(const std::int8_t* panel, std::size_t panel_stride, const std::int8_t* q,
                           std::size_t q_stride, std::size_t len, std::int32_t (*partial)[gemm_rows]) noexcept {
  for (std::size_t k0 = 0; k0 < len; k0 += 512) {
    const std::size_t k_end = k0 + 512 < len ? k0 + 512 : len;
    int16x8_t acc[TOKENS][gemm_rows];
    for (int t = 0; t < TOKENS; ++t)
      for (int r = 0; r < gemm_rows; ++r) acc[t][r] = vdupq_n_s16(0);
    for (std::size_t k = k0; k < k_end; k += 16) {
      int8x16_t wv[gemm_rows];
      for (int r = 0; r < gemm_rows; ++r) wv[r] = vld1q_s8(panel + r * panel_stride + k);
      for (int t = 0; t < TOKENS; ++t) {
        const int8x16_t a = vld1q_s8(q + t * q_stride + k);
        for (int r = 0; r < gemm_rows; ++r) {
          acc[t][r] = vmlal_s8(acc[t][r], vget_low_s8(wv[r]), vget_low_s8(a));
          acc[t][r] = vmlal_high_s8(acc[t][r], wv[r], a);
        }
      }
    }
    for (int t = 0; t < TOKENS; ++t)
      for (int r = 0; r < gemm_rows; ++r) partial[t][r] += vaddlvq_s16(acc[t][r]);
  }
}

template <bool DOTPROD, int TOKENS>
inline void gemm_tile(const std::int8_t* panel, std::size_t panel_stride, const std::int8_t* q, std::size_t q_stride,
                      std::size_t len, std::int32_t (*partial)[gemm_rows]) noexcept {
  if constexpr (DOTPROD) {
    gemm_tile_dotprod<TOKENS>(panel, panel_stride, q, q_stride, len, partial);
  } else {
    gemm_tile_neon<TOKENS>(panel, panel_stride, q, q_stride, len, partial);
  }
}

// The GEMM driver: Format is Ternary or Binary, DOTPROD picks the tile. Writes y[t * y_stride + j] for every
// t < a.batch and j in [row_begin, row_end), with the epilogue of target.hpp.
template <class Format, bool DOTPROD>
inline void gemm(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                 const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  constexpr bool ternary = Format::bits_per_weight == 2;
  alignas(16) std::int8_t panel[gemm_rows][gemm_chunk];
  std::int32_t partial[gemm_token_block][gemm_rows];
  const std::size_t padded_k = w.row_bytes / packed_block_bytes * Format::weights_per_block;
  const std::size_t distance = prefetch_distance(w);
  // Panels of 4 rows start at multiples of 4 (the first may be shorter): with 4-row groups, a panel is a group.
  for (std::size_t j0 = row_begin; j0 < row_end;) {
    const std::size_t panel_end = (j0 / gemm_rows + 1) * gemm_rows;
    const std::size_t rows = (row_end < panel_end ? row_end : panel_end) - j0;
    for (std::size_t t0 = 0; t0 < a.batch; t0 += gemm_token_block) {
      const std::size_t tokens = a.batch - t0 < gemm_token_block ? a.batch - t0 : gemm_token_block;
      std::memset(partial, 0, tokens * sizeof(partial[0]));  // only the tokens of this block (decode: 1-4)
      for (std::size_t k0 = 0; k0 < padded_k; k0 += gemm_chunk) {
        const std::size_t len = padded_k - k0 < gemm_chunk ? padded_k - k0 : gemm_chunk;
        unpack_panel<Format>(w, j0, rows, k0 / Format::weights_per_block, len / Format::weights_per_block, distance,
                             panel);
        for (std::size_t r = rows; r < gemm_rows; ++r) std::memset(panel[r], 0, len);  // computed, never written
        const std::int8_t* q = a.q + t0 * a.stride + k0;
        std::size_t t = 0;
        for (; t + gemm_tokens <= tokens; t += gemm_tokens) {
          gemm_tile<DOTPROD, gemm_tokens>(panel[0], gemm_chunk, q + t * a.stride, a.stride, len, partial + t);
        }
        switch (tokens - t) {
          case 3: gemm_tile<DOTPROD, 3>(panel[0], gemm_chunk, q + t * a.stride, a.stride, len, partial + t); break;
          case 2: gemm_tile<DOTPROD, 2>(panel[0], gemm_chunk, q + t * a.stride, a.stride, len, partial + t); break;
          case 1: gemm_tile<DOTPROD, 1>(panel[0], gemm_chunk, q + t * a.stride, a.stride, len, partial + t); break;
          default: break;
        }
      }
      for (std::size_t t = 0; t < tokens; ++t) {
        const std::size_t token = t0 + t;
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t j = j0 + r;
          float& out = y[token * y_stride + j];
          if constexpr (ternary) {
            out = ternary_output(partial[t][r] - a.sum[token], a.scale[token], e, j);
          } else {
            out = binary_output(-2 * partial[t][r] - a.sum[token], a.scale[token], e, j);
          }
        }
      }
    }
    j0 += rows;
  }
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
