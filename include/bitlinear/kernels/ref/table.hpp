// bitlinear internal: the scalar family's kernel table.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../interface.hpp"
#include "compact.hpp"
#include "matmul.hpp"
#include "quantize.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::ref {

inline const KernelTable& kernel_table() noexcept {
  static constexpr KernelTable table{Isa::scalar,    &absmax, &quantize_row, &ternary_matmul, &binary_matmul, 1, 1,
                                     &compact_matmul, 1};
  return table;
}

}  // namespace detail::ref
BITLINEAR_NAMESPACE_END
