// Cost of pinning the FP environment (detail/fp_environment.hpp): the guard alone, in the default environment
// (one read of MXCSR/FPCR) and in a non-default one (a write on entry and one on exit), and a whole small
// forward call in both. Run: build/bench/fp_environment_bench
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <cfenv>
#include <random>
#include <vector>

namespace {

// 0: the default environment; 1: FE_TOWARDZERO (the guard must switch to round-to-nearest and back).
void set_mode(int mode) { std::fesetround(mode == 0 ? FE_TONEAREST : FE_TOWARDZERO); }

void BM_Guard(benchmark::State& state) {
  set_mode(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    const bitlinear::detail::FpEnvironmentGuard guard;
    benchmark::ClobberMemory();
  }
  set_mode(0);
}
BENCHMARK(BM_Guard)->Arg(0)->Arg(1)->ArgName("toward_zero");

void BM_ForwardBatch1(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(1));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> w(n * n), x(n), y(n);
  for (float& v : w) v = dist(rng);
  for (float& v : x) v = dist(rng);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), n, n);
  std::vector<unsigned char> workspace(layer.workspace_size(1));
  set_mode(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    layer.forward(x.data(), 1, n, y.data(), n, workspace.data(), workspace.size());
    benchmark::DoNotOptimize(y.data());
  }
  set_mode(0);
}
BENCHMARK(BM_ForwardBatch1)->ArgsProduct({{0, 1}, {256, 2048}})->ArgNames({"toward_zero", "n"});

}  // namespace

BENCHMARK_MAIN();
