// The activation front-end's float steps (RMSNorm + sign flip + Walsh-Hadamard rotation, block 256) on the AVX2
// code and on the AVX-512 code of the same build, interleaved, batch 128: ActivationFrontend::transform with
// Isa::avx2 and Isa::avx512 (the same bits; only the float-step code differs). A standalone experiment, not built
// by CMake:
//   g++ -std=c++17 -O3 -Iinclude docs/results/2026-12-04-zen5-frontend-ab.cpp -o /tmp/frontend_ab -lpthread
//   /tmp/frontend_ab 6912 61 && /tmp/frontend_ab 2560 61        # in_features, repetitions of each
#include <bitlinear/bitlinear.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
namespace bl = bitlinear;
int main(int argc, char** argv) {
  const std::size_t in = argc > 1 ? std::stoul(argv[1]) : 6912, batch = 128;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 21;
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(in * batch), w(in), y(in * batch);
  for (auto& v : x) v = nd(g);
  for (auto& v : w) v = 1.0f + 0.1f * nd(g);
  std::vector<float> s(in);
  for (auto& v : s) v = (g() & 1) ? 1.0f : -1.0f;
  bl::FrontendOptions o;
  o.rms_norm = true; o.norm_eps = 1e-6f; o.hadamard_block = 256;
  o.norm_weight = w.data(); o.norm_weight_size = in; o.hadamard_signs = s.data(); o.hadamard_signs_size = in;
  bl::ActivationFrontend fe(in, o);
  std::vector<double> t[2];
  const bl::Isa isas[2] = {bl::Isa::avx2, bl::Isa::avx512};
  for (int r = 0; r < reps; ++r)
    for (int k = 0; k < 2; ++k) {
      auto a = std::chrono::steady_clock::now();
      fe.transform(x.data(), batch, in, y.data(), in, isas[k]);
      auto b = std::chrono::steady_clock::now();
      t[k].push_back(std::chrono::duration<double, std::micro>(b - a).count());
    }
  for (int k = 0; k < 2; ++k) { std::sort(t[k].begin(), t[k].end()); std::printf("%s median %.1f us min %.1f\n", k ? "avx512" : "avx2", t[k][t[k].size()/2], t[k][0]); }
}
