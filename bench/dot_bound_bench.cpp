// How close the x86 GEMVs come to the dot-product limit of this core, measured in one run:
//   1. BM_Issue_<instruction>: how many of each instruction the GEMVs are built from this core issues per second
//      (12 independent chains, enough to cover each one's latency on current cores; counter "Ginstr/s").
//   2. BM_GemvHot_<family>_<format>_2560x2560: the GEMV on one cache-resident layer, with
//        bound_fraction = (the dot-product instructions it needs / this core's rate of them) / its time.
//      The avx512 families need out*in/64 zmm vpdpbusd (64 products each), avx2 needs out*in/32 ymm vpmaddubsw (32
//      products each; its vpmaddwd is not counted). main() measures both rates before the benchmarks run (the
//      fastest of 7 timed loops of about 20 ms), so a fraction of 1.0 means the GEMV issues nothing but dot products.
//
//   build/bench/dot_bound_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// x86-64 with GCC or Clang only (elsewhere it prints that and exits). The kernels are called through the kernel
// table (no layer), on random canonical codes (harness::random_packed_codes).
#include <benchmark/benchmark.h>
#include <bitlinear/bitlinear.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"

#if BITLINEAR_ARCH_X86_64 && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

namespace {

namespace bl = bitlinear;

constexpr int kChains = 12;
constexpr std::uint64_t kRoundsPerCall = 1024;  // each round issues kChains instructions (pairs for the masks)

#define BOUND_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define BOUND_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
#define BOUND_AVX2 __attribute__((target("avx2")))

// Each probe runs `rounds` rounds of kChains independent dependency chains and returns a value built from every
// chain, so that none can be dropped. opaque() on an operand each round keeps the compiler from hoisting or
// folding the repeated work; unlike benchmark::DoNotOptimize it has no memory clobber, which made GCC keep the
// chains in memory (a load and a store around every instruction). vpdpbusd is written as asm: GCC 12 copies the
// accumulator around every intrinsic vpdpbusd in a loop (the library's kernels use the same asm form,
// kernels/avx512/target.hpp), which would count a move with each dot product.
template <class T>
inline void opaque(T& register_value) {
  __asm__ volatile("" : "+v"(register_value));
}
inline void opaque(std::uint64_t& register_value) { __asm__ volatile("" : "+r"(register_value)); }

BOUND_AVX512 inline __m512i dpbusd_zmm(__m512i acc, __m512i u8, __m512i s8) {
  __asm__("vpdpbusd {%2, %1, %0|%0, %1, %2}" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}
BOUND_AVX512 inline __m256i dpbusd_ymm(__m256i acc, __m256i u8, __m256i s8) {
  __asm__("vpdpbusd {%2, %1, %0|%0, %1, %2}" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}
// One int32 of a vector (through memory: GCC 12 warns inside its own unmasked extract intrinsics).
BOUND_AVX512 inline std::int64_t first_lane(__m512i v) {
  alignas(64) std::int32_t lanes[16];
  _mm512_store_si512(lanes, v);
  return lanes[0] + lanes[15];
}
BOUND_AVX2 inline std::int64_t first_lane(__m256i v) {
  alignas(32) std::int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), v);
  return lanes[0] + lanes[7];
}
BOUND_AVX512 std::int64_t probe_vpdpbusd_zmm(std::uint64_t rounds) {
  __m512i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_epi32(c);
  __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (std::uint64_t r = 0; r < rounds; ++r) {
    opaque(b);
    for (int c = 0; c < kChains; ++c) acc[c] = dpbusd_zmm(acc[c], a, b);
  }
  __m512i sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_epi32(sum, acc[c]);
  return first_lane(sum);
}

BOUND_AVX512 std::int64_t probe_vpdpbusd_ymm(std::uint64_t rounds) {
  __m256i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_epi32(c);
  __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
  for (std::uint64_t r = 0; r < rounds; ++r) {
    opaque(b);
    for (int c = 0; c < kChains; ++c) acc[c] = dpbusd_ymm(acc[c], a, b);
  }
  __m256i sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_add_epi32(sum, acc[c]);
  return first_lane(sum);
}

// vpmaddubsw saturates, which does not matter here: only the issue rate is measured.
BOUND_AVX2 std::int64_t probe_vpmaddubsw_ymm(std::uint64_t rounds) {
  __m256i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_epi8(static_cast<char>(c));
  __m256i b = _mm256_set1_epi8(1);
  for (std::uint64_t r = 0; r < rounds; ++r) {
    opaque(b);
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_maddubs_epi16(acc[c], b);
  }
  __m256i sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_xor_si256(sum, acc[c]);
  return first_lane(sum);
}

BOUND_VBMI std::int64_t probe_vpermb_zmm(std::uint64_t rounds) {
  __m512i x[kChains];
  for (int c = 0; c < kChains; ++c) x[c] = _mm512_set1_epi8(static_cast<char>(c));
  __m512i table = _mm512_set1_epi8(5);
  for (std::uint64_t r = 0; r < rounds; ++r) {
    opaque(table);
    // vpermb (the zero-masking form with every lane: GCC 12 warns inside the unmasked intrinsic)
    for (int c = 0; c < kChains; ++c) x[c] = _mm512_maskz_permutexvar_epi8(~__mmask64{0}, x[c], table);
  }
  __m512i sum = x[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_xor_si512(sum, x[c]);
  return first_lane(sum);
}

BOUND_AVX512 std::int64_t probe_vpshufb_zmm(std::uint64_t rounds) {
  __m512i x[kChains];
  for (int c = 0; c < kChains; ++c) x[c] = _mm512_set1_epi8(static_cast<char>(c));
  __m512i table = _mm512_set1_epi8(5);
  for (std::uint64_t r = 0; r < rounds; ++r) {
    opaque(table);
    for (int c = 0; c < kChains; ++c) x[c] = _mm512_shuffle_epi8(table, x[c]);
  }
  __m512i sum = x[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_xor_si512(sum, x[c]);
  return first_lane(sum);
}

// Zero-masked byte moves (vmovdqu8 {z}): selecting bytes by a mask register, as a 1-bit kernel can.
BOUND_AVX512 std::int64_t probe_maskz_mov_zmm(std::uint64_t rounds) {
  __m512i x[kChains];
  for (int c = 0; c < kChains; ++c) x[c] = _mm512_set1_epi8(static_cast<char>(c + 1));
  std::uint64_t bits = 0xF0F0F0F0F0F0F0F0ull;
  for (std::uint64_t r = 0; r < rounds; ++r) {
    opaque(bits);
    const __mmask64 k = _cvtu64_mask64(bits);
    for (int c = 0; c < kChains; ++c) x[c] = _mm512_maskz_mov_epi8(k, x[c]);
  }
  __m512i sum = x[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_xor_si512(sum, x[c]);
  return first_lane(sum);
}

// Mask to bytes and back (vpmovm2b, vpmovb2m): one round trip per chain and round, counted as 2 instructions.
BOUND_AVX512 std::int64_t probe_mask_expand_zmm(std::uint64_t rounds) {
  __m512i x[kChains];
  for (int c = 0; c < kChains; ++c) x[c] = _mm512_set1_epi8(static_cast<char>(c % 2 == 0 ? -1 : 1));
  for (std::uint64_t r = 0; r < rounds; ++r) {
    opaque(x[0]);
    for (int c = 0; c < kChains; ++c) x[c] = _mm512_movm_epi8(_mm512_movepi8_mask(x[c]));
  }
  __m512i sum = x[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_xor_si512(sum, x[c]);
  return first_lane(sum);
}

using Probe = std::int64_t (*)(std::uint64_t);

bool avx512_ok() { return bl::detail::isa_runnable(bl::Isa::avx512); }
bool vbmi_ok() { return bl::detail::isa_runnable(bl::Isa::avx512_vbmi); }
bool avx2_ok() { return bl::detail::isa_runnable(bl::Isa::avx2); }

// Instructions per second of one probe: the fastest of 7 timed loops of about 20 ms each (noise on a shared core
// only ever slows a loop, and the bound is what the core can do).
double measured_rate(Probe probe, double instructions_per_round) {
  std::uint64_t rounds = 1 << 14;
  for (;;) {  // grow the loop until one run takes >= 20 ms
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(probe(rounds));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= 0.02 || rounds >= (std::uint64_t{1} << 40)) break;
    rounds *= 2;
  }
  std::vector<double> rates;
  for (int i = 0; i < 7; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(probe(rounds));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(rounds) * instructions_per_round / s);
  }
  return *std::max_element(rates.begin(), rates.end());
}

// Filled by main() before any benchmark runs: instructions per second.
double g_vpdpbusd_zmm_rate = 0.0;
double g_vpmaddubsw_ymm_rate = 0.0;

void run_issue(benchmark::State& state, bool ok, Probe probe, double instructions_per_round) {
  if (!ok) {
    state.SkipWithError("CPU lacks the instruction");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(probe(kRoundsPerCall));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  state.counters["Ginstr/s"] = static_cast<double>(state.iterations()) * static_cast<double>(kRoundsPerCall) *
                               instructions_per_round * 1e-9 / seconds;
}

void BM_Issue_vpdpbusd_zmm(benchmark::State& s) { run_issue(s, avx512_ok(), probe_vpdpbusd_zmm, kChains); }
void BM_Issue_vpdpbusd_ymm(benchmark::State& s) { run_issue(s, avx512_ok(), probe_vpdpbusd_ymm, kChains); }
void BM_Issue_vpmaddubsw_ymm(benchmark::State& s) { run_issue(s, avx2_ok(), probe_vpmaddubsw_ymm, kChains); }
void BM_Issue_vpermb_zmm(benchmark::State& s) { run_issue(s, vbmi_ok(), probe_vpermb_zmm, kChains); }
void BM_Issue_vpshufb_zmm(benchmark::State& s) { run_issue(s, avx512_ok(), probe_vpshufb_zmm, kChains); }
void BM_Issue_maskz_mov_zmm(benchmark::State& s) { run_issue(s, avx512_ok(), probe_maskz_mov_zmm, kChains); }
void BM_Issue_mask_expand_zmm(benchmark::State& s) { run_issue(s, avx512_ok(), probe_mask_expand_zmm, 2 * kChains); }
BENCHMARK(BM_Issue_vpdpbusd_zmm);
BENCHMARK(BM_Issue_vpdpbusd_ymm);
BENCHMARK(BM_Issue_vpmaddubsw_ymm);
BENCHMARK(BM_Issue_vpermb_zmm);
BENCHMARK(BM_Issue_vpshufb_zmm);
BENCHMARK(BM_Issue_maskz_mov_zmm);
BENCHMARK(BM_Issue_mask_expand_zmm);

template <class Format>
void run_gemv_hot(benchmark::State& state, bl::Isa isa) {
  constexpr std::size_t out = 2560, in = 2560;
  if (!bl::detail::isa_runnable(isa)) {
    state.SkipWithError("CPU lacks the family");
    return;
  }
  const std::vector<std::uint8_t> layer = bench::harness::random_packed_codes<Format>(out, in, 1);
  const std::vector<float> x = bench::harness::normal_floats(in, 7);
  bl::QuantizedActivations q;
  q.quantize(x.data(), 1, in, in, bl::ActivationScale::per_token, isa);
  std::vector<float> bias(out, 0.5f), y(out);
  const bl::detail::Epilogue e{0.75f, 1.0f / 0.75f, bias.data()};
  const auto& slot = bl::detail::kernel_table(isa)[bl::detail::weight_format_of<Format>];
  // Random canonical bytes read in the family's execution layout: still valid codes of the same format.
  const bl::detail::PackedWeightsView w{layer.data(), out, in, Format::packed_row_bytes(in), slot.group_rows};
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    slot.matmul(w, q.view(), 0, out, e, y.data(), out);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double calls = static_cast<double>(state.iterations());
  const bool avx2 = isa == bl::Isa::avx2;
  const double instructions = static_cast<double>(out * in) / (avx2 ? 32.0 : 64.0);
  const double rate = avx2 ? g_vpmaddubsw_ymm_rate : g_vpdpbusd_zmm_rate;
  // (calls x the bound's time per call) / the wall time of the calls.
  state.counters["bound_fraction"] = calls * instructions / rate / seconds;
  state.counters["Gw/s"] = calls * static_cast<double>(out * in) * 1e-9 / seconds;
  state.SetLabel(slot.native ? "native" : "shared fallback");
}

void BM_GemvHot_avx512_vbmi_Ternary_2560x2560(benchmark::State& s) { run_gemv_hot<bl::Ternary>(s, bl::Isa::avx512_vbmi); }
void BM_GemvHot_avx512_vbmi_Binary_2560x2560(benchmark::State& s) { run_gemv_hot<bl::Binary>(s, bl::Isa::avx512_vbmi); }
void BM_GemvHot_avx512_vbmi_Compact_2560x2560(benchmark::State& s) { run_gemv_hot<bl::TernaryCompact>(s, bl::Isa::avx512_vbmi); }
void BM_GemvHot_avx512_Ternary_2560x2560(benchmark::State& s) { run_gemv_hot<bl::Ternary>(s, bl::Isa::avx512); }
void BM_GemvHot_avx512_Binary_2560x2560(benchmark::State& s) { run_gemv_hot<bl::Binary>(s, bl::Isa::avx512); }
void BM_GemvHot_avx2_Ternary_2560x2560(benchmark::State& s) { run_gemv_hot<bl::Ternary>(s, bl::Isa::avx2); }
void BM_GemvHot_avx2_Binary_2560x2560(benchmark::State& s) { run_gemv_hot<bl::Binary>(s, bl::Isa::avx2); }
void BM_GemvHot_avx2_Compact_2560x2560(benchmark::State& s) { run_gemv_hot<bl::TernaryCompact>(s, bl::Isa::avx2); }
BENCHMARK(BM_GemvHot_avx512_vbmi_Ternary_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemvHot_avx512_vbmi_Binary_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemvHot_avx512_vbmi_Compact_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemvHot_avx512_Ternary_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemvHot_avx512_Binary_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemvHot_avx2_Ternary_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemvHot_avx2_Binary_2560x2560)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemvHot_avx2_Compact_2560x2560)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  if (avx512_ok()) g_vpdpbusd_zmm_rate = measured_rate(probe_vpdpbusd_zmm, kChains);
  if (avx2_ok()) g_vpmaddubsw_ymm_rate = measured_rate(probe_vpmaddubsw_ymm, kChains);
  std::printf("dot-product rates measured before the benchmarks: vpdpbusd zmm %.2f G/s, vpmaddubsw ymm %.2f G/s\n",
              g_vpdpbusd_zmm_rate * 1e-9, g_vpmaddubsw_ymm_rate * 1e-9);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#else
int main() {
  std::printf("dot_bound_bench measures x86 instructions with GCC / Clang intrinsics; not in this build\n");
  return 0;
}
#endif
