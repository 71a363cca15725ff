// bitlinear internal: the GEMM driver of the AVX2-class families. For each block of up to 128 tokens and each
// panel of 16 output rows, the rows (in any execution layout) are unpacked once per k-chunk of up to 1024
// weights into a 16 KiB stack panel (panel.hpp) and reused by every token of the block in register tiles of a
// few tokens (Tile: avx2/gemm_tile.hpp, avxvnni/gemm_tile.hpp); the int32 sums of the block (8 KiB) then go
// through the vectorized epilogue (epilogue.hpp).
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../activations.hpp"
#include "../../config.hpp"
#include "../../format.hpp"
#include "../interface.hpp"
#include "epilogue.hpp"
#include "panel.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

inline constexpr std::size_t gemm_token_block = 128;

// Runs Tile::run<m> for a run-time m in 1..M.
template <class Tile, int M>
BITLINEAR_TARGET("avx2,fma,f16c")
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
BITLINEAR_TARGET("avx2,fma,f16c")
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
