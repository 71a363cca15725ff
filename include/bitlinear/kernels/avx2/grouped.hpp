// bitlinear internal: the AVX2-class kernels of the grouped formats (2-bit with field 3 = +2, 1-bit), GEMV and
// GEMM, one template for the avx2 family (maddubs) and avxvnni (vpdpbusd: avxvnni/grouped.hpp).
#pragma once
#include "../../detail/internal_only.hpp"

// The pinned order of interface.hpp ("Grouped formats") on 8-lane ymm vectors: a 64-weight step is two halves,
// bytes 0..31 (lanes 0..7) and 32..63 (lanes 8..15); the dot product of a half (Dot::dot: maddubs + madd with ones,
// or vpdpbusd) sums weights 4l .. 4l+3 into int32 lane l of the half: exactly the pinned lanes. Per (row, token)
// two int32 accumulators `raw` (reset per segment) and two float accumulators `acc`.
//
// Epilogue, derived once: the unsigned operand u is the field shifted to u8 with code = u - 1:
//   2-bit:  u = field value f in {0, 1, 2, 3} (code -1, 0, +1, +2);   1-bit:  u = 2 * bit in {0, 2}
// so per lane and segment p = sum code * q = raw - sum(q), with sum(q) the same lane sums of the activations
// (Dot::dot of all-ones bytes with q), the same for every row: computed once per call and token group into a
// stack buffer (GroupedLaneSums; no heap). maddubs cannot saturate: |u q + u' q'| <= 2 * 3 * 128 = 768.
// Padding weights meet q = 0. Then per segment acc = fma((float)p, c, acc) (c = group scale, times the block scale
// as a rounded product), the tree l + l+8, + l+4, + l+2, + l+1 (operand order of grouped_lane_sum) and the scalar
// y = r / s_x + bias of grouped_output(). Float operations on vectors are the exact_*_ps of codes.hpp (inline asm:
// no -ffast-math rewrite), the fma the vfmadd231ps builtin (one rounding whatever the flags), the int32 -> float
// conversion cvtdq2ps (round to nearest even, the MXCSR mode pinned by fp_environment.hpp).
//
// GEMV (batch < Family::grouped_gemm_min_batch): one row at a time (16 ymm hold 2 tokens x 4 accumulators and the
// operands), up to 2 tokens per pass, each row one linear read, prefetched kGroupedPrefetchBytes ahead. GEMM: the
// same row kernel over kGroupedGemmRows rows at a time while every token pair passes over them (cache blocking).
// A row whose lane-sum table does not fit the stack buffer (more than kGroupedMaxFlushes segments, i.e. over 16384
// weights with segments of 32 or 64) runs the scalar reference.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../../activations.hpp"
#include "../../config.hpp"
#include "../../format.hpp"
#include "../grouped_plan.hpp"
#include "../interface.hpp"
#include "../ref/grouped.hpp"
#include "codes.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

// The u8 operand of field F of a 32-byte half block (see above).
struct GroupedTernaryFields {
  using Format = Ternary;
  static constexpr int fields = 4;
  template <int F>
  BITLINEAR_AVX2_INLINE static __m256i field(__m256i half) {
    return _mm256_and_si256(_mm256_srli_epi16(half, 2 * F), _mm256_set1_epi8(3));
  }
};
struct GroupedBinaryFields {
  using Format = Binary;
  static constexpr int fields = 8;
  template <int F>
  BITLINEAR_AVX2_INLINE static __m256i field(__m256i half) {
    const __m256i two = _mm256_set1_epi8(2);
    if constexpr (F == 0) return _mm256_and_si256(_mm256_add_epi8(half, half), two);
    return _mm256_and_si256(_mm256_srli_epi16(half, F - 1), two);
  }
};

// acc + the 4-byte dot products u8 x s8 per int32 lane, AVX2 form (avxvnni: avxvnni/grouped.hpp).
struct MaddubsDot {
  BITLINEAR_AVX2_INLINE static __m256i dot(__m256i acc, __m256i u, __m256i q) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1)));
  }
};

inline constexpr std::size_t kGroupedTokens = 2;
inline constexpr std::size_t kGroupedMaxFlushes = 256;  // lane sums per token in the stack buffer
inline constexpr std::size_t kGroupedGemmRows = 16;
inline constexpr std::size_t kGroupedPrefetchBytes = 1024;

// The lane sums of one segment (lanes 0..7, 8..15) per token: [token][flush].
struct GroupedLaneSums {
  alignas(32) std::int32_t lanes[kGroupedTokens][kGroupedMaxFlushes][16];
};


