// bitlinear internal: avx512 GEMM for compact ternary weights (many tokens, compute bound). The register tiles
// and panel layout of gemm.hpp are reused as they are; only the panel unpacking differs:
//   16 rows x one 64-byte compact block are transposed as 16x16 dwords (transpose16x16_epi32) first, so that
//   column e holds bytes 4e..4e+3 of each row's block, row o in lane o; the byte-wise decode of
//   compact_codes.hpp commutes with that byte permutation, so decoding column e gives, in field vector i, the
//   u8 fields of weights 64 i + 4e .. 64 i + 4e + 3 of row o in dword lane o: panel group 16 i + e of the block.
// A panel is kCompactPanelBlocks = 3 blocks (960 weights, 240 groups, 30 KiB). The row's last block contributes
// only its fields that start below in_features (activation rows are padded to a multiple of 512, not of 320).
#pragma once
#include "../../detail/internal_only.hpp"

#include "../interface.hpp"
#include "codes.hpp"
#include "compact_codes.hpp"
#include "gemm.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline constexpr std::size_t kCompactPanelBlocks = 3;
inline constexpr std::size_t kCompactPanelGroups = kCompactPanelBlocks * 320 / 4;

// Unpacks outputs [n0, n0 + n_count) (n_count <= 32), blocks [block0, block0 + blocks) into `panel` (groups of 4
// weights x 32 outputs, gemm.hpp). Outputs past n_count get fields 0 (their sums are never stored).
BITLINEAR_AVX512VBMI_TARGET inline void unpack_compact_panel(const PackedWeightsView& w, std::size_t n0,
                                                             std::size_t n_count, std::size_t block0,
                                                             std::size_t blocks, std::uint8_t* panel) {
  const CompactTables tables = load_compact_tables();
  const std::uint8_t* row_block0[32];
  std::size_t block_step[32];
  for (std::size_t out = 0; out < n_count; ++out) {
    block_step[out] = w.block_step(n0 + out);
    row_block0[out] = w.row(n0 + out) + block_step[out] * block0;
  }
  for (std::size_t half = 0; half < 2; ++half) {
    if (16 * half >= n_count) {  // no rows in this half: zero fields
      for (std::size_t g = 0; g < blocks * 80; ++g) _mm512_store_si512(panel + g * 128 + 64 * half, _mm512_setzero_si512());
      continue;
    }
    for (std::size_t b = 0; b < blocks; ++b) {
      __m512i columns[16];
      for (std::size_t o = 0; o < 16; ++o) {
        const std::size_t out = 16 * half + o;
        // A missing row is the all-padding block: it decodes to fields 1, whose sums are never stored.
        columns[o] = out < n_count ? _mm512_loadu_si512(row_block0[out] + block_step[out] * b)
                                   : _mm512_set1_epi8(static_cast<char>(TernaryCompact::zero_byte));
      }
      transpose16x16_epi32(columns);
      std::uint8_t* base = panel + b * 80 * 128 + 64 * half;
      BITLINEAR_UNROLL
      for (int e = 0; e < 16; ++e) {
        __m512i f[5];
        decode_compact_block(columns[e], tables, f);
        BITLINEAR_UNROLL
        for (int i = 0; i < 5; ++i) _mm512_store_si512(base + (16 * i + e) * 128, f[i]);
      }
    }
  }
}

BITLINEAR_AVX512VBMI_TARGET inline void compact_gemm(const PackedWeightsView& w, const ActivationsView& a,
                                                     std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                     float* y, std::size_t y_stride) {
  alignas(64) std::uint8_t panel[kCompactPanelGroups * 4 * kPanelOutputs];  // 30 KiB
  alignas(64) std::int32_t raw[kChunkTokens * kPanelOutputs];               // 16.5 KiB
  const std::size_t row_blocks = w.row_bytes / 64;
  const std::size_t tail_fields = (w.in_features - 320 * (row_blocks - 1) + 63) / 64;
  for (std::size_t n0 = row_begin; n0 < row_end; n0 += kPanelOutputs) {
    const std::size_t n_count = row_end - n0 < kPanelOutputs ? row_end - n0 : kPanelOutputs;
    for (std::size_t c0 = 0; c0 < a.batch; c0 += kChunkTokens) {
      const std::size_t chunk = a.batch - c0 < kChunkTokens ? a.batch - c0 : kChunkTokens;
      for (std::size_t block0 = 0; block0 < row_blocks; block0 += kCompactPanelBlocks) {
        const std::size_t blocks =
            row_blocks - block0 < kCompactPanelBlocks ? row_blocks - block0 : kCompactPanelBlocks;
        unpack_compact_panel(w, n0, n_count, block0, blocks, panel);
        const bool last = block0 + blocks == row_blocks;
        const std::size_t groups = (blocks - 1) * 80 + (last ? 16 * tail_fields : 80);
        const std::int8_t* q = a.q + c0 * a.stride + block0 * 320;
        for (std::size_t t0 = 0; t0 < chunk; t0 += kTileTokens) {
          const std::size_t tokens = chunk - t0 < kTileTokens ? chunk - t0 : kTileTokens;
          gemm_tile_any(tokens, panel, groups, q + t0 * a.stride, a.stride, block0 == 0, raw + t0 * kPanelOutputs);
        }
      }
      for (std::size_t t = 0; t < chunk; ++t) {
        const std::size_t token = c0 + t;
        float* y_row = y + token * y_stride;
        for (std::size_t v = 0; v * 16 < n_count; ++v) {
          store_outputs<TernaryCodes>(_mm512_load_si512(raw + t * kPanelOutputs + 16 * v), n_count - 16 * v,
                                      a.scale[token], a.sum[token], e, n0 + 16 * v, y_row);
        }
      }
    }
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
