// HF import into the compact format (hf_import_compact.hpp): the same layer as the 2-bit import, converted.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/hf_import_compact.hpp>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

std::vector<std::uint8_t> random_hf_packed(std::size_t rows, std::size_t in, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> packed(rows * in);
  for (auto& byte : packed) {
    unsigned v = 0;
    for (unsigned i = 0; i < 4; ++i) v |= (static_cast<unsigned>(rng() % 3)) << (2 * i);
    byte = static_cast<std::uint8_t>(v);
  }
  return packed;
}

TEST(CompactHf, SameAsTwoBitImportConverted) {
  for (auto convention : {bitlinear::HfScaleConvention::divide, bitlinear::HfScaleConvention::multiply}) {
    for (std::size_t in : {1u, 64u, 319u, 321u, 700u}) {
      const std::size_t rows = 3;
      const auto packed = random_hf_packed(rows, in, static_cast<std::uint32_t>(in));
      const std::vector<float> bias = bitlinear_test::random_floats(4 * rows, 3);
      const auto ternary = bitlinear::ternary_from_hf_packed(packed.data(), rows, in, 2.5f, convention, bias.data());
      const auto compact =
          bitlinear::compact_ternary_from_hf_packed(packed.data(), rows, in, 2.5f, convention, bias.data());
      EXPECT_EQ(compact.packed_weights(), bitlinear::to_compact(ternary).packed_weights());
      EXPECT_EQ(compact.unpacked_weights(), ternary.unpacked_weights());
      EXPECT_EQ(compact.bias(), ternary.bias());
      EXPECT_TRUE(bitlinear_test::same_bits(compact.weight_scale(), ternary.weight_scale()));
      const std::vector<float> x = bitlinear_test::random_floats(2 * in, 8);
      std::vector<float> yt(2 * 4 * rows), yc(2 * 4 * rows);
      ternary.forward(x.data(), 2, yt.data());
      compact.forward(x.data(), 2, yc.data());
      for (std::size_t i = 0; i < yt.size(); ++i) EXPECT_TRUE(bitlinear_test::same_bits(yt[i], yc[i])) << i;
    }
  }
}

TEST(CompactHf, RejectsFieldThreeAndBadScale) {
  auto packed = random_hf_packed(2, 10, 1);
  packed[1 * 10 + 7] = static_cast<std::uint8_t>((packed[17] & 0x3F) | 0xC0);  // row 1, k 7, bits 6..7 = 3
  try {
    (void)bitlinear::compact_ternary_from_hf_packed(packed.data(), 2, 10, 1.0f, bitlinear::HfScaleConvention::divide);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("byte [1][7] holds field value 3 in bits 6..7"), std::string::npos)
        << e.what();
  }
  const auto good = random_hf_packed(2, 10, 2);
  EXPECT_THROW((void)bitlinear::compact_ternary_from_hf_packed(good.data(), 2, 10, 0.0f,
                                                               bitlinear::HfScaleConvention::divide),
               std::invalid_argument);
  EXPECT_THROW((void)bitlinear::compact_ternary_from_hf_packed(good.data(), 0, 10, 1.0f,
                                                               bitlinear::HfScaleConvention::divide),
               std::invalid_argument);
}

TEST(CompactHf, Checkpoint) {
  const std::string header =
      R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})";
  std::vector<std::uint8_t> file;
  for (int i = 0; i < 8; ++i) file.push_back(static_cast<std::uint8_t>(header.size() >> (8 * i)));
  file.insert(file.end(), header.begin(), header.end());
  const std::uint8_t data[] = {0x55, 0x66, 0x99, 0x00, 0x00, 0x00, 0x40};  // weight_scale 2.0f
  file.insert(file.end(), data, data + sizeof data);
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  const auto compact = bitlinear::compact_ternary_from_hf_checkpoint(view, "w", bitlinear::HfScaleConvention::divide);
  const auto ternary = bitlinear::ternary_from_hf_checkpoint(view, "w", bitlinear::HfScaleConvention::divide);
  EXPECT_EQ(compact.out_features(), 4u);
  EXPECT_EQ(compact.weight_scale(), 0.5f);
  EXPECT_EQ(compact.unpacked_weights(), ternary.unpacked_weights());
}

}  // namespace
