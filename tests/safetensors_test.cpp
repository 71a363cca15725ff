// The safetensors reader and the Hugging Face import on hand-built files: what is accepted, and every
// malformed-header rule. (The comparison against PyTorch lives in tests/interop/.)
#include <bitlinear/hf_import.hpp>
#include <bitlinear/safetensors.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes make_file(const std::string& header, const Bytes& data, std::uint64_t declared_length = ~std::uint64_t{0}) {
  const std::uint64_t n = declared_length == ~std::uint64_t{0} ? header.size() : declared_length;
  Bytes b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void expect_rejected(const Bytes& file, const std::string& needle) {
  SCOPED_TRACE(needle);
  try {
    (void)bitlinear::SafetensorsView::parse(file.data(), file.size());
    ADD_FAILURE() << "accepted a malformed file";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

void expect_header_rejected(const std::string& header, const Bytes& data, const std::string& needle) {
  expect_rejected(make_file(header, data), needle);
}

TEST(Safetensors, ParsesTensorsMetadataAndEscapes) {
  const std::string header =
      R"({"__metadata__":{"format":"pt","note":"caf\u00e9 \ud83d\ude00 \"q\""},)"
      R"( "a.weight" : {"dtype":"U8","shape":[2,3],"data_offsets":[0,6]},)"
      R"("scale":{"data_offsets":[6,10],"shape":[],"dtype":"F32"},"empty":{"dtype":"F16","shape":[0,5],"data_offsets":[10,10]}}   )";
  Bytes data = {1, 2, 3, 4, 5, 6, 0x00, 0x00, 0x80, 0x3F};  // 1.0f little-endian
  const Bytes file = make_file(header, data);
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  ASSERT_EQ(view.tensors().size(), 3u);
  const auto& a = view.at("a.weight");
  EXPECT_EQ(a.dtype, "U8");
  EXPECT_EQ(a.shape, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(a.size_bytes, 6u);
  EXPECT_EQ(a.data[5], 6);
  EXPECT_EQ(a.data, file.data() + 8 + header.size());  // a view, not a copy
  const auto& s = view.at("scale");
  EXPECT_EQ(s.element_count(), 1u);
  EXPECT_EQ(bitlinear::safetensors_to_float(s), std::vector<float>{1.0f});
  EXPECT_EQ(view.at("empty").size_bytes, 0u);
  ASSERT_EQ(view.metadata().size(), 2u);
  EXPECT_EQ(view.metadata()[1].second, "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\"");
  EXPECT_EQ(view.find("missing"), nullptr);
  EXPECT_THROW((void)view.at("missing"), std::invalid_argument);
}

TEST(Safetensors, HalfAndBfloatConvertExactly) {
  // F16: 1.0, -2.0, smallest subnormal 2^-24, largest subnormal, +inf, 65504. BF16: 1.0, -0.5.
  const std::string header = R"({"h":{"dtype":"F16","shape":[6],"data_offsets":[0,12]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},)"
                             R"("d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]}})";
  Bytes data = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xFF, 0x03, 0x00, 0x7C, 0xFF, 0x7B,
                0x80, 0x3F, 0x00, 0xBF};
  const double d[2] = {0.1, 1e300};
  for (double v : d) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; ++i) data.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
  }
  const Bytes file = make_file(header, data);
  const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
  const std::vector<float> h = bitlinear::safetensors_to_float(view.at("h"));
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(h[3], std::ldexp(1023.0f, -24));
  EXPECT_EQ(h[4], std::numeric_limits<float>::infinity());
  EXPECT_EQ(h[5], 65504.0f);
  EXPECT_EQ(bitlinear::safetensors_to_float(view.at("b")), (std::vector<float>{1.0f, -0.5f}));
  const std::vector<float> f = bitlinear::safetensors_to_float(view.at("d"));
  EXPECT_EQ(f[0], 0.1f);
  EXPECT_EQ(f[1], std::numeric_limits<float>::infinity());
}