// sums.lanes[t][n] for tokens [t0, t0 + T) of `a`.
template <class Dot, int Seg, int T>
BITLINEAR_AVX2_TARGET inline void grouped_lane_sums(const ActivationsView& a, std::size_t t0, std::size_t steps,
                                                    GroupedLaneSums& sums) {
  const __m256i ones = _mm256_set1_epi8(1);
  for (int t = 0; t < T; ++t) {
    const std::int8_t* q = a.q + (t0 + static_cast<std::size_t>(t)) * a.stride;
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    for (std::size_t s = 0; s < steps; ++s) {
      lo = Dot::dot(lo, ones, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * s)));
      hi = Dot::dot(hi, ones, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64 * s + 32)));
      if (grouped_flush_after<Seg>(s, steps)) {
        std::int32_t* out = sums.lanes[t][grouped_flush_index<Seg>(s)];
        _mm256_store_si256(reinterpret_cast<__m256i*>(out), lo);
        _mm256_store_si256(reinterpret_cast<__m256i*>(out + 8), hi);
        lo = _mm256_setzero_si256();
        hi = _mm256_setzero_si256();
      }
    }
  }
}

BITLINEAR_AVX2_INLINE __m256 grouped_scale(const float* gs, const float* bs, const GroupedPlan& plan,
                                           std::size_t n) {
  const __m256 c = _mm256_set1_ps(gs[n >> plan.group_shift]);
  return bs == nullptr ? c : exact_mul_ps(c, _mm256_set1_ps(bs[n >> plan.block_shift]));
}

// The pinned tree over lanes 0..7 (lo) and 8..15 (hi).
BITLINEAR_AVX2_INLINE float grouped_tree(__m256 lo, __m256 hi) {
  __m256 v = exact_add_ps(lo, hi);                              // l < 8: [l] + [l + 8]
  v = exact_add_ps(v, _mm256_permute2f128_ps(v, v, 0x01));      // l < 4: + [l + 4]
  v = exact_add_ps(v, _mm256_permute_ps(v, 0x4E));              // l < 2: + [l + 2]
  v = exact_add_ps(v, _mm256_permute_ps(v, 0xB1));              // l = 0: + [1]
  return _mm256_cvtss_f32(v);
}

