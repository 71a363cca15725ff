// Every runnable kernel family against the scalar reference, bit for bit, over the size lists of DESIGN §4.
#include <gtest/gtest.h>

#include <algorithm>

#include "test_util.hpp"

namespace {

using bitlinear::Isa;
using bitlinear_test::runnable_isas;

const std::size_t kInFeatures[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4099};
const std::size_t kOutFeatures[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 64, 129};
const std::size_t kBatches[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33};

template <class Layer>
void expect_family_matches_scalar(Isa isa, std::size_t out, std::size_t in, std::size_t batch, std::uint32_t seed) {
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto bias = bitlinear_test::random_floats(out, seed + 1);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 2, -3.0f, 3.0f);
  bitlinear::Options scalar_options;
  scalar_options.isa = Isa::scalar;
  bitlinear::Options family_options;
  family_options.isa = isa;
  const auto reference = Layer::from_float(w.data(), out, in, bias.data(), scalar_options);
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), family_options);
  ASSERT_EQ(layer.isa(), isa);
  // Unaligned input and output: offsets of 4 bytes from a 64-byte boundary.
  bitlinear_test::Misaligned<float> x_unaligned(batch * in, 4), y_unaligned(batch * out, 4);
  std::copy(x.begin(), x.end(), x_unaligned.data());
  std::vector<float> y_ref(batch * out);
  reference.forward(x.data(), batch, y_ref.data());
  layer.forward(x_unaligned.data(), batch, y_unaligned.data());
  for (std::size_t i = 0; i < batch * out; ++i) {
    ASSERT_TRUE(bitlinear_test::same_bits(y_unaligned.data()[i], y_ref[i]))
        << bitlinear::isa_name(isa) << " out=" << out << " in=" << in << " batch=" << batch << " at " << i << ": "
        << y_unaligned.data()[i] << " vs scalar " << y_ref[i];
  }
}

class KernelMatrix : public ::testing::TestWithParam<Isa> {};

TEST_P(KernelMatrix, TernaryMatchesScalarBitForBit) {
  std::uint32_t seed = 1;
  for (std::size_t in : kInFeatures) {
    for (std::size_t out : kOutFeatures) {
      for (std::size_t batch : kBatches) {
        if (in >= 1000 && batch > 3 && out > 17) continue;  // the big corner is covered below at batch 1..3
        expect_family_matches_scalar<bitlinear::TernaryLinear>(GetParam(), out, in, batch, seed++);
      }
    }
  }
}

TEST_P(KernelMatrix, BinaryMatchesScalarBitForBit) {
  std::uint32_t seed = 100000;
  for (std::size_t in : kInFeatures) {
    for (std::size_t out : kOutFeatures) {
      for (std::size_t batch : kBatches) {
        if (in >= 1000 && batch > 3 && out > 17) continue;
        expect_family_matches_scalar<bitlinear::BinaryLinear>(GetParam(), out, in, batch, seed++);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllRunnable, KernelMatrix, ::testing::ValuesIn(runnable_isas()),
                         [](const ::testing::TestParamInfo<Isa>& param_info) { return bitlinear_test::isa_label(param_info.param); });

}  // namespace