TEST(Safetensors, RejectsBadFraming) {
  expect_rejected(Bytes{1, 2, 3}, "less than the 8-byte header length");
  expect_rejected(make_file("{}", {}, 3), "only 2 bytes follow");
  expect_rejected(make_file("{}", {}, 200'000'000), "exceeds the 100 MB limit");
  expect_rejected(make_file("{}", {}, ~std::uint64_t{0} - 1), "exceeds the 100 MB limit");
  EXPECT_NO_THROW((void)bitlinear::SafetensorsView::parse(make_file("{}", {}).data(), 10));
}

TEST(Safetensors, RejectsMalformedJson) {
  const Bytes none;
  expect_header_rejected("[]", none, "must be a JSON object");
  expect_header_rejected("", none, "must be a JSON object");
  expect_header_rejected("{} x", none, "unexpected bytes after");
  expect_header_rejected("{\"a\":", none, "entry must be an object");
  expect_header_rejected("{\"a", none, "unterminated string");
  expect_header_rejected("{\"a\\q\":1}", none, "unknown escape");
  expect_header_rejected("{\"\\ud800\":1}", none, "unpaired high surrogate");
  expect_header_rejected("{\"\\udc00\":1}", none, "unpaired low surrogate");
  expect_header_rejected("{\"\\u12\"}", none, "bad hex digit");
  expect_header_rejected(std::string("{\"a\x01\":1}"), none, "raw control character");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", Bytes{0}, "leading zero");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", Bytes{0}, "non-negative integer");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", Bytes{0}, "fraction");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,1]}}", Bytes{0},
                         "overflows 64 bits");
  expect_header_rejected("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,],\"data_offsets\":[0,1]}}", Bytes{0}, "non-negative integer");
  expect_header_rejected("{\"__metadata__\":{\"k\":1}}", none, "is not a string");
  expect_header_rejected("{\"__metadata__\":{},\"__metadata__\":{}}", none, "appears twice");
  expect_header_rejected("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", none, "appears twice");
}

TEST(Safetensors, RejectsBadEntries) {
  const Bytes one = {7};
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1]}})", one, "needs dtype, shape and data_offsets");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})", one, "unexpected or repeated key");
  expect_header_rejected(R"({"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}})", one, "unexpected or repeated key");
  expect_header_rejected(R"({"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", one, "unknown dtype");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", one, "exactly two integers");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}})", one, "are not within");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,2]}})", one, "are not within");
  expect_header_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1]}})", one, "needs more bytes");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,2]}})", Bytes{1, 2}, "need 1 bytes, data_offsets span 2");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,1]}})", one,
                         "shape needs more bytes");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                         one, "appears twice");
  const Bytes two = {1, 2};
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                         two, "tensors overlap");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", two, "hole in the data");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", two, "1 bytes after the last tensor");
  expect_header_rejected(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", two, "after the last tensor");
}

TEST(Safetensors, EveryTruncationOfAValidFileIsRejected) {
  const std::string header = R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})";
  const Bytes file = make_file(header, Bytes{0x55, 0x66, 0x99, 0x00, 0x00, 0x00, 0x40});
  EXPECT_NO_THROW((void)bitlinear::SafetensorsView::parse(file.data(), file.size()));
  for (std::size_t n = 0; n < file.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_THROW((void)bitlinear::SafetensorsView::parse(file.data(), n), std::invalid_argument);
  }
}

// --- Hugging Face import on hand-built packed bytes ----------------------------------------------------------

