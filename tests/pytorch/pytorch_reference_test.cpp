// bitlinear against PyTorch float32 (cases written by make_reference.py; path in BITLINEAR_PYTORCH_REFERENCE):
// quantized activations and scales bit-exact, weight codes exact except at a rounding boundary where
// PyTorch's float32 mean and the library's double-accumulated mean differ, outputs within 1e-6 relative of the
// output PyTorch's quantized values give in float64. Every runnable kernel family.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "../test_util.hpp"

namespace {

struct Case {
  int kind = 0, per_tensor = 0, has_bias = 0, out = 0, in = 0, batch = 0, special = 0;
  std::vector<float> w, bias, x, s_x, y;
  std::vector<std::int8_t> q, nan_rows, codes;
  float beta = 0, alpha = 0;
};

template <class T>
void read_into(std::ifstream& in, std::vector<T>& v, std::size_t n) {
  v.resize(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(T)));
  if (!in) throw std::runtime_error("truncated reference file");
}

std::vector<Case> load_cases() {
  const char* path = std::getenv("BITLINEAR_PYTORCH_REFERENCE");
  if (path == nullptr) throw std::runtime_error("set BITLINEAR_PYTORCH_REFERENCE to make_reference.py's output");
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "BLREF001", 8) != 0) throw std::runtime_error(std::string("bad reference file ") + path);
  std::vector<Case> cases;
  while (in.peek() != std::char_traits<char>::eof()) {
    Case c;
    std::int32_t header[7];
    in.read(reinterpret_cast<char*>(header), sizeof header);
    c.kind = header[0], c.per_tensor = header[1], c.has_bias = header[2], c.out = header[3], c.in = header[4],
    c.batch = header[5], c.special = header[6];
    const auto out = static_cast<std::size_t>(c.out), in_f = static_cast<std::size_t>(c.in),
               batch = static_cast<std::size_t>(c.batch);
    read_into(in, c.w, out * in_f);
    if (c.has_bias) read_into(in, c.bias, out);
    read_into(in, c.x, batch * in_f);
    read_into(in, c.q, batch * in_f);
    read_into(in, c.nan_rows, batch);
    read_into(in, c.s_x, batch);
    read_into(in, c.codes, out * in_f);
    float scales[2];
    in.read(reinterpret_cast<char*>(scales), sizeof scales);
    c.beta = scales[0], c.alpha = scales[1];
    std::vector<double> y64;
    read_into(in, y64, batch * out);
    c.y.assign(y64.begin(), y64.end());
    cases.push_back(std::move(c));
  }
  return cases;
}

// Reference output in float64 read as double (kept separately for the tolerance).
std::vector<double> reference_outputs(const Case& c) {
  // Recomputed from the file's float64 values would lose nothing; the file stores float64, kept in c.y as
  // float for convenience of NaN checks, so recompute in double from PyTorch's q and codes here.
  std::vector<double> y(static_cast<std::size_t>(c.batch * c.out));
  for (int t = 0; t < c.batch; ++t) {
    for (int j = 0; j < c.out; ++j) {
      double dot = 0;
      for (int k = 0; k < c.in; ++k) dot += double(c.q[t * c.in + k]) * double(c.codes[j * c.in + k]);
      const double s_x = c.s_x[t];
      double v = c.kind == 0 ? dot / s_x / double(1.0f / c.beta) : dot / s_x * double(c.beta);
      y[t * c.out + j] = v;
    }
  }
  return y;
}

