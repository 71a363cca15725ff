// The activation front-end (frontend.hpp): RMSNorm and the signed blockwise Walsh-Hadamard rotation fused into
// activation quantization. Checks: every family against the scalar one bit for bit (and against the two-step
// transform + quantize_activations; the RMSNorm factor of long rows), the rotation against a float64 matrix
// product, RMSNorm against a float64 formula, an overflowing sum of squares, non-finite rows, argument errors, the
// thread pool, and a Hadamard-folded ternary layer against the unfolded float layer. RMSNorm against PyTorch: tests/pytorch/frontend_reference_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using bitlinear::ActivationFrontend;
using bitlinear::ActivationScale;
using bitlinear::FrontendOptions;
using bitlinear::Isa;
using bitlinear::MutableActivationsView;

// H_ik of the unnormalized Sylvester Hadamard matrix: (-1)^(number of bits set in i & k).
double hadamard_entry(std::size_t i, std::size_t k) {
  std::size_t bits = i & k, parity = 0;
  for (; bits != 0; bits &= bits - 1) parity ^= 1;
  return parity == 0 ? 1.0 : -1.0;
}

struct Shape {
  std::size_t in;
  bool norm;
  std::size_t block;  // 0: no rotation
};

// RMSNorm alone at widths around the shapes of its sum (one-value units below 8, a tail after whole vectors, the
// cascade's first level flush at 512 values, the second at 8192; the third, at 131072, in
// RmsNormFactorOfLongRowsIsTheSameInEveryFamily), and every block size 64..2048.
const Shape kShapes[] = {{1, true, 0},      {7, true, 0},       {8, true, 0},       {1003, true, 0},
                         {8200, true, 0},   {192, false, 64},
                         {384, true, 128},  {2560, true, 256},  {2560, false, 512}, {3072, true, 1024},
                         {4096, true, 2048}};
const ActivationScale kModes[] = {ActivationScale::per_token, ActivationScale::per_tensor, ActivationScale::per_block,
                                  ActivationScale::per_superblock};

std::vector<float> random_signs(std::size_t n, std::uint32_t seed) {
  std::vector<float> s = bitlinear_test::random_floats(n, seed);
  for (float& v : s) v = v < 0.0f ? -1.0f : 1.0f;
  return s;
}

struct FrontendSetup {
  std::vector<float> weight, signs;
  FrontendOptions options;
  FrontendSetup(const Shape& shape, ActivationScale mode, std::uint32_t seed) {
    weight = bitlinear_test::random_floats(shape.in, seed, 0.5f, 1.5f);
    signs = random_signs(shape.in, seed + 1);
    options.rms_norm = shape.norm;
    options.norm_weight = weight.data();
    options.norm_weight_size = weight.size();
    options.norm_eps = 1e-5f;
    options.hadamard_block = shape.block;
    options.hadamard_signs = signs.data();
    options.hadamard_signs_size = signs.size();
    options.activation_scale = mode;
  }
};

// Owns a workspace and the view the front-end wrote into it.
struct FrontendRun {
  std::vector<unsigned char> workspace;
  MutableActivationsView acts;
};

FrontendRun run_frontend(const ActivationFrontend& fe, const std::vector<float>& x, std::size_t batch, Isa isa) {
  FrontendRun run;
  run.workspace.resize(fe.workspace_size(batch) + 3);
  // An odd offset: the front-end takes any alignment.
  run.acts = fe.quantize(x.data(), batch, fe.in_features(), run.workspace.data() + 3, run.workspace.size() - 3, isa);
  return run;
}

