// load_gguf_layers: a GGUF model whose projections mix the group-scaled types (and one kept at F16) loads every
// ternary / 1-bit tensor as the layer kind of its type, with ggml's dequantized weights and the same outputs as
// the single-tensor import; the token embedding and other types stay views, readable row by row; missing
// projections, budgets and unknown names are refused by name.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/gguf_model.hpp>

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

struct Projection {
  const char* name;
  GgufBlockType type;
  std::size_t rows, in;
};

// attn_v is F16 (a quantizer may keep a projection at higher precision); the rest are the four block types.
const Projection kProjections[] = {
    {"blk.0.attn_q.weight", GgufBlockType::tq2_0, 24, 512},   {"blk.0.attn_k.weight", GgufBlockType::tq1_0, 16, 512},
    {"blk.0.attn_output.weight", GgufBlockType::q2_0, 40, 320}, {"blk.0.ffn_gate.weight", GgufBlockType::q1_0, 33, 384},
    {"blk.0.ffn_up.weight", GgufBlockType::tq2_0, 20, 256},   {"blk.0.ffn_down.weight", GgufBlockType::q1_0, 17, 640},
};
constexpr std::size_t kVocab = 9, kDim = 512;

struct ModelFile {
  std::vector<std::uint8_t> bytes;
  std::vector<std::vector<float>> dequantized;  // per projection, then the token embedding last
  std::vector<std::uint16_t> attn_v;            // F16 bits
};

ModelFile make_model(bool with_ffn_down = true) {
  std::mt19937 rng(2024);
  gguf_test::Writer w;
  w.kv_str("general.architecture", "llama");
  w.kv_u32("llama.block_count", 1);
  ModelFile m;
  auto add_block_tensor = [&](const std::string& name, GgufBlockType type, std::size_t rows, std::size_t in) {
    gguf_test::Bytes data;
    std::vector<float> values;
    for (std::size_t r = 0; r < rows; ++r) {
      const auto row = ggml_reference::random_row(type, in, rng);
      const auto v = ggml_reference::dequantize_reference(type, row, in);
      data.insert(data.end(), row.begin(), row.end());
      values.insert(values.end(), v.begin(), v.end());
    }
    w.tensor(name, {in, rows}, bitlinear::gguf_block_info(type).ggml_type, data);
    m.dequantized.push_back(std::move(values));
  };
  for (const Projection& p : kProjections) {
    if (!with_ffn_down && std::string(p.name) == "blk.0.ffn_down.weight") continue;
    add_block_tensor(p.name, p.type, p.rows, p.in);
  }
  gguf_test::Bytes v;
  for (std::size_t i = 0; i < 8 * kDim; ++i) {
    const auto h = static_cast<std::uint16_t>(0x3000 + rng() % 0x1000);  // finite fp16 values
    m.attn_v.push_back(h);
    v.push_back(static_cast<std::uint8_t>(h & 0xFF));
    v.push_back(static_cast<std::uint8_t>(h >> 8));
  }
  w.tensor("blk.0.attn_v.weight", {kDim, 8}, 1, v);
  gguf_test::Bytes norm;
  for (std::size_t i = 0; i < kDim; ++i) gguf_test::put_f32(norm, 1.0f + static_cast<float>(i) / 1024.0f);
  w.tensor("output_norm.weight", {kDim}, 0, norm);
  add_block_tensor("token_embd.weight", GgufBlockType::tq2_0, kVocab, kDim);
  m.bytes = w.build();
  return m;
}

template <class Layer>
void expect_weights(const Layer& layer, const std::vector<float>& want, const char* name) {
  const auto codes = layer.unpacked_weights();
  const auto& scales = layer.group_scales();
  const std::size_t in = layer.in_features(), g = layer.group_size();
  for (std::size_t j = 0; j < layer.out_features(); ++j) {
    for (std::size_t k = 0; k < in; ++k) {
      ASSERT_EQ(static_cast<float>(codes[j * in + k]) * scales[j * (in / g) + k / g], want[j * in + k])
          << name << " row " << j << " weight " << k;
    }
  }
}

