// Microbenchmarks of the x86 AVX2-class kernel families (avx2, avxvnni when registered), single thread:
//   quantization of one activation row, GEMV hot (one layer, weights stay in cache), GEMV streaming (rotating
//   over >= 256 MiB of distinct layers, batch 1, and batches 2-4 on 6912x2560, each paired with a plain read of
//   the same bytes in 4 streams, ReadBandwidth/<ternary|binary>/<out>x<in>, interleaved with it: see harness.hpp;
//   the kernel's vs_read = its bytes/s over the read's), and GEMM at batch 128. ReadBandwidth/4MiB: 4 MiB reads
//   in one pass, rotating over >= 256 MiB. Every layer is built for its family,
//   so it stores its weights in that family's execution layout (the grid slot's group_rows,
//   the canonical layout, which its batch-1 GEMV reads as streams). Every benchmark is
//   registered once per runnable family, so the families compare within one run. Kernel-only timings use forward_quantized() on activations quantized once.
//
//   build/bench/avx2_micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <bitlinear/bitlinear.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness.hpp"

namespace {

using bitlinear::Isa;
namespace harness = bench::harness;

std::vector<Isa> families() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::avx2, Isa::avxvnni}) {
    if (bitlinear::detail::isa_runnable(isa)) out.push_back(isa);
  }
  return out;
}

// A layer with random codes (ternary fields 0..2, binary bits), built from canonical packed bytes.
template <class Layer>
Layer random_layer(std::size_t out, std::size_t in, Isa isa, std::uint32_t seed) {
  using Format = typename Layer::format_type;
  std::mt19937 rng(seed);
  std::vector<std::int8_t> codes(out * in);
  for (auto& c : codes) {
    c = Format::bits_per_weight == 2 ? static_cast<std::int8_t>(static_cast<int>(rng() % 3) - 1)
                                     : static_cast<std::int8_t>((rng() & 1) != 0 ? 1 : -1);
  }
  std::vector<std::uint8_t> packed(bitlinear::packed_size<Format>(out, in));
  bitlinear::pack_codes<Format>(codes.data(), out, in, packed.data());
  std::vector<float> bias(out);
  for (auto& b : bias) b = static_cast<float>(rng() % 1000) / 1000.0f - 0.5f;
  bitlinear::Options options;
  options.isa = isa;
  return Layer::from_packed(packed.data(), packed.size(), out, in, 0.0314f, bias.data(), options);
}

std::vector<float> random_input(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

void quantize_row_bench(benchmark::State& state, Isa isa, std::size_t in) {
  const auto x = random_input(in, 7);
  std::vector<unsigned char> workspace(bitlinear::activation_workspace_size(1, in));
  const auto view = bitlinear::activation_view_in(workspace.data(), workspace.size(), 1, in);
  for (auto _ : state) {
    bitlinear::quantize_activations(x.data(), 1, in, in, bitlinear::ActivationScale::per_token, view, isa);
    benchmark::DoNotOptimize(view.q);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in * sizeof(float)));
}