void expect_same_activations(const MutableActivationsView& a, const MutableActivationsView& b, const std::string& what) {
  ASSERT_EQ(a.batch, b.batch) << what;
  ASSERT_EQ(a.stride, b.stride) << what;
  ASSERT_EQ(a.block_size, b.block_size) << what;
  for (std::size_t r = 0; r < a.batch; ++r) {
    EXPECT_TRUE(bitlinear_test::same_bits(a.scale[r], b.scale[r])) << what << " row " << r;
    EXPECT_EQ(a.sum[r], b.sum[r]) << what << " row " << r;
    std::size_t differing = 0;
    for (std::size_t k = 0; k < a.stride; ++k) differing += a.q[r * a.stride + k] != b.q[r * b.stride + k];
    EXPECT_EQ(differing, 0u) << what << " row " << r;
    if (a.block_size != 0) {
      for (std::size_t i = 0; i < (a.in_features + a.block_size - 1) / a.block_size; ++i) {
        EXPECT_TRUE(bitlinear_test::same_bits(a.block_scale[r * a.block_stride + i], b.block_scale[r * b.block_stride + i]))
            << what << " row " << r << " block " << i;
      }
    }
  }
}

std::string label(const Shape& s, ActivationScale mode) {
  return "in " + std::to_string(s.in) + (s.norm ? " norm" : "") + " block " + std::to_string(s.block) + " mode " +
         std::to_string(static_cast<int>(mode));
}

TEST(FrontendTest, EveryFamilyMatchesScalarAndTheTwoStepPath) {
  ASSERT_FALSE(bitlinear_test::runnable_isas().empty());
  const std::size_t batch = 3;
  for (const Shape& shape : kShapes) {
    for (ActivationScale mode : kModes) {
      const FrontendSetup setup(shape, mode, 11);
      const ActivationFrontend fe(shape.in, setup.options);
      const std::vector<float> x = bitlinear_test::random_floats(batch * shape.in, 5, -3.0f, 3.0f);
      const FrontendRun scalar = run_frontend(fe, x, batch, Isa::scalar);
      // The fused pass equals transform() followed by the library's own quantize_activations().
      std::vector<float> y(x.size());
      fe.transform(x.data(), batch, shape.in, y.data(), shape.in);
      bitlinear::QuantizedActivations two_step;
      two_step.quantize(y.data(), batch, shape.in, shape.in, mode, Isa::scalar);
      const bitlinear::ActivationsView t = two_step.view();
      const MutableActivationsView tv{const_cast<std::int8_t*>(t.q), const_cast<float*>(t.scale),
                                      const_cast<std::int32_t*>(t.sum), t.batch, t.in_features, t.stride,
                                      const_cast<float*>(t.block_scale), t.block_size, t.block_stride};
      expect_same_activations(scalar.acts, tv, label(shape, mode) + " two-step");
      std::vector<float> y_scalar(x.size());
      fe.transform(x.data(), batch, shape.in, y_scalar.data(), shape.in, Isa::scalar);
      for (Isa isa : bitlinear_test::runnable_isas()) {
        const FrontendRun other = run_frontend(fe, x, batch, isa);
        expect_same_activations(scalar.acts, other.acts, label(shape, mode) + " " + bitlinear_test::isa_label(isa));
        // The float steps alone, bit for bit (quantization could hide a last-bit difference).
        std::vector<float> y_isa(x.size());
        fe.transform(x.data(), batch, shape.in, y_isa.data(), shape.in, isa);
        std::size_t differing = 0;
        for (std::size_t i = 0; i < y_isa.size(); ++i) differing += !bitlinear_test::same_bits(y_isa[i], y_scalar[i]);
        EXPECT_EQ(differing, 0u) << label(shape, mode) << " " << bitlinear_test::isa_label(isa) << " transform";
      }
    }
  }
}

