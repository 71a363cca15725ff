// bitlinear internal: the compact ternary format (format_compact.hpp) as the avx512 kernels see it: one 64-byte
// block becomes five vectors of u8 fields f in {0,1,2} (64 consecutive weights each) by six VBMI vpermb lookups:
//   c = byte & 63 (vpermb reads only the low 6 bits of each index byte, so no mask is needed)
//   f_3 = T3[c], f_4 = T4[c], w = T4s[c] | (byte >> 6), f_0 = W0[w], f_1 = W1[w], f_2 = W2[w]   (w <= 26)
// (byte >> 6 is a 16-bit shift: the bits shifted in from the neighbour byte are masked off by the ternary-logic
// OR, which computes (shifted & 3) | T4s[c] in one instruction.) 8 vector ops per 320 weights; the fields then
// go to vpdpbusd with the ternary epilogue of codes.hpp (dot = raw - sum q), exactly like the 2-bit format.
// Needs AVX-512 VBMI on top of the avx512 family (runtime check: cpu_has_avx512vbmi()).
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../format_compact.hpp"
#include "../interface.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

#define BITLINEAR_AVX512VBMI_TARGET BITLINEAR_TARGET("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,f16c")
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVX512VBMI_INLINE BITLINEAR_AVX512VBMI_TARGET __attribute__((always_inline)) inline
#else
#define BITLINEAR_AVX512VBMI_INLINE inline
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

// AVX-512 VBMI (cpuid leaf 7, ecx bit 1), on top of what the avx512 family already checked (OS zmm state).
// isa.hpp's cpuid reader: the same code path on GCC, Clang, MinGW and MSVC.
inline bool cpu_has_avx512vbmi() noexcept {
  const X86CpuidLeaves leaves = read_x86_cpuid();
  return leaves.max_leaf >= 7 && ((leaves.leaf7_ecx >> 1) & 1u) != 0;
}

struct CompactLookup {
  alignas(64) std::uint8_t t3[64];
  alignas(64) std::uint8_t t4[64];
  alignas(64) std::uint8_t t4s[64];
  alignas(64) std::uint8_t w0[64];
  alignas(64) std::uint8_t w1[64];
  alignas(64) std::uint8_t w2[64];
};

constexpr CompactLookup make_compact_lookup() {
  CompactLookup t{};
  for (unsigned c = 0; c < 63; ++c) {  // c = 63 is never valid (the layer validated every byte)
    t.t3[c] = static_cast<std::uint8_t>(c / 7 % 3);
    t.t4[c] = static_cast<std::uint8_t>(c / 7 / 3);
    t.t4s[c] = static_cast<std::uint8_t>(4 * (c % 7));
  }
  for (unsigned w = 0; w < 27; ++w) {
    t.w0[w] = static_cast<std::uint8_t>(w % 3);
    t.w1[w] = static_cast<std::uint8_t>(w / 3 % 3);
    t.w2[w] = static_cast<std::uint8_t>(w / 9);
  }
  return t;
}

inline constexpr CompactLookup compact_lookup = make_compact_lookup();

struct CompactTables {
  __m512i t3, t4, t4s, w0, w1, w2, three;
};

BITLINEAR_AVX512VBMI_INLINE CompactTables load_compact_tables() {
  return {_mm512_load_si512(compact_lookup.t3),  _mm512_load_si512(compact_lookup.t4),
          _mm512_load_si512(compact_lookup.t4s), _mm512_load_si512(compact_lookup.w0),
          _mm512_load_si512(compact_lookup.w1),  _mm512_load_si512(compact_lookup.w2),
          _mm512_set1_epi8(3)};
}

// vpermb: table[idx & 63] per byte (the zero-masking form with all lanes avoids GCC 12's bogus warning).
BITLINEAR_AVX512VBMI_INLINE __m512i lookup64(__m512i idx, __m512i table) {
  return _mm512_maskz_permutexvar_epi8(~__mmask64{0}, idx, table);
}

// The five field vectors of one block (f[i] lane j = field i of byte j = weight 64 i + j of the block).
BITLINEAR_AVX512VBMI_INLINE void decode_compact_block(__m512i block, const CompactTables& t, __m512i (&f)[5]) {
  const __m512i w = _mm512_ternarylogic_epi32(_mm512_srli_epi16(block, 6), t.three, lookup64(block, t.t4s), 0xEA);
  f[0] = lookup64(w, t.w0);
  f[1] = lookup64(w, t.w1);
  f[2] = lookup64(w, t.w2);
  f[3] = lookup64(block, t.t3);
  f[4] = lookup64(block, t.t4);
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
