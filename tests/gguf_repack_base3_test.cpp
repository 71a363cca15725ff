// The base-3 GGUF row converters (gguf_repack_base3.hpp, what decode_gguf_row and decode_gguf_row_compact run for
// TQ1_0 and PTQ1_0) against the decoders by fields (gguf_blocks.hpp: every weight's digit, then packed): the same
// 2-bit and compact bytes, padding included, and the same scale bits. Random blocks of valid bytes (0..242) and of
// any bytes; every value 0..255 in every code byte of a block; every fp16 scale pattern (NaN, infinities,
// subnormals); rows of one block up to many, ending inside an output block; source and destination pointers at
// odd offsets; the errors of the reference (a row length that is not a multiple of the block, another type).
#include <bitlinear/io/gguf_blocks.hpp>
#include <bitlinear/io/gguf_repack_base3.hpp>

#include <cstdint>
#include <cstring>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

using bitlinear::GgufBlockType;

enum class Target { two_bit, compact };

struct Rows {
  std::vector<std::uint8_t> row;
  std::vector<std::uint32_t> scale_bits;
};

std::size_t row_bytes(Target target, std::size_t n) {
  return target == Target::compact ? bitlinear::TernaryCompact::packed_row_bytes(n)
                                   : bitlinear::Ternary::packed_row_bytes(n);
}

// Runs one conversion into a row at byte offset `offset` of a buffer filled with `fill` (so a byte left unwritten
// differs between two runs with different fills) and scales at an odd float offset.
Rows run(Target target, bool reference, GgufBlockType type, const std::uint8_t* src, std::size_t n,
         std::size_t offset, std::uint8_t fill) {
  const std::size_t bytes = row_bytes(target, n);
  const std::size_t scales = n / bitlinear::gguf_block_info(type).block_weights;
  std::vector<std::uint8_t> row(bytes + offset, fill);
  std::vector<float> scale_storage(scales + 1, -1.0f);
  std::uint8_t* out = row.data() + offset;
  float* scales_out = scale_storage.data() + offset % 2;
  if (target == Target::two_bit) {
    if (reference) {
      bitlinear::detail::decode_gguf_row_by_fields(type, src, n, out, scales_out);
    } else {
      bitlinear::decode_gguf_row(type, src, n, out, scales_out);
    }
  } else {
    if (reference) {
      bitlinear::detail::decode_gguf_row_compact_by_fields(type, src, n, out, scales_out);
    } else {
      bitlinear::decode_gguf_row_compact(type, src, n, out, scales_out);
    }
  }
  Rows r;
  r.row.assign(row.begin() + static_cast<std::ptrdiff_t>(offset), row.end());
  r.scale_bits.resize(scales);
  std::memcpy(r.scale_bits.data(), scales_out, scales * sizeof(float));
  return r;
}

// The converter against the reference, source at src (any alignment), output at two offsets and two fills.
void expect_equal(Target target, GgufBlockType type, const std::uint8_t* src, std::size_t n, const std::string& what) {
  const Rows want = run(target, true, type, src, n, 0, 0x00);
  for (std::size_t offset : {0, 1, 7}) {
    for (std::uint8_t fill : {0xFF, 0x00}) {
      const Rows got = run(target, false, type, src, n, offset, fill);
      ASSERT_EQ(got.scale_bits, want.scale_bits) << what << " offset " << offset;
      ASSERT_EQ(got.row.size(), want.row.size());
      for (std::size_t i = 0; i < want.row.size(); ++i) {
        ASSERT_EQ(got.row[i], want.row[i]) << what << " offset " << offset << " fill " << int{fill} << " byte " << i;
      }
    }
  }
}

struct Case {
  GgufBlockType type;
  Target target;
};

std::string case_name(const Case& c) {
  return std::string(bitlinear::gguf_block_info(c.type).name) + (c.target == Target::compact ? "_compact" : "_2bit");
}

void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

class GgufRepackBase3 : public ::testing::TestWithParam<Case> {};

std::size_t code_bytes(GgufBlockType type) { return bitlinear::gguf_block_info(type).block_bytes - 2; }

// Random blocks with a finite scale; code bytes below `limit` (243: the bytes ggml's quantizer writes; 256: any).
std::vector<std::uint8_t> random_blocks(GgufBlockType type, std::size_t blocks, unsigned limit, std::mt19937& rng) {
  const auto info = bitlinear::gguf_block_info(type);
  std::vector<std::uint8_t> bytes(blocks * info.block_bytes);
  for (std::size_t b = 0; b < blocks; ++b) {
    std::uint8_t* block = &bytes[b * info.block_bytes];
    for (std::size_t i = 0; i < info.block_bytes - 2; ++i) block[i] = static_cast<std::uint8_t>(rng() % limit);
    const auto d = static_cast<std::uint16_t>(0x2000 + rng() % 0x2000);  // positive normal fp16
    block[info.block_bytes - 2] = static_cast<std::uint8_t>(d);
    block[info.block_bytes - 1] = static_cast<std::uint8_t>(d >> 8);
  }
  return bytes;
}