// One layer, batch rows of activations quantized once; weights stay in cache between iterations.
template <class Layer>
void matmul_hot_bench(benchmark::State& state, Isa isa, std::size_t out, std::size_t in, std::size_t batch) {
  const Layer layer = random_layer<Layer>(out, in, isa, 1);
  const auto x = random_input(batch * in, 2);
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  std::vector<float> y(batch * out);
  for (auto _ : state) {
    layer.forward_quantized(acts.view(), 0, out, y.data(), out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * layer.packed_weights_size()));
  state.counters["GOPS"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * out * in * batch,
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// The layer streaming benchmarks copy: built once per family and shape.
template <class Layer>
const Layer& stream_layer(Isa isa, std::size_t out, std::size_t in) {
  static std::map<std::string, std::unique_ptr<Layer>> layers;
  auto& layer = layers[std::string(bitlinear::isa_name(isa)) + "/" + std::to_string(out) + "x" + std::to_string(in)];
  if (!layer) layer = std::make_unique<Layer>(random_layer<Layer>(out, in, isa, 3));
  return *layer;
}

// Copies of one layer (each its own weight buffer) adding up to >= 256 MiB, used in turn, so every call reads its
// weights from DRAM. Bytes per second of weights read is the figure to compare with its ReadBandwidth twin.
template <class Layer>
void gemv_stream_bench(benchmark::State& state, Isa isa, std::size_t out, std::size_t in, std::size_t batch) {
  const Layer& first = stream_layer<Layer>(isa, out, in);
  const std::string key = std::string(Layer::format_type::name) + "/" + std::string(bitlinear::isa_name(isa)) + "/" +
                          std::to_string(out) + "x" + std::to_string(in);
  const auto& layers = harness::cold_set<Layer>(key, first.packed_weights_size(), [&] { return first; });
  const auto x = random_input(batch * in, 4);
  bitlinear::QuantizedActivations acts;
  first.quantize(x.data(), batch, in, acts);
  std::vector<float> y(batch * out);
  harness::Cursor next(layers.size());
  for (auto _ : state) {
    layers[next.next()].forward_quantized(acts.view(), 0, out, y.data(), out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * first.packed_weights_size()));
  state.counters["layers"] = static_cast<double>(layers.size());
}

// A streaming GEMV and its twin, the plain read of its packed bytes.
template <class Layer>
void add_stream(const std::string& name, Isa isa, std::size_t out, std::size_t in, std::size_t batch) {
  using Format = typename Layer::format_type;
  const std::string dims = std::to_string(out) + "x" + std::to_string(in);
  const harness::ReadSpec read{bitlinear::packed_size<Format>(out, in), 1, true, harness::twin_streams};
  harness::add_pair(
      name, [=](benchmark::State& st) { gemv_stream_bench<Layer>(st, isa, out, in, batch); },
      std::string("ReadBandwidth/") + Format::name + "/" + dims, read, harness::Rate::bytes_per_second, [](benchmark::internal::Benchmark* b) { b->Unit(benchmark::kMicrosecond); });
}

void register_all() {
  if (!bitlinear::cpu_supports(Isa::avx2)) return;
  harness::add_read("ReadBandwidth/4MiB", {std::size_t{4} << 20, 1, true}, harness::Rate::bytes_per_second)
      ->Unit(benchmark::kMicrosecond);
  for (Isa isa : families()) {
    const std::string f(bitlinear::isa_name(isa));
    benchmark::RegisterBenchmark(("QuantizeRow/" + f + "/2560").c_str(), quantize_row_bench, isa, 2560);
    benchmark::RegisterBenchmark(("TernaryGemvHot/" + f + "/2560x2560").c_str(),
                                 matmul_hot_bench<bitlinear::TernaryLinear>, isa, 2560, 2560, 1)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("BinaryGemvHot/" + f + "/2560x2560").c_str(),
                                 matmul_hot_bench<bitlinear::BinaryLinear>, isa, 2560, 2560, 1)
        ->Unit(benchmark::kMicrosecond);
    for (auto shape : {std::pair<std::size_t, std::size_t>{6912, 2560}, {2560, 6912}, {2560, 2560}}) {
      const std::string dims = std::to_string(shape.first) + "x" + std::to_string(shape.second);
      add_stream<bitlinear::TernaryLinear>("TernaryGemvStream/" + f + "/" + dims, isa, shape.first, shape.second, 1);
      add_stream<bitlinear::BinaryLinear>("BinaryGemvStream/" + f + "/" + dims, isa, shape.first, shape.second, 1);
    }
    for (std::size_t batch : {2, 3, 4}) {
      const std::string b = "/6912x2560/batch" + std::to_string(batch);
      add_stream<bitlinear::TernaryLinear>("TernaryGemvStream/" + f + b, isa, 6912, 2560, batch);
      add_stream<bitlinear::BinaryLinear>("BinaryGemvStream/" + f + b, isa, 6912, 2560, batch);
    }
    for (std::size_t batch : {2, 4, 8, 128}) {
      benchmark::RegisterBenchmark(("TernaryGemm/" + f + "/2560x2560/batch" + std::to_string(batch)).c_str(),
                                   matmul_hot_bench<bitlinear::TernaryLinear>, isa, 2560, 2560, batch)
          ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark(("BinaryGemm/" + f + "/2560x2560/batch128").c_str(),
                                 matmul_hot_bench<bitlinear::BinaryLinear>, isa, 2560, 2560, 128)
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  return harness::run(argc, argv);
}
