// Microbenchmarks of the avx512 kernel family: GEMV hot and streaming (with the machine's read bandwidth
// measured in the same run), GEMM at batch 128, GEMV/GEMM around the batch threshold, activation quantization.
// The kernels are called through the kernel table (no layer): the packed weights are random canonical bytes.
//
//   build/bench/avx512_micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Streaming benchmarks rotate over >= 256 MiB of distinct copies of the layer, so every call reads its weights
// from DRAM. Each is paired with a plain read of the same bytes in 4 streams,
// BM_ReadBandwidth_<Ternary|Binary>_<out>x<in>, interleaved with it (harness.hpp; the kernel's vs_read = its
// bytes_per_second over the read's). BM_ReadBandwidth reads 288 MiB per call in one pass.
#include <benchmark/benchmark.h>
#include <bitlinear/bitlinear.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "harness.hpp"

namespace {

namespace bl = bitlinear;
namespace harness = bench::harness;
using bl::detail::KernelTable;

bool have_avx512() { return bl::detail::isa_runnable(bl::Isa::avx512); }
const KernelTable& kernels() { return bl::detail::kernel_table(bl::Isa::avx512); }

struct Activations {
  bl::QuantizedActivations q;
  Activations(std::size_t batch, std::size_t in) {
    const std::vector<float> x = harness::normal_floats(batch * in, 7);
    q.quantize(x.data(), batch, in, in, bl::ActivationScale::per_token, bl::Isa::avx512);
  }
};

template <class Format>
void run_matmul(benchmark::State& state, std::size_t out, std::size_t in, std::size_t batch, bool stream) {
  if (!have_avx512()) {
    state.SkipWithError("CPU lacks avx512");
    return;
  }
  const auto layer = harness::random_packed_codes<Format>(out, in, 1);
  // Streaming: the cold set of this layer; hot: one copy.
  std::vector<harness::Bytes> hot;
  if (!stream) hot.emplace_back(layer);
  const std::vector<harness::Bytes>& weights =
      stream ? harness::cold_set<harness::Bytes>(std::string(Format::name) + "/" + std::to_string(out) + "x" +
                                                     std::to_string(in),
                                                 layer.size(), [&] { return harness::Bytes(layer); })
             : hot;
  Activations acts(batch, in);
  std::vector<float> bias(out, 0.5f), y(batch * out);
  const bl::detail::Epilogue e{0.75f, 1.0f / 0.75f, bias.data()};
  const auto& slot = kernels()[bl::detail::weight_format_of<Format>];
  const auto kernel = slot.matmul;
  const std::size_t group_rows = slot.group_rows;
  harness::Cursor next(weights.size());
  for (auto _ : state) {
    // Random bytes read in the family's execution layout (the layer's own order).
    const bl::detail::PackedWeightsView w{weights[next.next()].data(), out, in, Format::packed_row_bytes(in),
                                          group_rows};
    kernel(w, acts.q.view(), 0, out, e, y.data(), out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * layer.size()));
  state.counters["GOPS"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(out * in * batch),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.counters["Mweights/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(out * in),
                                                    benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_TernaryGemvHot_2560x2560(benchmark::State& s) { run_matmul<bl::Ternary>(s, 2560, 2560, 1, false); }
void BM_BinaryGemvHot_2560x2560(benchmark::State& s) { run_matmul<bl::Binary>(s, 2560, 2560, 1, false); }
void BM_TernaryGemm_2560x2560x128(benchmark::State& s) { run_matmul<bl::Ternary>(s, 2560, 2560, 128, false); }
void BM_BinaryGemm_2560x2560x128(benchmark::State& s) { run_matmul<bl::Binary>(s, 2560, 2560, 128, false); }
// Around the GEMV/GEMM threshold (gemm_min_batch): time per token should drop as the batch grows.
void BM_TernaryBatch_2560x2560(benchmark::State& s) {
  run_matmul<bl::Ternary>(s, 2560, 2560, static_cast<std::size_t>(s.range(0)), false);
}

BENCHMARK(BM_TernaryGemvHot_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BinaryGemvHot_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TernaryGemm_2560x2560x128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BinaryGemm_2560x2560x128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TernaryBatch_2560x2560)->DenseRange(1, 8)->Arg(12)->Arg(16)->Arg(24)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);

// Activation quantization of one 2560-wide row: the two kernels, and the whole public call (absmax, scale,
// quantize, sum).
void BM_QuantizeRow_2560(benchmark::State& state) {
  if (!have_avx512()) {
    state.SkipWithError("CPU lacks avx512");
    return;
  }
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(2560);
  for (float& f : x) f = dist(rng);
  bl::QuantizedActivations q;
  q.quantize(x.data(), 1, 2560, 2560, bl::ActivationScale::per_token, bl::Isa::avx512);
  for (auto _ : state) {
    q.quantize(x.data(), 1, 2560, 2560, bl::ActivationScale::per_token, bl::Isa::avx512);
    benchmark::DoNotOptimize(q.view().q);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_QuantizeRow_2560)->Unit(benchmark::kNanosecond);

void BM_QuantizeKernels_2560(benchmark::State& state) {
  if (!have_avx512()) {
    state.SkipWithError("CPU lacks avx512");
    return;
  }
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(2560);
  for (float& f : x) f = dist(rng);
  alignas(64) static std::int8_t q[3072];
  for (auto _ : state) {
    const float m = kernels().absmax(x.data(), x.size());
    const float s_x = (1.0f / m) * 127.0f;
    benchmark::DoNotOptimize(kernels().quantize_row(x.data(), x.size(), s_x, q, sizeof q));
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_QuantizeKernels_2560)->Unit(benchmark::kNanosecond);

// BM_<Kind>GemvStream_<out>x<in> and its twin BM_ReadBandwidth_<Kind>_<out>x<in>; BM_ReadBandwidth (288 MiB a call).
template <class Format>
void add_stream(const char* kind, std::size_t out, std::size_t in) {
  const std::string dims = std::to_string(out) + "x" + std::to_string(in);
  const harness::ReadSpec read{bl::packed_size<Format>(out, in), 1, true, harness::twin_streams};
  harness::add_pair(
      std::string("BM_") + kind + "GemvStream_" + dims,
      [=](benchmark::State& s) { run_matmul<Format>(s, out, in, 1, true); },
      std::string("BM_ReadBandwidth_") + kind + "_" + dims, read, harness::Rate::bytes_per_second, [](benchmark::internal::Benchmark* b) { b->Unit(benchmark::kMicrosecond); });
}

void register_streams() {
  if (!have_avx512()) return;
  for (auto shape : {std::pair<std::size_t, std::size_t>{6912, 2560}, {2560, 6912}}) {
    add_stream<bl::Ternary>("Ternary", shape.first, shape.second);
    add_stream<bl::Binary>("Binary", shape.first, shape.second);
  }
  harness::add_read("BM_ReadBandwidth", {std::size_t{288} << 20, 1, true}, harness::Rate::bytes_per_second)
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_streams();
  return harness::run(argc, argv);
}
