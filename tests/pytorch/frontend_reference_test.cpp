// The front-end's RMSNorm (frontend.hpp) against PyTorch float32 (cases written by make_frontend_reference.py;
// path in BITLINEAR_PYTORCH_FRONTEND_REFERENCE). PyTorch sums the squares in float32 in an order of its own, which
// the library does not reproduce; it sums them in double (docs/frontend.md), which is the more accurate of the two.
// The rule checked here:
//   - the library's factor r = 1 / sqrt(mean(x^2) + eps) is within 1 ulp of the float64 value;
//   - every row whose r equals PyTorch's normalizes bit for bit like PyTorch ((x * r) * weight, same roundings);
//   - elsewhere r is within 2 ulps of PyTorch's (PyTorch's float32 mean is that far off for these cases), and a
//     row whose r is dr ulps off has its values within 4 dr + 3 ulps of PyTorch's: k ulps of difference going into
//     a rounded product come out as at most 2k ulps (an ulp is 2^-24 to 2^-23 of the value) plus 1 (two half-ulp
//     roundings), and there are two products.
// The quantized activations of every family equal the scalar ones.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "../test_util.hpp"

namespace {

struct Case {
  std::int32_t in = 0, batch = 0;
  float eps = 0;
  std::vector<float> x, weight, r, y;
};

std::vector<float> read_floats(std::ifstream& in, std::size_t n) {
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  if (!in) throw std::runtime_error("truncated front-end reference file");
  return v;
}

std::vector<Case> load_cases() {
  const char* path = std::getenv("BITLINEAR_PYTORCH_FRONTEND_REFERENCE");
  if (path == nullptr) throw std::runtime_error("set BITLINEAR_PYTORCH_FRONTEND_REFERENCE to make_frontend_reference.py's output");
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "BLFRN002", 8) != 0) throw std::runtime_error(std::string("bad reference file ") + path);
  std::vector<Case> cases;
  while (in.peek() != std::char_traits<char>::eof()) {
    Case c;
    in.read(reinterpret_cast<char*>(&c.in), 4);
    in.read(reinterpret_cast<char*>(&c.batch), 4);
    in.read(reinterpret_cast<char*>(&c.eps), 4);
    const auto n = static_cast<std::size_t>(c.in), b = static_cast<std::size_t>(c.batch);
    c.x = read_floats(in, b * n);
    c.weight = read_floats(in, n);
    c.r = read_floats(in, b);
    c.y = read_floats(in, b * n);
    cases.push_back(std::move(c));
  }
  return cases;
}

// Distance in representable floats (same sign assumed by the caller; +-0 compare equal).
std::int64_t ulps_apart(float a, float b) {
  std::int32_t ia = 0, ib = 0;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0) ia = std::int32_t(0x80000000u) - ia;
  if (ib < 0) ib = std::int32_t(0x80000000u) - ib;
  return std::llabs(std::int64_t(ia) - std::int64_t(ib));
}

TEST(FrontendPytorchTest, RmsNormMatchesPytorchWhereTheFactorAgrees) {
  const std::vector<Case> cases = load_cases();
  ASSERT_FALSE(cases.empty());
  std::size_t rows = 0, rows_exact = 0, values = 0, values_exact = 0, values_one = 0, values_two = 0;
  for (const Case& c : cases) {
    const auto n = static_cast<std::size_t>(c.in), batch = static_cast<std::size_t>(c.batch);
    bitlinear::FrontendOptions o;
    o.rms_norm = true;
    o.norm_weight = c.weight.data();
    o.norm_weight_size = n;
    o.norm_eps = c.eps;
    const bitlinear::ActivationFrontend fe(n, o);
    std::vector<float> y(batch * n);
    fe.transform(c.x.data(), batch, n, y.data(), n);
    for (std::size_t t = 0; t < batch; ++t) {
      const float r = bitlinear::detail::rms_norm_factor(c.x.data() + t * n, n, c.eps);  // the library's r
      double ss = 0.0;
      for (std::size_t k = 0; k < n; ++k) ss += static_cast<double>(c.x[t * n + k]) * c.x[t * n + k];
      const double r64 = 1.0 / std::sqrt(ss / static_cast<double>(n) + static_cast<double>(c.eps));
      EXPECT_LE(std::fabs(static_cast<double>(r) - r64), std::ldexp(r64, -23)) << "in " << n << " row " << t;
      const std::int64_t dr = ulps_apart(r, c.r[t]);
      EXPECT_LE(dr, 2) << "in " << n << " eps " << c.eps << " row " << t << ": r " << r << " vs PyTorch " << c.r[t];
      ++rows;
      rows_exact += dr == 0;
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = t * n + k;
        const std::int64_t d = ulps_apart(y[i], c.y[i]);
        if (dr == 0) {
          EXPECT_EQ(d, 0) << "in " << n << " row " << t << " k " << k << ": " << y[i] << " vs PyTorch " << c.y[i];
        }
        EXPECT_LE(d, 4 * dr + 3) << "in " << n << " row " << t << " k " << k << ": " << y[i] << " vs PyTorch " << c.y[i];
        ++values;
        values_exact += d == 0;
        values_one += d == 1;
        values_two += d == 2;
      }
    }
    // Quantized, every family gives the scalar family's bits.
    std::vector<unsigned char> ws(fe.workspace_size(batch));
    std::vector<unsigned char> ws_scalar(fe.workspace_size(batch));
    const auto ref = fe.quantize(c.x.data(), batch, n, ws_scalar.data(), ws_scalar.size(), bitlinear::Isa::scalar);
    for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
      const auto got = fe.quantize(c.x.data(), batch, n, ws.data(), ws.size(), isa);
      for (std::size_t r = 0; r < batch; ++r) {
        EXPECT_TRUE(bitlinear_test::same_bits(got.scale[r], ref.scale[r]));
        EXPECT_EQ(std::memcmp(got.q + r * got.stride, ref.q + r * ref.stride, got.stride), 0);
      }
    }
  }
  std::printf("RMSNorm: %zu rows, r equal to PyTorch's in %zu; %zu values: %zu bit-identical, %zu 1 ulp apart, "
              "%zu 2 ulps, %zu more\n", rows, rows_exact, values, values_exact, values_one, values_two,
              values - values_exact - values_one - values_two);
}

}  // namespace
