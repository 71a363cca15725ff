// bitlinear internal: the avx512 GEMM, 2-bit/1-bit and compact.
#pragma once
#include "../../detail/internal_only.hpp"

// avx512 GEMM (many tokens, compute bound): a weight panel is unpacked once into a
// vpdpbusd-friendly layout on the stack and reused by every token in register tiles.
//
// Panel: kPanelOutputs = 32 outputs x up to kPanelDepth = 1024 weights (k), stored as
//   panel[g][o][4]  (g = k/4 within the panel, o = output 0..31, the 4 fields of k = 4g..4g+3 as u8)
// i.e. for each group of 4 consecutive k, 128 bytes: one zmm for outputs 0..15, one for 16..31. 32 KiB.
// Unpacking: the dword e (bytes 4e..4e+3) of a canonical block holds, in field i, the 4 consecutive weights
// k = 64i + 4e .. 64i + 4e + 3 (format.hpp). So a 16x16 dword transpose of the raw blocks of 16 rows gives,
// for each e, a vector whose lane o is row o's dword e; shifted/masked per field i it is exactly panel group
// g = 16i + e of those 16 outputs. Cost: 64 shuffles per 16 rows x 1 block, then the shift/mask of the GEMV.
//
// Register tile: 2 zmm of outputs x T <= kTileTokens = 12 tokens = 24 int32 accumulators (lane o of acc[t][v]
// is output 16v + o of token t). Per k-group: 2 panel loads, T broadcasts of the token's 4 activations, 2T
// vpdpbusd. The raw sums go to an int32 stack buffer (kChunkTokens x 32) across the k-panels of a long row, and
// the epilogue of codes.hpp turns 16 of them at a time into y with masked stores at the end of the range.
// Loop order: 32 outputs, then chunks of up to 132 tokens, then k-panels, then token tiles: the panel is
// unpacked once per (outputs, chunk, k-panel) and read from L1 by every tile of the chunk.
#include <cstring>

#include "../interface.hpp"
#include "codes.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline constexpr std::size_t kPanelOutputs = 32;
inline constexpr std::size_t kPanelDepth = 1024;  // weights; a multiple of both block sizes (256 and 512)
inline constexpr std::size_t kTileTokens = 12;
inline constexpr std::size_t kChunkTokens = 11 * kTileTokens;  // 132: a batch of 128 is one chunk

