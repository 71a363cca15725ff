// The streaming import paths (io/repack.hpp, io/online_quantize.hpp) against slow element-wise references kept
// here: HF packed -> ternary, HF packed -> compact, float tensors quantized at load, on odd shapes, every kernel
// family's execution layout, with and without thread pools; and the errors they report.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/hf_import.hpp>
#include <bitlinear/io/hf_import_compact.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

// The element-wise reference: canonical row r = i * R + j of an HF-packed weight, one weight at a time.
// Returns false on a field value 3.
bool reference_canonical_row(const Bytes& packed, std::size_t rows, std::size_t in, std::size_t r, std::uint8_t* row) {
  const std::size_t i = r / rows, j = r % rows;
  const std::size_t row_bytes = bitlinear::Ternary::packed_row_bytes(in);
  for (std::size_t t = 0; t < row_bytes; ++t) row[t] = bitlinear::Ternary::zero_byte;
  for (std::size_t k = 0; k < in; ++k) {
    const unsigned field = packed[j * in + k] >> (2 * i) & 3u;
    if (field == 3u) return false;
    bitlinear::Ternary::set_code(row, k, static_cast<int>(field) - 1);
  }
  return true;
}

Bytes reference_canonical(const Bytes& packed, std::size_t rows, std::size_t in) {
  const std::size_t row_bytes = bitlinear::Ternary::packed_row_bytes(in);
  Bytes out(4 * rows * row_bytes);
  for (std::size_t r = 0; r < 4 * rows; ++r) EXPECT_TRUE(reference_canonical_row(packed, rows, in, r, out.data() + r * row_bytes));
  return out;
}

// The first field 3 in the order of output rows, as the row-by-row import reported it.
std::string reference_field_3(const Bytes& packed, std::size_t rows, std::size_t in) {
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < rows; ++j) {
      for (std::size_t k = 0; k < in; ++k) {
        if ((packed[j * in + k] >> (2 * i) & 3u) == 3u) {
          return "[" + std::to_string(j) + "][" + std::to_string(k) + "] holds field value 3 in bits " +
                 std::to_string(2 * i) + ".." + std::to_string(2 * i + 1);
        }
      }
    }
  }
  return {};
}

Bytes random_hf(std::size_t n, std::mt19937& rng) {
  Bytes p(n);
  for (auto& b : p) {
    b = 0;
    for (int i = 0; i < 4; ++i) b = static_cast<std::uint8_t>(b | (rng() % 3) << (2 * i));
  }
  return p;
}

const std::pair<std::size_t, std::size_t> odd_shapes[] = {{1, 1},   {3, 7},    {2, 255},  {5, 256}, {7, 257},
                                                          {9, 511}, {33, 640}, {17, 769}, {40, 1000}, {1, 2560}};

TEST(Repack, HfPackedEqualsElementwiseReference) {
  std::mt19937 rng(7);
  bitlinear::ThreadPool pool2(2), pool3(3);
  for (const auto& shape : odd_shapes) {
    const std::size_t rows = shape.first, in = shape.second;
    const Bytes packed = random_hf(rows * in, rng);
    const Bytes expected = reference_canonical(packed, rows, in);
    std::vector<float> bias(4 * rows);
    for (std::size_t j = 0; j < bias.size(); ++j) bias[j] = 0.25f * static_cast<float>(j) - 1.0f;
    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      for (bitlinear::ThreadPool* pool : {static_cast<bitlinear::ThreadPool*>(nullptr), &pool2, &pool3}) {
        bitlinear::Options layer_options;
        layer_options.isa = isa;
        bitlinear::HfImportOptions options(layer_options);
        options.pool = pool;
        const auto layer = bitlinear::ternary_from_hf_packed(packed.data(), rows, in, 2.0f,
                                                             bitlinear::HfScaleConvention::divide, bias.data(), options);
        const std::string where = std::to_string(rows) + "x" + std::to_string(in) + " " + std::string(bitlinear::isa_name(isa)) +
                                  " threads " + std::to_string(pool ? pool->size() : 1);
        EXPECT_EQ(layer.packed_weights(), expected) << where;
        EXPECT_EQ(layer.weight_scale(), 0.5f) << where;
        EXPECT_EQ(layer.bias(), bias) << where;
        // The compact import: the reference's canonical rows converted by the library's row converter.
        const auto compact = bitlinear::compact_ternary_from_hf_packed(packed.data(), rows, in, 2.0f,
                                                                       bitlinear::HfScaleConvention::divide, bias.data(), options);
        const auto reference = bitlinear::CompactTernaryLinear::from_packed_rows(
            [&](std::size_t r, std::uint8_t* row) {
              Bytes two_bit(bitlinear::Ternary::packed_row_bytes(in));
              reference_canonical_row(packed, rows, in, r, two_bit.data());
              bitlinear::compact_row_from_ternary(two_bit.data(), in, row);
            },
            4 * rows, in, 0.5f, bias.data(), layer_options);
        EXPECT_EQ(compact.packed_weights(), reference.packed_weights()) << where;
        EXPECT_EQ(compact.weight_scale(), 0.5f) << where;
      }
    }
  }
}

