// bitlinear internal: the avxvnni family (AVX2 + VEX-encoded AVX-VNNI, Alder Lake, Zen 5): the avx2 family
// (avx2/table.hpp) with vpdpbusd in the GEMV multiply-accumulate and the GEMM register tile; quantization,
// panels, drivers and epilogue are avx2's.
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>

#include "../../config.hpp"
#include "../avx2/table.hpp"
#include "../interface.hpp"
#include "gemm.hpp"
#include "gemv.hpp"
#include "grouped.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avxvnni {

struct Family {
  static constexpr Isa isa = Isa::avxvnni;
  using Mac = DpbusdMac;
  using Tile = DpbusdTile;
  static constexpr std::size_t gemm_min_batch = 9;  // the GEMV (two passes of 4 tokens) is faster up to 8
  // Every field in place (no shift): ternary 2 rows x 4 accumulators (at batch > 1: 2 tokens x 4), binary 1 row
  // x 8 (+ one mask per field; one token at a time).
  static constexpr avx2::GemvShape gemv_shape(int bits_per_weight) {
    return bits_per_weight == 2 ? avx2::GemvShape{2, 4, 2} : avx2::GemvShape{1, 8, 1};
  }
  static constexpr MatmulKernel compact_gemv = &avx2::compact_gemv_avxvnni;  // avx2/gemv.hpp
  static constexpr MatmulKernel ternary_grouped = &avxvnni::ternary_grouped_matmul;  // grouped.hpp
  static constexpr MatmulKernel binary_grouped = &avxvnni::binary_grouped_matmul;
  static constexpr std::size_t grouped_gemm_min_batch = avxvnni::grouped_gemm_min_batch;
};

using Row = avx2::FamilyRow<Family>;

}  // namespace detail::avxvnni
BITLINEAR_NAMESPACE_END