// Transposes 16 rows of 16 dwords in place: afterwards r[e] holds dword e of every input row, row o in lane o.
// (The zero-masking forms with all-ones masks avoid GCC 12's bogus warnings, see target.hpp.)
BITLINEAR_AVX512_INLINE void transpose16x16_epi32(__m512i (&r)[16]) {
  __m512i a[16], b[16];
  BITLINEAR_UNROLL
  for (int i = 0; i < 8; ++i) {  // a[2i], a[2i+1]: dwords 4L+{0,1} and 4L+{2,3} of rows 2i, 2i+1 interleaved
    a[2 * i] = _mm512_maskz_unpacklo_epi32(0xFFFF, r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_maskz_unpackhi_epi32(0xFFFF, r[2 * i], r[2 * i + 1]);
  }
  BITLINEAR_UNROLL
  for (int q = 0; q < 4; ++q) {  // b[4q+c], 128-bit lane L: dword 4L+c of rows 4q..4q+3
    b[4 * q + 0] = _mm512_maskz_unpacklo_epi64(0xFF, a[4 * q], a[4 * q + 2]);
    b[4 * q + 1] = _mm512_maskz_unpackhi_epi64(0xFF, a[4 * q], a[4 * q + 2]);
    b[4 * q + 2] = _mm512_maskz_unpacklo_epi64(0xFF, a[4 * q + 1], a[4 * q + 3]);
    b[4 * q + 3] = _mm512_maskz_unpackhi_epi64(0xFF, a[4 * q + 1], a[4 * q + 3]);
  }
  BITLINEAR_UNROLL
  for (int c = 0; c < 4; ++c) {  // r[4L+c], lane q = lane L of b[4q+c]: a 4x4 transpose of 128-bit lanes
    const __m512i u0 = _mm512_maskz_shuffle_i32x4(0xFFFF, b[c], b[4 + c], 0x44);
    const __m512i u1 = _mm512_maskz_shuffle_i32x4(0xFFFF, b[c], b[4 + c], 0xEE);
    const __m512i u2 = _mm512_maskz_shuffle_i32x4(0xFFFF, b[8 + c], b[12 + c], 0x44);
    const __m512i u3 = _mm512_maskz_shuffle_i32x4(0xFFFF, b[8 + c], b[12 + c], 0xEE);
    r[c] = _mm512_maskz_shuffle_i32x4(0xFFFF, u0, u2, 0x88);
    r[4 + c] = _mm512_maskz_shuffle_i32x4(0xFFFF, u0, u2, 0xDD);
    r[8 + c] = _mm512_maskz_shuffle_i32x4(0xFFFF, u1, u3, 0x88);
    r[12 + c] = _mm512_maskz_shuffle_i32x4(0xFFFF, u1, u3, 0xDD);
  }
}

template <class Codes, int Field>
BITLINEAR_AVX512_INLINE void store_panel_fields(const __m512i (&columns)[16], std::uint8_t* group0) {
  BITLINEAR_UNROLL
  for (int e = 0; e < 16; ++e) {
    _mm512_store_si512(group0 + (16 * Field + e) * 4 * kPanelOutputs, Codes::template field<Field>(columns[e]));
  }
  if constexpr (Field + 1 < Codes::fields) store_panel_fields<Codes, Field + 1>(columns, group0);
}

// Unpacks outputs [n0, n0 + n_count) (n_count <= 32), blocks [block0, block0 + blocks) into `panel`. Outputs past
// n_count are zero fields (their sums are never stored); rows past the matrix are never read.
template <class Codes>
BITLINEAR_AVX512_TARGET inline void unpack_panel(const PackedWeightsView& w, std::size_t n0, std::size_t n_count,
                                                 std::size_t block0, std::size_t blocks, std::uint8_t* panel) {
  constexpr std::size_t groups_per_block = Codes::block_weights / 4;
  const std::uint8_t* row_block0[32];  // block block0 of each output row (execution layout: see interface.hpp)
  std::size_t block_step[32];
  for (std::size_t out = 0; out < n_count; ++out) {
    block_step[out] = w.block_step(n0 + out);
    row_block0[out] = w.row(n0 + out) + block_step[out] * block0;
  }
  for (std::size_t half = 0; half < 2; ++half) {
    for (std::size_t b = 0; b < blocks; ++b) {
      __m512i rows[16];
      for (std::size_t o = 0; o < 16; ++o) {
        const std::size_t out = 16 * half + o;
        rows[o] = out < n_count ? _mm512_loadu_si512(row_block0[out] + block_step[out] * b) : _mm512_setzero_si512();
      }
      transpose16x16_epi32(rows);
      store_panel_fields<Codes, 0>(rows, panel + b * groups_per_block * 4 * kPanelOutputs + 64 * half);
    }
  }
}

// raw[t][o] (+)= sum over the panel's `groups` k-groups of panel field * q[t], for T tokens whose activations
// (at this panel's first k) start at q, q + q_stride, ...
template <int T>
BITLINEAR_AVX512_TARGET inline void gemm_tile(const std::uint8_t* panel, std::size_t groups, const std::int8_t* q,
                                              std::size_t q_stride, bool first, std::int32_t* raw) {
  __m512i acc[T][2];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) {
    acc[t][0] = first ? _mm512_setzero_si512() : _mm512_load_si512(raw + t * kPanelOutputs);
    acc[t][1] = first ? _mm512_setzero_si512() : _mm512_load_si512(raw + t * kPanelOutputs + 16);
  }
  const std::int8_t* q_rows[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) q_rows[t] = q + static_cast<std::size_t>(t) * q_stride;
  for (std::size_t g = 0; g < groups; ++g) {
    const __m512i w0 = _mm512_load_si512(panel + g * 4 * kPanelOutputs);
    const __m512i w1 = _mm512_load_si512(panel + g * 4 * kPanelOutputs + 64);
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      std::int32_t four = 0;
      std::memcpy(&four, q_rows[t] + 4 * g, sizeof four);
      const __m512i qb = _mm512_set1_epi32(four);
      acc[t][0] = dpbusd(acc[t][0], w0, qb);
      acc[t][1] = dpbusd(acc[t][1], w1, qb);
    }
  }
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) {
    _mm512_store_si512(raw + t * kPanelOutputs, acc[t][0]);
    _mm512_store_si512(raw + t * kPanelOutputs + 16, acc[t][1]);
  }
}

BITLINEAR_AVX512_TARGET inline void gemm_tile_any(std::size_t tokens, const std::uint8_t* panel, std::size_t groups,
                                                  const std::int8_t* q, std::size_t q_stride, bool first,
                                                  std::int32_t* raw) {
  switch (tokens) {
    case 1: gemm_tile<1>(panel, groups, q, q_stride, first, raw); break;
    case 2: gemm_tile<2>(panel, groups, q, q_stride, first, raw); break;
    case 3: gemm_tile<3>(panel, groups, q, q_stride, first, raw); break;
    case 4: gemm_tile<4>(panel, groups, q, q_stride, first, raw); break;
    case 5: gemm_tile<5>(panel, groups, q, q_stride, first, raw); break;
    case 6: gemm_tile<6>(panel, groups, q, q_stride, first, raw); break;
    case 7: gemm_tile<7>(panel, groups, q, q_stride, first, raw); break;
    case 8: gemm_tile<8>(panel, groups, q, q_stride, first, raw); break;
    case 9: gemm_tile<9>(panel, groups, q, q_stride, first, raw); break;
    case 10: gemm_tile<10>(panel, groups, q, q_stride, first, raw); break;
    case 11: gemm_tile<11>(panel, groups, q, q_stride, first, raw); break;
    default: gemm_tile<12>(panel, groups, q, q_stride, first, raw); break;
  }
}

