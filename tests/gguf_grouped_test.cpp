// GGUF tensors of the group-scaled types (TQ1_0, TQ2_0, Q1_0, Q2_0) as GroupedLinear layers: every weight's
// code * scale is ggml's reference dequantized value, every family computes the same outputs as the scalar one,
// and the wrong type, layer kind, budget or a non-finite block scale is refused by name.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/gguf_grouped_import.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ggml_reference.hpp"
#include "gguf_writer.hpp"
#include "test_util.hpp"

namespace {

using bitlinear::GgufBlockType;
using bitlinear_test::invalid_argument_message;

// A file with one weight tensor of `type`, rows x in, random blocks.
bitlinear::GgufFile file_with(GgufBlockType type, std::size_t rows, std::size_t in, std::vector<float>& dequantized,
                              std::uint32_t seed) {
  std::mt19937 rng(seed);
  gguf_test::Writer w;
  w.kv_str("general.architecture", "llama");
  gguf_test::Bytes data;
  dequantized.clear();
  for (std::size_t r = 0; r < rows; ++r) {
    const auto row = ggml_reference::random_row(type, in, rng);
    const auto values = ggml_reference::dequantize_reference(type, row, in);
    data.insert(data.end(), row.begin(), row.end());
    dequantized.insert(dequantized.end(), values.begin(), values.end());
  }
  w.tensor("blk.0.ffn_down.weight", {in, rows}, bitlinear::gguf_block_info(type).ggml_type, data);
  return bitlinear::GgufFile::from_bytes(w.build());
}

template <class Format>
void expect_layer_is_ggmls(GgufBlockType type, std::size_t rows, std::size_t in) {
  std::vector<float> want;
  const auto file = file_with(type, rows, in, want, static_cast<std::uint32_t>(rows * 7919 + in));
  const auto& tensor = file.view().at("blk.0.ffn_down.weight");
  bitlinear::Options scalar;
  scalar.isa = bitlinear::Isa::scalar;
  const auto layer = bitlinear::grouped_from_gguf<Format>(tensor, scalar);
  ASSERT_EQ(layer.out_features(), rows);
  ASSERT_EQ(layer.in_features(), in);
  ASSERT_EQ(layer.group_size(), bitlinear::gguf_block_info(type).block_weights);
  const auto codes = layer.unpacked_weights();
  const auto& scales = layer.group_scales();
  for (std::size_t j = 0; j < rows; ++j) {
    for (std::size_t k = 0; k < in; ++k) {
      const float got = static_cast<float>(codes[j * in + k]) * scales[j * (in / layer.group_size()) + k / layer.group_size()];
      ASSERT_EQ(got, want[j * in + k]) << bitlinear::gguf_block_info(type).name << " row " << j << " weight " << k;
    }
  }
  // Every family the CPU runs gives the scalar outputs, in every activation mode.
  const auto x = bitlinear_test::random_floats(3 * in, 11, -2.0f, 2.0f);
  for (auto mode : {bitlinear::ActivationScale::per_token, bitlinear::ActivationScale::per_block,
                    bitlinear::ActivationScale::per_superblock}) {
    bitlinear::Options reference_options;
    reference_options.isa = bitlinear::Isa::scalar;
    reference_options.activation_scale = mode;
    const auto reference = bitlinear::grouped_from_gguf<Format>(tensor, reference_options);
    std::vector<float> y_ref(3 * rows);
    reference.forward(x.data(), 3, y_ref.data());
    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      bitlinear::Options options = reference_options;
      options.isa = isa;
      const auto family = bitlinear::grouped_from_gguf<Format>(tensor, options);
      std::vector<float> y(3 * rows);
      family.forward(x.data(), 3, y.data());
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(bitlinear_test::same_bits(y[i], y_ref[i])) << bitlinear::isa_name(isa) << " at " << i;
      }
    }
  }
}

TEST(GgufGrouped, Tq2LoadsAsTwoBitLayer) { expect_layer_is_ggmls<bitlinear::Ternary>(GgufBlockType::tq2_0, 37, 768); }
TEST(GgufGrouped, Q2LoadsAsTwoBitLayerWithItsFourthLevel) {
  expect_layer_is_ggmls<bitlinear::Ternary>(GgufBlockType::q2_0, 19, 320);
}
TEST(GgufGrouped, Tq1LoadsAsCompactAndAsTwoBitLayer) {
  expect_layer_is_ggmls<bitlinear::TernaryCompact>(GgufBlockType::tq1_0, 21, 512);
  expect_layer_is_ggmls<bitlinear::Ternary>(GgufBlockType::tq1_0, 5, 256);
}
TEST(GgufGrouped, Q1LoadsAsBinaryLayer) { expect_layer_is_ggmls<bitlinear::Binary>(GgufBlockType::q1_0, 33, 640); }