template <class Layer>
void check_case(const Case& c, bitlinear::Isa isa, int case_index, int& boundary_codes) {
  SCOPED_TRACE("case " + std::to_string(case_index) + " kind " + std::to_string(c.kind) + " " +
               std::to_string(c.out) + "x" + std::to_string(c.in) + " batch " + std::to_string(c.batch) +
               (c.per_tensor ? " per_tensor" : " per_token") + " family " + std::string(bitlinear::isa_name(isa)));
  const auto out = static_cast<std::size_t>(c.out), in = static_cast<std::size_t>(c.in),
             batch = static_cast<std::size_t>(c.batch);
  bitlinear::Options options;
  options.isa = isa;
  options.activation_scale = c.per_tensor ? bitlinear::ActivationScale::per_tensor : bitlinear::ActivationScale::per_token;
  const auto layer = Layer::from_float(c.w.data(), out, in, c.has_bias ? c.bias.data() : nullptr, options);

  // Activations: q and s_x bit-exact; NaN rows marked.
  bitlinear::QuantizedActivations qa;
  layer.quantize(c.x.data(), batch, in, qa);
  const auto view = qa.view();
  for (std::size_t t = 0; t < batch; ++t) {
    if (c.nan_rows[t]) {
      ASSERT_TRUE(bitlinear_test::is_nan(view.scale[t])) << "row " << t << " should be marked non-finite";
      continue;
    }
    ASSERT_TRUE(bitlinear_test::same_bits(view.scale[t], c.s_x[t])) << "s_x row " << t << ": " << view.scale[t] << " vs " << c.s_x[t];
    for (std::size_t k = 0; k < in; ++k) {
      ASSERT_EQ(view.q[t * view.stride + k], c.q[t * in + k]) << "q[" << t << "][" << k << "] x=" << c.x[t * in + k];
    }
  }

  // Weights: PyTorch's float32 mean sums in float32 in its own order, a few ulps away from the double-accumulated
  // mean on large matrices (2 ulps seen at 40x4099), so the scales agree to 1e-6 relative; codes are equal
  // unless the two scales put a weight on different sides of a rounding boundary.
  const float beta = layer.weight_scale();
  ASSERT_LE(std::fabs(beta - c.beta), 1e-6f * std::fabs(c.beta)) << beta << " vs " << c.beta;
  const auto codes = layer.unpacked_weights();
  std::vector<bool> row_has_boundary_code(out, false);
  for (std::size_t i = 0; i < out * in; ++i) {
    if (codes[i] == c.codes[i]) continue;
    const float wv = c.w[i];
    bool boundary = false;
    if (c.kind == 0) {
      const float ours = std::nearbyint(wv * (1.0f / beta)), theirs = std::nearbyint(wv * (1.0f / c.beta));
      boundary = ours != theirs;
    } else {
      const float alpha = static_cast<float>([&] {
        double s = 0;
        for (float v : c.w) s += v;
        return s / static_cast<double>(c.w.size());
      }());
      boundary = (wv - alpha > 0.0f) != (wv - c.alpha > 0.0f);
    }
    ASSERT_TRUE(boundary) << "code " << i << " differs from PyTorch away from a rounding boundary";
    row_has_boundary_code[i / in] = true;
    ++boundary_codes;
  }

  // Outputs.
  std::vector<float> y(batch * out);
  layer.forward(c.x.data(), batch, y.data());
  const auto y_ref = reference_outputs(c);
  for (std::size_t t = 0; t < batch; ++t) {
    for (std::size_t j = 0; j < out; ++j) {
      const float got = y[t * out + j];
      if (c.nan_rows[t] || (c.per_tensor && std::any_of(c.nan_rows.begin(), c.nan_rows.end(), [](std::int8_t r) { return r != 0; }))) {
        ASSERT_TRUE(bitlinear_test::is_nan(got)) << "y[" << t << "][" << j << "] should be NaN";
        continue;
      }
      if (row_has_boundary_code[j]) continue;
      const double bias = c.has_bias ? c.bias[j] : 0.0;
      const double expected = y_ref[t * out + j] + bias;
      const double tolerance = 1e-6 * (std::fabs(y_ref[t * out + j]) + std::fabs(bias));
      ASSERT_LE(std::fabs(got - expected), tolerance) << "y[" << t << "][" << j << "] = " << got << " vs " << expected;
    }
  }
}

TEST(PyTorchReference, EveryCaseOnEveryFamily) {
  const auto cases = load_cases();
  ASSERT_GT(cases.size(), 40u);
  int reciprocal_sensitive_rows = 0, nan_rows = 0;
  for (const auto& c : cases) {
    reciprocal_sensitive_rows += c.special;
    for (auto r : c.nan_rows) nan_rows += r;
  }
  EXPECT_GT(reciprocal_sensitive_rows, 4) << "the reference must include rows where 127/m and reciprocal(m)*127 differ";
  EXPECT_GT(nan_rows, 2);
  for (bitlinear::Isa isa : bitlinear_test::runnable_isas()) {
    int boundary_codes = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      if (cases[i].kind == 0) {
        check_case<bitlinear::TernaryLinear>(cases[i], isa, static_cast<int>(i), boundary_codes);
      } else {
        check_case<bitlinear::BinaryLinear>(cases[i], isa, static_cast<int>(i), boundary_codes);
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    std::printf("family %s: %zu cases match PyTorch (%d weight codes on a rounding boundary)\n",
                std::string(bitlinear::isa_name(isa)).c_str(), cases.size(), boundary_codes);
  }
}

}  // namespace
