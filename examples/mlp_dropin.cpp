// Drop-in replacement: a small MLP (Linear -> ReLU -> Linear) run with float weights, then with TernaryLinear
// layers built from the same weights.
//
// Two comparisons are printed:
//   1. against the float MLP: the error ternary quantization itself introduces (a BitNet model is trained with
//      it, so this is not a bug; it is what replacing an untrained float layer costs);
//   2. against the float MLP evaluated the way BitNet's training code does it ("fake quantization": activations
//      and weights quantized and dequantized in float): this is what bitlinear must reproduce, and does to
//      float rounding.
#include <bitlinear/bitlinear.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

struct FloatLinear {
  std::size_t out, in;
  std::vector<float> w, b;
  void forward(const std::vector<float>& x, std::size_t batch, std::vector<float>& y) const {
    y.assign(batch * out, 0.0f);
    for (std::size_t t = 0; t < batch; ++t) {
      for (std::size_t j = 0; j < out; ++j) {
        double acc = b[j];
        for (std::size_t k = 0; k < in; ++k) acc += double(w[j * in + k]) * double(x[t * in + k]);
        y[t * out + j] = static_cast<float>(acc);
      }
    }
  }
};

// BitNet's fake quantization in float: x_q = round(x * s_x) / s_x, w_q = clamp(round(w / beta), -1, 1) * beta.
FloatLinear fake_quantized_weights(const FloatLinear& layer) {
  FloatLinear q = layer;
  double sum_abs = 0;
  for (float v : layer.w) sum_abs += std::fabs(v);
  const float beta = std::max(static_cast<float>(sum_abs / static_cast<double>(layer.w.size())), 1e-5f);
  for (float& v : q.w) v = std::clamp(std::nearbyint(v * (1.0f / beta)), -1.0f, 1.0f) * beta;
  return q;
}

std::vector<float> fake_quantized_activations(const std::vector<float>& x, std::size_t batch, std::size_t in) {
  std::vector<float> q(x.size());
  for (std::size_t t = 0; t < batch; ++t) {
    float m = 0;
    for (std::size_t k = 0; k < in; ++k) m = std::max(m, std::fabs(x[t * in + k]));
    const float s_x = (1.0f / std::max(m, 1e-5f)) * 127.0f;
    for (std::size_t k = 0; k < in; ++k) q[t * in + k] = std::clamp(std::nearbyint(x[t * in + k] * s_x), -128.0f, 127.0f) / s_x;
  }
  return q;
}

void relu(std::vector<float>& v) {
  for (float& f : v) f = std::max(f, 0.0f);
}

void report(const char* what, const std::vector<float>& a, const std::vector<float>& b) {
  double max_abs = 0, max_ref = 0, dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(double(a[i]) - b[i]));
    max_ref = std::max(max_ref, std::fabs(double(b[i])));
    dot += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  }
  std::printf("  %-44s max |diff| %.3e (%.2e of max |y|), cosine similarity %.9f\n", what, max_abs,
              max_abs / max_ref, dot / std::sqrt(na * nb));
}

}  // namespace

int main() {
  const std::size_t d_model = 256, d_hidden = 1024, batch = 4;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto randn = [&](std::size_t n, float scale) {
    std::vector<float> v(n);
    for (float& f : v) f = normal(rng) * scale;
    return v;
  };
  const FloatLinear up{d_hidden, d_model, randn(d_hidden * d_model, 0.05f), randn(d_hidden, 0.01f)};
  const FloatLinear down{d_model, d_hidden, randn(d_model * d_hidden, 0.03f), randn(d_model, 0.01f)};
  const std::vector<float> x = randn(batch * d_model, 1.0f);

  // 1. The float MLP.
  std::vector<float> h, y_float;
  up.forward(x, batch, h);
  relu(h);
  down.forward(h, batch, y_float);

  // 2. The same MLP with TernaryLinear layers built from the same weights: the only change is the layer type.
  const auto up_t = bitlinear::TernaryLinear::from_float(up.w.data(), d_hidden, d_model, up.b.data());
  const auto down_t = bitlinear::TernaryLinear::from_float(down.w.data(), d_model, d_hidden, down.b.data());
  std::vector<float> h_t(batch * d_hidden), y_ternary(batch * d_model);
  up_t.forward(x.data(), batch, h_t.data());
  relu(h_t);
  down_t.forward(h_t.data(), batch, y_ternary.data());

  // 3. The float MLP with BitNet fake quantization (what a BitNet checkpoint was trained with).
  const FloatLinear up_q = fake_quantized_weights(up), down_q = fake_quantized_weights(down);
  std::vector<float> h_q, y_fake;
  up_q.forward(fake_quantized_activations(x, batch, d_model), batch, h_q);
  relu(h_q);
  down_q.forward(fake_quantized_activations(h_q, batch, d_hidden), batch, y_fake);

  std::printf("MLP %zu -> %zu -> %zu, batch %zu, bitlinear kernel family: %s\n", d_model, d_hidden, d_model, batch,
              std::string(bitlinear::active_isa()).c_str());
  std::printf("  weights: float %zu bytes, ternary packed %zu bytes\n", (up.w.size() + down.w.size()) * sizeof(float),
              up_t.packed_weights_size() + down_t.packed_weights_size());
  report("TernaryLinear vs float MLP (quantization):", y_ternary, y_float);
  report("TernaryLinear vs BitNet fake-quantized MLP:", y_ternary, y_fake);
  std::printf("  y[0][0..3]: float %.5f %.5f %.5f %.5f | ternary %.5f %.5f %.5f %.5f\n", y_float[0], y_float[1],
              y_float[2], y_float[3], y_ternary[0], y_ternary[1], y_ternary[2], y_ternary[3]);
  return 0;
}
