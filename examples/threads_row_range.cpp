// Multithreading with your own threads: quantize the input once, then let each thread compute a range of
// output rows with forward_quantized(). Any split gives the same bits as layer.forward().
#include <bitlinear/bitlinear.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

int main() {
  const std::size_t out = 1536, in = 512, batch = 4;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(out * in), x(batch * in), y(batch * out), y_ref(batch * out);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in);

  // --- the row-range pattern (an engine's thread pool would take the place of std::thread) ---
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, /*x_stride=*/in, acts);  // once per input, reused by every thread
  const std::size_t threads = 4, per_thread = (out + threads - 1) / threads;
  std::vector<std::thread> team;
  for (std::size_t i = 0; i < threads; ++i) {
    const std::size_t begin = std::min(out, i * per_thread), end = std::min(out, begin + per_thread);
    team.emplace_back([&, begin, end] { layer.forward_quantized(acts.view(), begin, end, y.data(), out); });
  }
  for (std::thread& t : team) t.join();
  // ---

  layer.forward(x.data(), batch, y_ref.data());
  const bool same = std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0;
  std::printf("%zu threads, %zux%zu layer, batch %zu: %s\n", threads, out, in, batch,
              same ? "identical to forward()" : "MISMATCH");
  return same ? 0 : 1;
}
