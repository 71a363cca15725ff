// Instruction counts of the avx2 kernels under callgrind (valgrind cannot run AVX-512 or AVX-VNNI, and timings
// on the shared machine are noisy). Runs one kernel call `calls` times after one warm-up call:
//   g++ -std=c++17 -O3 -Iinclude bench/avx2_callgrind_driver.cpp -o build/avx2_callgrind_driver
//   valgrind --tool=callgrind --toggle-collect='*avx2::matmul*' build/avx2_callgrind_driver gemv 10
// then Ir / (calls + 1) is the count of one call. Modes: gemv (ternary 2560x2560, batch 1), bgemv (binary),
// gemm (ternary 2560x2560, batch 128), quant (one 2560 row: --toggle-collect='*quantize_activations*').
// The layer stores its weights in the avx2 family's execution layout, as in use.
#include <bitlinear/bitlinear.hpp>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

template <class Layer>
int run(std::size_t batch, int calls) {
  const std::size_t n = 2560;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> w(n * n), x(batch * n), y(batch * n);
  for (auto& v : w) v = dist(rng);
  for (auto& v : x) v = dist(rng);
  bitlinear::Options o;
  o.isa = bitlinear::Isa::avx2;
  const auto layer = Layer::from_float(w.data(), n, n, nullptr, o);
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, n, acts);
  for (int i = 0; i <= calls; ++i) layer.forward_quantized(acts.view(), 0, n, y.data(), n);
  return y[0] > 1e30f;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "gemv";
  const int calls = argc > 2 ? std::atoi(argv[2]) : 10;
  if (std::strcmp(mode, "quant") == 0) {
    std::vector<float> x(2560, 0.5f);
    x[7] = -3.0f;
    bitlinear::QuantizedActivations acts;
    for (int i = 0; i <= calls; ++i) acts.quantize(x.data(), 1, 2560, 2560, bitlinear::ActivationScale::per_token, bitlinear::Isa::avx2);
    return 0;
  }
  if (std::strcmp(mode, "bgemv") == 0) return run<bitlinear::BinaryLinear>(1, calls);
  if (std::strcmp(mode, "gemm") == 0) return run<bitlinear::TernaryLinear>(128, calls);
  return run<bitlinear::TernaryLinear>(1, calls);
}
