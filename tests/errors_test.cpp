// Every public entry point rejects bad arguments with an exception naming the argument and the broken rule.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "test_util.hpp"

namespace {

using bitlinear::BinaryLinear;
using bitlinear::Isa;
using bitlinear::TernaryLinear;
using ::testing::HasSubstr;

using bitlinear_test::invalid_argument_message;

template <class F>
std::string runtime_error_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return std::string("wrong exception type: ") + e.what();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no exception";
}

TEST(Errors, FromFloatShapeAndPointers) {
  const std::vector<float> w(64, 0.5f);
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_float(w.data(), 0, 8); }), HasSubstr("out_features is 0"));
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_float(w.data(), 8, 0); }), HasSubstr("in_features is 0"));
  EXPECT_THAT(invalid_argument_message([&] { BinaryLinear::from_float(nullptr, 8, 8); }), HasSubstr("weight is null"));
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_float(w.data(), 1, (1u << 20) + 1); }),
              HasSubstr("in_features 1048577 exceeds the limit of 2^20"));
}

TEST(Errors, NonFiniteWeightsAndBias) {
  std::vector<float> w(6, 0.5f);
  w[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_float(w.data(), 2, 3); }),
              HasSubstr("weight[4] = nan is not finite"));
  w[4] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(invalid_argument_message([&] { BinaryLinear::from_float(w.data(), 2, 3); }),
              HasSubstr("weight[4] = -inf is not finite"));
  w[4] = 1.0f;
  const float bias[] = {0.0f, std::numeric_limits<float>::infinity()};
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_float(w.data(), 2, 3, bias); }),
              HasSubstr("bias[1] = inf is not finite"));
}

TEST(Errors, FromPackedValidation) {
  const std::size_t out = 3, in = 300;
  std::vector<std::uint8_t> packed(bitlinear::packed_size<bitlinear::Ternary>(out, in), 0x55);
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_packed(packed.data(), packed.size() - 1, out, in, 1.0f); }),
              HasSubstr("packed weights hold 383 bytes; ternary 3x300 needs exactly 384"));
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_packed(nullptr, packed.size(), out, in, 1.0f); }),
              HasSubstr("packed weights are null"));
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_packed(packed.data(), packed.size(), out, in, 0.0f); }),
              HasSubstr("weight_scale 0.000000 must be finite and positive"));
  EXPECT_THAT(invalid_argument_message([&] {
                TernaryLinear::from_packed(packed.data(), packed.size(), out, in, std::numeric_limits<float>::quiet_NaN());
              }),
              HasSubstr("must be finite"));
  EXPECT_THAT(invalid_argument_message([&] { BinaryLinear::from_packed(packed.data(), 192, out, in, -1.0f); }),
              HasSubstr("must be finite and non-negative"));
  auto bad = packed;
  bad[128 + 5] = 0xFF;  // row 1, byte 5: field 3 in every position
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_packed(bad.data(), bad.size(), out, in, 1.0f); }),
              HasSubstr("row 1, weight 5 holds field value 3"));
  bad = packed;
  bad[64 + 63] = 0x56;  // row 0, block 1, byte 63, field 0 -> weight 256 + 63 = 319 >= 300: padding must be code 0
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_packed(bad.data(), bad.size(), out, in, 1.0f); }),
              HasSubstr("padding past in_features must be code 0"));
  std::vector<std::uint8_t> binary(bitlinear::packed_size<bitlinear::Binary>(out, in), 0);
  binary[63] = 0x80;  // bit 7 of byte 63 = weight 7 * 64 + 63 = 511 >= 300
  EXPECT_THAT(invalid_argument_message([&] { BinaryLinear::from_packed(binary.data(), binary.size(), out, in, 1.0f); }),
              HasSubstr("weight 511 holds field value 1"));
  const std::int8_t codes[] = {0, 2};
  std::vector<std::uint8_t> dst(64);
  EXPECT_THAT(invalid_argument_message([&] { bitlinear::pack_codes<bitlinear::Ternary>(codes, 1, 2, dst.data()); }),
              HasSubstr("code 2 at [0][1] is not a valid ternary code"));
  EXPECT_THAT(invalid_argument_message([&] { bitlinear::pack_codes<bitlinear::Binary>(codes, 1, 2, dst.data()); }),
              HasSubstr("code 0 at [0][0] is not a valid binary code"));
}