// H(s (.) x) per block as a float64 matrix product with H_ij = (-1)^popcount(i & j) / sqrt(B) (no butterflies).
TEST(FrontendTest, RotationMatchesFloat64Reference) {
  for (std::size_t block : {64u, 128u, 256u, 512u, 1024u, 2048u}) {
    const std::size_t in = block * 2;
    FrontendSetup setup({in, false, block}, ActivationScale::per_token, 21);
    const ActivationFrontend fe(in, setup.options);
    const std::vector<float> x = bitlinear_test::random_floats(in, 9, -4.0f, 4.0f);
    std::vector<float> y(in);
    fe.transform(x.data(), 1, in, y.data(), in);
    int log2 = 0;
    while ((std::size_t{1} << log2) < block) ++log2;
    for (std::size_t b0 = 0; b0 < in; b0 += block) {
      double norm2 = 0.0;
      for (std::size_t k = 0; k < block; ++k) norm2 += double(x[b0 + k]) * x[b0 + k];
      // The stated tolerance: (log2 B + 1) float32 roundings of at most ||x_block||_2 * 2^-24 each, per element.
      const double tolerance = (log2 + 1) * std::sqrt(norm2) * std::ldexp(1.0, -24);
      double worst = 0.0;
      for (std::size_t i = 0; i < block; ++i) {
        double ref = 0.0;
        for (std::size_t k = 0; k < block; ++k) {
          const double h = hadamard_entry(i, k);
          ref += h * double(setup.signs[b0 + k]) * double(x[b0 + k]);
        }
        ref /= std::sqrt(double(block));
        worst = std::max(worst, std::fabs(double(y[b0 + i]) - ref));
      }
      EXPECT_LE(worst, tolerance) << "block " << block;
    }
  }
}

// The factor r of rows long enough for the cascade's third level (131072 values and up): the portable code and the
// AVX2 code (every x86 family from avx2 up) give the same bits.
TEST(FrontendTest, RmsNormFactorOfLongRowsIsTheSameInEveryFamily) {
  if (!bitlinear::cpu_supports(Isa::avx2)) GTEST_SKIP() << "one implementation only";
#if BITLINEAR_ARCH_X86_64
  const std::vector<float> x = bitlinear_test::random_floats(270000, 71, -3.0f, 3.0f);
  for (std::size_t n : {131071u, 131072u, 131100u, 262144u, 262151u, 270000u}) {
    const float portable = bitlinear::detail::rms_norm_factor(x.data(), n, 1e-6f);
    const float simd = bitlinear::detail::avx2::rms_norm_factor(x.data(), n, 1e-6f);
    EXPECT_TRUE(bitlinear_test::same_bits(portable, simd)) << "n " << n << ": " << portable << " vs " << simd;
  }
#endif
}

// RMSNorm against the float64 formula. The float sum of the squares (non-negative) is within d roundings of the
// exact one, d the longest chain of additions any square goes through: at most 15 in a level-0 accumulator, 5
// block flushes, 1 level merge, 3 accumulator merges, 1 leftover vector, 7 in the tail and 8 lane additions, so
// d <= 40 here (n <= 2560). Then ms and ms + eps add a rounding each, sqrt halves the three, and sqrt, 1 / sqrt and
// the two products add one each: relative error at most (42 / 2 + 4) * 2^-24 = 25 * 2^-24.
TEST(FrontendTest, RmsNormMatchesFloat64Formula) {
  for (std::size_t in : {1u, 5u, 17u, 1003u, 2560u}) {
    FrontendSetup setup({in, true, 0}, ActivationScale::per_token, 31);
    const ActivationFrontend fe(in, setup.options);
    const std::vector<float> x = bitlinear_test::random_floats(in, 3, -2.0f, 2.0f);
    std::vector<float> y(in);
    fe.transform(x.data(), 1, in, y.data(), in);
    double ss = 0.0;
    for (float v : x) ss += double(v) * v;
    const double r = 1.0 / std::sqrt(ss / double(in) + 1e-5);
    for (std::size_t k = 0; k < in; ++k) {
      const double ref = double(x[k]) * r * double(setup.weight[k]);
      EXPECT_LE(std::fabs(double(y[k]) - ref), 25.0 * std::ldexp(std::fabs(ref), -24)) << "in " << in << " k " << k;
    }
  }
}

