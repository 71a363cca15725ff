// bitlinear internal: the weight formats as the avx512 kernels see them (2-bit, 1-bit, 1.6-bit compact).
#pragma once
#include "../../detail/internal_only.hpp"

// the two weight formats as the avx512 kernels see them: how a 64-byte packed block
// becomes u8 codes for vpdpbusd, and the epilogue that turns the raw vpdpbusd sum into y.
//
// Epilogue, derived once for both kernels (GEMV and GEMM):
//   vpdpbusd multiplies unsigned bytes by signed bytes, so the unsigned operand is the stored field f and the
//   signed one the activation q, and the kernels accumulate raw = sum_k f[k] * q[k] exactly in int32.
//   Ternary: f = code + 1 in {0,1,2}, so dot = sum_k q[k] * (f[k] - 1) = raw - sum_k q[k] = raw - a.sum[t].
//   Binary:  f = bit in {0,1}, code = 2f - 1, so dot = sum_k q[k] * (2 f[k] - 1) = 2 raw - a.sum[t].
//   Padding: past in_features q[k] = 0 (activation rows are zero-padded), so whatever field the padding holds
//   adds nothing to raw, and a.sum[t] (the quantizer's sum over the padded row) is the sum over k < in_features.
//   Range: |raw| <= 2 * 128 * 2^20 = 2^28 and |2 raw| <= 2^28, so neither int32 sum nor the correction can wrap.
//   Then, one IEEE float32 operation at a time in the order of kernels/interface.hpp:
//   Ternary: y = (float)dot / s_x / s_w + bias           (two divisions, then the add: nothing to fuse)
//   Binary:  y = ((float)dot / s_x * beta) + bias
//   Every operation carries embedded rounding {rn-sae} (target.hpp): round to nearest even whatever MXCSR's
//   rounding mode, never contracted into an fma, never rewritten by -ffast-math. A NaN scale (non-finite input
//   row) makes y NaN.
#include "../compact_lookup.hpp"
#include "../interface.hpp"
#include "target.hpp"
#include "../../format_compact.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

// Ternary block: byte j holds in bits 2i..2i+1 the field of weight 64i + j. Field i of all 64 bytes, shifted
// down and masked, is 64 consecutive fields lined up with 64 consecutive activations.
struct TernaryCodes {
  static constexpr int fields = 4;                  // fields per byte
  static constexpr std::size_t block_weights = 256;  // weights per 64-byte block

  static constexpr int field_bits = 2;
  static constexpr std::size_t single_token_rows = 4;  // GEMV rows per group at batch 1: 4 rows x 4 field accumulators

  template <int Field>
  BITLINEAR_AVX512_TARGET static __m512i field(__m512i block) {
    // A 16-bit shift moves bits of the next byte into the top of each byte; the mask removes them.
    return _mm512_and_si512(_mm512_srli_epi16(block, 2 * Field), _mm512_set1_epi8(3));
  }
  BITLINEAR_AVX512_TARGET static __m512i dot_from_raw(__m512i raw, __m512i q_sum) {
    return _mm512_sub_epi32(raw, q_sum);
  }
  BITLINEAR_AVX512_TARGET static __m512 scale(__m512 dot, __m512 s_x, const Epilogue& e) {
    return div_rn(div_rn(dot, s_x), _mm512_set1_ps(e.s_w));
  }
};

// Binary block: byte j holds in bit i the bit of weight 64i + j (1 means +1, 0 means -1).
struct BinaryCodes {
  static constexpr int fields = 8;
  static constexpr std::size_t block_weights = 512;

  static constexpr int field_bits = 1;
  static constexpr std::size_t single_token_rows = 2;  // 2 rows x 8 fields accumulators

  template <int Field>
  BITLINEAR_AVX512_TARGET static __m512i field(__m512i block) {
    return _mm512_and_si512(_mm512_srli_epi16(block, Field), _mm512_set1_epi8(1));
  }
  BITLINEAR_AVX512_TARGET static __m512i dot_from_raw(__m512i raw, __m512i q_sum) {
    return _mm512_sub_epi32(_mm512_add_epi32(raw, raw), q_sum);
  }
  BITLINEAR_AVX512_TARGET static __m512 scale(__m512 dot, __m512 s_x, const Epilogue& e) {
    return mul_rn(div_rn(dot, s_x), _mm512_set1_ps(e.beta));  // a rounding builtin is never fused into the add
  }
};

// Field `Field` of every byte left in place: f * 2^(field_bits * Field), at most 2 * 64 = 128 (ternary) or
// 128 (binary), still a valid u8 operand. The GEMV at batch 1 accumulates each field in its own accumulator
// and shifts the scale out at the end, saving the per-field shift. Exact: a lane gains at most
// 4 * 128 * 128 = 2^16 per block, so after 2^20 / 256 blocks it is below 2^28, and every lane is an exact
// multiple of 2^(field_bits * Field), so the arithmetic right shift divides exactly.
template <class Codes, int Field>
BITLINEAR_AVX512_INLINE __m512i field_in_place(__m512i block) {
  constexpr int mask = ((1 << Codes::field_bits) - 1) << (Codes::field_bits * Field);
  return _mm512_and_si512(block, _mm512_set1_epi8(static_cast<char>(mask)));
}

// Writes y[j0 + i] for i < count (count <= 16) of one token from 16 raw sums: the epilogue above, with a
// masked bias load and a masked store, so nothing outside bias[0, out) and the caller's y row is touched.
template <class Codes>
BITLINEAR_AVX512_TARGET inline void store_outputs(__m512i raw, std::size_t count, float s_x, std::int32_t q_sum,
                                                  const Epilogue& e, std::size_t j0, float* y_row) {
  const __mmask16 lanes = first_lanes16(count);
  const __m512i dot = Codes::dot_from_raw(raw, _mm512_set1_epi32(q_sum));
  const __m512 scaled = Codes::scale(cvtepi32_ps_rn(dot), _mm512_set1_ps(s_x), e);
  const __m512 out = add_rn(scaled, _mm512_maskz_loadu_ps(lanes, e.bias + j0));
  _mm512_mask_storeu_ps(y_row + j0, lanes, out);
}

// --------------------------------------------------------------------------------------------------------------
// The compact ternary format (format_compact.hpp) as the avx512 kernels see it: one 64-byte
// block becomes five vectors of u8 fields f in {0,1,2} (64 consecutive weights each) by six VBMI vpermb lookups:
//   c = byte & 63 (vpermb reads only the low 6 bits of each index byte, so no mask is needed)
//   f_3 = T3[c], f_4 = T4[c], w = T4s[c] | (byte >> 6), f_0 = W0[w], f_1 = W1[w], f_2 = W2[w]   (w <= 26)
// (byte >> 6 is a 16-bit shift: the bits shifted in from the neighbour byte are masked off by the ternary-logic
// OR, which computes (shifted & 3) | T4s[c] in one instruction.) 8 vector ops per 320 weights; the fields then
// go to vpdpbusd with the ternary epilogue of codes.hpp (dot = raw - sum q), exactly like the 2-bit format.
// Needs AVX-512 VBMI on top of the avx512 family: only the avx512_vbmi row (CpuFeatures::avx512vbmi) binds it.

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
