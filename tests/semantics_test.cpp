// Hand-worked cases of the pinned semantics (DESIGN §1), on every runnable kernel family.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif
#include <math.h>
#include <limits>

#include "test_util.hpp"

namespace {

using bitlinear::ActivationScale;
using bitlinear::BinaryLinear;
using bitlinear::Isa;
using bitlinear::Options;
using bitlinear::QuantizedActivations;
using bitlinear::TernaryLinear;

class Semantics : public ::testing::TestWithParam<Isa> {
 protected:
  Options options(ActivationScale mode = ActivationScale::per_token) const {
    Options o;
    o.activation_scale = mode;
    o.isa = GetParam();
    return o;
  }
  std::vector<std::int8_t> quantize_row(const std::vector<float>& x) const {
    QuantizedActivations qa;
    qa.quantize(x.data(), 1, x.size(), x.size(), ActivationScale::per_token, GetParam());
    return std::vector<std::int8_t>(qa.view().q, qa.view().q + x.size());
  }
};

// W = [0.3, -0.9, 0.05, 1.4]: mean|W| = 0.6625, W / 0.6625 = [0.45, -1.36, 0.075, 2.11] -> codes [0, -1, 0, +1].
// x = [1, -2, 0.5, 4]: m = 4, s_x = (1/4) * 127 = 31.75 (exact), x * s_x = [31.75, -63.5, 15.875, 127]
// -> q = [32, -64 (tie, to even), 16, 127]; dot = (-1)(-64) + 127 = 191.
TEST_P(Semantics, TernaryHandWorkedExample) {
  const float w[] = {0.3f, -0.9f, 0.05f, 1.4f};
  const float x[] = {1.0f, -2.0f, 0.5f, 4.0f};
  const float bias[] = {0.25f};
  const auto layer = TernaryLinear::from_float(w, 1, 4, bias, options());
  EXPECT_EQ(layer.unpacked_weights(), (std::vector<std::int8_t>{0, -1, 0, 1}));
  const double sum_abs = static_cast<double>(0.3f) + 0.9f + static_cast<double>(0.05f) + static_cast<double>(1.4f);
  const float beta = static_cast<float>(sum_abs / 4.0);
  EXPECT_EQ(layer.weight_scale(), beta);
  EXPECT_EQ(quantize_row({1.0f, -2.0f, 0.5f, 4.0f}), (std::vector<std::int8_t>{32, -64, 16, 127}));
  float y = 0;
  layer.forward(x, 1, &y);
  const float s_x = 31.75f, s_w = 1.0f / beta;
  EXPECT_TRUE(bitlinear_test::same_bits(y, 191.0f / s_x / s_w + 0.25f)) << y;
}

// alpha = mean(W) = 0.2125, beta = mean|W| = 0.6625; W - alpha > 0 -> [+1, -1, -1, +1].
TEST_P(Semantics, BinaryHandWorkedExample) {
  const float w[] = {0.3f, -0.9f, 0.05f, 1.4f};
  const auto layer = BinaryLinear::from_float(w, 2, 2, nullptr, options());
  EXPECT_EQ(layer.unpacked_weights(), (std::vector<std::int8_t>{1, -1, -1, 1}));
  const double sum_abs = static_cast<double>(0.3f) + 0.9f + static_cast<double>(0.05f) + static_cast<double>(1.4f);
  EXPECT_EQ(layer.weight_scale(), static_cast<float>(sum_abs / 4.0));
  // x = [2, -1]: s_x = 0.5 * 127 = 63.5, q = [127, -63.5 -> -64]; rows: 127 + 64 = 191 and -127 - 64 = -191.
  const float x[] = {2.0f, -1.0f};
  float y[2];
  layer.forward(x, 1, y);
  EXPECT_TRUE(bitlinear_test::same_bits(y[0], 191.0f / 63.5f * layer.weight_scale()));
  EXPECT_TRUE(bitlinear_test::same_bits(y[1], -191.0f / 63.5f * layer.weight_scale()));
}

// With m = 1 (s_x = 127 exactly), find x with x * 127 == n + 0.5 exactly in float and check rounding to even.
TEST_P(Semantics, ActivationTiesRoundToEven) {
  int ties_checked = 0;
  for (int n = -126; n <= 125; ++n) {
    // exact_*: single IEEE operations, also under -ffast-math (the CI leg), which may turn / 127 into * (1 / 127).
    namespace det = bitlinear::detail;
    const float target = static_cast<float>(n) + 0.5f;
    float x = det::exact_div(target, 127.0f);
    for (int step = 0; step < 4 && det::exact_mul(x, 127.0f) != target; ++step) {
      x = std::nextafter(x, det::exact_mul(x, 127.0f) < target ? 2.0f : -2.0f);
    }
    if (det::exact_mul(x, 127.0f) != target) continue;  // no float x gives this tie exactly
    const auto q = quantize_row({1.0f, x});
    const int even = (n % 2 == 0) ? n : n + 1;
    ASSERT_EQ(q[0], 127);
    ASSERT_EQ(q[1], even) << "x * s_x = " << target;
    ++ties_checked;
  }
  EXPECT_GT(ties_checked, 100);
}

// PyTorch computes 127 / m as reciprocal(m) * 127. Find m where that differs from a true division and an x whose
// q depends on it; the library must follow the reciprocal.
TEST_P(Semantics, ScaleIsReciprocalTimes127) {
  int differing = 0;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(0.01f, 100.0f);
  for (int trial = 0; trial < 20000 && differing < 20; ++trial) {
    const float m = dist(rng);
    // exact_*: one IEEE operation each, also when this test is built with -ffast-math (the CI leg does).
    namespace det = bitlinear::detail;
    const float reciprocal_first = det::exact_mul(det::exact_div(1.0f, m), 127.0f), divided = det::exact_div(127.0f, m);
    if (reciprocal_first == divided) continue;
    // Look for x in (0, m) with rne(x * reciprocal_first) != rne(x * divided): near a tie between them.
    for (int n = 1; n < 127; ++n) {
      const float x = det::exact_div(static_cast<float>(n) + 0.5f, divided);
      if (!(x < m) || std::nearbyint(det::exact_mul(x, reciprocal_first)) == std::nearbyint(det::exact_mul(x, divided))) continue;
      const auto q = quantize_row({m, x});
      ASSERT_EQ(q[1], static_cast<std::int8_t>(std::nearbyint(det::exact_mul(x, reciprocal_first)))) << "m=" << m << " x=" << x;
      ++differing;
      break;
    }
  }
  EXPECT_GT(differing, 0);
}

// m >= |x| always, so |x * s_x| stays within a few ulps of 127 and never reaches -128: the most negative input
// gives -127, also with per-tensor scaling.
TEST_P(Semantics, MostNegativeValueQuantizesToMinus127) {
  const auto q = quantize_row({-3.0f, 1.0f, 2.9999998f});
  EXPECT_EQ(q[0], -127);
  EXPECT_EQ(q[2], 127);
  const float x[] = {-1e-3f, 5.0f, -7.5f, 0.0f};
  QuantizedActivations qa;
  qa.quantize(x, 2, 2, 2, ActivationScale::per_tensor, GetParam());
  EXPECT_EQ(qa.view().q[qa.view().stride + 0], -127);
  EXPECT_EQ(qa.view().scale[0], qa.view().scale[1]);
}

TEST_P(Semantics, AllZeroActivationsAndWeights) {
  const std::vector<float> zeros(6 * 40, 0.0f);
  const auto bias = bitlinear_test::random_floats(6, 3);
  const auto x = bitlinear_test::random_floats(2 * 40, 4);
  std::vector<float> y(2 * 6);
  // All-zero weights: ternary beta clamps to 1e-5 and every code is 0; binary codes are all -1 with beta 0.
  const auto ternary = TernaryLinear::from_float(zeros.data(), 6, 40, bias.data(), options());
  EXPECT_EQ(ternary.weight_scale(), 1e-5f);
  EXPECT_EQ(ternary.unpacked_weights(), std::vector<std::int8_t>(6 * 40, 0));
  ternary.forward(x.data(), 2, y.data());
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], bias[i % 6]);
  const auto binary = BinaryLinear::from_float(zeros.data(), 6, 40, bias.data(), options());
  EXPECT_EQ(binary.weight_scale(), 0.0f);
  EXPECT_EQ(binary.unpacked_weights(), std::vector<std::int8_t>(6 * 40, -1));
  binary.forward(x.data(), 2, y.data());
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], bias[i % 6]);
  // All-zero activations: m clamps to 1e-5, q = 0, y = bias exactly.
  const auto w = bitlinear_test::random_floats(6 * 40, 5);
  const auto layer = TernaryLinear::from_float(w.data(), 6, 40, bias.data(), options());
  layer.forward(zeros.data(), 2, y.data());
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_TRUE(bitlinear_test::same_bits(y[i], bias[i % 6]));
  const auto q = quantize_row(std::vector<float>(40, 0.0f));
  EXPECT_EQ(q, std::vector<std::int8_t>(40, 0));
}

