// Save/load: exact round trips for both layer kinds and every option, and every malformed-input error.
#include <bitlinear/io/serialize.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using bitlinear::ActivationScale;
using bitlinear::Binary;
using bitlinear::BitLinear;
using bitlinear::Options;
using bitlinear::Ternary;
using Bytes = std::vector<unsigned char>;

template <class Format>
BitLinear<Format> make_layer(std::size_t out, std::size_t in, bool with_bias, ActivationScale mode,
                             std::uint32_t seed) {
  const std::vector<float> w = bitlinear_test::random_floats(out * in, seed);
  const std::vector<float> b = bitlinear_test::random_floats(out, seed + 1, -2.0f, 2.0f);
  Options options;
  options.activation_scale = mode;
  return BitLinear<Format>::from_float(w.data(), out, in, with_bias ? b.data() : nullptr, options);
}

template <class Format>
void expect_same_layer(const BitLinear<Format>& a, const BitLinear<Format>& b) {
  ASSERT_EQ(a.out_features(), b.out_features());
  ASSERT_EQ(a.in_features(), b.in_features());
  EXPECT_TRUE(bitlinear_test::same_bits(a.weight_scale(), b.weight_scale()));
  EXPECT_EQ(a.has_bias(), b.has_bias());
  EXPECT_EQ(a.options().activation_scale, b.options().activation_scale);
  for (std::size_t j = 0; j < a.out_features(); ++j) EXPECT_TRUE(bitlinear_test::same_bits(a.bias()[j], b.bias()[j]));
  ASSERT_EQ(a.packed_weights_size(), b.packed_weights_size());
  EXPECT_EQ(a.packed_weights(), b.packed_weights());
  EXPECT_EQ(a.unpacked_weights(), b.unpacked_weights());
  // Same outputs, bit for bit, on a batch whose rows have different magnitudes.
  const std::size_t batch = 3;
  std::vector<float> x = bitlinear_test::random_floats(batch * a.in_features(), 99, -3.0f, 3.0f);
  for (std::size_t k = 0; k < a.in_features(); ++k) x[a.in_features() + k] *= 10.0f;
  std::vector<float> ya(batch * a.out_features()), yb(batch * a.out_features());
  a.forward(x.data(), batch, ya.data());
  b.forward(x.data(), batch, yb.data());
  for (std::size_t i = 0; i < ya.size(); ++i) EXPECT_TRUE(bitlinear_test::same_bits(ya[i], yb[i])) << i;
}

template <class Format>
void round_trip_all_options() {
  const std::size_t shapes[][2] = {{1, 1}, {3, 17}, {5, 300}, {2, 513}, {7, 1025}};
  std::uint32_t seed = 1;
  for (const auto& shape : shapes) {
    for (bool with_bias : {false, true}) {
      for (ActivationScale mode : {ActivationScale::per_token, ActivationScale::per_tensor}) {
        SCOPED_TRACE(std::to_string(shape[0]) + "x" + std::to_string(shape[1]) + " bias=" +
                     std::to_string(with_bias) + " per_tensor=" + std::to_string(mode == ActivationScale::per_tensor));
        const auto layer = make_layer<Format>(shape[0], shape[1], with_bias, mode, seed += 10);
        const Bytes bytes = bitlinear::save_to_bytes(layer);
        const auto from_buffer = bitlinear::load<Format>(bytes.data(), bytes.size());
        expect_same_layer(layer, from_buffer);
        EXPECT_EQ(bytes, bitlinear::save_to_bytes(from_buffer));  // byte-exact re-save

        std::stringstream stream;
        bitlinear::save(layer, stream);
        EXPECT_EQ(stream.str().size(), bytes.size());
        const auto from_stream = bitlinear::load<Format>(stream);
        expect_same_layer(layer, from_stream);

        for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
          const auto forced = bitlinear::load<Format>(bytes.data(), bytes.size(), isa);
          EXPECT_EQ(forced.isa(), isa);
          expect_same_layer(layer, forced);
        }
      }
    }
  }
}

TEST(Serialize, Crc32KnownAnswer) {
  const char* text = "123456789";
  EXPECT_EQ(bitlinear::detail::crc32_update(0, text, 9), 0xCBF43926u);
  // Feeding in pieces gives the same value.
  const std::uint32_t part = bitlinear::detail::crc32_update(0, text, 4);
  EXPECT_EQ(bitlinear::detail::crc32_update(part, text + 4, 5), 0xCBF43926u);
  EXPECT_EQ(bitlinear::detail::crc32_update(0, text, 0), 0u);
}

TEST(Serialize, TernaryRoundTripsExactly) { round_trip_all_options<Ternary>(); }
TEST(Serialize, BinaryRoundTripsExactly) { round_trip_all_options<Binary>(); }

