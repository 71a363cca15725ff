// The byte-wise GGUF row converters (gguf_repack.hpp, what decode_gguf_row runs for TQ2_0, Q2_0 and Q1_0) against
// the decoder by fields (every weight's field, then packed): the same canonical bytes, padding included, and the
// same scale bits, on random bytes (every code, every fp16 pattern including NaN and infinities), row lengths that
// end inside a canonical block, and source and destination pointers at every byte offset. Q2_0 with 128 weights
// per block (PrismML's PQ2_0 layout) is also checked against the same codes split into two 64-weight blocks.
#include <bitlinear/io/gguf_blocks.hpp>
#include <bitlinear/io/gguf_repack.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace {

using bitlinear::GgufBlockType;

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937& rng) {
  std::vector<std::uint8_t> bytes(n);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  return bytes;
}

// Output rows start as a byte the converters never write everywhere (0xAA is a valid field pattern, so a byte
// left unwritten shows up as a difference from the reference, which is written from another fill).
struct Converted {
  std::vector<std::uint8_t> row;
  std::vector<std::uint32_t> scale_bits;
};

template <class Convert>
Converted convert_at(std::size_t row_bytes, std::size_t scales, std::size_t offset, std::uint8_t fill, Convert convert) {
  std::vector<std::uint8_t> row(row_bytes + offset, fill);
  std::vector<float> scale_storage(scales + 1, -1.0f);
  // A float array at an odd address is not allowed; the row itself goes to every offset.
  convert(row.data() + offset, scale_storage.data() + offset % 2);
  Converted out;
  out.row.assign(row.begin() + static_cast<std::ptrdiff_t>(offset), row.end());
  for (std::size_t g = 0; g < scales; ++g) {
    std::uint32_t bits;
    std::memcpy(&bits, &scale_storage[offset % 2 + g], 4);
    out.scale_bits.push_back(bits);
  }
  return out;
}

class GgufRepack : public ::testing::TestWithParam<GgufBlockType> {};

TEST_P(GgufRepack, ByteWiseConverterEqualsTheDecoderByFields) {
  const GgufBlockType type = GetParam();
  const auto info = bitlinear::gguf_block_info(type);
  std::mt19937 rng(1000 + info.ggml_type);
  for (std::size_t blocks : {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 17, 40, 54}) {
    const std::size_t n = blocks * info.block_weights;
    const std::size_t row_bytes =
        info.binary ? bitlinear::Binary::packed_row_bytes(n) : bitlinear::Ternary::packed_row_bytes(n);
    for (std::size_t offset : {0, 1, 3}) {
      const auto storage = random_bytes(bitlinear::gguf_block_row_bytes(type, n) + offset, rng);
      const std::uint8_t* src = storage.data() + offset;
      const Converted want = convert_at(row_bytes, blocks, 0, 0x00, [&](std::uint8_t* row, float* scales) {
        bitlinear::detail::decode_gguf_row_by_fields(type, src, n, row, scales);
      });
      const Converted got = convert_at(row_bytes, blocks, offset, 0xFF, [&](std::uint8_t* row, float* scales) {
        bitlinear::decode_gguf_row(type, src, n, row, scales);
      });
      ASSERT_EQ(got.scale_bits, want.scale_bits) << info.name << " n=" << n << " offset " << offset;
      for (std::size_t i = 0; i < row_bytes; ++i) {
        ASSERT_EQ(got.row[i], want.row[i]) << info.name << " n=" << n << " offset " << offset << " byte " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GgufRepack,
                         ::testing::Values(GgufBlockType::tq2_0, GgufBlockType::q1_0, GgufBlockType::q2_0,
                                           GgufBlockType::pq2_0, GgufBlockType::q2_0_g128),
                         [](const ::testing::TestParamInfo<GgufBlockType>& p) {
                           return std::string(bitlinear::gguf_block_info(p.param).name);
                         });

// A 128-weight Q2_0 block (d, qs[32]) holds the codes of two 64-weight blocks (d, qs[0..15]) and (d, qs[16..31]).
TEST(GgufRepack, Q2WithGroup128EqualsTwoGroup64Blocks) {
  std::mt19937 rng(142);
  for (std::size_t blocks : {1, 2, 3, 4, 5, 7, 20, 27}) {
    const std::size_t n = blocks * 128;
    const auto g128 = random_bytes(blocks * 34, rng);
    std::vector<std::uint8_t> g64(blocks * 2 * 18);
    for (std::size_t b = 0; b < blocks; ++b) {
      for (std::size_t half = 0; half < 2; ++half) {
        std::uint8_t* dst = &g64[(2 * b + half) * 18];
        std::memcpy(dst, &g128[b * 34], 2);
        std::memcpy(dst + 2, &g128[b * 34 + 2 + 16 * half], 16);
      }
    }
    const std::size_t row_bytes = bitlinear::Ternary::packed_row_bytes(n);
    std::vector<std::uint8_t> want(row_bytes, 0x00), got(row_bytes, 0xFF);
    std::vector<float> want_scales(2 * blocks), got_scales(blocks);
    bitlinear::detail::decode_gguf_row_by_fields(GgufBlockType::q2_0, g64.data(), n, want.data(), want_scales.data());
    bitlinear::detail::q2_row_to_canonical(g128.data(), n, 128, got.data(), got_scales.data());
    ASSERT_EQ(got, want) << "n=" << n;
    for (std::size_t b = 0; b < blocks; ++b) {
      std::uint32_t g, w;
      std::memcpy(&g, &got_scales[b], 4);
      std::memcpy(&w, &want_scales[2 * b], 4);
      ASSERT_EQ(g, w) << "block " << b;
    }
  }
}

// The compact form of TQ1_0 and PTQ1_0, written per 64-weight run, equals the codes set one weight at a time.
TEST(GgufRepack, Base3CompactRowEqualsCodesSetOneByOne) {
  for (GgufBlockType type : {GgufBlockType::tq1_0, GgufBlockType::ptq1_0}) {
    const auto info = bitlinear::gguf_block_info(type);
    std::mt19937 rng(info.ggml_type);
    for (std::size_t blocks : {1, 2, 3, 4, 5, 6, 9, 10, 11, 27}) {
      const std::size_t n = blocks * info.block_weights;
      const auto bytes = random_bytes(blocks * info.block_bytes, rng);
      std::vector<std::uint8_t> two_bit(bitlinear::Ternary::packed_row_bytes(n));
      std::vector<float> want_scales(blocks), got_scales(blocks);
      bitlinear::detail::decode_gguf_row_by_fields(type, bytes.data(), n, two_bit.data(), want_scales.data());
      std::vector<std::uint8_t> want(bitlinear::TernaryCompact::packed_row_bytes(n), bitlinear::TernaryCompact::zero_byte);
      for (std::size_t k = 0; k < n; ++k) {
        bitlinear::TernaryCompact::set_code(want.data(), k, bitlinear::Ternary::code_at(two_bit.data(), k));
      }
      std::vector<std::uint8_t> got(want.size(), 0xFF);
      bitlinear::decode_gguf_row_compact(type, bytes.data(), n, got.data(), got_scales.data());
      ASSERT_EQ(got, want) << info.name << " n=" << n;
      ASSERT_EQ(std::memcmp(got_scales.data(), want_scales.data(), blocks * sizeof(float)), 0) << info.name << " n=" << n;
    }
  }
}

}  // namespace
