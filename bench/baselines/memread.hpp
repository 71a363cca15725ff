// bench: plain memory-read bandwidth, the roofline every GEMV figure is compared with. Reads a buffer once per
// call with the widest loads the CPU has (four independent accumulators), the way a memory-bound GEMV streams
// its weights; the sum is returned so the loads cannot be removed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu.hpp"

namespace bench::memread {

#if BENCH_X86
__attribute__((target("avx512f"))) inline std::uint64_t read_avx512(const std::uint8_t* p, std::size_t bytes) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 256 <= bytes; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
  }
  alignas(64) std::uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
  std::uint64_t sum = 0;
  for (std::uint64_t v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx2"))) inline std::uint64_t read_avx2(const std::uint8_t* p, std::size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 128 <= bytes; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  return static_cast<std::uint64_t>(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) +
                                    _mm256_extract_epi64(s, 2) + _mm256_extract_epi64(s, 3));
}
#endif

// Sums the 64-bit words of a 64-byte aligned buffer whose size is a multiple of 256 bytes.
inline std::uint64_t read(const std::uint8_t* p, std::size_t bytes) {
#if BENCH_X86
  if (cpu_has_avx512()) return read_avx512(p, bytes);
  if (cpu_has_avx2_f16c()) return read_avx2(p, bytes);
#endif
  std::uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  const auto* w = reinterpret_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i + 4 <= bytes / 8; i += 4) {
    a0 += w[i];
    a1 += w[i + 1];
    a2 += w[i + 2];
    a3 += w[i + 3];
  }
  return a0 + a1 + a2 + a3;
}

}  // namespace bench::memread
