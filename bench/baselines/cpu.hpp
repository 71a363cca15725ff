// bench: what the CPU offers the baselines (x86 feature bits beyond those bitlinear itself detects).
#pragma once

#include <bitlinear/bitlinear.hpp>

#if BITLINEAR_ARCH_X86_64 && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define BENCH_X86 1
#else
#define BENCH_X86 0
#endif

namespace bench {

// AVX-512 F/BW/VL with OS support (what the FP16 and BF16 tiles use), as bitlinear detects it.
inline bool cpu_has_avx512() { return bitlinear::cpu_features().avx512; }
// AVX2 + FMA + F16C with OS support.
inline bool cpu_has_avx2_f16c() { return bitlinear::cpu_features().avx2; }

// AVX512_BF16 (vdpbf16ps, vcvtne2ps2bf16): CPUID leaf 7 subleaf 1, EAX bit 5; needs the AVX-512 state too.
inline bool cpu_has_avx512_bf16() {
#if BENCH_X86
  if (!cpu_has_avx512()) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d) == 0 || a < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  if (a < 1) return false;
  __cpuid_count(7, 1, a, b, c, d);
  return ((a >> 5) & 1u) != 0;
#else
  return false;
#endif
}

#if BENCH_X86
// Sum of the 16 lanes. (GCC 12's _mm512_reduce_add_ps and _mm512_cvtph_ps expand to _mm512_undefined_ps, whose
// self-initialization trips -Werror=uninitialized after inlining; the baselines avoid those intrinsics.)
__attribute__((target("avx512f"))) inline float hsum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float s[8];
  for (int i = 0; i < 8; ++i) s[i] = lanes[i] + lanes[i + 8];
  for (int i = 0; i < 4; ++i) s[i] += s[i + 4];
  return (s[0] + s[2]) + (s[1] + s[3]);
}
#endif

}  // namespace bench
