// bitlinear internal: the kernel table of each family, and which families this build has.
// A new family (a row) adds its table.hpp here, one case in kernel_table() and one in isa.hpp; a new format (a
// column) adds a WeightFormat (interface.hpp), a slot in grid_row() and its fallback (docs/design.md).
#pragma once
#include "../detail/internal_only.hpp"

#include "../config.hpp"
#include "../isa.hpp"
#include "compact_fallback.hpp"
#include "interface.hpp"
#include "ref/table.hpp"
#if BITLINEAR_ARCH_X86_64
#include "../detail/x86_intrinsics.hpp"  // before the kernels: clang-cl needs it
#include "avx2/table.hpp"
#include "avxvnni/table.hpp"
#include "avx512/table.hpp"
#endif
#if BITLINEAR_ARCH_AARCH64
#include "neon/table.hpp"
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// The shared fallback for a family without a compact kernel of its own: decode to 2-bit rows and run the
// family's ternary kernel (compact_fallback.hpp). Bound into the grid here, once.
template <class Row>
inline void compact_via_ternary(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  compact_matmul_via_ternary(Row::ternary, w, a, row_begin, row_end, e, y, y_stride);
}

// A family's row of the grid, every slot filled. `Row` (each family's table.hpp) names the family's kernels:
//   isa, absmax, quantize_row                 activation quantization
//   ternary, binary                           2-bit and 1-bit matmuls (always native)
//   ternary_compact, native_compact           1.6-bit matmul, and false if there is none (nullptr): the shared
//                                             fallback is bound instead (a flag, not a pointer test: comparing a
//                                             function's address is no constant expression under GCC's UBSan)
//   layout_rows                               group rows of the 2-bit and 1-bit execution layouts
//   gemm_min_batch, compact_gemm_min_batch    where the GEMM path takes over from the GEMV (FormatKernels)
// Every family stores the compact format in the canonical layout (group rows 1).
template <class Row>
inline const KernelTable& grid_row() noexcept {
  static constexpr KernelTable row{
      Row::isa,
      Row::absmax,
      Row::quantize_row,
      {FormatKernels{Row::ternary, Row::layout_rows, true, Row::gemm_min_batch},
       FormatKernels{Row::binary, Row::layout_rows, true, Row::gemm_min_batch},
       Row::native_compact
           ? FormatKernels{Row::ternary_compact, 1, true, Row::compact_gemm_min_batch}
           : FormatKernels{&compact_via_ternary<Row>, 1, false, Row::gemm_min_batch}}};
  return row;
}

// The row of a runnable family (callers resolve Isa::automatic and check support first).
inline const KernelTable& kernel_table(Isa isa) noexcept {
  switch (isa) {
#if BITLINEAR_ARCH_X86_64
    case Isa::avx2: return grid_row<avx2::Row>();
    case Isa::avxvnni: return grid_row<avxvnni::Row>();
    case Isa::avx512: return grid_row<avx512::Row>();
    case Isa::avx512_vbmi: return grid_row<avx512::VbmiRow>();
#endif
#if BITLINEAR_ARCH_AARCH64
    case Isa::neon: return grid_row<neon::Row>();
    case Isa::neon_dotprod: return grid_row<neon::DotprodRow>();
#endif
    default: return grid_row<ref::Row>();
  }
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
