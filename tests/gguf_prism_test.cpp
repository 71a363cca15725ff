// PrismML's GGUF weight types (PQ2_0 = 142, PTQ1_0 = 143, legacy Q2_0 with 128-weight blocks under id 42) and its
// prism.hadamard.* metadata. The oracle is a transcription, written here, of the fork's reference code
// (PrismML-Eng/llama.cpp ggml/src/ggml-quants.c): dequantize_row_pq2_0 (read in the fork's source), and
// dequantize_row_ptq1_0 / quantize_row_ptq1_0_ref (the staged loops as quoted by projects built on the fork: qs in
// stages of 32, 16 and 8 bytes, as many whole stages of each as fit, then qh). Every weight's code x scale is the
// reference value, every family's outputs are the scalar ones and the float64 product of the reference weights
// with the layer's activations; id 42 is resolved by the tensor's span, or refused by name.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/gguf_model.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
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

// --- the fork's reference code, transcribed ---------------------------------------------------------------------

float half_at(const std::uint8_t* p) { return ggml_reference::fp16_by_definition(ggml_reference::read_half(p)); }

// dequantize_row_pq2_0 (block_pq2_0 {ggml_half d; uint8_t qs[32];}): q = (qs[j / 4] >> (j % 4) * 2) & 3,
// y = ((int)q - 1) * d. Legacy Q2_0_g128 is the same block.
std::vector<float> dequantize_row_pq2_0(const std::uint8_t* x, std::size_t k) {
  std::vector<float> y;
  for (std::size_t i = 0; i < k / 128; ++i, x += 34) {
    const float d = half_at(x);
    for (std::size_t j = 0; j < 128; ++j) {
      const int byte_index = static_cast<int>(j / 4);
      const int bit_offset = static_cast<int>(j % 4) * 2;
      const std::uint8_t q = (x[2 + byte_index] >> bit_offset) & 0x03;
      y.push_back(static_cast<float>(static_cast<int>(q) - 1) * d);
    }
  }
  return y;
}

// dequantize_row_ptq1_0 (block_ptq1_0 {uint8_t qs[24]; uint8_t qh[2]; ggml_half d;}).
std::vector<float> dequantize_row_ptq1_0(const std::uint8_t* x, std::size_t k) {
  static const std::size_t stages[3] = {32, 16, 8};
  const std::uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
  std::vector<float> y;
  for (std::size_t i = 0; i < k / 128; ++i, x += 28) {
    const std::uint8_t* qs = x;
    const std::uint8_t* qh = x + 24;
    const float d = half_at(x + 26);
    std::size_t j = 0;
    for (std::size_t c : stages) {
      for (; j + c <= 24; j += c) {
        for (std::size_t n = 0; n < 5; ++n) {
          for (std::size_t m = 0; m < c; ++m) {
            const std::uint8_t q = static_cast<std::uint8_t>(qs[j + m] * pow3[n]);
            const auto xi = static_cast<std::int16_t>((static_cast<std::uint16_t>(q) * 3) >> 8);
            y.push_back(static_cast<float>(xi - 1) * d);
          }
        }
      }
    }
    for (std::size_t n = 0; n < 4; ++n) {
      for (std::size_t h = 0; h < 2; ++h) {
        const std::uint8_t q = static_cast<std::uint8_t>(qh[h] * pow3[n]);
        const auto xi = static_cast<std::int16_t>((static_cast<std::uint16_t>(q) * 3) >> 8);
        y.push_back(static_cast<float>(xi - 1) * d);
      }
    }
  }
  return y;
}