// Tiny rows (max below 1e-5) use the clamped scale 127e5-ish: x = 5e-6 -> 5e-6 * (1/1e-5 * 127) = 63.5 -> 64.
TEST_P(Semantics, TinyRowsUseClampedScale) {
  const float s_x = (1.0f / 1e-5f) * 127.0f;
  const float x = 5e-6f;
  const auto q = quantize_row({x, -x, 1e-30f});
  EXPECT_EQ(q[0], static_cast<std::int8_t>(std::nearbyint(x * s_x)));
  EXPECT_EQ(q[1], -q[0]);
  EXPECT_EQ(q[2], 0);
  EXPECT_NEAR(q[0], 63.5, 0.51);
}

TEST_P(Semantics, HugeFiniteValues) {
  const float big = 3.0e38f;
  const auto q = quantize_row({big, -big / 2, 1.0f});
  const float s_x = (1.0f / big) * 127.0f;  // 1 / big is subnormal: the reference loses precision the same way
  EXPECT_EQ(q[0], static_cast<std::int8_t>(std::nearbyint(big * s_x)));
  EXPECT_EQ(q[1], static_cast<std::int8_t>(std::nearbyint(-big / 2 * s_x)));
  EXPECT_EQ(q[2], 0);
  // Huge weights are fine too: codes follow the same rule, outputs finite.
  const float w[] = {1e30f, -1e30f, 1e28f, 0.0f};
  const auto layer = TernaryLinear::from_float(w, 1, 4, nullptr, options());
  EXPECT_EQ(layer.unpacked_weights(), (std::vector<std::int8_t>{1, -1, 0, 0}));
  const float x[] = {1.0f, 2.0f, 3.0f, 4.0f};
  float y = 0;
  layer.forward(x, 1, &y);
  EXPECT_TRUE(bitlinear_test::is_finite(y));
}

