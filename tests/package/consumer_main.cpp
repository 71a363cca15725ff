// A program written against the public API only, built by a separate CMake project.
#include <bitlinear/bitlinear.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const std::size_t out = 5, in = 70;
  std::vector<float> w(out * in), x(2 * in), y(2 * out);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i));
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in);
  layer.forward(x.data(), 2, y.data());
  // Check one output against the semantics written out directly.
  const auto codes = layer.unpacked_weights();
  float m = 0;
  for (std::size_t k = 0; k < in; ++k) m = std::fabs(x[k]) > m ? std::fabs(x[k]) : m;
  const float s_x = (1.0f / m) * 127.0f;
  int dot = 0;
  for (std::size_t k = 0; k < in; ++k) dot += codes[k] * static_cast<int>(std::nearbyint(x[k] * s_x));
  const float expected = static_cast<float>(dot) / s_x / (1.0f / layer.weight_scale());
  std::printf("bitlinear consumer: kernel family %s, y[0] = %g (expected %g)\n",
              std::string(bitlinear::active_isa()).c_str(), y[0], expected);
  return y[0] == expected ? 0 : 1;
}
