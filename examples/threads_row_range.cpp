// Multithreading with your own threads: quantize the input once, then let each thread compute ranges of output
// rows with forward_quantized(). Any split gives the same bits as layer.forward().
//   1. static: one fixed range per thread (simple; the slowest thread sets the pace);
//   2. dynamic: bitlinear::RowChunks hands out chunks of rows from an atomic counter, so a thread on a slower or
//      busier core takes fewer of them (docs/threads.md).
#include <bitlinear/bitlinear.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

int main() {
  const std::size_t out = 6912, in = 2560, batch = 1;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(out * in), x(batch * in), y_ref(batch * out);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in);
  layer.forward(x.data(), batch, y_ref.data());

  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, /*x_stride=*/in, acts);  // once per input, reused by every thread
  const std::size_t threads = 4;
  bool all_same = true;

  // --- 1. static row ranges (an engine's thread pool would take the place of std::thread) ---
  {
    std::vector<float> y(batch * out);
    const std::size_t per_thread = (out + threads - 1) / threads;
    std::vector<std::thread> team;
    for (std::size_t i = 0; i < threads; ++i) {
      const std::size_t begin = std::min(out, i * per_thread), end = std::min(out, begin + per_thread);
      team.emplace_back([&, begin, end] { layer.forward_quantized(acts.view(), begin, end, y.data(), out); });
    }
    for (std::thread& t : team) t.join();
    const bool same = std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0;
    std::printf("static:  %zu threads, %zux%zu layer, batch %zu: %s\n", threads, out, in, batch,
                same ? "identical to forward()" : "MISMATCH");
    all_same = all_same && same;
  }

  // --- 2. dynamic row chunks: the split forward() on a ThreadPool uses at batch <= 4 ---
  {
    std::vector<float> y(batch * out);
    bitlinear::RowChunks chunks(layer, threads);  // whole 64-row blocks, >= 256 KiB of weights each
    std::vector<std::thread> team;
    for (std::size_t i = 0; i < threads; ++i) {
      team.emplace_back([&] {
        for (bitlinear::RowRange r = chunks.next(); !r.empty(); r = chunks.next()) {
          layer.forward_quantized(acts.view(), r.begin, r.end, y.data(), out);
        }
      });
    }
    for (std::thread& t : team) t.join();
    // chunks.reset() would make the same object ready for the next input (once no thread is claiming).
    const bool same = std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0;
    std::printf("dynamic: %zu threads, %zu chunks of ~%zu rows: %s\n", threads, chunks.chunks(),
                chunks.chunk(0).size(), same ? "identical to forward()" : "MISMATCH");
    all_same = all_same && same;
  }
  return all_same ? 0 : 1;
}