// A NaN or infinity makes its own row NaN and leaves every other row bit-identical (per token);
// per tensor, the whole batch is NaN.
TEST_P(Semantics, NonFiniteActivationsPoisonOnlyTheirRow) {
  const std::size_t in = 37, out = 9, batch = 4;
  const auto w = bitlinear_test::random_floats(out * in, 11);
  auto x = bitlinear_test::random_floats(batch * in, 12);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    for (int kind = 0; kind < 2; ++kind) {
      auto run = [&](ActivationScale mode, const std::vector<float>& input) {
        std::vector<float> y(batch * out);
        if (kind == 0) {
          TernaryLinear::from_float(w.data(), out, in, nullptr, options(mode)).forward(input.data(), batch, y.data());
        } else {
          BinaryLinear::from_float(w.data(), out, in, nullptr, options(mode)).forward(input.data(), batch, y.data());
        }
        return y;
      };
      const auto clean = run(ActivationScale::per_token, x);
      auto poisoned_x = x;
      poisoned_x[2 * in + 5] = bad;
      const auto poisoned = run(ActivationScale::per_token, poisoned_x);
      for (std::size_t t = 0; t < batch; ++t) {
        for (std::size_t j = 0; j < out; ++j) {
          if (t == 2) {
            EXPECT_TRUE(bitlinear_test::is_nan(poisoned[t * out + j]));
          } else {
            EXPECT_TRUE(bitlinear_test::same_bits(poisoned[t * out + j], clean[t * out + j]));
          }
        }
      }
      for (float v : run(ActivationScale::per_tensor, poisoned_x)) EXPECT_TRUE(bitlinear_test::is_nan(v));
    }
  }
}

