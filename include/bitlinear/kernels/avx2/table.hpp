// bitlinear internal: the kernel tables of the AVX2-class families, one template for both: a family
// (avx2 below, avxvnni in avxvnni/table.hpp) names its GEMV multiply-accumulate (Mac, avx2/gemv.hpp), its
// GEMM register tile (Tile), the batch from which the GEMM takes over, and the shape of its GEMV (gemv_shape).
// Layers keep the canonical layout: the batch-1 GEMV reads it as gemv_shape().rows streams side by side (gemv.hpp).
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>

#include "../../activations.hpp"
#include "../../config.hpp"
#include "../../format.hpp"
#include "../interface.hpp"
#include "gemv.hpp"
#include "gemm.hpp"
#include "grouped.hpp"
#include "quantize.hpp"
#include "target.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

// The GEMV row kernel's rows per run (= the layout's group size) and fields per shift (gemv.hpp).
struct GemvShape {
  int rows;    // rows per run at batch 1 (= the layout's group size)
  int span;    // fields per shift
  int tokens;  // tokens per call of one row at batch > 1
};

template <class Format, class Family>
BITLINEAR_AVX2_TARGET
inline void matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                   const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= Family::gemm_min_batch) {
    gemm<Format, typename Family::Tile>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    constexpr GemvShape shape = Family::gemv_shape(Format::bits_per_weight);
    gemv<Format, typename Family::Mac, shape.rows, shape.span, shape.tokens>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

// The grid row (grid.hpp) of an AVX2-class family: every format native, canonical layouts (the batch-1 GEMV
// reads them as streams: gemv.hpp).
template <class Family>
struct FamilyRow {
  static constexpr Isa isa = Family::isa;
  static constexpr AbsmaxKernel absmax = &avx2::absmax;
  static constexpr QuantizeRowKernel quantize_row = &avx2::quantize_row;
  static constexpr MatmulKernel ternary = &matmul<Ternary, Family>;
  static constexpr MatmulKernel binary = &matmul<Binary, Family>;
  static constexpr MatmulKernel ternary_compact = &compact_matmul<Family::compact_gemv, &matmul<Ternary, Family>>;
  static constexpr bool native_compact = true;
  static constexpr std::size_t layout_rows = 1;
  static constexpr std::size_t gemm_min_batch = Family::gemm_min_batch;
  static constexpr std::size_t compact_gemm_min_batch = avx2::compact_gemm_min_batch;
  // Grouped formats (grouped.hpp): native 2-bit and 1-bit; compact grouped takes the grid's decode-to-2-bit
  // fallback into ternary_grouped (grid.hpp), with the SIMD decode of gemv.hpp.
  static constexpr CompactRowDecoder decode_compact_row = &decode_compact_row_avx2;
  static constexpr MatmulKernel ternary_grouped = Family::ternary_grouped;
  static constexpr MatmulKernel binary_grouped = Family::binary_grouped;
  static constexpr std::size_t grouped_gemm_min_batch = Family::grouped_gemm_min_batch;
};

struct Family {
  static constexpr Isa isa = Isa::avx2;
  using Mac = MaddubsMac;
  using Tile = MaddubsTile;
  // Batches from this size on take the GEMM (panel unpacked once, reused across tokens); smaller ones the GEMV,
  // which reads the weights once per 4 tokens and streams them (measured: docs/avx2.md).
  static constexpr std::size_t gemm_min_batch = 5;
  // Field pairs, 2 rows (at batch > 1: 3 tokens) x (2 int16 + 1 int32) accumulators, 2 masks and the
  // temporaries fit the 16 ymm registers.
  static constexpr GemvShape gemv_shape(int /*bits_per_weight*/) { return {2, 2, 3}; }
  static constexpr MatmulKernel compact_gemv = &compact_gemv_avx2;  // gemv.hpp
  static constexpr MatmulKernel ternary_grouped = &avx2::ternary_grouped_matmul;  // grouped.hpp
  static constexpr MatmulKernel binary_grouped = &avx2::binary_grouped_matmul;
  static constexpr std::size_t grouped_gemm_min_batch = avx2::grouped_gemm_min_batch;
};

using Row = FamilyRow<Family>;

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
