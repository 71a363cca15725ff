// The front-end's RMSNorm (frontend.hpp) against PyTorch float32 (cases written by make_frontend_reference.py;
// path in BITLINEAR_PYTORCH_FRONTEND_REFERENCE). PyTorch sums the squares in float32 in an order of its own, which
// the library does not reproduce; it sums them in double (docs/frontend.md), so the rule is: every normalized
// value within 1 ulp (float32) of PyTorch's. The quantized activations of every family equal the scalar ones.
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
  std::vector<float> x, weight, y;
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
  if (!in || std::memcmp(magic, "BLFRN001", 8) != 0) throw std::runtime_error(std::string("bad reference file ") + path);
  std::vector<Case> cases;
  while (in.peek() != std::char_traits<char>::eof()) {
    Case c;
    in.read(reinterpret_cast<char*>(&c.in), 4);
    in.read(reinterpret_cast<char*>(&c.batch), 4);
    in.read(reinterpret_cast<char*>(&c.eps), 4);
    const auto n = static_cast<std::size_t>(c.in), b = static_cast<std::size_t>(c.batch);
    c.x = read_floats(in, b * n);
    c.weight = read_floats(in, n);
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

TEST(FrontendPytorchTest, RmsNormWithinOneUlpOfPytorch) {
  const std::vector<Case> cases = load_cases();
  ASSERT_FALSE(cases.empty());
  std::size_t values = 0, exact = 0;
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
    for (std::size_t i = 0; i < y.size(); ++i) {
      const std::int64_t d = ulps_apart(y[i], c.y[i]);
      EXPECT_LE(d, 1) << "in " << n << " eps " << c.eps << " index " << i << ": " << y[i] << " vs PyTorch " << c.y[i];
      ++values;
      exact += d == 0;
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
  std::printf("RMSNorm: %zu values, %zu bit-identical to PyTorch, the rest 1 ulp apart\n", values, exact);
}

}  // namespace
