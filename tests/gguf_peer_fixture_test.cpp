// GGUF tensors written by the peers' own tools (tests/data/README.md says how each was made):
// - tiny_tq.gguf: TQ2_0 and TQ1_0 weights quantized by llama.cpp's gguf-py (its numpy quantizers, GGUFWriter);
// - tiny_q1_q2.gguf: Q1_0 and Q2_0 weights quantized by ggml's own C reference quantizers, written by GGUFWriter;
// each with a safetensors file of the peer's own dequantization of the same bytes. The layers bitlinear builds
// from the files hold exactly those weights (code x group scale), the 1.6-bit and 2-bit layers of a TQ1_0 tensor
// hold the same codes, and every kernel family computes the scalar family's outputs.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/gguf_grouped_import.hpp>
#include <bitlinear/io/safetensors.hpp>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace {

#ifdef BITLINEAR_TEST_DATA_DIR

// Every weight of `layer` (code x its group's scale) equals gguf-py's dequantized value.
template <class Layer>
void expect_weights(const Layer& layer, const std::vector<float>& want) {
  const std::size_t in = layer.in_features();
  const std::size_t groups = in / layer.group_size();
  const auto codes = layer.unpacked_weights();
  const auto& scales = layer.group_scales();
  ASSERT_EQ(codes.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::size_t row = i / in, k = i % in;
    const float got = static_cast<float>(codes[i]) * scales[row * groups + k / layer.group_size()];
    ASSERT_EQ(got, want[i]) << "row " << row << " weight " << k;
  }
}

// Every family the CPU runs computes the scalar outputs of the layer made by `make`, with llama.cpp's activation
// quantization for the type (`llama_mode`: Q8_K, per_superblock, for the TQ types; Q8_0, per_block, for Q1_0 and
// Q2_0) and with bitlinear's per-token one.
template <class Make>
void expect_families_agree(std::size_t in, bitlinear::ActivationScale llama_mode, const Make& make) {
  constexpr std::size_t batch = 3;
  const auto x = bitlinear_test::random_floats(batch * in, 17, -3.0f, 3.0f);
  for (auto mode : {llama_mode, bitlinear::ActivationScale::per_token}) {
    bitlinear::Options reference_options;
    reference_options.isa = bitlinear::Isa::scalar;
    reference_options.activation_scale = mode;
    const auto reference = make(reference_options);
    std::vector<float> y_ref(batch * reference.out_features());
    reference.forward(x.data(), batch, y_ref.data());
    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      bitlinear::Options options = reference_options;
      options.isa = isa;
      const auto layer = make(options);
      std::vector<float> y(y_ref.size());
      layer.forward(x.data(), batch, y.data());
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(bitlinear_test::same_bits(y[i], y_ref[i])) << bitlinear::isa_name(isa) << " output " << i;
      }
    }
  }
}

struct FixtureTensor {
  const char* name;
  bitlinear::GgufType type;
  std::size_t out, in, group;
};

// Opens `file` and its dequantized twin, and checks each tensor's shape and the all-zero row 1 the generators wrote;
// calls check(tensor, dequantized values) for each.
template <class Check>
void for_each_fixture_tensor(const std::string& file, const std::string& dequantized_file,
                             std::initializer_list<FixtureTensor> tensors, const Check& check) {
  const std::string dir = BITLINEAR_TEST_DATA_DIR;
  const auto gguf = bitlinear::GgufFile::open(dir + "/" + file);
  const auto dequantized = bitlinear::SafetensorsFile::open(dir + "/" + dequantized_file);
  EXPECT_EQ(gguf.view().version(), 3u);
  for (const FixtureTensor& e : tensors) {
    SCOPED_TRACE(e.name);
    const bitlinear::GgufTensor& t = gguf.view().at(e.name);
    ASSERT_EQ(t.type, e.type);
    ASSERT_EQ(t.ne[0], e.in);
    ASSERT_EQ(t.ne[1], e.out);
    const std::vector<float> want = bitlinear::safetensors_to_float(dequantized.view().at(e.name));
    ASSERT_EQ(want.size(), e.out * e.in);
    for (std::size_t k = 0; k < e.in; ++k) ASSERT_EQ(want[e.in + k], 0.0f);  // the zero row made it into the file
    check(e, t, want);
  }
}

TEST(GgufPeerFixture, GgufPyTernaryFilesLoadToGgufPysDequantizedWeights) {
  for_each_fixture_tensor(
      "tiny_tq.gguf", "tiny_tq_dequantized.safetensors",
      {{"blk.0.attn_q.weight", bitlinear::GgufType::tq2_0, 12, 512, 256},
       {"blk.0.ffn_down.weight", bitlinear::GgufType::tq1_0, 10, 768, 256},
       {"blk.0.ffn_up.weight", bitlinear::GgufType::tq1_0, 9, 256, 256}},
      [](const FixtureTensor& e, const bitlinear::GgufTensor& t, const std::vector<float>& want) {
        constexpr auto q8_k = bitlinear::ActivationScale::per_superblock;
        const auto two_bit = bitlinear::grouped_from_gguf<bitlinear::Ternary>(t);
        EXPECT_EQ(two_bit.group_size(), e.group);
        expect_weights(two_bit, want);
        expect_families_agree(e.in, q8_k, [&](const bitlinear::Options& o) {
          return bitlinear::grouped_from_gguf<bitlinear::Ternary>(t, bitlinear::GgufImportOptions{o});
        });
        if (e.type == bitlinear::GgufType::tq1_0) {
          const auto compact = bitlinear::grouped_from_gguf<bitlinear::TernaryCompact>(t);
          expect_weights(compact, want);
          EXPECT_EQ(compact.unpacked_weights(), two_bit.unpacked_weights());
          expect_families_agree(e.in, q8_k, [&](const bitlinear::Options& o) {
            return bitlinear::grouped_from_gguf<bitlinear::TernaryCompact>(t, bitlinear::GgufImportOptions{o});
          });
        }
      });
}

TEST(GgufPeerFixture, GgmlReferenceQuantizedQ1AndQ2LoadToGgmlsDequantizedWeights) {
  for_each_fixture_tensor(
      "tiny_q1_q2.gguf", "tiny_q1_q2_dequantized.safetensors",
      {{"blk.0.attn_k.weight", bitlinear::GgufType::q1_0, 8, 384, 128},
       {"blk.0.attn_v.weight", bitlinear::GgufType::q2_0, 10, 192, 64}},
      [](const FixtureTensor& e, const bitlinear::GgufTensor& t, const std::vector<float>& want) {
        constexpr auto q8_0 = bitlinear::ActivationScale::per_block;
        if (e.type == bitlinear::GgufType::q1_0) {
          const auto layer = bitlinear::grouped_from_gguf<bitlinear::Binary>(t);
          EXPECT_EQ(layer.group_size(), e.group);
          expect_weights(layer, want);
          expect_families_agree(e.in, q8_0, [&](const bitlinear::Options& o) {
            return bitlinear::grouped_from_gguf<bitlinear::Binary>(t, bitlinear::GgufImportOptions{o});
          });
        } else {
          const auto layer = bitlinear::grouped_from_gguf<bitlinear::Ternary>(t);
          EXPECT_EQ(layer.group_size(), e.group);
          expect_weights(layer, want);
          expect_families_agree(e.in, q8_0, [&](const bitlinear::Options& o) {
            return bitlinear::grouped_from_gguf<bitlinear::Ternary>(t, bitlinear::GgufImportOptions{o});
          });
        }
      });
}

#endif

}  // namespace