// A finite row whose float sum of squares overflows (here every square is finite, 2.25e38, and so is the mean;
// the sum of two is not) gets ss = inf, r = 0 and normalizes to zeros of x's signs, as PyTorch's float32 does; the
// other rows are untouched. Every family.
TEST(FrontendTest, OverflowingSumOfSquaresNormalizesToZeros) {
  const std::size_t in = 40, batch = 3;
  const FrontendSetup setup({in, true, 0}, ActivationScale::per_token, 61);
  const ActivationFrontend fe(in, setup.options);
  std::vector<float> x = bitlinear_test::random_floats(batch * in, 62, -2.0f, 2.0f);
  for (std::size_t k = 0; k < in; ++k) x[in + k] = k % 3 == 0 ? -1.5e19f : 1.5e19f;
  const float r = bitlinear::detail::rms_norm_factor(x.data() + in, in, 1e-5f);
  EXPECT_TRUE(bitlinear_test::same_bits(r, 0.0f)) << r;
  std::vector<float> y_scalar(x.size());
  fe.transform(x.data(), batch, in, y_scalar.data(), in, Isa::scalar);
  for (Isa isa : bitlinear_test::runnable_isas()) {
    std::vector<float> y(x.size());
    fe.transform(x.data(), batch, in, y.data(), in, isa);
    for (std::size_t k = 0; k < in; ++k) {
      // Bit patterns: under -ffast-math (no signed zeros) the compiler may fold -0.0f and 0.0f together here.
      EXPECT_EQ(bitlinear::detail::float_bits(y[in + k]), k % 3 == 0 ? 0x80000000u : 0u)
          << bitlinear_test::isa_label(isa) << " k " << k;
    }
    std::size_t differing = 0;
    for (std::size_t i = 0; i < y.size(); ++i) differing += !bitlinear_test::same_bits(y[i], y_scalar[i]);
    EXPECT_EQ(differing, 0u) << bitlinear_test::isa_label(isa);
    EXPECT_NE(y[0], 0.0f);
  }
}

TEST(FrontendTest, NonFiniteRowsAreNaNInTheirOwnRowOnly) {
  const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
  for (const Shape& shape : {Shape{1003, true, 0}, Shape{512, true, 256}, Shape{512, false, 64}}) {
    for (ActivationScale mode : kModes) {
      for (float bad : bad_values) {
        const FrontendSetup setup(shape, mode, 41);
        const ActivationFrontend fe(shape.in, setup.options);
        const std::size_t batch = 3;
        std::vector<float> x = bitlinear_test::random_floats(batch * shape.in, 8);
        x[shape.in + shape.in / 2] = bad;  // row 1
        for (Isa isa : bitlinear_test::runnable_isas()) {
          const std::string what = label(shape, mode) + " " + bitlinear_test::isa_label(isa);
          const FrontendRun run = run_frontend(fe, x, batch, isa);
          for (std::size_t r = 0; r < batch; ++r) {
            const bool expect_nan = r == 1 || mode == ActivationScale::per_tensor;
            EXPECT_EQ(bitlinear_test::is_nan(run.acts.scale[r]), expect_nan) << what << " row " << r;
            if (expect_nan) {
              EXPECT_EQ(run.acts.sum[r], 0) << what;
              std::size_t nonzero = 0;
              for (std::size_t k = 0; k < run.acts.stride; ++k) nonzero += run.acts.q[r * run.acts.stride + k] != 0;
              EXPECT_EQ(nonzero, 0u) << what;
            }
          }
          if (mode == ActivationScale::per_tensor) continue;
          // Rows 0 and 2 are exactly what they are without the bad row.
          std::vector<float> good(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(shape.in));
          good.insert(good.end(), x.begin() + static_cast<std::ptrdiff_t>(2 * shape.in), x.end());
          const FrontendRun clean = run_frontend(fe, good, 2, isa);
          for (std::size_t r : {0u, 2u}) {
            const std::size_t c = r == 0 ? 0 : 1;
            EXPECT_TRUE(bitlinear_test::same_bits(run.acts.scale[r], clean.acts.scale[c])) << what;
            EXPECT_EQ(run.acts.sum[r], clean.acts.sum[c]) << what;
          }
        }
      }
    }
  }
}