// y of row j (block 0 at `row`) and tokens [t0, t0 + T), with the lane sums of those tokens.
template <class Fields, class Dot, int Seg, int T>
BITLINEAR_AVX2_TARGET inline void grouped_row(const std::uint8_t* row, std::size_t prefetch_offset, std::size_t j,
                                              const GroupedPlan& plan, const std::int32_t* sums,
                                              const ActivationsView& a, std::size_t t0, const Epilogue& e, float* y,
                                              std::size_t y_stride) {
  constexpr int fields = Fields::fields;
  __m256i raw_lo[T], raw_hi[T];
  __m256 acc_lo[T], acc_hi[T];
  const float* bs[T];
  const std::int8_t* q[T];
  BITLINEAR_AVX2_UNROLL
  for (int t = 0; t < T; ++t) {
    raw_lo[t] = raw_hi[t] = _mm256_setzero_si256();
    acc_lo[t] = acc_hi[t] = _mm256_setzero_ps();
    const std::size_t token = t0 + static_cast<std::size_t>(t);
    bs[t] = a.block_size == 0 ? nullptr : a.block_scale + token * a.block_stride;
    q[t] = a.q + token * a.stride;
  }
  const float* gs = e.group_scale + j * e.groups_per_row;
  const std::size_t steps = plan.steps;
  const std::size_t full_blocks = steps / fields;
  const std::size_t blocks = (steps + fields - 1) / fields;
  const std::size_t in = a.in_features;
  const std::uint8_t* block = row;
  for (std::size_t b = 0; b < blocks; ++b, block += 64) {
    const std::size_t live = b < full_blocks ? fields : steps - full_blocks * fields;
    const __m256i w_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block));
    const __m256i w_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32));
    if (prefetch_offset != 0) _mm_prefetch(reinterpret_cast<const char*>(block + prefetch_offset), _MM_HINT_T0);
    BITLINEAR_AVX2_UNROLL
    for (int f = 0; f < fields; ++f) {
      if (static_cast<std::size_t>(f) >= live) break;
      const std::size_t s = b * fields + static_cast<std::size_t>(f);
      __m256i u_lo, u_hi;
      switch (f) {  // a constant after unrolling
        case 0: u_lo = Fields::template field<0>(w_lo); u_hi = Fields::template field<0>(w_hi); break;
        case 1: u_lo = Fields::template field<1 % fields>(w_lo); u_hi = Fields::template field<1 % fields>(w_hi); break;
        case 2: u_lo = Fields::template field<2 % fields>(w_lo); u_hi = Fields::template field<2 % fields>(w_hi); break;
        case 3: u_lo = Fields::template field<3 % fields>(w_lo); u_hi = Fields::template field<3 % fields>(w_hi); break;
        case 4: u_lo = Fields::template field<4 % fields>(w_lo); u_hi = Fields::template field<4 % fields>(w_hi); break;
        case 5: u_lo = Fields::template field<5 % fields>(w_lo); u_hi = Fields::template field<5 % fields>(w_hi); break;
        case 6: u_lo = Fields::template field<6 % fields>(w_lo); u_hi = Fields::template field<6 % fields>(w_hi); break;
        default: u_lo = Fields::template field<7 % fields>(w_lo); u_hi = Fields::template field<7 % fields>(w_hi); break;
      }
      BITLINEAR_AVX2_UNROLL
      for (int t = 0; t < T; ++t) {
        raw_lo[t] = Dot::dot(raw_lo[t], u_lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[t] + 64 * s)));
        raw_hi[t] = Dot::dot(raw_hi[t], u_hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[t] + 64 * s + 32)));
      }
      if (grouped_flush_after<Seg>(s, steps)) {
        const std::size_t n = grouped_flush_index<Seg>(s);
        BITLINEAR_AVX2_UNROLL
        for (int t = 0; t < T; ++t) {
          __m256 c_lo, c_hi;
          if constexpr (Seg == kGroupedHalfStep) {
            // The high half of a step past in_features holds padding only: its lanes are 0, any scale will do.
            c_lo = grouped_scale(gs, bs[t], plan, 2 * s);
            c_hi = 64 * s + 32 < in ? grouped_scale(gs, bs[t], plan, 2 * s + 1) : c_lo;
          } else {
            c_lo = c_hi = grouped_scale(gs, bs[t], plan, n);
          }
          const std::int32_t* sum = sums + (static_cast<std::size_t>(t) * kGroupedMaxFlushes + n) * 16;
          const __m256i p_lo = _mm256_sub_epi32(raw_lo[t], _mm256_load_si256(reinterpret_cast<const __m256i*>(sum)));
          const __m256i p_hi = _mm256_sub_epi32(raw_hi[t], _mm256_load_si256(reinterpret_cast<const __m256i*>(sum + 8)));
          acc_lo[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p_lo), c_lo, acc_lo[t]);
          acc_hi[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p_hi), c_hi, acc_hi[t]);
          raw_lo[t] = raw_hi[t] = _mm256_setzero_si256();
        }
      }
    }
  }
  BITLINEAR_AVX2_UNROLL
  for (int t = 0; t < T; ++t) {
    const std::size_t token = t0 + static_cast<std::size_t>(t);
    y[token * y_stride + j] = grouped_output(grouped_tree(acc_lo[t], acc_hi[t]), a.scale[token], e, j);
  }
}

// Rows [row_begin, row_end) of tokens [t0, t0 + T), row after row (the GEMV's single linear read, prefetched
// while the prefetched line is still inside the weights).
template <class Fields, class Dot, int Seg, int T>
BITLINEAR_AVX2_TARGET inline void grouped_rows(const PackedWeightsView& w, const ActivationsView& a, std::size_t t0,
                                               std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                               float* y, std::size_t y_stride, const GroupedPlan& plan,
                                               const std::int32_t* sums, std::size_t prefetch) {
  const std::size_t used_bytes = (plan.steps + Fields::fields - 1) / Fields::fields * 64;
  for (std::size_t j = row_begin; j < row_end; ++j) {
    const std::uint8_t* row = w.row(j);
    const bool inside = static_cast<std::size_t>(w.end() - row) >= used_bytes + prefetch;
    grouped_row<Fields, Dot, Seg, T>(row, inside ? prefetch : 0, j, plan, sums, a, t0, e, y, y_stride);
  }
}

template <class Fields, class Dot, int Seg, int T>
BITLINEAR_AVX2_TARGET inline void grouped_token_group(const PackedWeightsView& w, const ActivationsView& a,
                                                      std::size_t t0, std::size_t row_begin, std::size_t row_end,
                                                      const Epilogue& e, float* y, std::size_t y_stride,
                                                      const GroupedPlan& plan, std::size_t prefetch) {
  GroupedLaneSums sums;  // only the entries of the first T tokens and the row's segments are written and read
  grouped_lane_sums<Dot, Seg, T>(a, t0, plan.steps, sums);
  // Through a volatile pointer: GCC cannot follow which entries were written and would warn (maybe-uninitialized);
  // portable, unlike an asm barrier (the no-GNU-paths build compiles without GNU extensions).
  const std::int32_t* volatile lanes_through = &sums.lanes[0][0][0];
  const std::int32_t* lanes = lanes_through;
  grouped_rows<Fields, Dot, Seg, T>(w, a, t0, row_begin, row_end, e, y, y_stride, plan, lanes, prefetch);
}