TEST(GgufModel, EveryProjectionLoadsAsTheLayerOfItsType) {
  const ModelFile m = make_model();
  const auto file = bitlinear::GgufFile::from_bytes(m.bytes);
  const bitlinear::GgufModel model = bitlinear::load_gguf_layers(file);
  EXPECT_EQ(model.config.architecture, "llama");
  EXPECT_EQ(model.config.block_count, 1u);
  ASSERT_EQ(model.layers.size(), std::size(kProjections));
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < std::size(kProjections); ++i) {
    const Projection& p = kProjections[i];
    SCOPED_TRACE(p.name);
    const bitlinear::GgufAnyLayer& any = model.layer(p.name);
    EXPECT_EQ(&any, model.find_layer(bitlinear::gguf_to_hf_module(p.name))) << "the Hugging Face module name";
    const auto& info = bitlinear::gguf_block_info(p.type);
    std::visit([&](const auto& l) {
      EXPECT_EQ(l.out_features(), p.rows);
      EXPECT_EQ(l.in_features(), p.in);
    }, any);
    switch (p.type) {
      case GgufBlockType::tq1_0: {
        const auto* l = model.find<bitlinear::GroupedCompactTernaryLinear>(p.name);
        ASSERT_NE(l, nullptr);
        expect_weights(*l, m.dequantized[i], p.name);
        bytes += l->packed_weights_size() + p.rows * (p.in / info.block_weights) * sizeof(float);
        break;
      }
      case GgufBlockType::q1_0: {
        const auto* l = model.find<bitlinear::GroupedBinaryLinear>(p.name);
        ASSERT_NE(l, nullptr);
        expect_weights(*l, m.dequantized[i], p.name);
        bytes += l->packed_weights_size() + p.rows * (p.in / info.block_weights) * sizeof(float);
        break;
      }
      default: {
        const auto* l = model.find<bitlinear::GroupedTernaryLinear>(p.name);
        ASSERT_NE(l, nullptr);
        EXPECT_EQ(model.find<bitlinear::GroupedBinaryLinear>(p.name), nullptr) << "another kind is nullptr";
        expect_weights(*l, m.dequantized[i], p.name);
        bytes += l->packed_weights_size() + p.rows * (p.in / info.block_weights) * sizeof(float);
      }
    }
  }
  EXPECT_EQ(model.weight_bytes(), bytes);
  // The F16 projection, the norm and the embedding are views; asking for them as layers names their type.
  ASSERT_EQ(model.tensors.size(), 3u);
  EXPECT_NE(model.find_tensor("blk.0.attn_v.weight"), nullptr);
  EXPECT_NE(model.find_tensor("token_embd.weight"), nullptr);
  EXPECT_NE(model.find_tensor("output_norm.weight"), nullptr);
  EXPECT_EQ(model.find_layer("token_embd.weight"), nullptr);
  const std::string v = invalid_argument_message([&] { model.layer("blk.0.attn_v.weight"); });
  EXPECT_NE(v.find("type F16 and is kept as a tensor view"), std::string::npos) << v;
  const std::string none = invalid_argument_message([&] { model.layer("blk.7.attn_q.weight"); });
  EXPECT_NE(none.find("no ternary or 1-bit layer \"blk.7.attn_q.weight\""), std::string::npos) << none;
}

TEST(GgufModel, LayersGiveTheOutputsOfTheSingleTensorImportOnEveryFamily) {
  const ModelFile m = make_model();
  const auto file = bitlinear::GgufFile::from_bytes(m.bytes);
  // Q8_0 (llama.cpp's activations for Q1_0 / Q2_0) and Q8_K (for TQ1_0 / TQ2_0) on every layer of the block.
  for (const auto mode : {bitlinear::ActivationScale::per_block, bitlinear::ActivationScale::per_superblock}) {
    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      bitlinear::GgufModelLoadOptions options;
      options.import.layer.isa = isa;
      options.import.layer.activation_scale = mode;
      options.tq1_0_compact = false;  // TQ1_0 as a 2-bit layer this time
      const bitlinear::GgufModel model = bitlinear::load_gguf_layers(file.view(), options);
      EXPECT_NE(model.find<bitlinear::GroupedTernaryLinear>("blk.0.attn_k.weight"), nullptr);
      for (const Projection& p : kProjections) {
        bitlinear::Options scalar;
        scalar.isa = bitlinear::Isa::scalar;
        scalar.activation_scale = mode;
        const auto& tensor = file.view().at(p.name);
        const auto x = bitlinear_test::random_floats(3 * p.in, 17, -2.0f, 2.0f);
        std::vector<float> y_ref(3 * p.rows), y(3 * p.rows);
        if (p.type == GgufBlockType::q1_0) {
          bitlinear::grouped_from_gguf<bitlinear::Binary>(tensor, scalar).forward(x.data(), 3, y_ref.data());
        } else {
          bitlinear::grouped_from_gguf<bitlinear::Ternary>(tensor, scalar).forward(x.data(), 3, y_ref.data());
        }
        std::visit([&](const auto& l) { l.forward(x.data(), 3, y.data()); }, model.layer(p.name));
        for (std::size_t i = 0; i < y.size(); ++i) {
          ASSERT_TRUE(bitlinear_test::same_bits(y[i], y_ref[i]))
              << bitlinear::isa_name(isa) << " " << p.name << " mode " << static_cast<int>(mode) << " at " << i;
        }
      }
    }
  }
}

