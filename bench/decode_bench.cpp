// Decode speed: batch 1 to 4, the weights streamed from DRAM, on 1 and 2 threads, against a plain read
// of the same number of bytes in the same run (the roofline this machine's memory allows at that moment).
//
//   layer/<format>/<out>x<in>/b<batch>/t<threads>   forward() with its workspace on a ThreadPool of <threads>
//                                                   (quantization included), rotating over >= 256 MiB of copies
//   kernel/<format>/<out>x<in>/b1/t1                forward_quantized() on pre-quantized activations (matmul only)
//   read/<format>/<out>x<in>/t<threads>             a plain read of one layer's weight bytes per call (one pass,
//                                                   as before the harness), rotating over >= 256 MiB; 2 threads
//                                                   read one half each. The twin of
//                                                   every layer/kernel run with that thread count (harness.hpp:
//                                                   interleaved with them; vs_read = layer GB/s / read GB/s)
// At the end it prints, per shape, medians and the ratios the targets are stated in: layer / read, 2-thread
// speedup, binary speedup over ternary.
//
//   ./build-bench/bench/decode_bench --benchmark_repetitions=7 --benchmark_report_aggregates_only=true
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
const Shape kShapes[] = {{6912, 2560}, {2560, 6912}, {2560, 2560}, {640, 2560}};

std::string shape_name(const Shape& s) { return std::to_string(s.out) + "x" + std::to_string(s.in); }

template <class Layer>
void bm_layer(benchmark::State& state, Shape s, std::size_t batch, std::size_t threads) {
  const auto& layers = harness::normal_layer_copies<Layer>(s.out, s.in);
  const auto x = harness::normal_floats(batch * s.in, 2);
  std::vector<float> y(batch * s.out);
  std::vector<unsigned char> workspace(layers[0].workspace_size(batch));
  bl::ThreadPool& pool = harness::pool_of(threads);
  harness::Cursor next(layers.size());
  for (auto _ : state) {
    layers[next.next()].forward(x.data(), batch, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  harness::set_rate(state, static_cast<double>(layers[0].packed_weights_size()), harness::Rate::gb_s);
  state.SetLabel(std::string(bl::isa_name(layers[0].isa())));
}

template <class Layer>
void bm_kernel(benchmark::State& state, Shape s) {
  const auto& layers = harness::normal_layer_copies<Layer>(s.out, s.in);
  const auto x = harness::normal_floats(s.in, 2);
  std::vector<float> y(s.out);
  bl::QuantizedActivations acts;
  layers[0].quantize(x.data(), 1, s.in, acts);
  harness::Cursor next(layers.size());
  for (auto _ : state) {
    layers[next.next()].forward_quantized(acts.view(), 0, s.out, y.data(), s.out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  harness::set_rate(state, static_cast<double>(layers[0].packed_weights_size()), harness::Rate::gb_s);
}

void print_summary(const harness::Results& results) {
  const auto time = [&](const std::string& name) { return results.seconds(name) * 1e6; };
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

template <class Layer>
void register_format(const Shape& s) {
  const std::string tail = std::string(Layer::format_type::name) + "/" + shape_name(s);
  const std::size_t bytes = bl::packed_size<typename Layer::format_type>(s.out, s.in);
  const auto configure = [](benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.1);
  };
  // Each layer/kernel run is paired with the read of its bytes on as many threads.
  const auto add = [&](const std::string& name, std::size_t threads, auto fn) {
    harness::add_pair(name, fn, "read/" + tail + "/t" + std::to_string(threads), {bytes, threads, true},
                      harness::Rate::gb_s, configure);
  };
  add("kernel/" + tail + "/b1/t1", 1, [=](benchmark::State& st) { bm_kernel<Layer>(st, s); });
  for (std::size_t batch : {1u, 2u, 4u}) {
    for (std::size_t threads : {1u, 2u}) {
      add("layer/" + tail + "/b" + std::to_string(batch) + "/t" + std::to_string(threads), threads,
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
  benchmark::AddCustomContext("bitlinear_isa", std::string(bl::active_isa()));
  return harness::run(argc, argv, print_summary);
}
