// bench: plain memory-read bandwidth, the roofline every GEMV figure is compared with. Reads a buffer once per
// call with the widest loads the CPU has (four independent accumulators); the sum is returned so the loads
// cannot be removed. read() makes one linear pass; read_streams() cuts the buffer into S contiguous parts read
// side by side, as the x86 GEMVs read a layer (row_streams.hpp): more cache misses in flight on one core, which
// on a loaded machine reads DRAM 20-60 % faster than one pass.
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

// S streams of `part` bytes each (a multiple of 64), one 64-byte load per stream and step.
template <std::size_t S>
__attribute__((target("avx512f"))) std::uint64_t read_streams_avx512(const std::uint8_t* p, std::size_t part) {
  __m512i acc[S];
  for (std::size_t s = 0; s < S; ++s) acc[s] = _mm512_setzero_si512();
  for (std::size_t i = 0; i + 64 <= part; i += 64) {
    for (std::size_t s = 0; s < S; ++s) acc[s] = _mm512_add_epi64(acc[s], _mm512_load_si512(p + s * part + i));
  }
  alignas(64) std::uint64_t lanes[8];
  std::uint64_t sum = 0;
  for (std::size_t s = 0; s < S; ++s) {
    _mm512_store_si512(lanes, acc[s]);
    for (std::uint64_t v : lanes) sum += v;
  }
  return sum;
}

template <std::size_t S>
__attribute__((target("avx2"))) std::uint64_t read_streams_avx2(const std::uint8_t* p, std::size_t part) {
  __m256i acc[S];
  for (std::size_t s = 0; s < S; ++s) acc[s] = _mm256_setzero_si256();
  for (std::size_t i = 0; i + 64 <= part; i += 64) {
    for (std::size_t s = 0; s < S; ++s) {
      const auto* q = reinterpret_cast<const __m256i*>(p + s * part + i);
      acc[s] = _mm256_add_epi64(acc[s], _mm256_add_epi64(_mm256_load_si256(q), _mm256_load_si256(q + 1)));
    }
  }
  alignas(32) std::uint64_t lanes[4];
  std::uint64_t sum = 0;
  for (std::size_t s = 0; s < S; ++s) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[s]);
    for (std::uint64_t v : lanes) sum += v;
  }
  return sum;
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

// As read(), in `streams` (1, 2 or 4) contiguous parts read side by side; bytes is a multiple of 256 * streams.
inline std::uint64_t read_streams(const std::uint8_t* p, std::size_t bytes, std::size_t streams) {
  const std::size_t part = bytes / streams;
#if BENCH_X86
  if (streams == 2 || streams == 4) {
    if (cpu_has_avx512()) return streams == 2 ? read_streams_avx512<2>(p, part) : read_streams_avx512<4>(p, part);
    if (cpu_has_avx2_f16c()) return streams == 2 ? read_streams_avx2<2>(p, part) : read_streams_avx2<4>(p, part);
  }
#endif
  std::uint64_t sum = 0;  // one stream, or no SIMD: the parts one after another
  for (std::size_t s = 0; s < streams; ++s) sum += read(p + s * part, part);
  return sum;
}

}  // namespace bench::memread