TEST(GgufModel, RowsOfViewsReadAsFloat) {
  const ModelFile m = make_model();
  const auto file = bitlinear::GgufFile::from_bytes(m.bytes);
  const auto view = file.view();
  std::vector<float> row(kDim);
  for (std::size_t r = 0; r < kVocab; ++r) {
    bitlinear::gguf_row_to_float(view.at("token_embd.weight"), r, row.data());
    for (std::size_t k = 0; k < kDim; ++k) ASSERT_EQ(row[k], m.dequantized.back()[r * kDim + k]) << r << " " << k;
  }
  for (std::size_t r = 0; r < 8; ++r) {
    bitlinear::gguf_row_to_float(view.at("blk.0.attn_v.weight"), r, row.data());
    for (std::size_t k = 0; k < kDim; ++k) ASSERT_EQ(row[k], bitlinear::fp16_to_float(m.attn_v[r * kDim + k]));
  }
  for (std::size_t i = 0; i < std::size(kProjections); ++i) {  // a weight's rows, too
    const Projection& p = kProjections[i];
    std::vector<float> w(p.in);
    bitlinear::gguf_row_to_float(view.at(p.name), p.rows - 1, w.data());
    for (std::size_t k = 0; k < p.in; ++k) ASSERT_EQ(w[k], m.dequantized[i][(p.rows - 1) * p.in + k]) << p.name;
  }
  const std::string range =
      invalid_argument_message([&] { bitlinear::gguf_row_to_float(view.at("token_embd.weight"), kVocab, row.data()); });
  EXPECT_NE(range.find("row 9 is out of range (the tensor has 9 rows)"), std::string::npos) << range;
  const std::string dims =
      invalid_argument_message([&] { bitlinear::gguf_row_to_float(view.at("output_norm.weight"), 0, row.data()); });
  EXPECT_NE(dims.find("row reads need a 2-D tensor"), std::string::npos) << dims;
}

TEST(GgufModel, MissingProjectionsAndBudgetsAreRefusedByName) {
  const ModelFile missing = make_model(false);
  const auto file = bitlinear::GgufFile::from_bytes(missing.bytes);
  const std::string m = invalid_argument_message([&] { bitlinear::load_gguf_layers(file); });
  EXPECT_NE(m.find("llama.block_count is 1, but tensor \"blk.0.ffn_down.weight\" is missing"), std::string::npos) << m;

  const ModelFile whole = make_model();
  const auto good = bitlinear::GgufFile::from_bytes(whole.bytes);
  bitlinear::GgufModelLoadOptions total;
  total.max_total_bytes = 4096;
  const std::string t = invalid_argument_message([&] { bitlinear::load_gguf_layers(good, total); });
  EXPECT_NE(t.find("aggregate budget GgufModelLoadOptions::max_total_bytes = 4096"), std::string::npos) << t;
  bitlinear::GgufModelLoadOptions one;
  one.import.max_weight_bytes = 1000;
  const std::string o = invalid_argument_message([&] { bitlinear::load_gguf_layers(good, one); });
  EXPECT_NE(o.find("\"blk.0.attn_q.weight\": 24 x 512 TQ2_0 weights need more than the import budget max_weight_bytes = 1000"),
            std::string::npos) << o;
}

}  // namespace