TEST_P(GgufRepackBase3, RandomRowsEqualTheReference) {
  const Case c = GetParam();
  const auto info = bitlinear::gguf_block_info(c.type);
  std::mt19937 rng(7 + info.ggml_type + (c.target == Target::compact ? 100u : 0u));
  for (unsigned limit : {243u, 256u}) {
    for (std::size_t blocks : {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 19, 20, 21, 27, 40, 54}) {
      const std::size_t n = blocks * info.block_weights;
      for (std::size_t src_offset : {0, 1, 3}) {
        const auto bytes = random_blocks(c.type, blocks, limit, rng);
        std::vector<std::uint8_t> storage(bytes.size() + src_offset);
        std::memcpy(storage.data() + src_offset, bytes.data(), bytes.size());
        expect_equal(c.target, c.type, storage.data() + src_offset, n,
                     case_name(c) + " limit " + std::to_string(limit) + " n=" + std::to_string(n) + " src offset " +
                         std::to_string(src_offset));
      }
    }
  }
}

// For each code byte position of a block: a row of 256 blocks, block v holding v at that position (every byte
// value, 243..255 included, at every position), the other bytes random.
TEST_P(GgufRepackBase3, EveryByteValueAtEveryPosition) {
  const Case c = GetParam();
  const auto info = bitlinear::gguf_block_info(c.type);
  std::mt19937 rng(11 + info.ggml_type);
  const std::size_t n = 256 * info.block_weights;
  for (std::size_t pos = 0; pos < code_bytes(c.type); ++pos) {
    auto bytes = random_blocks(c.type, 256, 256, rng);
    for (std::size_t v = 0; v < 256; ++v) bytes[v * info.block_bytes + pos] = static_cast<std::uint8_t>(v);
    expect_equal(c.target, c.type, bytes.data() + 0, n, case_name(c) + " position " + std::to_string(pos));
  }
  // The same blocks with every code byte equal: block v all v.
  std::vector<std::uint8_t> uniform(256 * info.block_bytes, 0);
  for (std::size_t v = 0; v < 256; ++v) {
    std::memset(&uniform[v * info.block_bytes], static_cast<int>(v), code_bytes(c.type));
    uniform[v * info.block_bytes + info.block_bytes - 1] = 0x3C;  // d = 1.0
  }
  expect_equal(c.target, c.type, uniform.data(), n, case_name(c) + " uniform blocks");
}

// Every fp16 bit pattern as a block's d (NaNs with their payloads, infinities, subnormals, -0).
TEST_P(GgufRepackBase3, EveryScalePattern) {
  const Case c = GetParam();
  const auto info = bitlinear::gguf_block_info(c.type);
  std::mt19937 rng(13 + info.ggml_type);
  const std::size_t blocks = 65536;
  auto bytes = random_blocks(c.type, blocks, 256, rng);
  for (std::size_t b = 0; b < blocks; ++b) {
    bytes[b * info.block_bytes + info.block_bytes - 2] = static_cast<std::uint8_t>(b);
    bytes[b * info.block_bytes + info.block_bytes - 1] = static_cast<std::uint8_t>(b >> 8);
  }
  // Rows of 5 blocks (a whole compact and, for TQ1_0, canonical chunk) through the whole set, and one long row.
  for (std::size_t b = 0; b + 5 <= blocks; b += 5) {
    const Rows want = run(c.target, true, c.type, &bytes[b * info.block_bytes], 5 * info.block_weights, 0, 0);
    const Rows got = run(c.target, false, c.type, &bytes[b * info.block_bytes], 5 * info.block_weights, 1, 0xFF);
    ASSERT_EQ(got.scale_bits, want.scale_bits) << case_name(c) << " blocks from " << b;
    ASSERT_EQ(got.row, want.row) << case_name(c) << " blocks from " << b;
  }
  expect_equal(c.target, c.type, bytes.data(), blocks * info.block_weights, case_name(c) + " all scales");
}

