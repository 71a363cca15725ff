// bitlinear internal: the avx512 matmul entry points and the avx512 rows of the kernel grid.
#pragma once
#include "../../detail/internal_only.hpp"

// the avx512 matmul entry points: GEMV for small batches, GEMM (packed panels, register
// tiles) from gemm_min_batch tokens on.
#include "../avx2/gemv.hpp"  // decode_compact_row_avx2, the fallback's decode (avx512 implies AVX2)
#include "../interface.hpp"
#include "codes.hpp"
#include "gemm.hpp"
#include "gemv.hpp"
#include "grouped.hpp"
#include "target.hpp"
#include "quantize.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

// From this many tokens on, unpacking panels and register tiles beat re-reading the packed rows per 4 tokens
// (measured with bench/avx512_micro_bench.cpp, see docs/avx512.md).
inline constexpr std::size_t gemm_min_batch = 64;

template <class Codes>
BITLINEAR_AVX512_TARGET inline void matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= gemm_min_batch) {
    gemm<Codes>(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    gemv<Codes>(w, a, row_begin, row_end, e, y, y_stride);
  }
}

// --------------------------------------------------------------------------------------------------------------
// The avx512 compact ternary matmul (GEMV below gemm_min_batch tokens, GEMM from there on, as
// the 2-bit matmul above does), the avx512_vbmi row's compact slot (table.hpp); the avx512 row, without VBMI,
// binds the shared fallback there (grid.hpp).

inline void compact_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (a.batch >= gemm_min_batch) {
    compact_gemm(w, a, row_begin, row_end, e, y, y_stride);
  } else {
    compact_gemv(w, a, row_begin, row_end, e, y, y_stride);
  }
}

// --------------------------------------------------------------------------------------------------------------
// The avx512 families' rows of the kernel grid (AVX-512 F/BW/VL + VNNI, and + VBMI).

// The avx512 rows of the kernel grid (grid.hpp). Weights in the canonical layout (group rows 1): the GEMV reads
// each row set from several streams, each one linear run of canonical rows (gemv.hpp). Without VBMI (Row) the
// 1.6-bit format takes the shared fallback; with it (VbmiRow, Isa::avx512_vbmi) its own kernel.
struct Row {
  static constexpr Isa isa = Isa::avx512;
  static constexpr AbsmaxKernel absmax = &avx512::absmax;
  static constexpr QuantizeRowKernel quantize_row = &avx512::quantize_row;
  static constexpr MatmulKernel ternary = &matmul<TernaryCodes>;
  static constexpr MatmulKernel binary = &matmul<BinaryCodes>;
  static constexpr MatmulKernel ternary_compact = nullptr;
  static constexpr bool native_compact = false;
  static constexpr std::size_t layout_rows = 1;
  static constexpr std::size_t gemm_min_batch = avx512::gemm_min_batch;
  static constexpr std::size_t compact_gemm_min_batch = avx512::gemm_min_batch;
  // The shared fallback decodes 1.6-bit rows with avx2's SIMD decode (AVX-512 CPUs all have AVX2: isa.hpp).
  static constexpr CompactRowDecoder decode_compact_row = &avx2::decode_compact_row_avx2;
  // Grouped formats (grouped.hpp): native 2-bit and 1-bit; compact grouped takes the grid's decode-to-2-bit
  // fallback into ternary_grouped (grid.hpp) here, its own VBMI kernel in VbmiRow.
  static constexpr MatmulKernel ternary_grouped = &grouped_matmul<GroupedTernaryFields>;
  static constexpr MatmulKernel binary_grouped = &grouped_matmul<GroupedBinaryFields>;
  static constexpr std::size_t grouped_gemm_min_batch = avx512::grouped_gemm_min_batch;
};

struct VbmiRow : Row {
  static constexpr Isa isa = Isa::avx512_vbmi;
  static constexpr MatmulKernel ternary_compact = &compact_matmul;
  static constexpr bool native_compact = true;
  // grouped.hpp (VBMI decode)
  static constexpr MatmulKernel ternary_compact_grouped = &grouped_matmul<GroupedCompactFields>;
};

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
