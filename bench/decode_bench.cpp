// Decode speed (issue 10): batch 1 to 4, the weights streamed from DRAM, on 1 and 2 threads, against a plain read
// of the same number of bytes in the same run (the roofline this machine's memory allows at that moment).
//
//   layer/<format>/<out>x<in>/b<batch>/t<threads>   forward() with its workspace on a ThreadPool of <threads>
//                                                   (quantization included), rotating over >= 256 MiB of copies
//   kernel/<format>/<out>x<in>/b1/t1                forward_quantized() on pre-quantized activations (matmul only)
//   read/<format>/<out>x<in>/t<threads>             a plain 64-byte-load read of one layer's weight bytes per call,
//                                                   rotating over >= 256 MiB; 2 threads read one half each
// At the end it prints, per shape, medians and the ratios the targets are stated in: layer / read,
// 2-thread speedup, binary speedup over ternary.
//
//   ./build-bench/bench/decode_bench --benchmark_repetitions=7 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "baselines/memread.hpp"

namespace {

namespace bl = bitlinear;

constexpr std::size_t kStreamBytes = std::size_t{256} << 20;

struct Shape {
  std::size_t out, in;
};
const Shape kShapes[] = {{6912, 2560}, {2560, 6912}, {2560, 2560}, {640, 2560}};

std::string shape_name(const Shape& s) { return std::to_string(s.out) + "x" + std::to_string(s.in); }

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& f : v) f = normal(rng);
  return v;
}

// One set of copies at a time (benchmarks of one shape and format run one after another).
struct StreamSet {
  std::string key;
  std::shared_ptr<void> data;
};
StreamSet& current_set() {
  static StreamSet set;
  return set;
}

template <class Layer>
const std::vector<Layer>& layer_copies(const Shape& s) {
  const std::string key = std::string("layers/") + Layer::format_type::name + "/" + shape_name(s);
  StreamSet& set = current_set();
  if (set.key != key) {
    set.data.reset();
    const auto w = random_floats(s.out * s.in, 1);
    const Layer first = Layer::from_float(w.data(), s.out, s.in);
    const std::size_t count = kStreamBytes / first.packed_weights_size() + 2;
    auto copies = std::make_shared<std::vector<Layer>>(count, first);  // distinct memory, same values
    set.data = copies;
    set.key = key;
  }
  return *static_cast<const std::vector<Layer>*>(set.data.get());
}

struct ReadBuffer {
  std::size_t bytes_each = 0, count = 0;
  std::uint8_t* data = nullptr;
  ~ReadBuffer() { std::free(data); }
};
const ReadBuffer& read_buffer(std::size_t bytes_each) {
  const std::string key = "read/" + std::to_string(bytes_each);
  StreamSet& set = current_set();
  if (set.key != key) {
    set.data.reset();
    auto buffer = std::make_shared<ReadBuffer>();
    buffer->bytes_each = (bytes_each + 511) / 512 * 512;  // whole 256-byte steps in each half
    buffer->count = kStreamBytes / buffer->bytes_each + 2;
    buffer->data = static_cast<std::uint8_t*>(std::aligned_alloc(64, buffer->bytes_each * buffer->count));
    for (std::size_t i = 0; i < buffer->bytes_each * buffer->count; ++i) buffer->data[i] = static_cast<std::uint8_t>(i);
    set.data = buffer;
    set.key = key;
  }
  return *static_cast<const ReadBuffer*>(set.data.get());
}

bl::ThreadPool& pool_of(std::size_t threads) {
  static std::map<std::size_t, std::unique_ptr<bl::ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<bl::ThreadPool>(threads);
  return *pool;
}

void set_bytes(benchmark::State& state, double bytes) {
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
}

