// bitlinear internal: the scalar family's row of the kernel grid.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../interface.hpp"
#include "grouped.hpp"
#include "matmul.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::ref {

// The scalar row of the kernel grid (grid.hpp): every format native, canonical layouts.
struct Row {
  static constexpr Isa isa = Isa::scalar;
  static constexpr AbsmaxKernel absmax = &ref::absmax;
  static constexpr QuantizeRowKernel quantize_row = &ref::quantize_row;
  static constexpr MatmulKernel ternary = &ternary_matmul;
  static constexpr MatmulKernel binary = &binary_matmul;
  static constexpr MatmulKernel ternary_compact = &compact_matmul;
  static constexpr bool native_compact = true;
  static constexpr std::size_t layout_rows = 1;
  // One plain loop for every batch: no GEMV/GEMM switch.
  static constexpr std::size_t gemm_min_batch = 0;
  static constexpr std::size_t compact_gemm_min_batch = 0;
  static constexpr MatmulKernel ternary_grouped = &grouped_matmul<Ternary>;
  static constexpr MatmulKernel binary_grouped = &grouped_matmul<Binary>;
  static constexpr MatmulKernel ternary_compact_grouped = &grouped_matmul<TernaryCompact>;
  static constexpr std::size_t grouped_gemm_min_batch = 0;
};

}  // namespace detail::ref
BITLINEAR_NAMESPACE_END