TEST(HfPacked, OneHotBitOrder) {
  // 2 packed rows (out = 8) x 3 inputs. Row r = i*2 + j lives in bits 2i..2i+1 of packed row j.
  // Byte [j=1][k=2] = fields (i=0: 2, i=1: 0, i=2: 1, i=3: 1) = 0b01'01'00'10 -> rows 1, 3, 5, 7 at k = 2 get +1, -1, 0, 0.
  std::vector<std::uint8_t> packed(6, 0x55);  // all code 0
  packed[1 * 3 + 2] = 0x52;
  const auto layer = bitlinear::ternary_from_hf_packed(packed.data(), 2, 3, 4.0f, bitlinear::HfScaleConvention::divide);
  const std::vector<std::int8_t> codes = layer.unpacked_weights();
  std::vector<std::int8_t> expected(8 * 3, 0);
  expected[1 * 3 + 2] = 1;
  expected[3 * 3 + 2] = -1;
  EXPECT_EQ(codes, expected);
  EXPECT_EQ(layer.weight_scale(), 0.25f);  // divide: beta = 1 / weight_scale
  const auto multiplied = bitlinear::ternary_from_hf_packed(packed.data(), 2, 3, 4.0f, bitlinear::HfScaleConvention::multiply);
  EXPECT_EQ(multiplied.weight_scale(), 4.0f);
}

TEST(HfPacked, BiasIsScaledOnlyForMultiply) {
  std::vector<std::uint8_t> packed(2, 0x55);
  const float bias[4] = {1.0f, -2.0f, 3.0f, 0.5f};
  const auto d = bitlinear::ternary_from_hf_packed(packed.data(), 1, 2, 2.0f, bitlinear::HfScaleConvention::divide, bias);
  const auto m = bitlinear::ternary_from_hf_packed(packed.data(), 1, 2, 2.0f, bitlinear::HfScaleConvention::multiply, bias);
  const float x[2] = {0.3f, -0.7f};
  float yd[4], ym[4];
  d.forward(x, 1, yd);
  m.forward(x, 1, ym);
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(yd[j], bias[j]);  // all codes 0: only the bias remains
    EXPECT_EQ(ym[j], 2.0f * bias[j]);
  }
}

TEST(HfPacked, RejectsBadInput) {
  std::vector<std::uint8_t> packed(4, 0x55);
  packed[3] = 0xD5;  // bits 6..7 = 3
  try {
    (void)bitlinear::ternary_from_hf_packed(packed.data(), 2, 2, 1.0f, bitlinear::HfScaleConvention::divide);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[1][1] holds field value 3 in bits 6..7"), std::string::npos) << e.what();
  }
  packed[3] = 0x55;
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::denorm_min()}) {
    EXPECT_THROW((void)bitlinear::ternary_from_hf_packed(packed.data(), 2, 2, bad, bitlinear::HfScaleConvention::divide),
                 std::invalid_argument)
        << bad;
  }
  EXPECT_THROW((void)bitlinear::ternary_from_hf_packed(packed.data(), 0, 2, 1.0f, bitlinear::HfScaleConvention::divide),
               std::invalid_argument);
  EXPECT_THROW((void)bitlinear::ternary_from_hf_packed(packed.data(), 1, (std::size_t{1} << 20) + 1, 1.0f,
                                                       bitlinear::HfScaleConvention::divide),
               std::invalid_argument);
}

TEST(HfPacked, CheckpointTensorsAreValidated) {
  auto parse_and_import = [](const std::string& header, const Bytes& data) {
    const Bytes file = make_file(header, data);
    const auto view = bitlinear::SafetensorsView::parse(file.data(), file.size());
    return bitlinear::ternary_from_hf_checkpoint(view, "w", bitlinear::HfScaleConvention::divide);
  };
  const Bytes data = {0x55, 0x66, 0x99, 0x00, 0x00, 0x00, 0x40};
  const auto layer = parse_and_import(
      R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})",
      data);
  EXPECT_EQ(layer.out_features(), 4u);
  EXPECT_EQ(layer.weight_scale(), 0.5f);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"I8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"U32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"U16","shape":[2],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"x":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})", data),
               std::invalid_argument);
  EXPECT_THROW(parse_and_import(R"({"w.weight":{"dtype":"U8","shape":[1,3],"data_offsets":[0,3]},"w.weight_scale":{"dtype":"F16","shape":[1],"data_offsets":[3,5]},"w.bias":{"dtype":"F16","shape":[1],"data_offsets":[5,7]}})", data),
               std::invalid_argument);  // bias must have out_features = 4 values
}

}  // namespace