// quantize_row_ptq1_0_ref, for inputs whose blocks have max |x| = 1 or 0 (so that d is 1 or 0 exactly and needs
// no fp16 rounding here): xi = lroundf(x * id) + 1, five digits most significant first, then the byte
// ceil(q * 256 / 243); qh takes four digits and one more factor 3.
std::vector<std::uint8_t> quantize_row_ptq1_0_ref(const float* x, std::size_t k) {
  static const std::size_t stages[2] = {16, 8};
  std::vector<std::uint8_t> out(k / 128 * 28, 0);
  for (std::size_t i = 0; i < k / 128; ++i) {
    std::uint8_t* y = out.data() + i * 28;
    float amax = 0.0f;
    for (std::size_t j = 0; j < 128; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const std::uint16_t h = d == 1.0f ? 0x3C00 : 0x0000;
    y[26] = static_cast<std::uint8_t>(h);
    y[27] = static_cast<std::uint8_t>(h >> 8);
    std::size_t j = 0;
    for (std::size_t c : stages) {
      for (; j + c <= 24; j += c) {
        for (std::size_t m = 0; m < c; ++m) {
          std::uint8_t q = 0;
          for (std::size_t n = 0; n < 5; ++n) {
            const int xi = static_cast<int>(std::lround(x[m + n * c] * id)) + 1;
            q = static_cast<std::uint8_t>(q * 3 + xi);
          }
          y[j + m] = static_cast<std::uint8_t>((static_cast<std::uint16_t>(q) * 256 + (243 - 1)) / 243);
        }
        x += 5 * c;
      }
    }
    for (std::size_t hh = 0; hh < 2; ++hh) {
      std::uint8_t q = 0;
      for (std::size_t m = 0; m < 4; ++m) {
        const int xi = static_cast<int>(std::lround(x[hh + m * 2] * id)) + 1;
        q = static_cast<std::uint8_t>(q * 3 + xi);
      }
      q = static_cast<std::uint8_t>(q * 3);
      y[24 + hh] = static_cast<std::uint8_t>((static_cast<std::uint16_t>(q) * 256 + (243 - 1)) / 243);
    }
    x += 8;
  }
  return out;
}

std::vector<float> dequantize(GgufBlockType type, const std::vector<std::uint8_t>& bytes, std::size_t k) {
  return type == GgufBlockType::ptq1_0 ? dequantize_row_ptq1_0(bytes.data(), k) : dequantize_row_pq2_0(bytes.data(), k);
}

std::size_t scale_at(GgufBlockType type) { return type == GgufBlockType::ptq1_0 ? 26 : 0; }

// Random blocks: every code byte random (so TQ1 bytes above 242 and PQ2 code 3 occur), every d a random finite
// fp16 of either sign; the first block's d a subnormal.
std::vector<std::uint8_t> random_row(GgufBlockType type, std::size_t n, std::mt19937& rng) {
  const auto info = bitlinear::gguf_block_info(type);
  std::vector<std::uint8_t> bytes(bitlinear::gguf_block_row_bytes(type, n));
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  for (std::size_t b = 0; b < n / info.block_weights; ++b) {
    std::uint16_t h;
    do h = static_cast<std::uint16_t>(rng()); while (((h >> 10) & 0x1f) == 0x1f);
    if (b == 0) h = static_cast<std::uint16_t>((h & 0x83FF) | 1);  // exponent 0: subnormal
    bytes[b * info.block_bytes + scale_at(type)] = static_cast<std::uint8_t>(h);
    bytes[b * info.block_bytes + scale_at(type) + 1] = static_cast<std::uint8_t>(h >> 8);
  }
  return bytes;
}

// 256 blocks in which every code byte position takes every value 0..255 once; scales 1.0.
std::vector<std::uint8_t> every_byte_row(GgufBlockType type) {
  const auto info = bitlinear::gguf_block_info(type);
  std::vector<std::uint8_t> bytes(256 * info.block_bytes);
  for (std::size_t b = 0; b < 256; ++b) {
    for (std::size_t i = 0; i < info.block_bytes; ++i) bytes[b * info.block_bytes + i] = static_cast<std::uint8_t>(b + 7 * i);
    bytes[b * info.block_bytes + scale_at(type)] = 0x00;
    bytes[b * info.block_bytes + scale_at(type) + 1] = 0x3C;
  }
  return bytes;
}

const GgufBlockType kPrismTypes[] = {GgufBlockType::pq2_0, GgufBlockType::q2_0_g128, GgufBlockType::ptq1_0};

// --- blocks ------------------------------------------------------------------------------------------------------

void expect_row_decodes(GgufBlockType type, const std::vector<std::uint8_t>& bytes, std::size_t in) {
  const auto want = dequantize(type, bytes, in);
  const auto info = bitlinear::gguf_block_info(type);
  std::vector<std::uint8_t> codes(bitlinear::Ternary::packed_row_bytes(in));
  std::vector<float> scales(in / info.block_weights);
  bitlinear::decode_gguf_row(type, bytes.data(), in, codes.data(), scales.data());
  for (std::size_t k = 0; k < in; ++k) {
    const float got = static_cast<float>(bitlinear::Ternary::code_at(codes.data(), k)) * scales[k / info.block_weights];
    ASSERT_TRUE(bitlinear_test::same_bits(got, want[k])) << info.name << " weight " << k << ": " << got << " vs " << want[k];
  }
  if (type != GgufBlockType::ptq1_0) return;
  std::vector<std::uint8_t> compact(bitlinear::TernaryCompact::packed_row_bytes(in));
  std::fill(scales.begin(), scales.end(), 0.0f);
  bitlinear::decode_gguf_row_compact(type, bytes.data(), in, compact.data(), scales.data());
  for (std::size_t k = 0; k < in; ++k) {
    const float got = static_cast<float>(bitlinear::TernaryCompact::code_at(compact.data(), k)) * scales[k / 128];
    ASSERT_TRUE(bitlinear_test::same_bits(got, want[k])) << "PTQ1_0 compact weight " << k;
  }
  // The padding of the last compact block is canonical (zero codes).
  for (std::size_t k = in; k < compact.size() / bitlinear::packed_block_bytes * 320; ++k) {
    ASSERT_EQ(bitlinear::TernaryCompact::code_at(compact.data(), k), 0) << "padding " << k;
  }
}

TEST(GgufPrism, BlocksDecodeToTheForksDequantizedValues) {
  std::mt19937 rng(142143);
  for (GgufBlockType type : kPrismTypes) {
    expect_row_decodes(type, every_byte_row(type), 256 * 128);
    for (std::size_t in : {128u, 384u, 640u, 2560u}) expect_row_decodes(type, random_row(type, in, rng), in);
  }
  EXPECT_EQ(bitlinear::gguf_block_row_bytes(GgufBlockType::pq2_0, 384), 3u * 34u);
  EXPECT_EQ(bitlinear::gguf_block_row_bytes(GgufBlockType::ptq1_0, 384), 3u * 28u);
  EXPECT_NE(invalid_argument_message([] {
              (void)bitlinear::gguf_block_row_bytes(GgufBlockType::ptq1_0, 192);
            }).find("block of 128"),
            std::string::npos);
}

// The fork's quantizer and the decoder agree on every weight's place: a random ternary block quantized by the
// transcribed quantize_row_ptq1_0_ref decodes to itself.
TEST(GgufPrism, Ptq1QuantizerAndDecoderAgreeOnTheOrder) {
  std::mt19937 rng(7);
  const std::size_t in = 640;
  std::vector<float> x(in);
  for (float& v : x) v = static_cast<float>(static_cast<int>(rng() % 3) - 1);
  for (std::size_t b = 0; b < in / 128; ++b) x[b * 128 + rng() % 128] = 1.0f;  // max |x| = 1 in every block
  const auto bytes = quantize_row_ptq1_0_ref(x.data(), in);
  EXPECT_EQ(dequantize_row_ptq1_0(bytes.data(), in), x);
  std::vector<std::uint8_t> codes(bitlinear::Ternary::packed_row_bytes(in));
  std::vector<float> scales(in / 128);
  bitlinear::decode_gguf_row(GgufBlockType::ptq1_0, bytes.data(), in, codes.data(), scales.data());
  for (std::size_t k = 0; k < in; ++k) {
    ASSERT_EQ(static_cast<float>(bitlinear::Ternary::code_at(codes.data(), k)), x[k]) << "weight " << k;
  }
  // Not TQ1_0's staging (32 then 16 bytes): the same bytes read as if PTQ1_0 had TQ1_0's order differ.
  std::vector<float> tq1_order;
  for (std::size_t n = 0; n < 5; ++n) {
    for (std::size_t m = 0; m < 24; ++m) tq1_order.push_back(static_cast<float>(bitlinear::detail::tq1_digit(bytes[m], static_cast<unsigned>(n)) - 1));
  }
  EXPECT_NE(std::vector<float>(x.begin(), x.begin() + 120), tq1_order);
}

// --- layers ------------------------------------------------------------------------------------------------------

bitlinear::GgufFile file_with(GgufBlockType type, std::size_t rows, std::size_t in, std::vector<float>& dequantized,
                              std::uint32_t seed) {
  std::mt19937 rng(seed);
  gguf_test::Writer w;
  w.kv_str("general.architecture", "qwen35");
  gguf_test::Bytes data;
  dequantized.clear();
  for (std::size_t r = 0; r < rows; ++r) {
    const auto row = random_row(type, in, rng);
    const auto values = dequantize(type, row, in);
    data.insert(data.end(), row.begin(), row.end());
    dequantized.insert(dequantized.end(), values.begin(), values.end());
  }
  w.tensor("blk.0.ffn_down.weight", {in, rows}, bitlinear::gguf_block_info(type).ggml_type, data);
  return bitlinear::GgufFile::from_bytes(w.build());
}

// The layer's weights are the reference values; every family gives the scalar outputs bit for bit; and those are
// the float64 product of the reference weights with the layer's quantized activations (the layer's semantics:
// y = sum_k w_k q_k [block scale] / row scale), within 1e-5 of the sum of |terms|.
template <class Format>
void expect_layer_is_the_forks(GgufBlockType type, std::size_t rows, std::size_t in) {
  std::vector<float> want;
  const auto file = file_with(type, rows, in, want, static_cast<std::uint32_t>(rows * 131 + in));
  const auto& tensor = file.view().at("blk.0.ffn_down.weight");
  const auto info = bitlinear::gguf_block_info(type);
  ASSERT_STREQ(tensor.type_name(), info.name);
  const auto x = bitlinear_test::random_floats(3 * in, static_cast<std::uint32_t>(in), -2.0f, 2.0f);
  for (auto mode : {bitlinear::ActivationScale::per_block, bitlinear::ActivationScale::per_token}) {
    bitlinear::Options reference_options;
    reference_options.isa = bitlinear::Isa::scalar;
    reference_options.activation_scale = mode;
    const auto reference = bitlinear::grouped_from_gguf<Format>(tensor, reference_options);
    ASSERT_EQ(reference.out_features(), rows);
    ASSERT_EQ(reference.group_size(), 128u);
    const auto codes = reference.unpacked_weights();
    const auto& scales = reference.group_scales();
    for (std::size_t j = 0; j < rows; ++j) {
      for (std::size_t k = 0; k < in; ++k) {
        const float got = static_cast<float>(codes[j * in + k]) * scales[j * (in / 128) + k / 128];
        ASSERT_TRUE(bitlinear_test::same_bits(got, want[j * in + k])) << info.name << " row " << j << " weight " << k;
      }
    }
    std::vector<float> y_ref(3 * rows);
    reference.forward(x.data(), 3, y_ref.data());
    bitlinear::QuantizedActivations acts;
    reference.quantize(x.data(), 3, in, acts);
    const bitlinear::ActivationsView a = acts.view();
    for (std::size_t t = 0; t < 3; ++t) {
      for (std::size_t j = 0; j < rows; ++j) {
        double sum = 0.0, magnitude = 0.0;
        for (std::size_t k = 0; k < in; ++k) {
          double term = static_cast<double>(want[j * in + k]) * a.q[t * a.stride + k];
          if (a.block_size != 0) term *= a.block_scale[t * a.block_stride + k / a.block_size];
          sum += term;
          magnitude += std::fabs(term);
        }
        const double err = std::fabs(static_cast<double>(y_ref[t * rows + j]) - sum / a.scale[t]);
        ASSERT_LE(err, 1e-5 * magnitude / a.scale[t]) << info.name << " t " << t << " row " << j;
      }
    }
    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      bitlinear::Options options = reference_options;
      options.isa = isa;
      const auto family = bitlinear::grouped_from_gguf<Format>(tensor, options);
      std::vector<float> y(3 * rows);
      family.forward(x.data(), 3, y.data());
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(bitlinear_test::same_bits(y[i], y_ref[i])) << info.name << " " << bitlinear::isa_name(isa) << " at " << i;
      }
    }
  }
}

