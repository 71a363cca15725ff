// bitlinear internal: the kernel table of each family, and which families this build has.
// A new family (a row) adds its table.hpp here, one case in kernel_table() and one in isa.hpp; a new format (a
// column) adds a WeightFormat (interface.hpp), a slot in grid_row() and its fallback (docs/design.md).
#pragma once
#include "../detail/internal_only.hpp"

#include <type_traits>

#include "../config.hpp"
#include "../isa.hpp"
#include "compact_fallback.hpp"
#include "interface.hpp"
#include "ref/grouped.hpp"
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
// family's ternary kernel (compact_fallback.hpp). Bound into the grid here, once. A Row may name its own
// decode_compact_row (a CompactRowDecoder); the scalar decode is used otherwise.
template <class Row, class = void>
struct NamesCompactDecoder : std::false_type {};
template <class Row>
struct NamesCompactDecoder<Row, std::void_t<decltype(Row::decode_compact_row)>> : std::true_type {};

template <class Row>
constexpr CompactRowDecoder compact_decoder() noexcept {
  if constexpr (NamesCompactDecoder<Row>::value) {
    return Row::decode_compact_row;
  } else {
    return &decode_compact_row_to_ternary;
  }
}

template <class Row>
inline void compact_via_ternary(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  compact_matmul_via_ternary(Row::ternary, compact_decoder<Row>(), w, a, row_begin, row_end, e, y, y_stride);
}

// The grouped columns. A family's Row may name ternary_grouped and binary_grouped (with grouped_gemm_min_batch),
// and ternary_compact_grouped; a slot it does not name gets the scalar reference (native = false), and compact
// grouped without a kernel of its own decodes to 2-bit rows for the family's ternary_grouped.
template <class Row, class = void>
struct NamesGrouped : std::false_type {};
template <class Row>
struct NamesGrouped<Row, std::void_t<decltype(Row::ternary_grouped)>> : std::true_type {};
template <class Row, class = void>
struct NamesCompactGrouped : std::false_type {};
template <class Row>
struct NamesCompactGrouped<Row, std::void_t<decltype(Row::ternary_compact_grouped)>> : std::true_type {};

template <class Row>
inline void compact_grouped_via_ternary(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                        std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  compact_matmul_via_ternary(Row::ternary_grouped, compact_decoder<Row>(), w, a, row_begin, row_end, e, y, y_stride,
                             &ref::grouped_matmul<TernaryCompact>);
}

template <class Row>
constexpr FormatKernels grouped_slot(WeightFormat format) noexcept {
  if constexpr (NamesGrouped<Row>::value) {
    if (format == WeightFormat::ternary_grouped) return {Row::ternary_grouped, 1, true, Row::grouped_gemm_min_batch};
    if (format == WeightFormat::binary_grouped) return {Row::binary_grouped, 1, true, Row::grouped_gemm_min_batch};
    if constexpr (NamesCompactGrouped<Row>::value) {
      return {Row::ternary_compact_grouped, 1, true, Row::grouped_gemm_min_batch};
    } else {
      return {&compact_grouped_via_ternary<Row>, 1, false, Row::grouped_gemm_min_batch};
    }
  } else {
    if (format == WeightFormat::ternary_grouped) return {&ref::grouped_matmul<Ternary>, 1, false, 0};
    if (format == WeightFormat::binary_grouped) return {&ref::grouped_matmul<Binary>, 1, false, 0};
    return {&ref::grouped_matmul<TernaryCompact>, 1, false, 0};
  }
}

// A family's row of the grid, every slot filled. `Row` (each family's table.hpp) names the family's kernels:
//   isa, absmax, quantize_row                 activation quantization
//   ternary, binary                           2-bit and 1-bit matmuls (always native)
//   ternary_compact, native_compact           1.6-bit matmul, and false if there is none (nullptr): the shared
//                                             fallback is bound instead (a flag, not a pointer test: comparing a
//                                             function's address is no constant expression under GCC's UBSan)
//   decode_compact_row (optional)             the fallback's 1.6-bit -> 2-bit row decode (scalar if not named)
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
           : FormatKernels{&compact_via_ternary<Row>, 1, false, Row::gemm_min_batch},
       grouped_slot<Row>(WeightFormat::ternary_grouped), grouped_slot<Row>(WeightFormat::binary_grouped),
       grouped_slot<Row>(WeightFormat::ternary_compact_grouped)}};
  return row;
}

// The row of a runnable family (callers resolve Isa::automatic and check support first). Naming a row's
// kernels is what makes a translation unit compile them, so this switch is where the compile time of every
// kernel family goes; kernel_table() below decides which translation units pay it.
inline const KernelTable& grid_dispatch(Isa isa) noexcept {
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

// Header-only (the default): every translation unit that runs a layer compiles every family's kernels (about
// 25 s of -O2 per translation unit with GCC 12) and the linker keeps one copy. With BITLINEAR_SEPARATE_KERNELS
// defined to 1 in every translation unit of a program, kernel_table() is only declared here and one
// translation unit defines it by including <bitlinear/kernels_definition.hpp> (docs/build-time.md): the
// kernels compile once, with that unit's flags. Numbers do not change: the same code, one copy either way.
#if BITLINEAR_SEPARATE_KERNELS
const KernelTable& kernel_table(Isa isa) noexcept;
#else
inline const KernelTable& kernel_table(Isa isa) noexcept { return grid_dispatch(isa); }
#endif

}  // namespace detail
BITLINEAR_NAMESPACE_END
