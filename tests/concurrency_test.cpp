// forward() is const and thread-safe: many threads on one layer give the same bits as sequential calls.
#include <gtest/gtest.h>

#include <thread>

#include "test_util.hpp"

namespace {

template <class Layer>
void concurrent_forward_matches_sequential(bitlinear::Isa isa) {
  const std::size_t out = 67, in = 515, threads = 8, calls = 6;
  bitlinear::Options options;
  options.isa = isa;
  const auto w = bitlinear_test::random_floats(out * in, 31);
  const auto bias = bitlinear_test::random_floats(out, 32);
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), options);
  std::vector<std::vector<float>> inputs, expected;
  for (std::size_t t = 0; t < threads; ++t) {
    const std::size_t batch = 1 + t % 5;
    inputs.push_back(bitlinear_test::random_floats(batch * in, static_cast<std::uint32_t>(100 + t), -4.0f, 4.0f));
    expected.emplace_back(batch * out);
    layer.forward(inputs.back().data(), batch, expected.back().data());
  }
  std::vector<int> mismatches(threads, 0);
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::size_t batch = 1 + t % 5;
      std::vector<float> y(batch * out);
      for (std::size_t c = 0; c < calls; ++c) {
        layer.forward(inputs[t].data(), batch, y.data());
        for (std::size_t i = 0; i < y.size(); ++i) mismatches[t] += !bitlinear_test::same_bits(y[i], expected[t][i]);
      }
    });
  }
  for (auto& th : pool) th.join();
  for (std::size_t t = 0; t < threads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

class Concurrency : public ::testing::TestWithParam<bitlinear::Isa> {};

TEST_P(Concurrency, TernaryForwardFromManyThreads) { concurrent_forward_matches_sequential<bitlinear::TernaryLinear>(GetParam()); }
TEST_P(Concurrency, BinaryForwardFromManyThreads) { concurrent_forward_matches_sequential<bitlinear::BinaryLinear>(GetParam()); }

INSTANTIATE_TEST_SUITE_P(AllRunnable, Concurrency, ::testing::ValuesIn(bitlinear_test::runnable_isas()),
                         [](const ::testing::TestParamInfo<bitlinear::Isa>& param_info) {
                           return bitlinear_test::isa_label(param_info.param);
                         });

}  // namespace