TEST(GgufPrism, Pq2LoadsAsTwoBitLayerWithItsFourthLevel) {
  expect_layer_is_the_forks<bitlinear::Ternary>(GgufBlockType::pq2_0, 37, 384);
  expect_layer_is_the_forks<bitlinear::Ternary>(GgufBlockType::pq2_0, 5, 2560);
}
TEST(GgufPrism, LegacyQ2G128LoadsAsTwoBitLayer) {
  expect_layer_is_the_forks<bitlinear::Ternary>(GgufBlockType::q2_0_g128, 19, 640);
}
TEST(GgufPrism, Ptq1LoadsAsCompactAndAsTwoBitLayer) {
  expect_layer_is_the_forks<bitlinear::TernaryCompact>(GgufBlockType::ptq1_0, 21, 128);
  expect_layer_is_the_forks<bitlinear::TernaryCompact>(GgufBlockType::ptq1_0, 9, 384);
  expect_layer_is_the_forks<bitlinear::TernaryCompact>(GgufBlockType::ptq1_0, 7, 640);
  expect_layer_is_the_forks<bitlinear::TernaryCompact>(GgufBlockType::ptq1_0, 3, 2560);
  expect_layer_is_the_forks<bitlinear::Ternary>(GgufBlockType::ptq1_0, 11, 640);
}

