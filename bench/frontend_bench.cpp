// The activation front-end (frontend.hpp) next to the matmul it feeds, in the same run:
//
//   frontend/<in>/b<batch>            ActivationFrontend::quantize on one thread: RMSNorm + signed Walsh-Hadamard
//                                     rotation (block 256, which divides both 2560 and 6912) + per-token int8
//   frontend_quantize_only/<in>/b<batch>  the same front-end without norm and rotation (the plain quantizer)
//   kernel/<out>x<in>/b<batch>        forward_quantized() of a ternary layer on one thread, on pre-quantized
//                                     activations; batch 1 rotates over >= 256 MiB of layer copies (decode streams
//                                     the weights from DRAM), batch 128 runs one layer (compute bound)
// The summary prints front-end / matmul for the pairs that run together in a model: in 2560 feeds 6912x2560
// (gate/up), in 6912 feeds 2560x6912 (down). Targets: <= 3% at batch 1, <= 5% at batch 128.
//
//   ./build/bench/frontend_bench --benchmark_min_time=0.05
#include <benchmark/benchmark.h>

#include <bitlinear/bitlinear.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"

namespace {

namespace bl = bitlinear;
namespace harness = bench::harness;

constexpr std::size_t kBlock = 256;
const std::size_t kInFeatures[] = {2560, 6912};
const std::size_t kBatches[] = {1, 128};

struct Pair {
  std::size_t out, in;
};
const Pair kPairs[] = {{6912, 2560}, {2560, 6912}};

std::string pair_name(const Pair& p) { return std::to_string(p.out) + "x" + std::to_string(p.in); }

void bm_frontend(benchmark::State& state, std::size_t in, std::size_t batch, bool full) {
  const auto weight = harness::normal_floats(in, 3);
  std::vector<float> signs = harness::normal_floats(in, 4);
  for (float& s : signs) s = s < 0.0f ? -1.0f : 1.0f;
  bl::FrontendOptions o;
  if (full) {
    o.rms_norm = true;
    o.norm_weight = weight.data();
    o.norm_weight_size = in;
    o.norm_eps = 1e-5f;
    o.hadamard_block = kBlock;
    o.hadamard_signs = signs.data();
    o.hadamard_signs_size = in;
  }
  const bl::ActivationFrontend fe(in, o);
  const auto x = harness::normal_floats(batch * in, 2);
  std::vector<unsigned char> workspace(fe.workspace_size(batch));
  for (auto _ : state) {
    const bl::MutableActivationsView acts = fe.quantize(x.data(), batch, in, workspace.data(), workspace.size());
    benchmark::DoNotOptimize(acts.q);
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(bl::active_isa()));
}

void bm_kernel(benchmark::State& state, Pair p, std::size_t batch) {
  const auto x = harness::normal_floats(batch * p.in, 2);
  std::vector<float> y(batch * p.out);
  bl::QuantizedActivations acts;
  if (batch == 1) {
    const auto& layers = harness::normal_layer_copies<bl::TernaryLinear>(p.out, p.in);
    layers[0].quantize(x.data(), batch, p.in, acts);
    harness::Cursor next(layers.size());
    for (auto _ : state) {
      layers[next.next()].forward_quantized(acts.view(), 0, p.out, y.data(), p.out);
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
  } else {
    const auto& layer = harness::normal_layer<bl::TernaryLinear>(p.out, p.in);
    layer.quantize(x.data(), batch, p.in, acts);
    for (auto _ : state) {
      layer.forward_quantized(acts.view(), 0, p.out, y.data(), p.out);
      benchmark::DoNotOptimize(y.data());
      benchmark::ClobberMemory();
    }
  }
}

void print_summary(const harness::Results& results) {
  const auto us = [&](const std::string& name) { return results.seconds(name) * 1e6; };
  std::printf("\nFront-end vs the matmul it feeds (µs, one thread; ratio = front-end / matmul):\n");
  std::printf("%-6s %-11s %6s %12s %12s %12s %8s %7s\n", "batch", "layer", "in", "front-end", "quantize", "matmul",
              "ratio", "target");
  for (std::size_t batch : kBatches) {
    for (const Pair& p : kPairs) {
      const std::string b = "/b" + std::to_string(batch);
      const double fe = us("frontend/" + std::to_string(p.in) + b);
      const double plain = us("frontend_quantize_only/" + std::to_string(p.in) + b);
      const double mm = us("kernel/" + pair_name(p) + b);
      if (fe == 0.0 || mm == 0.0) continue;
      std::printf("%-6zu %-11s %6zu %12.2f %12.2f %12.1f %7.2f%% %6s\n", batch, pair_name(p).c_str(), p.in, fe, plain,
                  mm, 100.0 * fe / mm, batch == 1 ? "3%" : "5%");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto configure = [](benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.1);
  };
  for (std::size_t batch : kBatches) {
    for (std::size_t in : kInFeatures) {
      const std::string tail = std::to_string(in) + "/b" + std::to_string(batch);
      configure(benchmark::RegisterBenchmark(("frontend/" + tail).c_str(), [=](benchmark::State& st) {
        bm_frontend(st, in, batch, true);
      }));
      configure(benchmark::RegisterBenchmark(("frontend_quantize_only/" + tail).c_str(), [=](benchmark::State& st) {
        bm_frontend(st, in, batch, false);
      }));
    }
    for (const Pair& p : kPairs) {
      configure(benchmark::RegisterBenchmark(("kernel/" + pair_name(p) + "/b" + std::to_string(batch)).c_str(),
                                            [=](benchmark::State& st) { bm_kernel(st, p, batch); }));
    }
  }
  benchmark::AddCustomContext("bitlinear_isa", std::string(bl::active_isa()));
  return harness::run(argc, argv, print_summary);
}