// Every token tile of a chunk of `chunk` tokens (activations from q, q + q_stride, ...) against the panel's
// `groups` k-groups: raw[t][o] (+)= panel . q[t] (first: the panel's sums start raw).
BITLINEAR_AVX512_INLINE void gemm_chunk_tiles(std::size_t chunk, const std::uint8_t* panel, std::size_t groups,
                                              const std::int8_t* q, std::size_t q_stride, bool first,
                                              std::int32_t* raw) {
  for (std::size_t t0 = 0; t0 < chunk; t0 += kTileTokens) {
    const std::size_t tokens = chunk - t0 < kTileTokens ? chunk - t0 : kTileTokens;
    gemm_tile_any(tokens, panel, groups, q + t0 * q_stride, q_stride, first, raw + t0 * kPanelOutputs);
  }
}

// y of outputs [n0, n0 + n_count) and tokens [c0, c0 + chunk) from their raw sums, 16 outputs at a time with
// the epilogue of Codes (codes.hpp).
template <class Codes>
BITLINEAR_AVX512_INLINE void store_chunk(const std::int32_t* raw, std::size_t c0, std::size_t chunk, std::size_t n0,
                                         std::size_t n_count, const ActivationsView& a, const Epilogue& e, float* y,
                                         std::size_t y_stride) {
  for (std::size_t t = 0; t < chunk; ++t) {
    const std::size_t token = c0 + t;
    float* y_row = y + token * y_stride;
    for (std::size_t v = 0; v * 16 < n_count; ++v) {
      store_outputs<Codes>(_mm512_load_si512(raw + t * kPanelOutputs + 16 * v), n_count - 16 * v, a.scale[token],
                           a.sum[token], e, n0 + 16 * v, y_row);
    }
  }
}

template <class Codes>
BITLINEAR_AVX512_TARGET inline void gemm(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                         std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  alignas(64) std::uint8_t panel[kPanelDepth / 4 * 4 * kPanelOutputs];  // 32 KiB
  alignas(64) std::int32_t raw[kChunkTokens * kPanelOutputs];          // 16.5 KiB
  const std::size_t row_blocks = w.row_bytes / 64;
  constexpr std::size_t panel_blocks = kPanelDepth / Codes::block_weights;
  for (std::size_t n0 = row_begin; n0 < row_end; n0 += kPanelOutputs) {
    const std::size_t n_count = row_end - n0 < kPanelOutputs ? row_end - n0 : kPanelOutputs;
    for (std::size_t c0 = 0; c0 < a.batch; c0 += kChunkTokens) {
      const std::size_t chunk = a.batch - c0 < kChunkTokens ? a.batch - c0 : kChunkTokens;
      for (std::size_t block0 = 0; block0 < row_blocks; block0 += panel_blocks) {
        const std::size_t blocks = row_blocks - block0 < panel_blocks ? row_blocks - block0 : panel_blocks;
        unpack_panel<Codes>(w, n0, n_count, block0, blocks, panel);
        const std::size_t groups = blocks * Codes::block_weights / 4;
        const std::int8_t* q = a.q + c0 * a.stride + block0 * Codes::block_weights;
        gemm_chunk_tiles(chunk, panel, groups, q, a.stride, block0 == 0, raw);
      }
      store_chunk<Codes>(raw, c0, chunk, n0, n_count, a, e, y, y_stride);
    }
  }
}

// --------------------------------------------------------------------------------------------------------------
// Avx512 GEMM for compact ternary weights (many tokens, compute bound). The register tiles
// and panel layout of gemm.hpp are reused as they are; only the panel unpacking differs:
//   16 rows x one 64-byte compact block are transposed as 16x16 dwords (transpose16x16_epi32) first, so that
//   column e holds bytes 4e..4e+3 of each row's block, row o in lane o; the byte-wise decode of
//   codes.hpp commutes with that byte permutation, so decoding column e gives, in field vector i, the
//   u8 fields of weights 64 i + 4e .. 64 i + 4e + 3 of row o in dword lane o: panel group 16 i + e of the block.
// A panel is kCompactPanelBlocks = 3 blocks (960 weights, 240 groups, 30 KiB). The row's last block contributes
// only its fields that start below in_features (activation rows are padded to a multiple of 512, not of 320).

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
        gemm_chunk_tiles(chunk, panel, groups, q, a.stride, block0 == 0, raw);
      }
      store_chunk<TernaryCodes>(raw, c0, chunk, n0, n_count, a, e, y, y_stride);
    }
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