// A TQ2_0 / TQ1_0 layer with per_superblock activations is llama.cpp's product: ggml's reference dequantized
// weights times ggml's Q8_K activations (d * q, transcribed in ggml_reference.hpp), summed in float64, is the
// float32 output within 1e-5 of the row's largest |y| (the pinned order rounds about in / 256 + 7 times).
template <class Format>
void expect_q8k_product_close_to_float64(GgufBlockType type, std::size_t rows, std::size_t in, std::size_t batch) {
  std::vector<float> w;
  const auto file = file_with(type, rows, in, w, static_cast<std::uint32_t>(rows + in));
  bitlinear::Options options;
  options.activation_scale = bitlinear::ActivationScale::per_superblock;
  const auto layer = bitlinear::grouped_from_gguf<Format>(file.view().at("blk.0.ffn_down.weight"), options);
  auto x = bitlinear_test::random_floats(batch * in, 23, -2.0f, 2.0f);
  for (std::size_t k = 0; k < in; k += 3) x[k] *= 50.0f;  // row 0: a wide range
  std::vector<float> y(batch * rows);
  layer.forward(x.data(), batch, y.data());
  for (std::size_t t = 0; t < batch; ++t) {
    std::vector<ggml_reference::BlockQ8K> acts(in / 256);
    ggml_reference::quantize_row_q8_K_ref(x.data() + t * in, acts.data(), in);
    double row_max = 0.0, row_err = 0.0;
    for (std::size_t j = 0; j < rows; ++j) {
      double sum = 0.0;
      for (std::size_t k = 0; k < in; ++k) {
        sum += static_cast<double>(w[j * in + k]) * acts[k / 256].d * acts[k / 256].qs[k % 256];
      }
      row_max = std::max(row_max, std::fabs(sum));
      row_err = std::max(row_err, std::fabs(sum - static_cast<double>(y[t * rows + j])));
    }
    ASSERT_GT(row_max, 0.0);
    EXPECT_LE(row_err, 1e-5 * row_max) << bitlinear::gguf_block_info(type).name << " token " << t;
  }
}

TEST(GgufGrouped, Tq2AndTq1WithQ8kActivationsAreTheDequantizedProduct) {
  expect_q8k_product_close_to_float64<bitlinear::Ternary>(GgufBlockType::tq2_0, 48, 2560, 3);
  expect_q8k_product_close_to_float64<bitlinear::TernaryCompact>(GgufBlockType::tq1_0, 24, 1536, 2);
}

TEST(GgufGrouped, WrongTypesLayerKindsBudgetsAndScalesAreRefusedByName) {
  std::vector<float> unused;
  const auto q1 = file_with(GgufBlockType::q1_0, 4, 128, unused, 1);
  const auto& q1_tensor = q1.view().at("blk.0.ffn_down.weight");
  EXPECT_NE(invalid_argument_message([&] {
              bitlinear::grouped_from_gguf<bitlinear::Ternary>(q1_tensor);
            }).find("build it as GroupedBinaryLinear"),
            std::string::npos);
  const auto q2 = file_with(GgufBlockType::q2_0, 4, 64, unused, 2);
  const auto& q2_tensor = q2.view().at("blk.0.ffn_down.weight");
  EXPECT_NE(invalid_argument_message([&] {
              bitlinear::grouped_from_gguf<bitlinear::TernaryCompact>(q2_tensor);
            }).find("codes -1, 0, +1, +2"),
            std::string::npos);
  bitlinear::GgufImportOptions small;
  small.max_weight_bytes = 100;
  EXPECT_NE(invalid_argument_message([&] {
              bitlinear::grouped_from_gguf<bitlinear::Ternary>(q2_tensor, small);
            }).find("max_weight_bytes"),
            std::string::npos);
  // An F32 tensor is not a group-scaled weight.
  gguf_test::Writer w;
  gguf_test::Bytes f32(4 * 8, 0);
  w.tensor("norm.weight", {8}, 0, f32);
  const auto plain = bitlinear::GgufFile::from_bytes(w.build());
  EXPECT_NE(invalid_argument_message([&] {
              bitlinear::grouped_from_gguf<bitlinear::Ternary>(plain.view().at("norm.weight"));
            }).find("has type F32"),
            std::string::npos);
  // A block whose d is infinity: the layer names the row and group.
  gguf_test::Writer inf_writer;
  gguf_test::Bytes block(18, 0x55);
  block[0] = 0x00;
  block[1] = 0x7C;  // fp16 +infinity
  gguf_test::Bytes blocks;
  for (int i = 0; i < 2; ++i) blocks.insert(blocks.end(), block.begin(), block.end());
  inf_writer.tensor("w", {64, 2}, 42, blocks);
  const auto inf_file = bitlinear::GgufFile::from_bytes(inf_writer.build());
  const std::string inf_message =
      invalid_argument_message([&] { bitlinear::grouped_from_gguf<bitlinear::Ternary>(inf_file.view().at("w")); });
  EXPECT_NE(inf_message.find("finite"), std::string::npos) << inf_message;
}

}  // namespace