template <class Layer>
void bm_layer(benchmark::State& state, Shape s, std::size_t batch, std::size_t threads) {
  const auto& layers = layer_copies<Layer>(s);
  const auto x = random_floats(batch * s.in, 2);
  std::vector<float> y(batch * s.out);
  std::vector<unsigned char> workspace(layers[0].workspace_size(batch));
  bl::ThreadPool& pool = pool_of(threads);
  std::size_t next = 0;
  for (auto _ : state) {
    layers[next].forward(x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  set_bytes(state, static_cast<double>(layers[0].packed_weights_size()));
  state.SetLabel(std::string(bl::isa_name(layers[0].isa())));
}

template <class Layer>
void bm_kernel(benchmark::State& state, Shape s) {
  const auto& layers = layer_copies<Layer>(s);
  const auto x = random_floats(s.in, 2);
  std::vector<float> y(s.out);
  bl::QuantizedActivations acts;
  layers[0].quantize(x.data(), 1, s.in, acts);
  std::size_t next = 0;
  for (auto _ : state) {
    layers[next].forward_quantized(acts.view(), 0, s.out, y.data(), s.out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == layers.size() ? 0 : next + 1;
  }
  set_bytes(state, static_cast<double>(layers[0].packed_weights_size()));
}

void bm_read(benchmark::State& state, std::size_t bytes, std::size_t threads) {
  const ReadBuffer& buffer = read_buffer(bytes);
  bl::ThreadPool& pool = pool_of(threads);
  const std::size_t part = buffer.bytes_each / threads;
  std::size_t next = 0;
  std::uint64_t sums[2] = {0, 0};
  for (auto _ : state) {
    const std::uint8_t* layer = buffer.data + next * buffer.bytes_each;
    pool.parallel_for(0, threads, 1, [&](std::size_t t, std::size_t) {
      sums[t] += bench::memread::read(layer + t * part, part);
    });
    benchmark::DoNotOptimize(sums);
    next = next + 1 == buffer.count ? 0 : next + 1;
  }
  set_bytes(state, static_cast<double>(bytes));
}

// Medians (or the last repetition's time) by name, for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool aggregate = run.run_type == Run::RT_Aggregate;
      if (aggregate && run.aggregate_name != "median") continue;
      const std::string name = run.run_name.function_name;  // without the /min_time: and /real_time suffixes
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
    std::printf("\nDecode summary (µs per layer, medians; ratios within this run):\n");
    std::printf("%-10s %-8s %9s %9s %9s %7s | %9s %9s %7s %7s | %8s\n", "shape", "format", "kernel", "layer t1",
                "read t1", "l1/r1", "layer t2", "read t2", "l2/r2", "t1/t2", "bin/ter");
    for (const Shape& s : kShapes) {
      for (const char* format : {"ternary", "binary"}) {
        const std::string tail = std::string(format) + "/" + shape_name(s);
        const double k1 = time("kernel/" + tail + "/b1/t1");
        const double l1 = time("layer/" + tail + "/b1/t1"), l2 = time("layer/" + tail + "/b1/t2");
        const double r1 = time("read/" + tail + "/t1"), r2 = time("read/" + tail + "/t2");
        const double ternary = time("layer/ternary/" + shape_name(s) + "/b1/t1");
        if (l1 == 0.0) continue;
        std::printf("%-10s %-8s %9.1f %9.1f %9.1f %7.2f | %9.1f %9.1f %7.2f %7.2f | %8.2f\n", shape_name(s).c_str(),
                    format, k1, l1, r1, r1 > 0 ? l1 / r1 : 0.0, l2, r2, r2 > 0 ? l2 / r2 : 0.0, l2 > 0 ? l1 / l2 : 0.0,
                    ternary / l1);
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
  const std::size_t bytes = bl::packed_size<typename Layer::format_type>(s.out, s.in);
  auto add = [](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.1);
  };
  for (std::size_t threads : {1u, 2u}) {
    add("read/" + tail + "/t" + std::to_string(threads),
        [=](benchmark::State& st) { bm_read(st, bytes, threads); });
  }
  add("kernel/" + tail + "/b1/t1", [=](benchmark::State& st) { bm_kernel<Layer>(st, s); });
  for (std::size_t batch : {1u, 2u, 4u}) {
    for (std::size_t threads : {1u, 2u}) {
      add("layer/" + tail + "/b" + std::to_string(batch) + "/t" + std::to_string(threads),
          [=](benchmark::State& st) { bm_layer<Layer>(st, s, batch, threads); });
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& s : kShapes) {
    register_format<bl::TernaryLinear>(s);
    register_format<bl::BinaryLinear>(s);
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
