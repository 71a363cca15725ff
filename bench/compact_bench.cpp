// Compact ternary (1.6 bits per weight) against the 2-bit ternary layer, in one run:
//
//   hot/<format>/<out>x<in>          forward_quantized() on one layer, batch 1 (weights in cache): decode speed
//   stream/<format>/<out>x<in>/t1    forward_quantized(), batch 1, 1 thread, rotating over >= 256 MiB of copies
//   stream/<format>/<out>x<in>/t2    forward() on a ThreadPool(2), batch 1 (quantization included), rotating
//   busy/<format>/<out>x<in>/t1      as stream/t1 while a second thread runs a plain memory-read loop over
//                                    256 MiB (the bus as one core of a many-core machine sees it)
//   read/<format>/<out>x<in>/t<n>    a plain read of the layer's bytes on n threads (4 streams each), rotating over
//                                    >= 256 MiB: the interleaved twin of stream/.../t<n> (harness.hpp; vs_read =
//                                    stream GB/s / read GB/s)
//   gemm/<format>/<out>x<in>/b<n>    forward() with workspace, batch n, 1 thread, one layer
// The summary prints bits per weight (scale included), G weights/s, the stream / read ratios and the compact /
// 2-bit ratios per shape.
//
//   ./build/bench/compact_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace {

namespace bl = bitlinear;
namespace harness = bench::harness;

struct Shape {
  std::size_t out, in;
};
const Shape kShapes[] = {{2560, 2560}, {6912, 2560}, {2560, 6912}};

std::string shape_name(const Shape& s) { return std::to_string(s.out) + "x" + std::to_string(s.in); }

void set_weights(benchmark::State& state, const Shape& s, std::size_t batch = 1) {
  state.counters["Gw/s"] = benchmark::Counter(static_cast<double>(s.out * s.in * batch),
                                              benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

template <class Layer>
void bm_gemv(benchmark::State& state, Shape s, bool stream, bool busy) {
  const Layer& hot = harness::normal_layer<Layer>(s.out, s.in);
  const std::vector<Layer>* copies = stream ? &harness::normal_layer_copies<Layer>(s.out, s.in) : nullptr;
  const Layer* layers = copies != nullptr ? copies->data() : &hot;
  harness::Cursor next(copies != nullptr ? copies->size() : 1);
  const auto x = harness::normal_floats(s.in, 2);
  std::vector<float> y(s.out);
  bl::QuantizedActivations acts;
  hot.quantize(x.data(), 1, s.in, acts);
  std::unique_ptr<harness::BackgroundReader> reader;
  if (busy) reader = std::make_unique<harness::BackgroundReader>();
  for (auto _ : state) {
    layers[next.next()].forward_quantized(acts.view(), 0, s.out, y.data(), s.out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_weights(state, s);
  state.SetLabel(std::string(bl::isa_name(hot.isa())));
}

template <class Layer>
void bm_threads(benchmark::State& state, Shape s, std::size_t threads) {
  const auto& layers = harness::normal_layer_copies<Layer>(s.out, s.in);
  const auto x = harness::normal_floats(s.in, 2);
  std::vector<float> y(s.out);
  std::vector<unsigned char> workspace(layers[0].workspace_size(1));
  bl::ThreadPool& pool = harness::pool_of(threads);
  harness::Cursor next(layers.size());
  for (auto _ : state) {
    layers[next.next()].forward(x.data(), 1, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_weights(state, s);
}

template <class Layer>
void bm_gemm(benchmark::State& state, Shape s, std::size_t batch) {
  const Layer& layer = harness::normal_layer<Layer>(s.out, s.in);
  const auto x = harness::normal_floats(batch * s.in, 3);
  std::vector<float> y(batch * s.out);
  std::vector<unsigned char> workspace(layer.workspace_size(batch));
  for (auto _ : state) {
    layer.forward(x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_weights(state, s, batch);
}

void print_summary(const harness::Results& results) {
  const auto time = [&](const std::string& name) { return results.seconds(name) * 1e6; };
  std::printf("\nCompact summary (µs per call, medians; ratio = 2-bit time / compact time, > 1: compact faster;\n"
              "str/rd = read time / stream time, the fraction of the interleaved plain read's bandwidth):\n");
  std::printf("%-10s %-16s %6s | %8s %7s | %8s %8s %8s | %7s %7s | %9s\n", "shape", "format", "bits/w", "hot",
              "Gw/s", "str t1", "str t2", "busy t1", "str/rd1", "str/rd2", "gemm b128");
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
      const auto of_read = [&](const char* threads) {
        const double str = value("stream", threads);
        return ratio || str == 0 ? 0.0 : value("read", threads) / str;
      };
      const double bits = std::string(format) == "ternary"
                              ? (8.0 * static_cast<double>(bl::packed_size<bl::Ternary>(s.out, s.in)) + 32) / weights
                              : (8.0 * static_cast<double>(bl::packed_size<bl::TernaryCompact>(s.out, s.in)) + 32) /
                                    weights;
      const double hot = value("hot", "");
      std::printf("%-10s %-16s %6.3f | %8.2f %7.1f | %8.1f %8.1f %8.1f | %7.2f %7.2f | %9.1f\n", shape_name(s).c_str(),
                  format, ratio ? 0.0 : bits, hot, ratio || hot == 0 ? 0.0 : weights / hot / 1e3,
                  value("stream", "/t1"), value("stream", "/t2"), value("busy", "/t1"), of_read("/t1"),
                  of_read("/t2"), value("gemm", "/b128"));
    }
  }
}

template <class Layer>
void register_format(const Shape& s) {
  const std::string tail = std::string(Layer::format_type::name) + "/" + shape_name(s);
  const std::size_t bytes = bl::packed_size<typename Layer::format_type>(s.out, s.in);
  const auto configure = [](benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
  };
  const auto add = [&](const std::string& name, auto fn) {
    configure(benchmark::RegisterBenchmark(name.c_str(), fn));
  };
  add("hot/" + tail, [=](benchmark::State& st) { bm_gemv<Layer>(st, s, false, false); });
  add("gemm/" + tail + "/b128", [=](benchmark::State& st) { bm_gemm<Layer>(st, s, 128); });
  harness::add_pair(
      "stream/" + tail + "/t1", [=](benchmark::State& st) { bm_gemv<Layer>(st, s, true, false); },
      "read/" + tail + "/t1", {bytes, 1, true, harness::twin_streams}, harness::Rate::gb_s, configure);
  add("busy/" + tail + "/t1", [=](benchmark::State& st) { bm_gemv<Layer>(st, s, true, true); });
  harness::add_pair(
      "stream/" + tail + "/t2", [=](benchmark::State& st) { bm_threads<Layer>(st, s, 2); },
      "read/" + tail + "/t2", {bytes, 2, true, harness::twin_streams}, harness::Rate::gb_s, configure);
}

}  // namespace

int main(int argc, char** argv) {
  for (const Shape& s : kShapes) {
    register_format<bl::TernaryLinear>(s);
    register_format<bl::CompactTernaryLinear>(s);
  }
  benchmark::AddCustomContext("bitlinear_isa", std::string(bl::active_isa()));
  return harness::run(argc, argv, print_summary);
}