// Bit order of the canonical formats, checked one weight at a time against the documented formula.
TEST_P(Semantics, PackedLayoutOneHot) {
  const std::size_t in = 700, out = 2;
  for (std::size_t k : {0u, 1u, 63u, 64u, 127u, 128u, 200u, 255u, 256u, 511u, 512u, 699u}) {
    std::vector<std::uint8_t> ternary(bitlinear::packed_size<bitlinear::Ternary>(out, in), 0x55);
    const std::size_t row_bytes = (in + 255) / 256 * 64;
    // Row 1, weight k = +1: byte k/256*64 + k%64, bits 2*((k%256)/64).
    ternary[row_bytes + k / 256 * 64 + k % 64] =
        static_cast<std::uint8_t>((0x55 & ~(3u << (2 * ((k % 256) / 64)))) | (2u << (2 * ((k % 256) / 64))));
    const auto t_layer = TernaryLinear::from_packed(ternary.data(), ternary.size(), out, in, 0.5f, nullptr, options());
    const auto codes = t_layer.unpacked_weights();
    for (std::size_t i = 0; i < out * in; ++i) ASSERT_EQ(codes[i], i == in + k ? 1 : 0) << "k=" << k << " i=" << i;
    // Binary: byte k/512*64 + k%64, bit (k%512)/64; all other weights -1.
    std::vector<std::uint8_t> binary(bitlinear::packed_size<bitlinear::Binary>(out, in), 0);
    const std::size_t b_row_bytes = (in + 511) / 512 * 64;
    binary[b_row_bytes + k / 512 * 64 + k % 64] = static_cast<std::uint8_t>(1u << ((k % 512) / 64));
    const auto b_layer = BinaryLinear::from_packed(binary.data(), binary.size(), out, in, 0.5f, nullptr, options());
    const auto b_codes = b_layer.unpacked_weights();
    for (std::size_t i = 0; i < out * in; ++i) ASSERT_EQ(b_codes[i], i == in + k ? 1 : -1) << "k=" << k;
    // One-hot activation at k: row 1 of the output is the only nonzero (ternary) dot.
    std::vector<float> x(in, 0.0f);
    x[k] = 1.0f;
    float y[2];
    t_layer.forward(x.data(), 1, y);
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_TRUE(bitlinear_test::same_bits(y[1], 127.0f / 127.0f / (1.0f / 0.5f)));
  }
}

// Packing round trip: export, import, same codes and the same outputs bit for bit.
TEST_P(Semantics, PackedRoundTrip) {
  const std::size_t out = 13, in = 1000;
  const auto w = bitlinear_test::random_floats(out * in, 21);
  const auto bias = bitlinear_test::random_floats(out, 22);
  const auto x = bitlinear_test::random_floats(3 * in, 23);
  const auto a = TernaryLinear::from_float(w.data(), out, in, bias.data(), options());
  const auto b = TernaryLinear::from_packed(a.packed_weights().data(), a.packed_weights_size(), out, in, a.weight_scale(),
                                            bias.data(), options());
  EXPECT_EQ(a.unpacked_weights(), b.unpacked_weights());
  std::vector<float> ya(3 * out), yb(3 * out);
  a.forward(x.data(), 3, ya.data());
  b.forward(x.data(), 3, yb.data());
  for (std::size_t i = 0; i < ya.size(); ++i) EXPECT_TRUE(bitlinear_test::same_bits(ya[i], yb[i]));
  std::vector<std::uint8_t> repacked(a.packed_weights_size());
  const auto codes = a.unpacked_weights();
  bitlinear::pack_codes<bitlinear::Ternary>(codes.data(), out, in, repacked.data());
  EXPECT_EQ(repacked, a.packed_weights());
}

INSTANTIATE_TEST_SUITE_P(AllRunnable, Semantics, ::testing::ValuesIn(bitlinear_test::runnable_isas()),
                         [](const ::testing::TestParamInfo<Isa>& param_info) {
                           return bitlinear_test::isa_label(param_info.param);
                         });

}  // namespace