TEST(GgufPrism, WrongLayerKindsAndTruncatedTensorsAreRefusedByName) {
  std::vector<float> unused;
  const auto pq2 = file_with(GgufBlockType::pq2_0, 3, 128, unused, 1);
  EXPECT_NE(invalid_argument_message([&] {
              bitlinear::grouped_from_gguf<bitlinear::TernaryCompact>(pq2.view().at("blk.0.ffn_down.weight"));
            }).find("(PQ2_0) holds codes -1, 0, +1, +2: build it as GroupedTernaryLinear"),
            std::string::npos);
  const auto ptq1 = file_with(GgufBlockType::ptq1_0, 3, 128, unused, 2);
  EXPECT_NE(invalid_argument_message([&] {
              bitlinear::grouped_from_gguf<bitlinear::Binary>(ptq1.view().at("blk.0.ffn_down.weight"));
            }).find("(PTQ1_0) holds codes -1, 0, +1: build it as GroupedCompactTernaryLinear or GroupedTernaryLinear"),
            std::string::npos);
  gguf_test::Writer f32_writer;
  f32_writer.tensor("norm.weight", {8}, 0, gguf_test::Bytes(32, 0));
  const auto f32 = bitlinear::GgufFile::from_bytes(f32_writer.build());
  EXPECT_NE(invalid_argument_message([&] {
              bitlinear::grouped_from_gguf<bitlinear::Ternary>(f32.view().at("norm.weight"));
            }).find("TQ1_0, TQ2_0, Q1_0, Q2_0, PQ2_0, PTQ1_0 or Q2_0_g128"),
            std::string::npos);
  // A tensor one byte short of its blocks, at the end of the file: refused by the reader, naming tensor and type.
  for (GgufBlockType type : {GgufBlockType::pq2_0, GgufBlockType::ptq1_0}) {
    const auto info = bitlinear::gguf_block_info(type);
    std::mt19937 rng(3);
    auto bytes = random_row(type, 256, rng);
    bytes.pop_back();
    gguf_test::Writer w;
    w.tensor("blk.0.attn_q.weight", {256, 1}, info.ggml_type, bytes);
    const std::string message = invalid_argument_message([&] { (void)bitlinear::GgufFile::from_bytes(w.build()); });
    EXPECT_NE(message.find(std::string("\"blk.0.attn_q.weight\" (") + info.name + "): bytes [0, 0 + " +
                           std::to_string(bytes.size() + 1) + ") end past"),
              std::string::npos)
        << message;
  }
  // Every truncation of a small PTQ1_0 / PQ2_0 file is refused or parsed, never read out of bounds (the
  // sanitizer legs and the fuzz target check the same at scale).
  for (GgufBlockType type : {GgufBlockType::pq2_0, GgufBlockType::ptq1_0}) {
    std::mt19937 rng(4);
    gguf_test::Writer w;
    w.tensor("w", {128, 2}, bitlinear::gguf_block_info(type).ggml_type, random_row(type, 256, rng));
    const auto full = w.build();
    for (std::size_t n = 0; n < full.size(); ++n) {
      const std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_THROW((void)bitlinear::GgufView::parse(cut.data(), cut.size()), std::invalid_argument) << n;
    }
  }
}