TEST(Repack, FieldThreeIsReportedWhereTheRowByRowImportReportedIt) {
  std::mt19937 rng(11);
  bitlinear::ThreadPool pool(2);
  for (const auto& shape : odd_shapes) {
    const std::size_t rows = shape.first, in = shape.second;
    for (int trial = 0; trial < 4; ++trial) {
      Bytes packed = random_hf(rows * in, rng);
      for (int bad = 0; bad < 1 + trial; ++bad) {  // one or more fields 3, anywhere
        packed[rng() % packed.size()] |= static_cast<std::uint8_t>(3u << (2 * (rng() % 4)));
      }
      const std::string expected = reference_field_3(packed, rows, in);
      ASSERT_FALSE(expected.empty());
      for (bitlinear::ThreadPool* p : {static_cast<bitlinear::ThreadPool*>(nullptr), &pool}) {
        bitlinear::HfImportOptions options;
        options.pool = p;
        for (int compact = 0; compact < 2; ++compact) {
          try {
            if (compact) {
              (void)bitlinear::compact_ternary_from_hf_packed(packed.data(), rows, in, 1.0f,
                                                              bitlinear::HfScaleConvention::divide, nullptr, options);
            } else {
              (void)bitlinear::ternary_from_hf_packed(packed.data(), rows, in, 1.0f,
                                                      bitlinear::HfScaleConvention::divide, nullptr, options);
            }
            ADD_FAILURE() << "accepted a field value 3";
          } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what() << " vs " << expected;
          }
        }
      }
    }
  }
}

// Little-endian bytes of a float tensor in `dtype` (BF16 truncates; F16 expects values representable in it).
Bytes encode(const std::vector<float>& v, const std::string& dtype) {
  Bytes b;
  for (float f : v) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (dtype == "F32") {
      for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
    } else if (dtype == "BF16") {
      b.push_back(static_cast<std::uint8_t>(bits >> 16));
      b.push_back(static_cast<std::uint8_t>(bits >> 24));
    } else if (dtype == "F64") {
      const double d = static_cast<double>(f);
      std::uint64_t q;
      std::memcpy(&q, &d, 8);
      for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(q >> (8 * i)));
    } else {  // F16: values are multiples of 2^-24 below 2^15, subnormals included
      const std::uint32_t sign = bits >> 16 & 0x8000u;
      const float a = f < 0 ? -f : f;
      std::uint32_t h = 0;
      if (a >= 6.103515625e-05f) {  // normal half
        const std::uint32_t e = (bits >> 23 & 0xFFu) - 112u;
        h = e << 10 | (bits >> 13 & 0x3FFu);
      } else {
        h = static_cast<std::uint32_t>(a * 16777216.0f);  // subnormal: a / 2^-24
      }
      h |= sign;
      b.push_back(static_cast<std::uint8_t>(h));
      b.push_back(static_cast<std::uint8_t>(h >> 8));
    }
  }
  return b;
}

// A tensor named "w" of shape [out, in] viewing `bytes` (which must outlive it).
bitlinear::SafetensorsTensor tensor_view(const Bytes& bytes, const std::string& dtype, std::size_t out,
                                         std::size_t in) {
  bitlinear::SafetensorsTensor t;
  t.name = "w";
  t.dtype = dtype;
  t.shape = {out, in};
  t.data = bytes.data();
  t.size_bytes = bytes.size();
  return t;
}