using bitlinear_test::invalid_argument_message;

TEST(FrontendTest, BadArgumentsNameTheValueAndTheRule) {
  const std::size_t in = 512;
  const FrontendSetup base({in, true, 128}, ActivationScale::per_token, 51);
  auto make_n = [&](const FrontendOptions& o, std::size_t n) {
    return invalid_argument_message([&] { ActivationFrontend fe(n, o); });
  };
  auto make = [&](const FrontendOptions& o) { return make_n(o, in); };
  FrontendOptions o = base.options;
  o.hadamard_block = 96;
  EXPECT_NE(make(o).find("96 is not a power of two"), std::string::npos) << make(o);
  o.hadamard_block = 32;
  EXPECT_NE(make(o).find("32 is out of range; it must be a power of two in [64, 2048]"), std::string::npos) << make(o);
  o.hadamard_block = 4096;
  o.rms_norm = false;
  EXPECT_NE(make_n(o, 4096).find("4096 is out of range"), std::string::npos) << make_n(o, 4096);
  o.rms_norm = true;
  o.hadamard_block = 1024;
  EXPECT_NE(make(o).find("1024 does not divide in_features = 512"), std::string::npos) << make(o);
  o = base.options;
  o.hadamard_signs_size = in - 1;
  EXPECT_NE(make(o).find("sign vector has 511 values; it must have in_features = 512"), std::string::npos) << make(o);
  o = base.options;
  o.hadamard_signs = nullptr;
  EXPECT_NE(make(o).find("sign vector is null"), std::string::npos) << make(o);
  std::vector<float> signs = base.signs;
  signs[7] = 0.5f;
  o = base.options;
  o.hadamard_signs = signs.data();
  EXPECT_NE(make(o).find("sign[7] = 0.5 is not allowed; signs must be +1 or -1"), std::string::npos) << make(o);
  signs[7] = -0.0f;
  EXPECT_NE(make(o).find("sign[7] = -0"), std::string::npos) << make(o);
  o = base.options;
  o.norm_eps = -1e-6f;
  EXPECT_NE(make(o).find("eps -9.99999997e-07 is not allowed; it must be finite and not negative"), std::string::npos)
      << make(o);
  o.norm_eps = std::numeric_limits<float>::infinity();
  EXPECT_NE(make(o).find("eps inf is not allowed"), std::string::npos) << make(o);
  o.norm_eps = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(make(o).find("is not allowed; it must be finite"), std::string::npos) << make(o);
  o = base.options;
  o.norm_weight = nullptr;
  EXPECT_NE(make(o).find("RMSNorm weight is null"), std::string::npos) << make(o);
  o = base.options;
  o.norm_weight_size = 3;
  EXPECT_NE(make(o).find("RMSNorm weight has 3 values; it must have in_features = 512"), std::string::npos) << make(o);
  std::vector<float> weight = base.weight;
  weight[9] = std::numeric_limits<float>::infinity();
  o = base.options;
  o.norm_weight = weight.data();
  EXPECT_NE(make(o).find("RMSNorm weight[9] = inf is not finite"), std::string::npos) << make(o);
  EXPECT_NE(make_n(base.options, 0).find("in_features is 0"), std::string::npos);

  // Calls.
  const ActivationFrontend fe(in, base.options);
  std::vector<float> x(2 * in, 1.0f);
  std::vector<unsigned char> ws(fe.workspace_size(2));
  EXPECT_NE(invalid_argument_message([&] { fe.quantize(nullptr, 2, in, ws.data(), ws.size()); }).find("input x is null"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { fe.quantize(x.data(), 2, in, nullptr, ws.size()); }).find("workspace is null"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { fe.quantize(x.data(), 2, in, ws.data(), ws.size() - 1); }).find("is too small"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { fe.quantize(x.data(), 2, in - 1, ws.data(), ws.size()); }).find("x_stride 511"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { fe.transform(x.data(), 2, in, nullptr, in); }).find("output y is null"), std::string::npos);
}

