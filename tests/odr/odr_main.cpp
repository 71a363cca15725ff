// Two translation units built with different -m flags, linked into one program, BITLINEAR_ISA=scalar.
// Each TU's inline code sits in its own ABI namespace (config.hpp), so the linker cannot substitute the SIMD
// build of a helper for the baseline one; both compute the same bits.
#include <gtest/gtest.h>

#include <bitlinear/bitlinear.hpp>

#include <cstring>

#include "odr_tu.hpp"

TEST(OneDefinitionRule, TranslationUnitsWithDifferentFlagsKeepTheirOwnCopies) {
  ASSERT_EQ(bitlinear::active_isa(), "scalar") << "run with BITLINEAR_ISA=scalar";
  const TranslationUnitReport simd = report_from_simd_flags_tu();
  const TranslationUnitReport plain = report_from_plain_tu();
  EXPECT_NE(simd.quantize_row_address, plain.quantize_row_address) << "inline helpers were merged across flag sets";
  EXPECT_NE(simd.layer_type_name, plain.layer_type_name);
  ASSERT_EQ(simd.ternary_y.size(), plain.ternary_y.size());
  EXPECT_EQ(std::memcmp(simd.ternary_y.data(), plain.ternary_y.data(), simd.ternary_y.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(simd.binary_y.data(), plain.binary_y.data(), simd.binary_y.size() * sizeof(float)), 0);
}