TEST(Serialize, HeaderFieldsAreLittleEndianAtDocumentedOffsets) {
  const auto layer = make_layer<Ternary>(3, 300, true, ActivationScale::per_tensor, 5);
  const Bytes b = bitlinear::save_to_bytes(layer);
  ASSERT_EQ(b.size(), 52u + 12u + 3u * 128u + 4u);
  EXPECT_EQ(b[0], 0x89);
  EXPECT_EQ(b[1], 'B');
  EXPECT_EQ(b[8], 3);   // version (3 since the grouped formats; version 1 and 2 files still load)
  EXPECT_EQ(b[12], 1);  // ternary
  EXPECT_EQ(b[16], 3);  // out
  EXPECT_EQ(b[24], 300 & 0xFF);
  EXPECT_EQ(b[25], 300 >> 8);
  EXPECT_EQ(b[32], 1);  // per_tensor
  EXPECT_EQ(b[36], 1);  // has bias
  EXPECT_EQ(b[44] | b[45] << 8, 3 * 128);
  std::uint32_t bits = 0;
  const float scale = layer.weight_scale();
  std::memcpy(&bits, &scale, 4);
  EXPECT_EQ(b[40] | b[41] << 8 | b[42] << 16 | static_cast<std::uint32_t>(b[43]) << 24, bits);
  EXPECT_EQ(0, std::memcmp(b.data() + 52 + 12, layer.packed_weights().data(), 3 * 128));
}

TEST(Serialize, SeveralLayersInOneStream) {
  const auto a = make_layer<Ternary>(4, 70, true, ActivationScale::per_token, 7);
  const auto b = make_layer<Binary>(6, 600, false, ActivationScale::per_tensor, 8);
  std::stringstream stream;
  bitlinear::save(a, stream);
  bitlinear::save(b, stream);
  expect_same_layer(a, bitlinear::load<Ternary>(stream));
  expect_same_layer(b, bitlinear::load<Binary>(stream));
  EXPECT_THROW(bitlinear::load<Ternary>(stream), std::invalid_argument);  // nothing left
}

// --- hostile input -------------------------------------------------------------------------------------------

void set_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<unsigned char>(v >> (8 * i));
}
void set_u64(Bytes& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<unsigned char>(v >> (8 * i));
}
void set_f32(Bytes& b, std::size_t at, float f) {
  std::uint32_t v = 0;
  std::memcpy(&v, &f, 4);
  set_u32(b, at, v);
}
// Recomputes the checksum so that a test reaches the check behind it.
void fix_crc(Bytes& b) { set_u32(b, b.size() - 4, bitlinear::detail::crc32_update(0, b.data(), b.size() - 4)); }

template <class Format = Ternary>
void expect_rejected(const Bytes& b, const std::string& needle) {
  SCOPED_TRACE(needle);
  try {
    (void)bitlinear::load<Format>(b.data(), b.size());
    ADD_FAILURE() << "buffer load accepted bad input";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  std::stringstream stream(std::string(b.begin(), b.end()));
  try {
    (void)bitlinear::load<Format>(stream);
    // The stream loader consumes one layer and ignores what follows: trailing bytes are fine there.
    EXPECT_EQ(needle, "trailing") << "stream load accepted bad input";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle == "trailing" ? "" : needle), std::string::npos) << e.what();
  }
}

class SerializeErrors : public ::testing::Test {
 protected:
  Bytes good = bitlinear::save_to_bytes(make_layer<Ternary>(3, 300, true, ActivationScale::per_token, 11));
};

TEST_F(SerializeErrors, WrongMagic) {
  Bytes b = good;
  b[1] = 'X';
  expect_rejected(b, "wrong magic");
  expect_rejected(Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}, "wrong magic");
}

TEST_F(SerializeErrors, UnknownVersionKindScaleAndFlags) {
  Bytes b = good;
  set_u32(b, 8, 4);
  expect_rejected(b, "format version 4");
  b = good;
  set_u32(b, 8, 0);
  expect_rejected(b, "format version 0");
  b = good;
  set_u32(b, 12, 7);
  expect_rejected(b, "kind 7 is unknown");
  b = good;
  set_u32(b, 8, 2);  // version 2 has no grouped kinds
  set_u32(b, 12, 4);
  expect_rejected(b, "kind 4 is unknown in format version 2");
  b = good;
  set_u32(b, 8, 1);  // version 1 has no compact kind
  set_u32(b, 12, 3);
  expect_rejected(b, "kind 3 is unknown in format version 1");
  b = good;
  set_u32(b, 12, 0);
  expect_rejected(b, "kind 0 is unknown");
  b = good;
  set_u32(b, 32, 2);
  expect_rejected(b, "activation scale 2");
  b = good;
  set_u32(b, 36, 1u | 4u);
  expect_rejected(b, "reserved bits");
}

TEST_F(SerializeErrors, KindMismatch) { expect_rejected<Binary>(good, "holds a ternary layer"); }

