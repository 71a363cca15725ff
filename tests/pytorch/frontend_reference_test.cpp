// The front-end's RMSNorm (frontend.hpp) against PyTorch float32 (cases written by make_frontend_reference.py, with
// PyTorch pinned to its AVX2 kernels and one thread; path in BITLINEAR_PYTORCH_FRONTEND_REFERENCE). The library
// sums the squares in the order of PyTorch 1.13's AVX2 cascade_sum (detail/frontend_row.hpp), so every row is bit
// for bit PyTorch's: the factor r (the portable code and, where it runs, the AVX2 code) and every value of y from
// every runnable family. NaN compares equal to NaN (the payload is not pinned). The quantized activations of every
// family equal the scalar ones.
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

// Bit for bit, or both NaN.
bool same(float a, float b) { return bitlinear_test::same_bits(a, b) || (std::isnan(a) && std::isnan(b)); }

TEST(FrontendPytorchTest, RmsNormIsPytorchBitForBit) {
  const std::vector<Case> cases = load_cases();
  ASSERT_FALSE(cases.empty());
  const std::vector<bitlinear::Isa> isas = bitlinear_test::runnable_isas();
  std::size_t rows = 0, rows_identical = 0;
  for (const Case& c : cases) {
    const auto n = static_cast<std::size_t>(c.in), batch = static_cast<std::size_t>(c.batch);
    bitlinear::FrontendOptions o;
    o.rms_norm = true;
    o.norm_weight = c.weight.data();
    o.norm_weight_size = n;
    o.norm_eps = c.eps;
    const bitlinear::ActivationFrontend fe(n, o);
    std::vector<std::vector<float>> y(isas.size(), std::vector<float>(batch * n));
    for (std::size_t f = 0; f < isas.size(); ++f) fe.transform(c.x.data(), batch, n, y[f].data(), n, isas[f]);
    for (std::size_t t = 0; t < batch; ++t) {
      const float* x = c.x.data() + t * n;
      bool identical = true;
      std::vector<float> r = {bitlinear::detail::rms_norm_factor(x, n, c.eps)};
#if BITLINEAR_ARCH_X86_64
      if (bitlinear::cpu_supports(bitlinear::Isa::avx2)) r.push_back(bitlinear::detail::avx2::rms_norm_factor(x, n, c.eps));
#endif
      for (float v : r) {
        identical = identical && same(v, c.r[t]);
        EXPECT_TRUE(same(v, c.r[t])) << "in " << n << " eps " << c.eps << " row " << t << ": r " << v
                                     << " vs PyTorch " << c.r[t];
      }
      for (std::size_t f = 0; f < isas.size(); ++f) {
        std::size_t wrong = 0, first = n;
        for (std::size_t k = 0; k < n; ++k) {
          if (!same(y[f][t * n + k], c.y[t * n + k])) {
            ++wrong;
            if (first == n) first = k;
          }
        }
        identical = identical && wrong == 0;
        EXPECT_EQ(wrong, 0u) << bitlinear_test::isa_label(isas[f]) << " in " << n << " eps " << c.eps << " row " << t
                             << ": first at k " << first << ": "
                             << (first < n ? y[f][t * n + first] : 0.0f) << " vs PyTorch "
                             << (first < n ? c.y[t * n + first] : 0.0f);
      }
      ++rows;
      rows_identical += identical;
    }
    // Quantized, every family gives the scalar family's bits.
    std::vector<unsigned char> ws(fe.workspace_size(batch));
    std::vector<unsigned char> ws_scalar(fe.workspace_size(batch));
    const auto ref = fe.quantize(c.x.data(), batch, n, ws_scalar.data(), ws_scalar.size(), bitlinear::Isa::scalar);
    for (bitlinear::Isa isa : isas) {
      const auto got = fe.quantize(c.x.data(), batch, n, ws.data(), ws.size(), isa);
      for (std::size_t r = 0; r < batch; ++r) {
        EXPECT_TRUE(bitlinear_test::same_bits(got.scale[r], ref.scale[r]));
        EXPECT_EQ(std::memcmp(got.q + r * got.stride, ref.q + r * ref.stride, got.stride), 0);
      }
    }
  }
  std::printf("RMSNorm: %zu of %zu rows bit-identical to PyTorch (r and every y, on %zu families)\n", rows_identical,
              rows, isas.size());
  EXPECT_EQ(rows_identical, rows);
}

}  // namespace
