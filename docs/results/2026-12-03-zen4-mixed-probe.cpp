// Experiment beside docs/results/2026-12-03-zen4-dot-bound.md (not built by CMake): how many other 512-bit
// operations a Zen 4 core issues beside its zmm vpdpbusd before the dot products slow down.
//
//   g++ -std=c++17 -O2 docs/results/2026-12-03-zen4-mixed-probe.cpp -o mixed_probe && ./mixed_probe
//
// 8 independent accumulators, each fed by its own weight register; per round and chain, K operations of one kind
// on the weight register (a dependent chain of K, like a field extraction; "load" overwrites it from an L1-resident
// line, as a GEMV loads its weights), then one vpdpbusd that reads it. The
// result is dot products per second: equal to the dots-only rate where the other operations issue for free.
// asm keeps the compiler from moving or merging the operations; the fastest of 7 loops is reported.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

#define PROBE_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi"), noinline))
#define OTHER_OP(w)                                                              \
  if (Kind == 0) __asm__("vpandd %1, %0, %0" : "+v"(w) : "v"(mask));            \
  if (Kind == 1) __asm__("vpsrlw $1, %0, %0" : "+v"(w));                         \
  if (Kind == 2) __asm__("vpshufb %0, %1, %0" : "+v"(w) : "v"(table));          \
  if (Kind == 3) __asm__("vpermb %1, %0, %0" : "+v"(w) : "v"(table));            \
  if (Kind == 4) __asm__("vpaddb %1, %0, %0" : "+v"(w) : "m"(*reinterpret_cast<const __m512i*>(line))); \
  if (Kind == 5) __asm__ volatile("vmovdqu64 %1, %0" : "=v"(w) : "m"(*reinterpret_cast<const __m512i*>(line)));
#define CHAIN_STEP(acc, w)                                                       \
  if (K >= 1) { OTHER_OP(w) }                                                    \
  if (K >= 2) { OTHER_OP(w) }                                                    \
  if (K >= 3) { OTHER_OP(w) }                                                    \
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(act), "v"(w));

template <int K, int Kind>
PROBE_TARGET double dots_per_second(std::uint64_t rounds) {
  __m512i c0 = _mm512_set1_epi32(0), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2), c3 = _mm512_set1_epi32(3);
  __m512i c4 = _mm512_set1_epi32(4), c5 = _mm512_set1_epi32(5), c6 = _mm512_set1_epi32(6), c7 = _mm512_set1_epi32(7);
  __m512i w0 = _mm512_set1_epi8(1), w1 = _mm512_set1_epi8(2), w2 = _mm512_set1_epi8(3), w3 = _mm512_set1_epi8(4);
  __m512i w4 = _mm512_set1_epi8(5), w5 = _mm512_set1_epi8(6), w6 = _mm512_set1_epi8(7), w7 = _mm512_set1_epi8(8);
  alignas(64) static const std::uint8_t line[64] = {1, 2, 3};  // an L1-resident cache line
  __m512i act = _mm512_set1_epi8(3), mask = _mm512_set1_epi8(0x33), table = _mm512_set1_epi8(7);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t r = 0; r < rounds; ++r) {
    __asm__ volatile("" : "+v"(act));
    CHAIN_STEP(c0, w0) CHAIN_STEP(c1, w1) CHAIN_STEP(c2, w2) CHAIN_STEP(c3, w3)
    CHAIN_STEP(c4, w4) CHAIN_STEP(c5, w5) CHAIN_STEP(c6, w6) CHAIN_STEP(c7, w7)
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Fold every register into the result so that none of the work is dead.
  __m512i all = _mm512_xor_si512(_mm512_xor_si512(_mm512_xor_si512(c0, c1), _mm512_xor_si512(c2, c3)),
                                 _mm512_xor_si512(_mm512_xor_si512(c4, c5), _mm512_xor_si512(c6, c7)));
  all = _mm512_xor_si512(all, _mm512_xor_si512(_mm512_xor_si512(w0, w1), _mm512_xor_si512(w2, w3)));
  all = _mm512_xor_si512(all, _mm512_xor_si512(_mm512_xor_si512(w4, w5), _mm512_xor_si512(w6, w7)));
  alignas(64) int lanes[16];
  _mm512_store_si512(lanes, all);
  if (lanes[0] == 12345) std::printf(" ");
  return static_cast<double>(rounds) * 8.0 / s;
}

template <int K, int Kind>
double fastest() {
  double best = 0.0;
  for (int i = 0; i < 7; ++i) best = std::max(best, dots_per_second<K, Kind>(std::uint64_t{1} << 20));
  return best * 1e-9;
}

template <int Kind>
void row(const char* name) {
  std::printf("%-9s K=1: %.2f  K=2: %.2f  K=3: %.2f G dots/s\n", name, fastest<1, Kind>(), fastest<2, Kind>(),
              fastest<3, Kind>());
}

int main() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512vbmi")) {
    std::printf("needs AVX-512 VNNI and VBMI\n");
    return 0;
  }
  std::printf("dots only: %.2f G dots/s\n", fastest<0, 0>());
  row<0>("vpandd");
  row<1>("vpsrlw");
  row<2>("vpshufb");
  row<3>("vpermb");
  row<4>("vpaddb m");  // a load folded into an operation
  row<5>("load");      // a plain zmm load (volatile: each one issues)
}