// Row lengths that are not a positive multiple of the block: the same std::invalid_argument as the reference.
TEST_P(GgufRepackBase3, BadRowLengthThrowsLikeTheReference) {
  const Case c = GetParam();
  const auto info = bitlinear::gguf_block_info(c.type);
  std::vector<std::uint8_t> src(4 * info.block_bytes, 0), row(4096, 0);
  std::vector<float> scales(8, 0.0f);
  for (std::size_t n : {std::size_t{0}, std::size_t{64}, info.block_weights + 64, 2 * info.block_weights - 1}) {
    std::string want, got;
    try {
      if (c.target == Target::compact) {
        bitlinear::detail::decode_gguf_row_compact_by_fields(c.type, src.data(), n, row.data(), scales.data());
      } else {
        bitlinear::detail::decode_gguf_row_by_fields(c.type, src.data(), n, row.data(), scales.data());
      }
    } catch (const std::invalid_argument& e) {
      want = e.what();
    }
    try {
      if (c.target == Target::compact) {
        bitlinear::decode_gguf_row_compact(c.type, src.data(), n, row.data(), scales.data());
      } else {
        bitlinear::decode_gguf_row(c.type, src.data(), n, row.data(), scales.data());
      }
    } catch (const std::invalid_argument& e) {
      got = e.what();
    }
    EXPECT_FALSE(want.empty()) << "n=" << n;
    EXPECT_EQ(got, want) << "n=" << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, GgufRepackBase3,
                         ::testing::Values(Case{GgufBlockType::tq1_0, Target::two_bit},
                                           Case{GgufBlockType::tq1_0, Target::compact},
                                           Case{GgufBlockType::ptq1_0, Target::two_bit},
                                           Case{GgufBlockType::ptq1_0, Target::compact}),
                         [](const ::testing::TestParamInfo<Case>& p) { return case_name(p.param); });

// The compact reference itself against the 2-bit reference re-encoded one weight at a time (TernaryCompact::set_code),
// so the two references agree, and the converters' compact output with them.
TEST(GgufRepackBase3, CompactEqualsTwoBitCodesSetOneByOne) {
  for (GgufBlockType type : {GgufBlockType::tq1_0, GgufBlockType::ptq1_0}) {
    const auto info = bitlinear::gguf_block_info(type);
    std::mt19937 rng(17 + info.ggml_type);
    for (std::size_t blocks : {1, 2, 3, 5, 6, 11}) {
      const std::size_t n = blocks * info.block_weights;
      const auto bytes = random_blocks(type, blocks, 256, rng);
      const Rows two_bit = run(Target::two_bit, true, type, bytes.data(), n, 0, 0);
      std::vector<std::uint8_t> want(bitlinear::TernaryCompact::packed_row_bytes(n), bitlinear::TernaryCompact::zero_byte);
      for (std::size_t k = 0; k < n; ++k) {
        bitlinear::TernaryCompact::set_code(want.data(), k, bitlinear::Ternary::code_at(two_bit.row.data(), k));
      }
      ASSERT_EQ(run(Target::compact, true, type, bytes.data(), n, 0, 0).row, want) << info.name << " n=" << n;
      ASSERT_EQ(run(Target::compact, false, type, bytes.data(), n, 3, 0xFF).row, want) << info.name << " n=" << n;
    }
  }
}

// The field-array path (base3_row, what PTQ1_0 runs) with TQ1_0's stages: the same bytes as the references, so both
// TQ1_0 implementations and the generic staging agree (every byte value at every position, several row lengths).
TEST(GgufRepackBase3, FieldArrayPathForTq1EqualsTheReferences) {
  using bitlinear::detail::Base3ToCanonical;
  using bitlinear::detail::Base3ToCompact;
  using bitlinear::detail::Tq1Layout;
  std::mt19937 rng(19);
  for (std::size_t blocks : {1, 2, 3, 4, 5, 6, 9, 11, 256}) {
    const std::size_t n = blocks * 256;
    auto bytes = random_blocks(GgufBlockType::tq1_0, blocks, 256, rng);
    if (blocks == 256) {
      for (std::size_t v = 0; v < 256; ++v) {
        for (std::size_t pos = 0; pos < 52; ++pos) bytes[v * 54 + pos] = static_cast<std::uint8_t>(v + pos * 7);
      }
    }
    for (Target target : {Target::two_bit, Target::compact}) {
      const Rows want = run(target, true, GgufBlockType::tq1_0, bytes.data(), n, 0, 0);
      std::vector<std::uint8_t> row(want.row.size(), 0xFF);
      std::vector<float> scales(blocks);
      if (target == Target::two_bit) {
        bitlinear::detail::base3_row<Tq1Layout, Base3ToCanonical>(bytes.data(), n, row.data(), scales.data());
      } else {
        bitlinear::detail::base3_row<Tq1Layout, Base3ToCompact>(bytes.data(), n, row.data(), scales.data());
      }
      ASSERT_EQ(row, want.row) << "n=" << n;
      ASSERT_EQ(std::memcmp(scales.data(), want.scale_bits.data(), blocks * sizeof(float)), 0) << "n=" << n;
    }
  }
}

// The compact converter takes only the base-3 types, like the reference.
TEST(GgufRepackBase3, CompactRejectsOtherTypes) {
  std::vector<std::uint8_t> src(66 * 2, 0), row(128, 0);
  std::vector<float> scales(4, 0.0f);
  EXPECT_THROW(bitlinear::decode_gguf_row_compact(GgufBlockType::tq2_0, src.data(), 256, row.data(), scales.data()),
               std::invalid_argument);
  EXPECT_THROW(bitlinear::detail::decode_gguf_row_compact_by_fields(GgufBlockType::tq2_0, src.data(), 256, row.data(),
                                                                    scales.data()),
               std::invalid_argument);
}

}  // namespace
