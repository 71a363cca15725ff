// Threading speedup: pooled workspace forward with 1 vs 2 threads, in one run, on the same layers.
//   Gemm:       batch 128, 2560x2560 and 6912x2560 (one layer reused: compute bound)
//   StreamGemv: batch 1, 6912x2560, rotating over >= 256 MiB of packed layers (memory bound: every call
//               streams its weights from DRAM, as a model's decode step does)
// After the runs the program prints the 2-thread speedup of each case (1-thread time / 2-thread time, real
// time). Targets on 2 cores: >= 1.8x for Gemm at batch 128, >= 1.5x for StreamGemv.
//
//   ./build/bench/threads_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

bitlinear::TernaryLinear make_layer(std::size_t out, std::size_t in, unsigned seed) {
  const auto w = random_floats(out * in, seed);
  return bitlinear::TernaryLinear::from_float(w.data(), out, in);
}

// CPU seconds used so far by every thread of the process (user + system).
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// Per-iteration CPU time of all threads (ms): on a busy machine, where real time is noisy, 1-thread
// process_ms / 2-thread process_ms shows the pool's overhead (1.0 = none; spinning workers count).
void add_process_cpu(benchmark::State& state, double cpu_start) {
  state.counters["process_ms"] = benchmark::Counter((process_cpu_seconds() - cpu_start) * 1e3,
                                                    benchmark::Counter::kAvgIterations);
}

// One pool per thread count, alive for the whole program (workers are persistent).
bitlinear::ThreadPool& pool_of(std::size_t threads) {
  static std::map<std::size_t, std::unique_ptr<bitlinear::ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<bitlinear::ThreadPool>(threads);
  return *pool;
}

void Gemm(benchmark::State& state) {
  const auto out = static_cast<std::size_t>(state.range(0)), in = static_cast<std::size_t>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  const std::size_t batch = 128;
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<bitlinear::TernaryLinear>> layers;
  auto& layer = layers[{out, in}];
  if (!layer) layer = std::make_unique<bitlinear::TernaryLinear>(make_layer(out, in, 1));
  const auto x = random_floats(batch * in, 2);
  std::vector<float> y(batch * out);
  std::vector<unsigned char> workspace(layer->workspace_size(batch));
  bitlinear::ThreadPool& pool = pool_of(threads);
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
    layer->forward(x.data(), batch, in, y.data(), out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  add_process_cpu(state, cpu_start);
  state.counters["GOPS"] = benchmark::Counter(2.0 * batch * out * in, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.SetLabel(std::string(bitlinear::isa_name(layer->isa())));
}

void StreamGemv(benchmark::State& state) {
  const std::size_t out = 6912, in = 2560;
  const auto threads = static_cast<std::size_t>(state.range(0));
  static std::vector<bitlinear::TernaryLinear> layers;
  if (layers.empty()) {
    const auto first = make_layer(out, in, 3);
    const std::size_t count = (std::size_t{256} << 20) / first.packed_weights_size() + 2;  // > 256 MiB in all
    layers.reserve(count);
    for (std::size_t i = 0; i < count; ++i) layers.push_back(first);  // copies: distinct memory, same values
  }
  const auto x = random_floats(in, 4);
  std::vector<float> y(out);
  std::vector<unsigned char> workspace(layers[0].workspace_size(1));
  bitlinear::ThreadPool& pool = pool_of(threads);
  std::size_t next = 0;
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
    layers[next].forward(x.data(), 1, in, y.data(), out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  add_process_cpu(state, cpu_start);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(layers[0].packed_weights_size()),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["layers"] = static_cast<double>(layers.size());
  state.SetLabel(std::string(bitlinear::isa_name(layers[0].isa())));
}

BENCHMARK(Gemm)
    ->ArgNames({"out", "in", "threads"})
    ->Args({2560, 2560, 1})
    ->Args({2560, 2560, 2})
    ->Args({6912, 2560, 1})
    ->Args({6912, 2560, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(StreamGemv)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Console output as usual, plus a record of each run's real time (the median when repetitions are aggregated).
class SpeedupReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool aggregate = run.run_type == Run::RT_Aggregate;
      if (aggregate && run.aggregate_name != "median") continue;
      // Without aggregates, the last repetition wins; with them, the median does.
      if (aggregate || medians_.count(run.run_name.str()) == 0) times_[run.run_name.str()] = run.GetAdjustedRealTime();
      if (aggregate) medians_[run.run_name.str()] = true;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void print_speedups() const {
    std::printf("\n2-thread speedup (1-thread real time / 2-thread real time):\n");
    for (const auto& [name, time] : times_) {
      const auto at = name.rfind("threads:2");
      if (at == std::string::npos) continue;
      const std::string one = name.substr(0, at) + "threads:1" + name.substr(at + 9);
      const auto found = times_.find(one);
      if (found == times_.end()) continue;
      std::printf("  %-48s %.2fx\n", name.substr(0, at).c_str(), found->second / time);
    }
  }

 private:
  std::map<std::string, double> times_;
  std::map<std::string, bool> medians_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("bitlinear_isa", std::string(bitlinear::active_isa()));
  SpeedupReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_speedups();
  benchmark::Shutdown();
  return 0;
}
