// Compact ternary (1.6 bits per weight) against the 2-bit ternary layer (issue 11), in one run:
//
//   hot/<format>/<out>x<in>          forward_quantized() on one layer, batch 1 (weights in cache): decode speed
//   stream/<format>/<out>x<in>/t1    forward_quantized(), batch 1, 1 thread, rotating over >= 256 MiB of copies
//   stream/<format>/<out>x<in>/t2    forward() on a ThreadPool(2), batch 1 (quantization included), rotating
//   busy/<format>/<out>x<in>/t1      as stream/t1 while a second thread runs a plain memory-read loop over its own
//                                    256 MiB (the bus as one core of a many-core machine sees it)
//   gemm/<format>/<out>x<in>/b<n>    forward() with workspace, batch n, 1 thread, one layer
// The summary prints bits per weight (scale included), G weights/s and the compact / 2-bit ratios per shape.
//
//   ./build/bench/compact_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "baselines/memread.hpp"

namespace {

namespace bl = bitlinear;

constexpr std::size_t kStreamBytes = std::size_t{256} << 20;

struct Shape {
  std::size_t out, in;
};
const Shape kShapes[] = {{2560, 2560}, {6912, 2560}, {2560, 6912}};

std::string shape_name(const Shape& s) { return std::to_string(s.out) + "x" + std::to_string(s.in); }

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

// One set of copies at a time (benchmarks of one shape and format run one after another).
struct CopySet {
  std::string key;
  std::shared_ptr<void> data;
};
CopySet& current_set() {
  static CopySet set;
  return set;
}

template <class Layer>
const std::vector<Layer>& layer_copies(const Shape& s, bool stream) {
  const std::string key = std::string(Layer::format_type::name) + "/" + shape_name(s) + (stream ? "/stream" : "/hot");
  CopySet& set = current_set();
  if (set.key != key) {
    set.data.reset();
    const auto w = random_floats(s.out * s.in, 1);
    const Layer first = Layer::from_float(w.data(), s.out, s.in);
    const std::size_t count = stream ? kStreamBytes / first.packed_weights_size() + 2 : 1;
    set.data = std::make_shared<std::vector<Layer>>(count, first);  // distinct memory, same values
    set.key = key;
  }
  return *static_cast<const std::vector<Layer>*>(set.data.get());
}

bl::ThreadPool& pool_of(std::size_t threads) {
  static std::map<std::size_t, std::unique_ptr<bl::ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<bl::ThreadPool>(threads);
  return *pool;
}

void set_weights(benchmark::State& state, const Shape& s, std::size_t batch = 1) {
  state.counters["Gw/s"] = benchmark::Counter(static_cast<double>(s.out * s.in * batch),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// A plain read loop on its own thread while it lives.
class BusyReader {
 public:
  BusyReader() : buffer_(static_cast<std::uint8_t*>(std::aligned_alloc(64, kStreamBytes))) {
    for (std::size_t i = 0; i < kStreamBytes; i += 64) buffer_[i] = static_cast<std::uint8_t>(i >> 6);
    thread_ = std::thread([this] {
      std::uint64_t sum = 0;
      while (!stop_.load(std::memory_order_relaxed)) sum += bench::memread::read(buffer_, kStreamBytes);
      sink_ = sum;
    });
  }
  ~BusyReader() {
    stop_ = true;
    thread_.join();
    std::free(buffer_);
  }

 private:
  std::uint8_t* buffer_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  volatile std::uint64_t sink_ = 0;
};

template <class Layer>
void bm_gemv(benchmark::State& state, Shape s, bool stream, bool busy) {
  const auto& layers = layer_copies<Layer>(s, stream);
  const auto x = random_floats(s.in, 2);
  std::vector<float> y(s.out);
  bl::QuantizedActivations acts;
  layers[0].quantize(x.data(), 1, s.in, acts);
  std::unique_ptr<BusyReader> reader;
  if (busy) reader = std::make_unique<BusyReader>();
  std::size_t next = 0;
  for (auto _ : state) {
    layers[next].forward_quantized(acts.view(), 0, s.out, y.data(), s.out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  set_weights(state, s);
  state.SetLabel(std::string(bl::isa_name(layers[0].isa())));
}

template <class Layer>
void bm_threads(benchmark::State& state, Shape s, std::size_t threads) {
  const auto& layers = layer_copies<Layer>(s, true);
  const auto x = random_floats(s.in, 2);
  std::vector<float> y(s.out);
  std::vector<unsigned char> workspace(layers[0].workspace_size(1));
  bl::ThreadPool& pool = pool_of(threads);
  std::size_t next = 0;
  for (auto _ : state) {
    layers[next].forward(x.data(), 1, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  set_weights(state, s);
}

template <class Layer>
void bm_gemm(benchmark::State& state, Shape s, std::size_t batch) {
  const auto& layers = layer_copies<Layer>(s, false);
  const auto x = random_floats(batch * s.in, 3);
  std::vector<float> y(batch * s.out);
  std::vector<unsigned char> workspace(layers[0].workspace_size(batch));
  for (auto _ : state) {
    layers[0].forward(x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_weights(state, s, batch);
}

// Medians (or the last repetition's time) by name, for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool aggregate = run.run_type == Run::RT_Aggregate;
      if (aggregate && run.aggregate_name != "median") continue;
      const std::string name = run.run_name.function_name;
      if (aggregate || medians_.count(name) == 0) times_[name] = run.GetAdjustedRealTime();
      if (aggregate) medians_[name] = true;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double time(const std::string& name) const {
    const auto it = times_.find(name);
    return it == times_.end() ? 0.0 : it->second;
  }
  void print() const {
    std::printf("\nCompact summary (µs per call, medians; ratio = 2-bit time / compact time, > 1: compact faster):\n");
    std::printf("%-10s %-16s %6s | %8s %7s | %8s %8s %8s | %9s\n", "shape", "format", "bits/w", "hot", "Gw/s",
                "str t1", "str t2", "busy t1", "gemm b128");
    for (const Shape& s : kShapes) {
      const double weights = static_cast<double>(s.out * s.in);
      for (const char* format : {"ternary", "compact ternary", "ratio"}) {
        const bool ratio = std::string(format) == "ratio";
        const auto value = [&](const std::string& prefix, const std::string& suffix) {
          if (!ratio) return time(prefix + "/" + format + "/" + shape_name(s) + suffix);
          const double t = time(prefix + "/ternary/" + shape_name(s) + suffix);
          const double c = time(prefix + "/compact ternary/" + shape_name(s) + suffix);
          return c > 0 ? t / c : 0.0;
        };
        const double bits = std::string(format) == "ternary"
                                ? (8.0 * static_cast<double>(bl::packed_size<bl::Ternary>(s.out, s.in)) + 32) / weights
                                : (8.0 * static_cast<double>(bl::packed_size<bl::TernaryCompact>(s.out, s.in)) + 32) /
                                      weights;
        const double hot = value("hot", "");
        std::printf("%-10s %-16s %6.3f | %8.2f %7.1f | %8.1f %8.1f %8.1f | %9.1f\n", shape_name(s).c_str(), format,
                    ratio ? 0.0 : bits, hot, ratio || hot == 0 ? 0.0 : weights / hot / 1e3, value("stream", "/t1"),
                    value("stream", "/t2"), value("busy", "/t1"), value("gemm", "/b128"));
      }
    }
  }

 private:
  std::map<std::string, double> times_;
  std::map<std::string, bool> medians_;
};

template <class Layer>
void register_format(const Shape& s) {
  const std::string tail = std::string(Layer::format_type::name) + "/" + shape_name(s);
  auto add = [](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
  };
  add("hot/" + tail, [=](benchmark::State& st) { bm_gemv<Layer>(st, s, false, false); });
  add("gemm/" + tail + "/b128", [=](benchmark::State& st) { bm_gemm<Layer>(st, s, 128); });
  add("stream/" + tail + "/t1", [=](benchmark::State& st) { bm_gemv<Layer>(st, s, true, false); });
  add("busy/" + tail + "/t1", [=](benchmark::State& st) { bm_gemv<Layer>(st, s, true, true); });
  add("stream/" + tail + "/t2", [=](benchmark::State& st) { bm_threads<Layer>(st, s, 2); });
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& s : kShapes) {
    register_format<bl::TernaryLinear>(s);
    register_format<bl::CompactTernaryLinear>(s);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("bitlinear_isa", std::string(bl::active_isa()));
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print();
  benchmark::Shutdown();
  return 0;
}