// exact_fma rounds once: (1 + 2^-12)^2 - (1 + 2^-11) is 2^-24 exactly, but a multiply then an add rounds the
// square to 1 + 2^-11 (a tie, to even) and gives 0. Clang with -ffast-math expands a plain std::fma into exactly
// that on baseline x86-64 (the fast-math CI leg builds this test); the grouped reference depends on one rounding.
TEST(ExactFloat, FmaRoundsOnceWhateverTheFlags) {
  namespace det = bitlinear::detail;
  volatile float a = 1.0f + std::ldexp(1.0f, -12), c = -(1.0f + std::ldexp(1.0f, -11));
  EXPECT_EQ(det::exact_fma(a, a, c), std::ldexp(1.0f, -24));
  volatile float product = det::exact_mul(a, a);
  EXPECT_EQ(det::exact_add(product, c), 0.0f);  // the two-rounding result the fma must not give
}

// exact_fma is correctly rounded on hard cases, against an independent fma: the FMA instruction where the x86
// CPU has it, otherwise glibc's fmaf (correctly rounded). Cases: random bit patterns (subnormals, zeros,
// infinities, NaNs included), cancellations (c within a few ulps of -a * b) and sums one product away from a
// float halfway point (where a multiply-add in double that rounds twice goes wrong).
namespace {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("fma"))) float fma_instruction(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
#endif
}  // namespace

TEST(ExactFloat, FmaIsCorrectlyRoundedOnHardCases) {
  namespace det = bitlinear::detail;
  float (*oracle)(float, float, float) = nullptr;
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  if (bitlinear::cpu_features().avx2) oracle = &fma_instruction;  // the avx2 flag includes FMA (isa.hpp)
#endif
#if defined(__GLIBC__)
  if (oracle == nullptr) oracle = [](float a, float b, float c) { return ::fmaf(a, b, c); };
#endif
  ASSERT_NE(oracle, nullptr) << "no independent fma to compare with on this platform";
  const det::FpEnvironmentGuard fp_environment;  // exact_fma's callers pin the IEEE environment
  std::mt19937 rng(20261203);
  auto random_float = [&] { return det::float_from_bits(static_cast<std::uint32_t>(rng())); };
  auto near = [&](float v, int ulps) {  // v moved by up to `ulps` units in the last place
    const std::uint32_t bits = det::float_bits(v);
    const int step = static_cast<int>(rng() % static_cast<unsigned>(2 * ulps + 1)) - ulps;
    return det::float_from_bits(bits + static_cast<std::uint32_t>(step));
  };
  auto exponent_between = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<unsigned>(hi - lo + 1)); };
  std::size_t checked = 0, mismatches = 0;
  auto check = [&](float a, float b, float c) {
    const float got = det::exact_fma(a, b, c), want = oracle(a, b, c);
    const bool same = (det::is_nan_bits(got) && det::is_nan_bits(want)) || det::float_bits(got) == det::float_bits(want);
    ++checked;
    if (!same && ++mismatches <= 10) {
      ADD_FAILURE() << std::hexfloat << "fma(" << a << ", " << b << ", " << c << ") = " << got << ", want " << want;
    }
  };
  for (int i = 0; i < 300000; ++i) {
    const float a = random_float(), b = random_float();
    check(a, b, random_float());
    // Cancellation: c within 3 ulps of -(a * b) rounded.
    const float product = det::exact_mul(a, b);
    check(a, b, -near(product, 3));
    // Near a halfway point of c: a * b about half an ulp of c, give or take a few ulps of the product.
    const float big = std::ldexp(1.0f + static_cast<float>(rng() % 8388608u) * std::ldexp(1.0f, -23),
                                 exponent_between(-100, 100));
    const float half_ulp = std::ldexp(1.0f, std::ilogb(big) - 24);
    const float factor = near(1.0f, 4);
    check(near(half_ulp, 2), factor, (rng() & 1u) != 0 ? big : -big);
    // Results in the subnormal range.
    check(std::ldexp(random_float() > 0 ? 1.5f : -1.25f, exponent_between(-80, -60)),
          std::ldexp(near(1.0f, 1000), exponent_between(-80, -60)), std::ldexp(near(1.0f, 3), -140));
  }
  EXPECT_EQ(mismatches, 0u) << "of " << checked << " cases";
}
