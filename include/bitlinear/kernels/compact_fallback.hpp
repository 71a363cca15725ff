// bitlinear internal: compact ternary matmul for a kernel family without compact kernels of its own: decode a
// chunk of rows to canonical 2-bit rows (format.hpp) in a stack buffer and run the family's ternary_matmul on
// them. Exact by construction (the same codes reach an exact ternary kernel), and as fast as that kernel plus
// one decode per weight per call (a SIMD decode on the x86 families): good for prefill batches, slower than a
// real compact GEMV at batch 1.
#pragma once
#include "../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "../format.hpp"
#include "../format_compact.hpp"
#include "interface.hpp"
#include "ref/matmul.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Writes canonical 2-bit row `out` (Ternary::packed_row_bytes(w.in_features) bytes) from row j of the compact
// execution layout `w`. Compact field f of block b is the 64 weights from k0 = 320 b + 64 f: in the 2-bit format
// they fill field (k0 % 256) / 64 of 2-bit block k0 / 256, byte for byte (both formats put weight k0 + i in byte i).
inline void decode_compact_row_to_ternary(const PackedWeightsView& w, std::size_t j, std::uint8_t* out) noexcept {
  const std::size_t out_bytes = Ternary::packed_row_bytes(w.in_features);
  for (std::size_t i = 0; i < out_bytes; ++i) out[i] = Ternary::zero_byte;
  const std::uint8_t* row = w.row(j);
  const std::size_t step = w.block_step(j);
  for (std::size_t b = 0; b * TernaryCompact::weights_per_block < w.in_features; ++b) {
    const std::uint8_t* block = row + b * step;
    for (unsigned f = 0; f < 5; ++f) {
      const std::size_t k0 = b * TernaryCompact::weights_per_block + 64 * f;
      if (k0 >= w.in_features) break;  // the rest is padding, already code 0
      std::uint8_t* dst = out + k0 / 256 * 64;
      const unsigned shift = static_cast<unsigned>(k0 % 256 / 64 * 2);
      const auto keep = static_cast<std::uint8_t>(~(3u << shift));
      for (std::size_t i = 0; i < 64; ++i) {
        dst[i] = static_cast<std::uint8_t>((dst[i] & keep) | (compact_table.fields[block[i]][f] << shift));
      }
    }
  }
}

// A family's decode of row j of the compact layout into a canonical 2-bit row (the contract of
// decode_compact_row_to_ternary above; the SIMD families bring their own, the scalar one is the reference).
using CompactRowDecoder = void (*)(const PackedWeightsView& w, std::size_t j, std::uint8_t* out) noexcept;

// The MatmulKernel contract for compact weights, through `ternary` (a family's ternary_matmul). No allocation:
// rows are decoded into a stack buffer in chunks of up to 32. A row longer than the whole buffer (in_features >
// 131072, far beyond today's models) runs the scalar reference instead, which reads the compact bytes directly:
// the same exact result, slower, and still no allocation (forward_quantized has no workspace to borrow).
// `decode_row` is the family's decoder; `long_rows` (default: the per-tensor scalar reference) runs the rows that
// do not fit; grouped formats pass their own reference. The Epilogue's per-row pointers are shifted with the chunk.
inline void compact_matmul_via_ternary(MatmulKernel ternary, CompactRowDecoder decode_row, const PackedWeightsView& w,
                                       const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                                       const Epilogue& e, float* y, std::size_t y_stride,
                                       MatmulKernel long_rows = &ref::compact_matmul) noexcept {
  constexpr std::size_t kStackBytes = 32 * 1024;
  constexpr std::size_t kMaxRows = 32;
  const std::size_t row_bytes = Ternary::packed_row_bytes(w.in_features);
  const std::size_t chunk = kStackBytes / row_bytes < kMaxRows ? kStackBytes / row_bytes : kMaxRows;
  if (chunk == 0) {
    long_rows(w, a, row_begin, row_end, e, y, y_stride);
    return;
  }
  alignas(64) std::uint8_t buffer[kStackBytes];
  for (std::size_t j0 = row_begin; j0 < row_end; j0 += chunk) {
    const std::size_t rows = row_end - j0 < chunk ? row_end - j0 : chunk;
    for (std::size_t r = 0; r < rows; ++r) decode_row(w, j0 + r, buffer + r * row_bytes);
    const PackedWeightsView decoded{buffer, rows, w.in_features, row_bytes, 1};
    Epilogue shifted = e;
    shifted.bias = e.bias + j0;
    if (e.group_scale != nullptr) shifted.group_scale = e.group_scale + j0 * e.groups_per_row;
    ternary(decoded, a, 0, rows, shifted, y + j0, y_stride);
  }
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