TEST(FrontendTest, ThreadPoolGivesTheSameResult) {
  bitlinear::ThreadPool pool(3);
  for (ActivationScale mode : kModes) {
    const Shape shape{2560, true, 256};
    const FrontendSetup setup(shape, mode, 61);
    const ActivationFrontend fe(shape.in, setup.options);
    const std::size_t batch = 37;
    const std::vector<float> x = bitlinear_test::random_floats(batch * shape.in, 13, -2.0f, 2.0f);
    const FrontendRun serial = run_frontend(fe, x, batch, Isa::automatic);
    std::vector<unsigned char> ws(fe.workspace_size(batch));
    const MutableActivationsView pooled = fe.quantize(x.data(), batch, shape.in, ws.data(), ws.size(), pool);
    expect_same_activations(serial.acts, pooled, label(shape, mode) + " pool");
  }
}

// A Hadamard-folded ternary layer: weights W' = beta * T (ternary T) trained for rotated inputs, so the unfolded
// float layer is W = W' H diag(s) (row j: W_j = s (.) H W'_j), and W' (H (s (.) x)) = W x exactly. The bitlinear
// path (front-end rotation, then forward_quantized of W') matches W x within the bound of int8 activation
// rounding, |dy_j| <= beta * nnz(T_j) * 0.5 / s_x (+ float rounding); with a wrong sign vector it does not.
TEST(FrontendTest, HadamardFoldedLayerMatchesUnfoldedFloatLayer) {
  const std::size_t in = 1024, out = 64, block = 256, batch = 2;
  std::vector<std::int8_t> codes(out * in);
  std::vector<float> u = bitlinear_test::random_floats(out * in, 71);
  for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = u[i] < -0.33f ? -1 : (u[i] > 0.33f ? 1 : 0);
  const float beta = 0.03125f;
  std::vector<std::uint8_t> packed(bitlinear::packed_size<bitlinear::Ternary>(out, in));
  bitlinear::pack_codes<bitlinear::Ternary>(codes.data(), out, in, packed.data());
  const std::vector<float> signs = random_signs(in, 72);
  // The unfolded float weights, in double: W_jk = s_k * sum_i H_ki W'_ji / sqrt(B) within each block.
  std::vector<double> w(out * in, 0.0);
  for (std::size_t j = 0; j < out; ++j) {
    for (std::size_t b0 = 0; b0 < in; b0 += block) {
      for (std::size_t k = 0; k < block; ++k) {
        double acc = 0.0;
        for (std::size_t i = 0; i < block; ++i) {
          const double h = hadamard_entry(i, k);
          acc += h * beta * codes[j * in + b0 + i];
        }
        w[j * in + b0 + k] = signs[b0 + k] * acc / std::sqrt(double(block));
      }
    }
  }
  const std::vector<float> x = bitlinear_test::random_floats(batch * in, 73, -1.0f, 1.0f);
  auto max_excess = [&](const std::vector<float>& fe_signs, Isa isa) {
    FrontendOptions o;
    o.hadamard_block = block;
    o.hadamard_signs = fe_signs.data();
    o.hadamard_signs_size = in;
    const ActivationFrontend fe(in, o);
    bitlinear::Options lo;
    lo.isa = isa;
    const auto layer = bitlinear::TernaryLinear::from_packed(packed.data(), packed.size(), out, in, beta, nullptr, lo);
    std::vector<unsigned char> ws(fe.workspace_size(batch));
    const MutableActivationsView acts = fe.quantize(x.data(), batch, in, ws.data(), ws.size(), isa);
    std::vector<float> y(batch * out);
    layer.forward_quantized(acts, 0, out, y.data(), out);
    double excess = -1e300;  // max over outputs of |error| - bound
    for (std::size_t t = 0; t < batch; ++t) {
      for (std::size_t j = 0; j < out; ++j) {
        double ref = 0.0, nnz = 0.0;
        for (std::size_t k = 0; k < in; ++k) {
          ref += w[j * in + k] * x[t * in + k];
          nnz += codes[j * in + k] != 0;
        }
        const double bound = beta * nnz * 0.5 / acts.scale[t] + 1e-4 * std::fabs(ref) + 1e-6;
        excess = std::max(excess, std::fabs(double(y[t * out + j]) - ref) - bound);
      }
    }
    return excess;
  };
  for (Isa isa : bitlinear_test::runnable_isas()) {
    EXPECT_LE(max_excess(signs, isa), 0.0) << bitlinear_test::isa_label(isa);
  }
  std::vector<float> wrong = signs;
  for (std::size_t k = 0; k < in; k += 3) wrong[k] = -wrong[k];
  EXPECT_GT(max_excess(wrong, Isa::scalar), 0.0);
}

}  // namespace

