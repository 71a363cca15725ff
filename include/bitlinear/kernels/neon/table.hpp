// bitlinear internal: the kernel tables of the aarch64 families `neon` (ARMv8.0-A Advanced SIMD) and
// `neon_dotprod` (plus SDOT). Both quantize activations with the same NEON code; they differ in their matmuls.
// A layer stores its weights in groups of 4 rows interleaved block by block (interface.hpp). A matmul call with
// one token runs the GEMV loops of gemv.hpp (weights read straight from the layout, the four rows of a group
// sharing each activation load); larger batches run the GEMM of gemm.hpp (weight panel unpacked once per chunk
// and reused across tokens). Both read any layout and any row range exactly.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <cstddef>
#include <cstdint>

#include "../../format.hpp"
#include "../interface.hpp"
#include "target.hpp"
#include "gemv.hpp"
#include "gemm.hpp"
#include "grouped.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

// Batch 1 runs the GEMV; from 2 tokens on the GEMM reads every weight once for all tokens (a GEMV per token
// would stream the layer once per token: docs/neon.md).
inline constexpr std::size_t gemm_min_batch = 2;

// Rows (1 to 4) of one run of one token: field or bit dot products. ROW_STEP: 0, or run.row_step as a constant.
template <class Format, bool DOTPROD, int ROWS, std::size_t ROW_STEP = 0>
inline void gemv_rows(const RowRun& run, const std::int8_t* q, std::int32_t* dots) noexcept {
  if constexpr (Format::bits_per_weight == 2) {
    if constexpr (DOTPROD) {
      ternary_gemv_dotprod<ROWS, ROW_STEP>(run, q, dots);
    } else {
      ternary_gemv_neon<ROWS, ROW_STEP>(run, q, dots);
    }
  } else {
    if constexpr (DOTPROD) {
      binary_gemv_dotprod<ROWS, ROW_STEP>(run, q, dots);
    } else {
      binary_gemv_neon<ROWS, ROW_STEP>(run, q, dots);
    }
  }
}

// GEMV over every token of `a` (any batch; matmul() uses it for batch 1). Rows go in calls of up to 4 that never
// cross a group of the layout (PackedWeightsView::run_end), so in the family's layout (groups of 4) each call
// reads one group as one linear stream and the range is one pass over memory.
template <class Format, bool DOTPROD>
inline void gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                 const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  const std::size_t distance = prefetch_distance(w);
  for (std::size_t t = 0; t < a.batch; ++t) {
    const std::int8_t* q = a.q + t * a.stride;
    float* y_row = y + t * y_stride;
    for (std::size_t j = row_begin; j < row_end;) {
      std::size_t rows = row_end - j < 4 ? row_end - j : 4;
      if (rows > w.run_end(j) - j) rows = w.run_end(j) - j;
      RowRun run{w.row(j), w.row_step(), w.block_step(j), blocks, 0};
      run.prefetch_offset = prefetch_within(w, run.rows + (rows - 1) * run.row_step + (blocks - 1) * run.block_step,
                                            distance);
      std::int32_t dots[4];
      switch (rows) {
        case 1: gemv_rows<Format, DOTPROD, 1>(run, q, dots); break;
        case 2: gemv_rows<Format, DOTPROD, 2>(run, q, dots); break;
        case 3: gemv_rows<Format, DOTPROD, 3>(run, q, dots); break;
        default:
          // A whole interleaved group: the row step as a constant frees the address registers (docs/neon.md).
          if (run.row_step == packed_block_bytes) {
            gemv_rows<Format, DOTPROD, 4, packed_block_bytes>(run, q, dots);
          } else {
            gemv_rows<Format, DOTPROD, 4>(run, q, dots);
          }
          break;
      }
      for (std::size_t r = 0; r < rows; ++r) {
        if constexpr (Format::bits_per_weight == 2) {
          y_row[j + r] = ternary_output(dots[r] - a.sum[t], a.scale[t], e, j + r);  // dots = sum (code + 1) * q
        } else {
          y_row[j + r] = binary_output(2 * dots[r] - a.sum[t], a.scale[t], e, j + r);  // dots = sum bit * q
        }
      }
      j += rows;
    }
  }
}

template <class Format, bool DOTPROD>
inline void matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                   const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch < gemm_min_batch) {
    gemv<Format, DOTPROD>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    gemm<Format, DOTPROD>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

// Rows per group of the layout a layer stores: the rows one batch-1 GEMV call reads side by side (and one GEMM
// panel), so a layer is one linear stream.
inline constexpr std::size_t layout_group_rows = 4;

// The grid rows (grid.hpp) of the two families. The 2-bit and 1-bit formats are stored in groups of
// layout_group_rows rows; the compact format stays canonical (its kernels decode whole blocks: gemv.hpp).
template <bool DOTPROD>
struct FamilyRow {
  static constexpr Isa isa = DOTPROD ? Isa::neon_dotprod : Isa::neon;
  static constexpr AbsmaxKernel absmax = &neon::absmax;
  static constexpr QuantizeRowKernel quantize_row = &neon::quantize_row;
  static constexpr MatmulKernel ternary = &matmul<Ternary, DOTPROD>;
  static constexpr MatmulKernel binary = &matmul<Binary, DOTPROD>;
  static constexpr MatmulKernel ternary_compact = &compact_matmul<DOTPROD, &matmul<Ternary, DOTPROD>>;
  static constexpr bool native_compact = true;
  static constexpr std::size_t layout_rows = layout_group_rows;
  static constexpr std::size_t gemm_min_batch = neon::gemm_min_batch;
  static constexpr std::size_t compact_gemm_min_batch = neon::compact_gemm_min_batch;
  // Grouped formats (grouped.hpp), canonical layout; compact grouped decodes its codes into the GEMM's panel
  // with the compact GEMV's TBL decoder, at every batch size.
  static constexpr MatmulKernel ternary_grouped =
      DOTPROD ? &grouped_matmul_dotprod<Ternary> : &grouped_matmul_neon<Ternary>;
  static constexpr MatmulKernel binary_grouped = DOTPROD ? &grouped_matmul_dotprod<Binary> : &grouped_matmul_neon<Binary>;
  static constexpr MatmulKernel ternary_compact_grouped =
      DOTPROD ? &grouped_matmul_dotprod<TernaryCompact> : &grouped_matmul_neon<TernaryCompact>;
  static constexpr std::size_t grouped_gemm_min_batch = neon::grouped_gemm_min_batch;
};
using Row = FamilyRow<false>;
using DotprodRow = FamilyRow<true>;

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
