// bitlinear internal: the avx512 family's kernel table (AVX-512 F/BW/VL + VNNI).
#pragma once
#include "../../detail/internal_only.hpp"

#include "../interface.hpp"
#include "compact_matmul.hpp"
#include "matmul.hpp"
#include "quantize.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline const KernelTable& kernel_table() noexcept {
  // Weights in the canonical layout (group rows 1): the GEMV reads each row set from several streams, each one
  // linear run of canonical rows (gemv.hpp).
  static constexpr KernelTable table{Isa::avx512,     &absmax, &quantize_row, &ternary_matmul,
                                     &binary_matmul,  1,       1};
  static const KernelTable with_compact = with_compact_kernels(table);  // runtime: needs VBMI
  return with_compact;
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