template <class Fields, class Dot, int Seg>
BITLINEAR_AVX2_TARGET inline void grouped_matmul_segments(const PackedWeightsView& w, const ActivationsView& a,
                                                          std::size_t row_begin, std::size_t row_end,
                                                          const Epilogue& e, float* y, std::size_t y_stride,
                                                          const GroupedPlan& plan, std::size_t gemm_min_batch) {
  if (a.batch >= gemm_min_batch) {  // GEMM: a few rows at a time stay in cache while every token passes
    for (std::size_t j0 = row_begin; j0 < row_end; j0 += kGroupedGemmRows) {
      const std::size_t j1 = row_end - j0 < kGroupedGemmRows ? row_end : j0 + kGroupedGemmRows;
      for (std::size_t t0 = 0; t0 < a.batch; t0 += kGroupedTokens) {
        if (a.batch - t0 == 1) {
          grouped_token_group<Fields, Dot, Seg, 1>(w, a, t0, j0, j1, e, y, y_stride, plan, 0);
        } else {
          grouped_token_group<Fields, Dot, Seg, 2>(w, a, t0, j0, j1, e, y, y_stride, plan, 0);
        }
      }
    }
    return;
  }
  for (std::size_t t0 = 0; t0 < a.batch; t0 += kGroupedTokens) {
    if (a.batch - t0 == 1) {
      grouped_token_group<Fields, Dot, Seg, 1>(w, a, t0, row_begin, row_end, e, y, y_stride, plan,
                                               kGroupedPrefetchBytes);
    } else {
      grouped_token_group<Fields, Dot, Seg, 2>(w, a, t0, row_begin, row_end, e, y, y_stride, plan,
                                               kGroupedPrefetchBytes);
    }
  }
}

// The grid slot of a family (table.hpp): the segment mode picks the kernel; a shape grouped_plan() does not
// cover, or a lane-sum table larger than the stack buffer, goes to the scalar reference.
template <class Fields, class Dot, std::size_t GemmMinBatch>
inline void grouped_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                           std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  if (row_begin >= row_end || a.batch == 0) return;
  const GroupedPlan plan = grouped_plan(w, a, e);
  const int mode = plan.supported ? plan.segment : -2;
  switch (mode) {
    case kGroupedWholeRow:
      grouped_matmul_segments<Fields, Dot, kGroupedWholeRow>(w, a, row_begin, row_end, e, y, y_stride, plan, GemmMinBatch);
      return;
    case kGroupedHalfStep:
      if (grouped_flushes<kGroupedHalfStep>(plan.steps) > kGroupedMaxFlushes) break;
      grouped_matmul_segments<Fields, Dot, kGroupedHalfStep>(w, a, row_begin, row_end, e, y, y_stride, plan, GemmMinBatch);
      return;
    case 1:
      if (grouped_flushes<1>(plan.steps) > kGroupedMaxFlushes) break;
      grouped_matmul_segments<Fields, Dot, 1>(w, a, row_begin, row_end, e, y, y_stride, plan, GemmMinBatch);
      return;
    case 2:
      if (grouped_flushes<2>(plan.steps) > kGroupedMaxFlushes) break;
      grouped_matmul_segments<Fields, Dot, 2>(w, a, row_begin, row_end, e, y, y_stride, plan, GemmMinBatch);
      return;
    case 4:
      if (grouped_flushes<4>(plan.steps) > kGroupedMaxFlushes) break;
      grouped_matmul_segments<Fields, Dot, 4>(w, a, row_begin, row_end, e, y, y_stride, plan, GemmMinBatch);
      return;
    default: break;
  }
  ref::grouped_matmul<typename Fields::Format>(w, a, row_begin, row_end, e, y, y_stride);
}

inline constexpr std::size_t grouped_gemm_min_batch = 8;

inline void ternary_grouped_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                   std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  grouped_matmul<GroupedTernaryFields, MaddubsDot, grouped_gemm_min_batch>(w, a, row_begin, row_end, e, y, y_stride);
}
inline void binary_grouped_matmul(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                  std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  grouped_matmul<GroupedBinaryFields, MaddubsDot, grouped_gemm_min_batch>(w, a, row_begin, row_end, e, y, y_stride);
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
