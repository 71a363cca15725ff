// Microbenchmarks of the x86 AVX2-class kernel families (avx2, avxvnni when registered), single thread:
//   quantization of one activation row, GEMV hot (one layer, weights stay in cache), GEMV streaming (rotating
//   over >= 256 MiB of distinct layers, batch 1, and batches 2-4 on 6912x2560, with a plain read-bandwidth
//   benchmark in the same run to compare against), and GEMM at batch 128. Every layer is built for its family,
//   so it stores its weights in that family's execution layout (the grid slot's group_rows,
//   the canonical layout, which its batch-1 GEMV reads as streams). Every benchmark is
//   registered once per runnable family, so the families compare within one run. Kernel-only timings use forward_quantized() on activations quantized once.
//
//   build/bench/avx2_micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <bitlinear/bitlinear.hpp>

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using bitlinear::Isa;

constexpr std::size_t stream_bytes = std::size_t{272} << 20;  // > 256 MiB of distinct weights

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

// Copies of one layer (each its own weight buffer) adding up to more than 256 MiB, used in turn, so every
// call reads its weights from DRAM. Bytes per second of weights read is the figure to compare with ReadBandwidth.
template <class Layer>
void gemv_stream_bench(benchmark::State& state, Isa isa, std::size_t out, std::size_t in, std::size_t batch) {
  const Layer first = random_layer<Layer>(out, in, isa, 3);
  const std::size_t count = stream_bytes / first.packed_weights_size() + 1;
  std::vector<Layer> layers(count, first);
  const auto x = random_input(batch * in, 4);
  bitlinear::QuantizedActivations acts;
  first.quantize(x.data(), batch, in, acts);
  std::vector<float> y(batch * out);
  std::size_t next = 0;
  for (auto _ : state) {
    layers[next].forward_quantized(acts.view(), 0, out, y.data(), out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == count ? 0 : next + 1;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * first.packed_weights_size()));
  state.counters["layers"] = static_cast<double>(count);
}

// Single-thread read bandwidth: sums a buffer of the streaming size with 32-byte loads, 4 independent chains.
__attribute__((target("avx2"))) std::uint64_t sum_bytes(const std::uint8_t* p, std::size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

void read_bandwidth_bench(benchmark::State& state) {
  constexpr std::size_t chunk = std::size_t{4} << 20;  // read 4 MiB per iteration, rotating through the buffer
  const std::size_t chunks = stream_bytes / chunk;
  std::unique_ptr<std::uint8_t[]> storage(new std::uint8_t[stream_bytes + 64]);
  std::uint8_t* buffer = storage.get() + (64 - reinterpret_cast<std::uintptr_t>(storage.get()) % 64) % 64;
  for (std::size_t i = 0; i < stream_bytes; ++i) buffer[i] = static_cast<std::uint8_t>(i * 131);
  std::size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(sum_bytes(buffer + next * chunk, chunk));
    next = next + 1 == chunks ? 0 : next + 1;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * chunk));
}

void register_all() {
  if (!bitlinear::cpu_supports(Isa::avx2)) return;
  benchmark::RegisterBenchmark("ReadBandwidth/272MiB", read_bandwidth_bench)->Unit(benchmark::kMicrosecond);
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
      benchmark::RegisterBenchmark(("TernaryGemvStream/" + f + "/" + dims).c_str(),
                                   gemv_stream_bench<bitlinear::TernaryLinear>, isa, shape.first, shape.second, 1)
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("BinaryGemvStream/" + f + "/" + dims).c_str(),
                                   gemv_stream_bench<bitlinear::BinaryLinear>, isa, shape.first, shape.second, 1)
          ->Unit(benchmark::kMicrosecond);
    }
    for (std::size_t batch : {2, 3, 4}) {
      const std::string b = "/6912x2560/batch" + std::to_string(batch);
      benchmark::RegisterBenchmark(("TernaryGemvStream/" + f + b).c_str(), gemv_stream_bench<bitlinear::TernaryLinear>,
                                   isa, 6912, 2560, batch)
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("BinaryGemvStream/" + f + b).c_str(), gemv_stream_bench<bitlinear::BinaryLinear>,
                                   isa, 6912, 2560, batch)
          ->Unit(benchmark::kMicrosecond);
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
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