TEST_F(SerializeErrors, AbsurdDimensions) {
  Bytes b = good;
  set_u64(b, 24, (std::uint64_t{1} << 20) + 1);
  expect_rejected(b, "exceeds the limit of 2^20");
  b = good;
  set_u64(b, 16, 0);
  expect_rejected(b, "at least 1x1");
  b = good;
  set_u64(b, 24, 0);
  expect_rejected(b, "at least 1x1");
  b = good;
  set_u64(b, 16, ~std::uint64_t{0});  // out * row_bytes would overflow
  expect_rejected(b, "2^40 weights");
  b = good;
  set_u64(b, 16, std::uint64_t{1} << 32);  // 2^32 * 300 weights > 2^40
  expect_rejected(b, "2^40 weights");
}

TEST_F(SerializeErrors, HugeClaimsOnShortInputAreTruncationNotAllocation) {
  // A legal but enormous header (2^20 x 2^20 ternary: 2^38 packed bytes) followed by almost nothing.
  Bytes b(good.begin(), good.begin() + 52);
  set_u64(b, 16, std::uint64_t{1} << 20);
  set_u64(b, 24, std::uint64_t{1} << 20);
  set_u64(b, 44, (std::uint64_t{1} << 20) * ((std::uint64_t{1} << 20) / 4));
  set_u32(b, 36, 0);
  b.resize(200, 0x55);
  expect_rejected(b, "truncated");
}

TEST_F(SerializeErrors, PackedSizeMismatch) {
  Bytes b = good;
  set_u64(b, 44, 3 * 128 + 64);
  expect_rejected(b, "declared as 448 bytes");
  b = good;
  set_u64(b, 24, 257);  // 257 inputs need 128-byte rows too, so the size fits, but weights 257.. are live codes
  fix_crc(b);
  expect_rejected(b, "padding past in_features");
  set_u64(b, 24, 256);  // 256 inputs need 64-byte rows
  expect_rejected(b, "has exactly 192");
}

TEST_F(SerializeErrors, EveryTruncationIsRejected) {
  for (std::size_t n = 0; n < good.size(); ++n) {
    const Bytes prefix(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    SCOPED_TRACE(n);
    EXPECT_THROW((void)bitlinear::load<Ternary>(prefix.data(), prefix.size()), std::invalid_argument);
    std::stringstream stream(std::string(prefix.begin(), prefix.end()));
    EXPECT_THROW((void)bitlinear::load<Ternary>(stream), std::invalid_argument);
  }
  expect_rejected(Bytes(good.begin(), good.end() - 1), "truncated");
}

TEST_F(SerializeErrors, TrailingBytes) {
  Bytes b = good;
  b.push_back(0);
  expect_rejected(b, "trailing");
}

TEST_F(SerializeErrors, EveryFlippedPayloadBitFailsTheChecksum) {
  for (std::size_t at = 52; at < good.size(); ++at) {
    Bytes b = good;
    b[at] ^= static_cast<unsigned char>(1u << (at % 8));
    SCOPED_TRACE(at);
    EXPECT_THROW((void)bitlinear::load<Ternary>(b.data(), b.size()), std::invalid_argument);
  }
  Bytes b = good;
  b[60] ^= 0x10;
  expect_rejected(b, "checksum mismatch");
  b = good;
  b.back() ^= 0x80;
  expect_rejected(b, "checksum mismatch");
}

TEST_F(SerializeErrors, NonCanonicalPackedWeights) {
  const std::size_t packed_at = 52 + 12;
  Bytes b = good;
  b[packed_at + 5] = 0xFF;  // field value 3 in a live weight
  fix_crc(b);
  expect_rejected(b, "not a valid ternary field");
  b = good;
  b[packed_at + 128 + 100] = 0x00;  // row 1, block 1 byte 36: weights 292 (live) and 356.. (padding) go to code -1
  fix_crc(b);
  expect_rejected(b, "padding past in_features");

  Bytes bin = bitlinear::save_to_bytes(make_layer<Binary>(2, 10, false, ActivationScale::per_token, 3));
  bin[52 + 20] |= 1;  // weight k = 20 lies past in_features = 10: padding must be clear
  fix_crc(bin);
  expect_rejected<Binary>(bin, "padding past in_features");
}

TEST_F(SerializeErrors, BadScaleAndBias) {
  Bytes b = good;
  set_f32(b, 40, -1.0f);
  fix_crc(b);
  expect_rejected(b, "weight_scale");
  set_f32(b, 40, std::numeric_limits<float>::quiet_NaN());
  fix_crc(b);
  expect_rejected(b, "weight_scale");
  set_f32(b, 40, 0.0f);  // ternary scale must be positive
  fix_crc(b);
  expect_rejected(b, "weight_scale");
  b = good;
  set_f32(b, 52 + 4, std::numeric_limits<float>::infinity());
  fix_crc(b);
  expect_rejected(b, "bias[1]");
}

TEST(Serialize, WriteFailureThrowsRuntimeError) {
  const auto layer = make_layer<Binary>(2, 5, false, ActivationScale::per_token, 1);
  std::stringstream stream;
  stream.setstate(std::ios::badbit);
  EXPECT_THROW(bitlinear::save(layer, stream), std::runtime_error);
}

}  // namespace