TEST(Errors, ForwardArguments) {
  const auto w = bitlinear_test::random_floats(4 * 10, 1);
  const auto layer = TernaryLinear::from_float(w.data(), 4, 10);
  std::vector<float> x(20), y(8);
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(nullptr, 2, y.data()); }), HasSubstr("input x is null"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), 2, nullptr); }), HasSubstr("output y is null"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), 0, y.data()); }), HasSubstr("batch is 0"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), 2, 9, y.data(), 4); }),
              HasSubstr("x_stride 9 is smaller than in_features 10"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), 2, 10, y.data(), 3); }),
              HasSubstr("y_stride 3 is smaller than out_features 4"));
  std::vector<unsigned char> small(16);
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), 2, 10, y.data(), 4, small.data(), small.size()); }),
              HasSubstr("activation workspace of 16 bytes is too small"));
}

TEST(Errors, ForwardQuantizedArguments) {
  const auto w = bitlinear_test::random_floats(4 * 10, 1);
  const auto layer = TernaryLinear::from_float(w.data(), 4, 10);
  const auto x = bitlinear_test::random_floats(20, 2);
  bitlinear::QuantizedActivations qa;
  layer.quantize(x.data(), 2, 10, qa);
  std::vector<float> y(8);
  EXPECT_THAT(invalid_argument_message([&] { layer.forward_quantized(qa.view(), 3, 5, y.data(), 4); }),
              HasSubstr("output range [3, 5) is not within [0, out_features = 4]"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward_quantized(qa.view(), 3, 2, y.data(), 4); }),
              HasSubstr("output range [3, 2)"));
  auto view = qa.view();
  view.in_features = 11;
  EXPECT_THAT(invalid_argument_message([&] { layer.forward_quantized(view, 0, 4, y.data(), 4); }),
              HasSubstr("quantized activations have in_features 11 but the layer has 10"));
  view = qa.view();
  view.stride = 64;
  EXPECT_THAT(invalid_argument_message([&] { layer.forward_quantized(view, 0, 4, y.data(), 4); }),
              HasSubstr("stride 64; it must be a multiple of 512"));
  view = qa.view();
  view.q = nullptr;
  EXPECT_THAT(invalid_argument_message([&] { layer.forward_quantized(view, 0, 4, y.data(), 4); }),
              HasSubstr("quantized activations are null"));
  std::vector<std::int8_t> q(2 * 512, 0);
  std::vector<float> scale(2, 1.0f);
  std::vector<std::int32_t> sum(2, 0);
  q[512 + 10] = 1;  // row 1, first padding byte
  const bitlinear::ActivationsView hand{q.data(), scale.data(), sum.data(), 2, 10, 512};
  EXPECT_THAT(invalid_argument_message([&] { layer.forward_quantized(hand, 0, 4, y.data(), 4); }),
              HasSubstr("row 1 has a nonzero value in its padding at 10"));
}

TEST(Errors, KernelFamilies) {
  EXPECT_THAT(invalid_argument_message([] { bitlinear::parse_isa("avx9000"); }),
              HasSubstr("unknown kernel family \"avx9000\""));
  EXPECT_EQ(bitlinear::parse_isa("scalar"), Isa::scalar);
  // Force each family this CPU cannot run (at least one of the x86 / ARM sets): a runtime_error that lists what
  // the CPU supports.
  const auto w = bitlinear_test::random_floats(8, 1);
  int unrunnable = 0;
  for (Isa isa : bitlinear::all_isas) {
    if (bitlinear::detail::isa_runnable(isa)) continue;
    ++unrunnable;
    bitlinear::Options options;
    options.isa = isa;
    const std::string message = runtime_error_message([&] { TernaryLinear::from_float(w.data(), 2, 4, nullptr, options); });
    EXPECT_THAT(message, HasSubstr(std::string("kernel family \"") + std::string(bitlinear::isa_name(isa)) + "\" cannot run"));
    EXPECT_THAT(message, HasSubstr("this CPU supports: scalar"));
  }
  EXPECT_GT(unrunnable, 0);
}

}  // namespace