// --- id 42 -------------------------------------------------------------------------------------------------------

// One id-42 tensor ne = [in, rows] of `bytes`, followed by a small F32 tensor (at `next_offset` if given).
gguf_test::Bytes type42_file(std::size_t in, std::size_t rows, const gguf_test::Bytes& bytes,
                             std::optional<std::uint64_t> next_offset = std::nullopt) {
  gguf_test::Writer w;
  w.kv_str("general.architecture", "llama");
  w.tensor("blk.0.attn_q.weight", {in, rows}, 42, bytes);
  w.tensor("output_norm.weight", {8}, 0, gguf_test::Bytes(32, 0));
  if (next_offset) w.tensors.back().offset = next_offset;
  return w.build();
}

TEST(GgufPrism, Id42IsToldApartByTheTensorsSpan) {
  std::mt19937 rng(42);
  // Upstream Q2_0 (64 per 18-byte block) where only it fits.
  {
    const auto bytes = ggml_reference::random_row(GgufBlockType::q2_0, 8 * 512, rng);
    const auto file = bitlinear::GgufFile::from_bytes(type42_file(512, 8, bytes));
    const auto& t = file.view().at("blk.0.attn_q.weight");
    EXPECT_EQ(t.type, bitlinear::GgufType::q2_0);
    EXPECT_EQ(t.size_bytes, bytes.size());
    const auto layer = bitlinear::grouped_from_gguf<bitlinear::Ternary>(t);
    EXPECT_EQ(layer.group_size(), 64u);
    const auto want = ggml_reference::dequantize_reference(GgufBlockType::q2_0, bytes, 8 * 512);
    const auto codes = layer.unpacked_weights();
    for (std::size_t k = 0; k < want.size(); ++k) {
      ASSERT_EQ(static_cast<float>(codes[k]) * layer.group_scales()[k / 64], want[k]) << k;
    }
  }
  // PrismML's legacy Q2_0 (128 per 34-byte block) where only it fits; the last tensor of the file too.
  for (bool last : {false, true}) {
    const auto bytes = random_row(GgufBlockType::q2_0_g128, 8 * 512, rng);
    gguf_test::Bytes file_bytes;
    if (last) {
      gguf_test::Writer w;
      w.tensor("blk.0.attn_q.weight", {512, 8}, 42, bytes);
      file_bytes = w.build();
    } else {
      file_bytes = type42_file(512, 8, bytes);
    }
    const auto file = bitlinear::GgufFile::from_bytes(file_bytes);
    const auto& t = file.view().at("blk.0.attn_q.weight");
    EXPECT_EQ(t.type, bitlinear::GgufType::q2_0_g128);
    EXPECT_EQ(t.type_id, 42u);
    EXPECT_STREQ(t.type_name(), "Q2_0_g128");
    EXPECT_EQ(t.size_bytes, bytes.size());
    const auto layer = bitlinear::grouped_from_gguf<bitlinear::Ternary>(t);
    EXPECT_EQ(layer.group_size(), 128u);
    const auto want = dequantize_row_pq2_0(bytes.data(), 8 * 512);
    const auto codes = layer.unpacked_weights();
    for (std::size_t k = 0; k < want.size(); ++k) {
      ASSERT_TRUE(bitlinear_test::same_bits(static_cast<float>(codes[k]) * layer.group_scales()[k / 128], want[k])) << k;
    }
  }
  // ne[0] not a multiple of 128: upstream's only, whatever the span.
  {
    const auto bytes = ggml_reference::random_row(GgufBlockType::q2_0, 64, rng);
    const auto file = bitlinear::GgufFile::from_bytes(type42_file(64, 1, bytes, 4096));
    EXPECT_EQ(file.view().at("blk.0.attn_q.weight").type, bitlinear::GgufType::q2_0);
  }
  // Both fit: 128 x 1 weights are 36 or 34 bytes, and the next tensor starts at 64.
  {
    const auto bytes = random_row(GgufBlockType::q2_0_g128, 128, rng);
    const std::string message =
        invalid_argument_message([&] { (void)bitlinear::GgufFile::from_bytes(type42_file(128, 1, bytes)); });
    EXPECT_NE(message.find("tensor \"blk.0.attn_q.weight\" (type 42): upstream Q2_0 (64 weights per 18-byte block) "
                           "needs 36 bytes, PrismML's legacy Q2_0 (128 weights per 34-byte block) needs 34 bytes, and "
                           "64 bytes lie before the next tensor (or the end of the data): both fit"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("cannot be told apart"), std::string::npos) << message;
  }
  // Neither fits: 512 x 8 weights (1152 or 1088 bytes) with the next tensor at 4096.
  {
    const auto bytes = random_row(GgufBlockType::q2_0_g128, 8 * 512, rng);
    const std::string message =
        invalid_argument_message([&] { (void)bitlinear::GgufFile::from_bytes(type42_file(512, 8, bytes, 4096)); });
    EXPECT_NE(message.find("needs 1152 bytes, PrismML's legacy Q2_0 (128 weights per 34-byte block) needs 1088 bytes, "
                           "and 4096 bytes lie before the next tensor (or the end of the data): neither fits"),
              std::string::npos)
        << message;
  }
  // A stored id equal to the resolved type's internal value is an unknown type, not legacy Q2_0.
  {
    gguf_test::Writer w;
    w.tensor("w", {128, 1}, static_cast<std::uint32_t>(bitlinear::GgufType::q2_0_g128), gguf_test::Bytes(34, 0));
    const auto file = bitlinear::GgufFile::from_bytes(w.build());
    EXPECT_EQ(file.view().at("w").type, bitlinear::GgufType::unknown);
  }
}

// --- the model loader --------------------------------------------------------------------------------------------

struct Projection {
  const char* name;
  GgufBlockType type;
  std::size_t rows, in;
};
const Projection kProjections[] = {
    {"blk.0.attn_q.weight", GgufBlockType::pq2_0, 24, 384},      {"blk.0.attn_k.weight", GgufBlockType::ptq1_0, 16, 384},
    {"blk.0.attn_v.weight", GgufBlockType::q2_0_g128, 40, 384},  {"blk.0.attn_output.weight", GgufBlockType::ptq1_0, 33, 640},
    {"blk.0.ffn_gate.weight", GgufBlockType::pq2_0, 20, 128},    {"blk.0.ffn_up.weight", GgufBlockType::ptq1_0, 17, 2560},
    {"blk.0.ffn_down.weight", GgufBlockType::pq2_0, 9, 640},
};

gguf_test::Bytes prism_model(std::vector<std::vector<float>>& dequantized) {
  std::mt19937 rng(2026);
  gguf_test::Writer w;
  w.kv_str("general.architecture", "qwen35");
  w.kv_u32("qwen35.block_count", 1);
  for (const Projection& p : kProjections) {
    gguf_test::Bytes data;
    std::vector<float> values;
    for (std::size_t r = 0; r < p.rows; ++r) {
      const auto row = random_row(p.type, p.in, rng);
      const auto v = dequantize(p.type, row, p.in);
      data.insert(data.end(), row.begin(), row.end());
      values.insert(values.end(), v.begin(), v.end());
    }
    w.tensor(p.name, {p.in, p.rows}, bitlinear::gguf_block_info(p.type).ggml_type, data);
    dequantized.push_back(std::move(values));
  }
  return w.build();
}

template <class Layer>
void expect_weights(const Layer& layer, const std::vector<float>& want, const char* name) {
  const auto codes = layer.unpacked_weights();
  const std::size_t in = layer.in_features(), g = layer.group_size();
  for (std::size_t j = 0; j < layer.out_features(); ++j) {
    for (std::size_t k = 0; k < in; ++k) {
      ASSERT_TRUE(bitlinear_test::same_bits(static_cast<float>(codes[j * in + k]) * layer.group_scales()[j * (in / g) + k / g],
                                            want[j * in + k]))
          << name << " row " << j << " weight " << k;
    }
  }
}

TEST(GgufPrism, ModelLoaderBuildsEveryPrismType) {
  std::vector<std::vector<float>> want;
  const auto file = bitlinear::GgufFile::from_bytes(prism_model(want));
  for (bool compact : {true, false}) {
    bitlinear::GgufModelLoadOptions options;
    options.ptq1_0_compact = compact;
    const auto model = bitlinear::load_gguf_layers(file, options);
    ASSERT_EQ(model.layers.size(), 7u);
    EXPECT_FALSE(model.config.hadamard.present);
    for (std::size_t i = 0; i < 7; ++i) {
      const Projection& p = kProjections[i];
      const auto* entry = model.find_entry(p.name);
      ASSERT_NE(entry, nullptr) << p.name;
      EXPECT_STREQ(bitlinear::gguf_type_info(entry->type).name, bitlinear::gguf_block_info(p.type).name);
      if (p.type == GgufBlockType::ptq1_0 && compact) {
        const auto* l = model.find<bitlinear::GroupedCompactTernaryLinear>(p.name);
        ASSERT_NE(l, nullptr) << p.name;
        expect_weights(*l, want[i], p.name);
      } else {
        const auto* l = model.find<bitlinear::GroupedTernaryLinear>(p.name);
        ASSERT_NE(l, nullptr) << p.name;
        expect_weights(*l, want[i], p.name);
      }
    }
  }
  // Row reads of each type are the reference values.
  for (std::size_t i = 0; i < 7; ++i) {
    const Projection& p = kProjections[i];
    std::vector<float> row(p.in);
    bitlinear::gguf_row_to_float(file.view().at(p.name), p.rows - 1, row.data());
    for (std::size_t k = 0; k < p.in; ++k) {
      ASSERT_TRUE(bitlinear_test::same_bits(row[k], want[i][(p.rows - 1) * p.in + k])) << p.name << " " << k;
    }
  }
}

// --- prism.hadamard.* ----------------------------------------------------------------------------------------------

gguf_test::Bytes int_array(std::uint32_t type, const std::vector<std::int64_t>& values) {
  gguf_test::Bytes p;
  gguf_test::put_u32(p, type);
  gguf_test::put_u64(p, values.size());
  const unsigned size = type == gguf_test::I8 ? 1 : type == gguf_test::I32 || type == gguf_test::U32 ? 4 : 8;
  for (std::int64_t v : values) gguf_test::put(p, static_cast<std::uint64_t>(v), size);
  return p;
}
gguf_test::Bytes string_array(const std::vector<std::string>& values) {
  gguf_test::Bytes p;
  gguf_test::put_u32(p, gguf_test::STRING);
  gguf_test::put_u64(p, values.size());
  for (const std::string& s : values) gguf_test::put_str(p, s);
  return p;
}

struct Contract {
  std::int64_t version = 1, block = 256;
  std::string transform = "normalized-sylvester-walsh-hadamard", axis = "input-last-dimension", mode = "explicit";
  std::vector<std::int64_t> widths = {512, 256};
  std::vector<std::int64_t> signs;  // default: alternating, 768 values
  std::vector<std::string> names = {"blk.0.ffn_up.weight", "blk.0.ffn_down.weight"};
  bool with_version = true;
};

gguf_test::Bytes hadamard_file(const Contract& c) {
  gguf_test::Writer w;
  w.kv_str("general.architecture", "qwen35");
  w.kv_u32("qwen35.block_count", 0);
  if (c.with_version) w.kv("prism.hadamard.version", gguf_test::I32, [&] { gguf_test::Bytes p; gguf_test::put_u32(p, static_cast<std::uint64_t>(c.version)); return p; }());
  w.kv_u32("prism.hadamard.block_size", static_cast<std::uint32_t>(c.block));
  w.kv_str("prism.hadamard.transform", c.transform);
  w.kv_str("prism.hadamard.axis", c.axis);
  w.kv_str("prism.hadamard.sign_mode", c.mode);
  std::vector<std::int64_t> signs = c.signs;
  if (signs.empty()) {
    for (std::size_t i = 0; i < 768; ++i) signs.push_back(i % 3 == 0 ? -1 : 1);
  }
  w.kv("prism.hadamard.sign_widths", gguf_test::ARRAY, int_array(gguf_test::I32, c.widths));
  w.kv("prism.hadamard.sign_values", gguf_test::ARRAY, int_array(gguf_test::I8, signs));
  w.kv("prism.hadamard.weight_names", gguf_test::ARRAY, string_array(c.names));
  w.kv("prism.hadamard.inverse_weight_names", gguf_test::ARRAY, string_array({"token_embd.weight"}));
  std::mt19937 rng(5);
  w.tensor("blk.0.ffn_up.weight", {512, 2}, 142, random_row(GgufBlockType::pq2_0, 1024, rng));
  w.tensor("blk.0.ffn_down.weight", {256, 2}, 143, random_row(GgufBlockType::ptq1_0, 512, rng));
  w.tensor("token_embd.weight", {512, 3}, 142, random_row(GgufBlockType::pq2_0, 1536, rng));
  return w.build();
}

std::string hadamard_error(const Contract& c) {
  const auto file = bitlinear::GgufFile::from_bytes(hadamard_file(c));
  return invalid_argument_message([&] { (void)bitlinear::gguf_prism_hadamard(file.view()); });
}

TEST(GgufPrism, HadamardMetadataIsReadAndChecked) {
  const auto file = bitlinear::GgufFile::from_bytes(hadamard_file(Contract{}));
  const bitlinear::GgufPrismHadamard h = bitlinear::load_gguf_layers(file).config.hadamard;
  ASSERT_TRUE(h.present);
  EXPECT_EQ(h.version, 1u);
  EXPECT_EQ(h.block_size, 256u);
  EXPECT_TRUE(h.explicit_signs);
  ASSERT_EQ(h.signs.size(), 2u);
  ASSERT_NE(h.signs_for(512), nullptr);
  ASSERT_NE(h.signs_for(256), nullptr);
  EXPECT_EQ(h.signs_for(128), nullptr);
  for (std::size_t i = 0; i < 512; ++i) ASSERT_EQ((*h.signs_for(512))[i], i % 3 == 0 ? -1.0f : 1.0f) << i;
  for (std::size_t i = 0; i < 256; ++i) ASSERT_EQ((*h.signs_for(256))[i], (512 + i) % 3 == 0 ? -1.0f : 1.0f) << i;
  EXPECT_TRUE(h.rotates("blk.0.ffn_down.weight"));
  EXPECT_FALSE(h.rotates("token_embd.weight"));
  EXPECT_EQ(h.inverse_weight_names, std::vector<std::string>{"token_embd.weight"});
  // Identity mode carries no signs.
  Contract identity;
  identity.mode = "identity";
  const auto identity_file = bitlinear::GgufFile::from_bytes(hadamard_file(identity));
  const auto hi = bitlinear::gguf_prism_hadamard(identity_file.view());
  EXPECT_TRUE(hi.present);
  EXPECT_FALSE(hi.explicit_signs);
  EXPECT_TRUE(hi.signs.empty());
  // A file without the keys has none.
  std::vector<float> unused;
  EXPECT_FALSE(bitlinear::gguf_prism_hadamard(file_with(GgufBlockType::pq2_0, 1, 128, unused, 9).view()).present);

  const auto refused = [](Contract c, const std::string& needle) {
    const std::string message = hadamard_error(c);
    EXPECT_NE(message.find("bitlinear: gguf: prism.hadamard: " + needle), std::string::npos) << message;
  };
  Contract c;
  c.version = 2;
  refused(c, "version 2 is not supported (version 1 is)");
  c = Contract{};
  c.with_version = false;
  refused(c, "the file has prism.hadamard.* keys but no prism.hadamard.version");
  c = Contract{};
  c.block = 96;
  refused(c, "block_size 96 must be a power of two");
  c = Contract{};
  c.transform = "hadamard";
  refused(c, "transform \"hadamard\" is not supported");
  c = Contract{};
  c.axis = "output";
  refused(c, "axis \"output\" is not supported");
  c = Contract{};
  c.mode = "random";
  refused(c, "sign_mode \"random\" is not supported");
  c = Contract{};
  c.signs.assign(768, 1);
  c.signs[600] = 0;
  refused(c, "sign_values[600] = 0; every sign is +1 or -1");
  c = Contract{};
  c.signs.assign(769, 1);
  refused(c, "sign_values has 769 values, but sign_widths add up to 768");
  c = Contract{};
  c.signs.assign(700, 1);
  refused(c, "sign_values has 700 values; sign_widths need more (at least 768)");
  c = Contract{};
  c.widths = {512, 200};
  refused(c, "sign width 200 is not a positive multiple of block_size 256");
  c = Contract{};
  c.widths = {256, 256, 256};
  refused(c, "sign width 256 appears twice");
  c = Contract{};
  c.widths = {768};
  refused(c, "weight \"blk.0.ffn_up.weight\" has in_features 512, and sign_widths has no vector of that width");
  c = Contract{};
  c.names = {"blk.0.ffn_up.weight", "blk.0.attn_q.weight"};
  refused(c, "weight_names lists \"blk.0.attn_q.weight\", which is not a tensor of the file");
  c = Contract{};
  c.names = {"blk.0.ffn_up.weight", "blk.0.ffn_up.weight"};
  refused(c, "weight_names lists \"blk.0.ffn_up.weight\" twice");
  c = Contract{};
  c.block = 1024;
  c.widths = {1024};
  c.signs.assign(1024, 1);
  refused(c, "weight \"blk.0.ffn_up.weight\" has in_features 512, not a multiple of block_size 1024");
  // The model loader refuses a bad contract too.
  c = Contract{};
  c.version = 3;
  const auto bad = bitlinear::GgufFile::from_bytes(hadamard_file(c));
  EXPECT_NE(invalid_argument_message([&] { (void)bitlinear::load_gguf_layers(bad); }).find("prism.hadamard: version 3"),
            std::string::npos);
}

}  // namespace
