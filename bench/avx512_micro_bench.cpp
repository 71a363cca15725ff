// Microbenchmarks of the avx512 kernel family: GEMV hot and streaming (with the machine's read bandwidth
// measured in the same run), GEMM at batch 128, GEMV/GEMM around the batch threshold, activation quantization.
// The kernels are called through the kernel table (no layer): the packed weights are random canonical bytes.
//
//   build/bench/avx512_micro_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Streaming benchmarks rotate over kStreamBytes of distinct copies of the layer, so every call reads its
// weights from DRAM; compare their bytes_per_second with BM_ReadBandwidth.
#include <benchmark/benchmark.h>
#include <bitlinear/bitlinear.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

namespace bl = bitlinear;
using bl::detail::KernelTable;

constexpr std::size_t kStreamBytes = std::size_t{288} << 20;

bool have_avx512() { return bl::detail::isa_runnable(bl::Isa::avx512); }
const KernelTable& kernels() { return bl::detail::kernel_table(bl::Isa::avx512); }

// Random canonical packed bytes for one [out, in] layer.
template <class Format>
std::vector<std::uint8_t> random_layer(std::size_t out, std::size_t in, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int8_t> codes(out * in);
  std::uniform_int_distribution<int> dist(0, Format::bits_per_weight == 2 ? 2 : 1);
  for (auto& c : codes) c = static_cast<std::int8_t>(Format::bits_per_weight == 2 ? dist(rng) - 1 : 2 * dist(rng) - 1);
  std::vector<std::uint8_t> packed(bl::packed_size<Format>(out, in));
  bl::pack_codes<Format>(codes.data(), out, in, packed.data());
  return packed;
}

// `count` 64-byte aligned copies of a layer in one buffer.
struct LayerCopies {
  bl::detail::AlignedBytes bytes;
  std::size_t layer_bytes = 0, count = 0;
  LayerCopies(const std::vector<std::uint8_t>& layer, std::size_t count_)
      : bytes(layer.size() * count_), layer_bytes(layer.size()), count(count_) {
    for (std::size_t i = 0; i < count; ++i) std::memcpy(bytes.data() + i * layer_bytes, layer.data(), layer_bytes);
  }
  const std::uint8_t* layer(std::size_t i) const { return bytes.data() + i * layer_bytes; }
};

struct Activations {
  bl::QuantizedActivations q;
  Activations(std::size_t batch, std::size_t in) {
    const auto x = [&] {
      std::mt19937 rng(7);
      std::normal_distribution<float> dist(0.0f, 1.0f);
      std::vector<float> v(batch * in);
      for (float& f : v) f = dist(rng);
      return v;
    }();
    q.quantize(x.data(), batch, in, in, bl::ActivationScale::per_token, bl::Isa::avx512);
  }
};

template <class Format>
void run_matmul(benchmark::State& state, std::size_t out, std::size_t in, std::size_t batch, bool stream) {
  if (!have_avx512()) {
    state.SkipWithError("CPU lacks avx512");
    return;
  }
  const auto layer = random_layer<Format>(out, in, 1);
  const std::size_t copies = stream ? (kStreamBytes + layer.size() - 1) / layer.size() : 1;
  const LayerCopies weights(layer, copies);
  Activations acts(batch, in);
  std::vector<float> bias(out, 0.5f), y(batch * out);
  const bl::detail::Epilogue e{0.75f, 1.0f / 0.75f, bias.data()};
  const auto& slot = kernels()[bl::detail::weight_format_of<Format>];
  const auto kernel = slot.matmul;
  const std::size_t group_rows = slot.group_rows;
  std::size_t i = 0;
  for (auto _ : state) {
    // Random bytes read in the family's execution layout (the layer's own order).
    const bl::detail::PackedWeightsView w{weights.layer(i), out, in, Format::packed_row_bytes(in), group_rows};
    kernel(w, acts.q.view(), 0, out, e, y.data(), out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    if (++i == copies) i = 0;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * layer.size()));
  state.counters["GOPS"] = benchmark::Counter(static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(out * in * batch),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
  state.counters["Mweights/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(out * in),
                                                    benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_TernaryGemvHot_2560x2560(benchmark::State& s) { run_matmul<bl::Ternary>(s, 2560, 2560, 1, false); }
void BM_BinaryGemvHot_2560x2560(benchmark::State& s) { run_matmul<bl::Binary>(s, 2560, 2560, 1, false); }
void BM_TernaryGemvStream_6912x2560(benchmark::State& s) { run_matmul<bl::Ternary>(s, 6912, 2560, 1, true); }
void BM_TernaryGemvStream_2560x6912(benchmark::State& s) { run_matmul<bl::Ternary>(s, 2560, 6912, 1, true); }
void BM_BinaryGemvStream_6912x2560(benchmark::State& s) { run_matmul<bl::Binary>(s, 6912, 2560, 1, true); }
void BM_BinaryGemvStream_2560x6912(benchmark::State& s) { run_matmul<bl::Binary>(s, 2560, 6912, 1, true); }
void BM_TernaryGemm_2560x2560x128(benchmark::State& s) { run_matmul<bl::Ternary>(s, 2560, 2560, 128, false); }
void BM_BinaryGemm_2560x2560x128(benchmark::State& s) { run_matmul<bl::Binary>(s, 2560, 2560, 128, false); }
// Around the GEMV/GEMM threshold (gemm_min_batch): time per token should drop as the batch grows.
void BM_TernaryBatch_2560x2560(benchmark::State& s) {
  run_matmul<bl::Ternary>(s, 2560, 2560, static_cast<std::size_t>(s.range(0)), false);
}

BENCHMARK(BM_TernaryGemvHot_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BinaryGemvHot_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TernaryGemvStream_6912x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TernaryGemvStream_2560x6912)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BinaryGemvStream_6912x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BinaryGemvStream_2560x6912)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TernaryGemm_2560x2560x128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BinaryGemm_2560x2560x128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TernaryBatch_2560x2560)->DenseRange(1, 8)->Arg(12)->Arg(16)->Arg(24)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);

// Single-thread read bandwidth over the same amount of memory: 4 independent zmm sums, no stores.
BITLINEAR_TARGET("avx512f") std::uint64_t read_all(const std::uint8_t* data, std::size_t bytes) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  for (std::size_t i = 0; i + 256 <= bytes; i += 256) {
    s0 = _mm512_add_epi64(s0, _mm512_load_si512(data + i));
    s1 = _mm512_add_epi64(s1, _mm512_load_si512(data + i + 64));
    s2 = _mm512_add_epi64(s2, _mm512_load_si512(data + i + 128));
    s3 = _mm512_add_epi64(s3, _mm512_load_si512(data + i + 192));
  }
  alignas(64) std::uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
  std::uint64_t sum = 0;
  for (std::uint64_t v : lanes) sum += v;
  return sum;
}

void BM_ReadBandwidth(benchmark::State& state) {
  if (!have_avx512()) {
    state.SkipWithError("CPU lacks avx512");
    return;
  }
  bl::detail::AlignedBytes bytes(kStreamBytes);
  std::memset(bytes.data(), 1, kStreamBytes);
  for (auto _ : state) benchmark::DoNotOptimize(read_all(bytes.data(), kStreamBytes));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kStreamBytes));
}
BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond);

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

}  // namespace

BENCHMARK_MAIN();
