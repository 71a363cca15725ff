// The GGUF block types against literal transcriptions of ggml's reference dequantizers (written here from the
// layouts in ggml-quants.c, not shared with the library): every weight's value code * d, the padding of the
// canonical rows, the compact form of TQ1_0, and the exact fp16 conversion of every fp16 value.
#include <bitlinear/fp16.hpp>
#include <bitlinear/io/gguf_blocks.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "ggml_reference.hpp"
#include "test_util.hpp"

namespace {

using bitlinear::GgufBlockType;
using ggml_reference::dequantize_reference;
using ggml_reference::fp16_by_definition;
using ggml_reference::random_row;

TEST(Fp16, EveryValueConvertsExactly) {
  for (std::uint32_t h = 0; h <= 0xffff; ++h) {
    const float got = bitlinear::fp16_to_float(static_cast<std::uint16_t>(h));
    const float want = fp16_by_definition(static_cast<std::uint16_t>(h));
    if (bitlinear_test::is_nan(want)) {
      ASSERT_TRUE(bitlinear_test::is_nan(got)) << h;
    } else {
      ASSERT_TRUE(bitlinear_test::same_bits(got, want)) << "fp16 0x" << std::hex << h << ": " << got << " vs " << want;
    }
  }
}

class GgufBlocks : public ::testing::TestWithParam<GgufBlockType> {};

TEST_P(GgufBlocks, DecodedCodesTimesScalesAreGgmlsValues) {
  const GgufBlockType type = GetParam();
  const auto info = bitlinear::gguf_block_info(type);
  std::mt19937 rng(static_cast<unsigned>(info.ggml_type));
  for (std::size_t blocks : {1, 2, 3, 4, 5, 7, 9, 16}) {
    const std::size_t n = blocks * info.block_weights;
    const auto bytes = random_row(type, n, rng);
    const auto want = dequantize_reference(type, bytes, n);
    const std::size_t row_bytes = info.binary ? bitlinear::Binary::packed_row_bytes(n) : bitlinear::Ternary::packed_row_bytes(n);
    std::vector<std::uint8_t> row(row_bytes, 0xAA);
    std::vector<float> scales(blocks, NAN);
    bitlinear::decode_gguf_row(type, bytes.data(), n, row.data(), scales.data());
    for (std::size_t k = 0; k < n; ++k) {
      const int code = info.binary ? bitlinear::Binary::code_at(row.data(), k) : bitlinear::Ternary::code_at(row.data(), k);
      const float got = static_cast<float>(code) * scales[k / info.block_weights];
      ASSERT_EQ(got, want[k]) << info.name << " n=" << n << " weight " << k << " code " << code;
    }
    // Padding up to the canonical block: the padding code (ternary 0, binary bit clear).
    const std::size_t canonical = info.binary ? 512 : 256;
    for (std::size_t k = n; k % canonical != 0; ++k) {
      if (info.binary) {
        ASSERT_EQ(bitlinear::Binary::code_at(row.data(), k), -1) << k;
      } else {
        ASSERT_EQ(bitlinear::Ternary::code_at(row.data(), k), 0) << k;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GgufBlocks,
                         ::testing::Values(GgufBlockType::tq1_0, GgufBlockType::tq2_0, GgufBlockType::q1_0,
                                           GgufBlockType::q2_0),
                         [](const ::testing::TestParamInfo<GgufBlockType>& p) {
                           return std::string(bitlinear::gguf_block_info(p.param).name);
                         });

TEST(GgufBlocks, Tq1CompactRowsHoldTheSameCodes) {
  std::mt19937 rng(7);
  for (std::size_t blocks : {1, 2, 3, 5, 10}) {
    const std::size_t n = blocks * 256;
    const auto bytes = random_row(GgufBlockType::tq1_0, n, rng);
    std::vector<std::uint8_t> two_bit(bitlinear::Ternary::packed_row_bytes(n));
    std::vector<std::uint8_t> compact(bitlinear::TernaryCompact::packed_row_bytes(n));
    std::vector<float> s1(blocks), s2(blocks);
    bitlinear::decode_gguf_row(GgufBlockType::tq1_0, bytes.data(), n, two_bit.data(), s1.data());
    bitlinear::decode_gguf_row_compact(bytes.data(), n, compact.data(), s2.data());
    for (std::size_t b = 0; b < blocks; ++b) ASSERT_TRUE(bitlinear_test::same_bits(s1[b], s2[b]));
    for (std::size_t k = 0; k < n; ++k) {
      ASSERT_EQ(bitlinear::TernaryCompact::code_at(compact.data(), k), bitlinear::Ternary::code_at(two_bit.data(), k)) << k;
    }
    for (std::size_t k = n; k % 320 != 0; ++k) ASSERT_EQ(bitlinear::TernaryCompact::code_at(compact.data(), k), 0);
    for (std::uint8_t byte : compact) ASSERT_TRUE(bitlinear::TernaryCompact::valid_byte(byte));
  }
}

TEST(GgufBlocks, RowLengthsThatAreNotWholeBlocksAreRefused) {
  EXPECT_THROW(bitlinear::gguf_block_row_bytes(GgufBlockType::tq2_0, 255), std::invalid_argument);
  EXPECT_THROW(bitlinear::gguf_block_row_bytes(GgufBlockType::q2_0, 0), std::invalid_argument);
  EXPECT_THROW(bitlinear::gguf_block_row_bytes(GgufBlockType::q1_0, 64), std::invalid_argument);
  try {
    bitlinear::gguf_block_row_bytes(GgufBlockType::q1_0, 200);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of its block of 128"), std::string::npos) << e.what();
  }
  EXPECT_EQ(bitlinear::gguf_block_row_bytes(GgufBlockType::tq1_0, 512), 108u);
  EXPECT_EQ(bitlinear::gguf_block_row_bytes(GgufBlockType::q2_0, 192), 54u);
}

}  // namespace