TEST(Repack, OnlineQuantizationEqualsFromFloat) {
  std::mt19937 rng(5);
  bitlinear::ThreadPool pool(2);
  for (const std::string dtype : {"F32", "BF16", "F16", "F64"}) {
    for (const auto& shape : odd_shapes) {
      const std::size_t out = shape.first + 2, in = shape.second;
      std::vector<float> w(out * in);
      std::uniform_int_distribution<int> mantissa(-1024, 1024);
      std::uniform_int_distribution<int> exponent(-16, 2);
      for (float& x : w) x = std::ldexp(static_cast<float>(mantissa(rng)), exponent(rng)) / 1024.0f;  // exact in F16
      if (dtype == "F16") w[0] = 3.0f * std::ldexp(1.0f, -24);  // a subnormal half
      const Bytes bytes = encode(w, dtype);
      const bitlinear::SafetensorsTensor t = tensor_view(bytes, dtype, out, in);
      // The old path: the whole tensor converted to float32, then from_float.
      const std::vector<float> decoded = bitlinear::safetensors_to_float(t);
      const auto expected = bitlinear::TernaryLinear::from_float(decoded.data(), out, in);
      for (bitlinear::ThreadPool* p : {static_cast<bitlinear::ThreadPool*>(nullptr), &pool}) {
        bitlinear::HfImportOptions options;
        options.pool = p;
        const auto layer = bitlinear::ternary_from_float_tensor(t, nullptr, options);
        EXPECT_EQ(layer.packed_weights(), expected.packed_weights()) << dtype << " " << out << "x" << in;
        EXPECT_EQ(layer.weight_scale(), expected.weight_scale()) << dtype << " " << out << "x" << in;
      }
    }
  }
}

TEST(Repack, OnlineQuantizationRoundsTiesLikeFromFloat) {
  // mean |w| = 1 exactly, so s_w = 1 and +-0.5 are exact ties: round half to even gives 0, +-1.5 clamp to +-1.
  // Rows of 300 (a tail block), the pattern shuffled within each group of 4.
  const std::vector<float> pattern = {0.5f, -0.5f, 1.5f, -1.5f};
  const std::vector<std::int8_t> pattern_codes = {0, 0, 1, -1};
  std::mt19937 rng(11);
  const std::size_t out = 5, in = 300;
  std::vector<float> w(out * in);
  std::vector<std::int8_t> codes(out * in);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const std::size_t k = i % 4;  // every 4 consecutive weights hold the pattern once: the mean stays 1
    w[i] = pattern[k];
    codes[i] = pattern_codes[k];
  }
  for (std::size_t i = 0; i + 4 <= w.size(); i += 4) {  // shuffle inside each group of 4
    for (std::size_t j = 3; j > 0; --j) {
      const std::size_t r = rng() % (j + 1);
      std::swap(w[i + j], w[i + r]);
      std::swap(codes[i + j], codes[i + r]);
    }
  }
  for (const std::string dtype : {"F32", "BF16", "F16"}) {
    const Bytes bytes = encode(w, dtype);
    const bitlinear::SafetensorsTensor t = tensor_view(bytes, dtype, out, in);
    const auto layer = bitlinear::ternary_from_float_tensor(t, nullptr);
    EXPECT_EQ(layer.weight_scale(), 1.0f) << dtype;
    EXPECT_EQ(layer.unpacked_weights(), codes) << dtype;
    EXPECT_EQ(layer.packed_weights(), bitlinear::TernaryLinear::from_float(w.data(), out, in).packed_weights()) << dtype;
  }
}

TEST(Repack, OnlineQuantizationRefusesNonFiniteAndIntegerTensors) {
  std::vector<float> w(3 * 300, 0.5f);
  w[2 * 300 + 17] = std::numeric_limits<float>::infinity();
  const Bytes bytes = encode(w, "F32");
  bitlinear::SafetensorsTensor t;
  t.name = "w";
  t.dtype = "F32";
  t.shape = {3, 300};
  t.data = bytes.data();
  t.size_bytes = bytes.size();
  try {
    (void)bitlinear::ternary_from_float_tensor(t, nullptr);
    ADD_FAILURE() << "accepted an infinite weight";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("weight[617] = inf is not finite"), std::string::npos) << e.what();
  }
  t.dtype = "I32";
  EXPECT_THROW((void)bitlinear::ternary_from_float_tensor(t, nullptr), std::invalid_argument);
}

}  // namespace