namespace {

// Folding a float layer with the front-end itself: W' = W diag(s) H, whose row j is H (s (.) W_j), the front-end's
// rotation applied to the weight row. Then W' (H (s (.) x)) = W x up to float rounding (H is symmetric and
// orthonormal); checked in double against the tolerance of the two rotations.
TEST(FrontendTest, FoldingAFloatLayerWithTheRotationKeepsItsOutputs) {
  const std::size_t in = 512, out = 16, block = 128;
  const std::vector<float> signs = random_signs(in, 81);
  FrontendOptions o;
  o.hadamard_block = block;
  o.hadamard_signs = signs.data();
  o.hadamard_signs_size = in;
  const ActivationFrontend fe(in, o);
  const std::vector<float> w = bitlinear_test::random_floats(out * in, 82);
  const std::vector<float> x = bitlinear_test::random_floats(in, 83);
  std::vector<float> folded(out * in), rotated(in);
  fe.transform(w.data(), out, in, folded.data(), in);
  fe.transform(x.data(), 1, in, rotated.data(), in);
  double norm_x = 0.0;
  for (float v : x) norm_x += double(v) * v;
  norm_x = std::sqrt(norm_x);
  for (std::size_t j = 0; j < out; ++j) {
    double y = 0.0, y_folded = 0.0, norm_w = 0.0;
    for (std::size_t k = 0; k < in; ++k) {
      y += double(w[j * in + k]) * x[k];
      y_folded += double(folded[j * in + k]) * rotated[k];
      norm_w += double(w[j * in + k]) * w[j * in + k];
    }
    // Each rotated vector is within (log2 B + 1) * 2^-24 of the exact one in each element (norm-wise sqrt(in)
    // times that); Cauchy-Schwarz turns both into a bound on the dot product.
    const double e = 8.0 * std::sqrt(double(in)) * std::ldexp(1.0, -24);
    EXPECT_LE(std::fabs(y_folded - y), 2.0 * e * std::sqrt(norm_w) * norm_x + 1e-12) << "row " << j;
    EXPECT_GT(std::fabs(y), 1e-3) << "row " << j;  // a row whose output is not ~0, so the check means something
  }
  // Without the signs the fold is wrong: the outputs move far beyond the bound.
  std::vector<float> unsigned_rows(out * in);
  FrontendOptions plain = o;
  std::vector<float> ones(in, 1.0f);
  plain.hadamard_signs = ones.data();
  ActivationFrontend(in, plain).transform(w.data(), out, in, unsigned_rows.data(), in);
  double worst = 0.0;
  for (std::size_t j = 0; j < out; ++j) {
    double y = 0.0, y_bad = 0.0;
    for (std::size_t k = 0; k < in; ++k) {
      y += double(w[j * in + k]) * x[k];
      y_bad += double(unsigned_rows[j * in + k]) * rotated[k];
    }
    worst = std::max(worst, std::fabs(y_bad - y));
  }
  EXPECT_GT(worst, 0.1);
}

}  // namespace
