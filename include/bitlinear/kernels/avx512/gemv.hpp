// bitlinear internal: the avx512 GEMV, 2-bit/1-bit and compact.
#pragma once
#include "../../detail/internal_only.hpp"

// avx512 GEMV (a few tokens, memory bound): the canonical packed rows as they are, one
// 64-byte load per block and row, shift/mask to u8 fields, vpdpbusd against the int8 activations.
//
// Shape of the work: R <= 4 output rows times T <= 4 tokens. Per 64-byte block, each of the R rows is loaded
// once and split into its fields (4 ternary, 8 binary); each field's 64 activations of each token are loaded once
// and shared by the R rows. R*T zmm accumulators hold raw = sum f*q (see codes.hpp for the epilogue). At batch 1
// the fields are only masked, not shifted (field_in_place), with one accumulator per row and field (ternary
// 4 rows x 4, binary 2 rows x 8): 2 vector ops per 64 weights instead of 3.
// Memory order: the R rows of one call are not neighbours but row i of R streams (row_streams.hpp): the call's
// rows cut into R contiguous parts. The family keeps its weights in the canonical layout (table.hpp), where a
// stream is one linear run of memory, so a layer is read as R linear passes side by side, each row after row.
// Several streams keep more cache misses in flight than one: measured on the 0.2 machine (docs/avx512.md),
// 6912x2560 ternary went from 1.12-1.18x a plain read of the same bytes (one stream: rows interleaved in groups
// of 4) to 1.04-1.05x. Rows are written 16 at a time per stream, so one vectorized epilogue writes 16 outputs
// per token (masked at the end of a stream). Any layout (interleaved groups, any row range) gives the same
// results; only the canonical one streams.
// Prefetch: every 64-byte load also prefetches the line stream_prefetch().bytes further on in its stream; never
// past the end of the weight buffer. The distance and the cache level depend on the CPU (stream_prefetch below):
// with 4 streams, T0 (into L1) 2 KiB ahead measured 1.04x a plain read on the 0.2 machine (Intel) against 1.08x
// with T1, and no gain from 4 KiB (docs/avx512.md); on Zen 4, T0 2 KiB ahead kept the GEMV at 0.62-0.74x of a
// plain read, and T1 (into L2) 16 KiB ahead reaches 0.85-0.92x (docs/results/2026-12-03-zen4-streaming.md).
#include "../interface.hpp"
#include "../row_streams.hpp"
#include "codes.hpp"
#include "target.hpp"

#if BITLINEAR_ARCH_X86_64

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx512 {

inline constexpr std::size_t kGemvMaxRows = 4;
inline constexpr std::size_t kGemvMaxTokens = 4;

// How far ahead, and into which cache, each stream prefetches (see above).
struct StreamPrefetch {
  std::size_t bytes;  // distance ahead of the load, in bytes
  bool to_l2;         // T1 (into L2) instead of T0 (into L1)
};

// AMD family 19h with AVX-512 is Zen 4 (Zen 3, the same family, has no AVX-512 and never runs this family), whose
// 512-bit units take two cycles per vector: a far prefetch into L2 keeps enough misses in flight while the dot
// products run, where T0 prefetches hold the few L1 miss buffers the demand loads need. Every other CPU keeps the
// setting measured on Intel (Zen 5 kept it too: its GEMV ran at the speed of a plain read with it).
inline StreamPrefetch choose_stream_prefetch(const X86CpuModel& cpu) noexcept {
  if (cpu.amd && cpu.family == 0x19) return {16384, true};
  return {2048, false};
}

inline const StreamPrefetch& stream_prefetch() noexcept {
  static const StreamPrefetch prefetch = choose_stream_prefetch(read_x86_cpu_model());
  return prefetch;
}

// Prefetches the line at p into the cache the stream's setting names.
BITLINEAR_AVX512_INLINE void prefetch_line(const std::uint8_t* p, bool to_l2) {
  if (to_l2) {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
  } else {
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
  }
}

// One field of one block: acc[r][t] += field(w[r]) . q[t], for every row r and token t. At batch 1 (InPlace),
// each field keeps its scale 2^(bits*Field) and has its own accumulator (see field_in_place in codes.hpp).
template <class Codes, int R, int T, int A, bool InPlace, int Field>
BITLINEAR_AVX512_INLINE void gemv_field(const __m512i (&w)[R], const std::int8_t* q_block, std::size_t q_stride,
                                        __m512i (&acc)[R][T * A]) {
  __m512i q[T];
  BITLINEAR_UNROLL
  for (int t = 0; t < T; ++t) q[t] = _mm512_loadu_si512(q_block + static_cast<std::size_t>(t) * q_stride + 64 * Field);
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m512i f = InPlace ? field_in_place<Codes, Field>(w[r]) : Codes::template field<Field>(w[r]);
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) acc[r][t * A + Field % A] = dpbusd(acc[r][t * A + Field % A], f, q[t]);
  }
  if constexpr (Field + 1 < Codes::fields) {
    gemv_field<Codes, R, T, A, InPlace, Field + 1>(w, q_block, q_stride, acc);
  }
}

// Sum of the accumulators of one (row, token): undoes the in-place field scales.
template <class Codes, int A, bool InPlace>
BITLINEAR_AVX512_INLINE __m512i combine_accumulators(const __m512i* acc) {
  __m512i sum = acc[0];
  BITLINEAR_UNROLL
  for (int i = 1; i < A; ++i) {
    sum = _mm512_add_epi32(sum, InPlace ? _mm512_maskz_srai_epi32(0xFFFF, acc[i], Codes::field_bits * i) : acc[i]);
  }
  return sum;
}

// R rows, each its own pointer: block b of row r at rows[r] + b * block_step[r]. The rows of one call come
// from R different streams (row_streams.hpp: 16-row chunks here), so the pointers are far apart.
struct RowSet {
  const std::uint8_t* rows[kGemvMaxRows];
  std::size_t block_step[kGemvMaxRows];
  std::size_t blocks;
  std::size_t prefetch_offset;  // 0: no prefetch
  bool prefetch_to_l2;          // StreamPrefetch::to_l2
};

// The row set of row i of `chunk` (i < chunk.count[0]); returns how many streams have that row. Prefetch only
// inside the buffer: if the farthest byte any row would prefetch does not exist, the set prefetches nothing.
inline std::size_t stream_row_set(const PackedWeightsView& w, const StreamChunk<kGemvMaxRows>& chunk,
                                  std::size_t streams, std::size_t i, const StreamPrefetch& prefetch,
                                  RowSet& set) noexcept {
  const std::size_t prefetch_offset = prefetch.bytes;
  set.blocks = w.row_bytes / 64;
  set.prefetch_offset = prefetch_offset;
  set.prefetch_to_l2 = prefetch.to_l2;
  const std::size_t active = streams_holding_row(chunk, streams, i);
  for (std::size_t s = 0; s < active; ++s) {
    const std::size_t row = chunk.first[s] + i;
    // (the canonical layout spelled out: w.row and w.block_step divide by group_rows, four times per set)
    set.rows[s] = w.group_rows == 1 ? w.data + row * w.row_bytes : w.row(row);
    set.block_step[s] = w.group_rows == 1 ? 64 : w.block_step(row);
    const std::uint8_t* last_block = set.rows[s] + (set.blocks - 1) * set.block_step[s];
    if (static_cast<std::size_t>(w.end() - last_block) < 64 + prefetch_offset) set.prefetch_offset = 0;
  }
  return active;
}

// Raw sums of one chunk: [stream][token][row of the chunk].
using StreamSums = std::int32_t[kGemvMaxRows][kGemvMaxTokens][16];
// Batch 1 keeps each row's 16 lanes until its chunk is done: [stream][row of the chunk], then one transposing
// add tree (reduce_rows16) turns a stream's 16 row vectors into the vector of its 16 raw sums.
struct StreamRowVectors {
  __m512i rows[kGemvMaxRows][16];
};

// lane i = the sum of the 16 int32 lanes of v[i]. Every step adds two lanes of the same row (unpacks within
// 128-bit lanes, then 128-bit lane shuffles), so each result is the int32 sum of one row's lanes, as
// reduce_add_epi32 computes it (int32 addition wraps modulo 2^32 and is associative, so the order does not
// matter, and the row sums themselves are in range: codes.hpp). 45 vector operations for 16 rows instead of
// 16 horizontal sums of 9 each.
BITLINEAR_AVX512_INLINE __m512i reduce_rows16(const __m512i (&v)[16]) {
  __m512i pairs[8];  // per 128-bit lane: [row 2i, row 2i+1, row 2i, row 2i+1]
  BITLINEAR_UNROLL
  for (int i = 0; i < 8; ++i) {
    pairs[i] = _mm512_add_epi32(_mm512_maskz_unpacklo_epi32(0xFFFF, v[2 * i], v[2 * i + 1]),
                                _mm512_maskz_unpackhi_epi32(0xFFFF, v[2 * i], v[2 * i + 1]));
  }
  __m512i quads[4];  // per 128-bit lane: rows 4i .. 4i+3
  BITLINEAR_UNROLL
  for (int i = 0; i < 4; ++i) {
    quads[i] = _mm512_add_epi32(_mm512_maskz_unpacklo_epi64(0xFF, pairs[2 * i], pairs[2 * i + 1]),
                                _mm512_maskz_unpackhi_epi64(0xFF, pairs[2 * i], pairs[2 * i + 1]));
  }
  __m512i halves[2];  // 128-bit lanes: rows 8i..8i+3 twice, then rows 8i+4..8i+7 twice
  BITLINEAR_UNROLL
  for (int i = 0; i < 2; ++i) {
    halves[i] = _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, quads[2 * i], quads[2 * i + 1], 0x88),
                                 _mm512_maskz_shuffle_i32x4(0xFFFF, quads[2 * i], quads[2 * i + 1], 0xDD));
  }
  return _mm512_add_epi32(_mm512_maskz_shuffle_i32x4(0xFFFF, halves[0], halves[1], 0x88),
                          _mm512_maskz_shuffle_i32x4(0xFFFF, halves[0], halves[1], 0xDD));
}

// Zeroes the accumulators of a row set and points block[r] at the first block of its row r.
template <int R, int K>
BITLINEAR_AVX512_INLINE void gemv_start(const RowSet& set, __m512i (&acc)[R][K], const std::uint8_t* (&block)[R]) {
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int k = 0; k < K; ++k) acc[r][k] = _mm512_setzero_si512();
  }
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) block[r] = set.rows[r];
}

// raw[r][t][i] = the sum of the A accumulators of row r and token t (combine_accumulators), lanes added up.
template <class Codes, int T, int A, bool InPlace, int R>
BITLINEAR_AVX512_INLINE void gemv_finish(const __m512i (&acc)[R][T * A], StreamSums& raw, std::size_t i) {
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) {
      raw[r][t][i] = reduce_add_epi32(combine_accumulators<Codes, A, InPlace>(&acc[r][t * A]));
    }
  }
}
// Batch 1: row r's combined accumulators, lanes not yet added (gemv_streams reduces 16 rows at once).
template <class Codes, int T, int A, bool InPlace, int R>
BITLINEAR_AVX512_INLINE void gemv_finish(const __m512i (&acc)[R][T * A], StreamRowVectors& raw, std::size_t i) {
  static_assert(T == 1, "row vectors hold one token");
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) _mm512_store_si512(&raw.rows[r][i], combine_accumulators<Codes, A, InPlace>(acc[r]));
}

// raw[r][t][i] = sum over the row of field * q for the R rows of `set`, tokens [0, T) starting at `q`.
// ToL2: set.prefetch_to_l2 as a constant. A set that prefetches nothing (prefetch_offset 0) prefetches the line
// it has just loaded instead, which does nothing, so that the loop has no branch and keeps fewer live registers.
template <class Codes, int R, int T, bool ToL2, class Sums>
BITLINEAR_AVX512_TARGET inline void gemv_rows(const RowSet& set, const std::int8_t* q, std::size_t q_stride,
                                              Sums& raw, std::size_t i) {
  constexpr bool in_place = T == 1;
  constexpr int A = in_place ? Codes::fields : 1;
  __m512i acc[R][T * A];
  const std::uint8_t* block[R];
  gemv_start(set, acc, block);
  const std::size_t prefetch_offset = set.prefetch_offset;
  for (std::size_t b = 0; b < set.blocks; ++b) {
    __m512i w[R];
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) w[r] = _mm512_loadu_si512(block[r]);
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) prefetch_line(block[r] + prefetch_offset, ToL2);
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) block[r] += set.block_step[r];
    gemv_field<Codes, R, T, A, in_place, 0>(w, q + Codes::block_weights * b, q_stride, acc);
  }
  gemv_finish<Codes, T, A, in_place>(acc, raw, i);
}

template <class Codes, int T, bool ToL2, class Sums>
BITLINEAR_AVX512_TARGET inline void gemv_row_set_to(std::size_t rows, const RowSet& set, const std::int8_t* q,
                                                    std::size_t q_stride, Sums& raw, std::size_t i) {
  constexpr std::size_t max_rows = T == 1 ? Codes::single_token_rows : kGemvMaxRows;
  if constexpr (max_rows == 4) {
    switch (rows) {
      case 1: gemv_rows<Codes, 1, T, ToL2>(set, q, q_stride, raw, i); break;
      case 2: gemv_rows<Codes, 2, T, ToL2>(set, q, q_stride, raw, i); break;
      case 3: gemv_rows<Codes, 3, T, ToL2>(set, q, q_stride, raw, i); break;
      default: gemv_rows<Codes, 4, T, ToL2>(set, q, q_stride, raw, i); break;
    }
  } else {
    static_assert(max_rows == 2, "GEMV row sets hold 2 or 4 rows");
    if (rows == 1) {
      gemv_rows<Codes, 1, T, ToL2>(set, q, q_stride, raw, i);
    } else {
      gemv_rows<Codes, 2, T, ToL2>(set, q, q_stride, raw, i);
    }
  }
}

template <class Codes, int T, class Sums>
BITLINEAR_AVX512_TARGET inline void gemv_row_set(std::size_t rows, const RowSet& set, const std::int8_t* q,
                                                 std::size_t q_stride, Sums& raw, std::size_t i) {
  if (set.prefetch_to_l2) {
    gemv_row_set_to<Codes, T, true>(rows, set, q, q_stride, raw, i);
  } else {
    gemv_row_set_to<Codes, T, false>(rows, set, q, q_stride, raw, i);
  }
}

// Outputs [row_begin, row_end) of tokens [t0, t0 + T). The range is cut into `streams` streams of whole 16-row
// chunks; row_set(active, set, raw, i) takes row i of chunk c of the first `active` streams (the kernel of a
// format: 2-bit here, compact in gemv.hpp), so every stream is read row after row, one linear pass over
// its part of the weights, and the passes run side by side. Codes: the epilogue.
template <class Codes, int T, class RowSetKernel>
BITLINEAR_AVX512_TARGET inline void gemv_streams(std::size_t streams, const PackedWeightsView& w,
                                                 const ActivationsView& a, std::size_t t0, std::size_t row_begin,
                                                 std::size_t row_end, const Epilogue& e, float* y,
                                                 std::size_t y_stride, const RowSetKernel& row_set) {
  const std::size_t rows = row_end - row_begin;
  const std::size_t part = stream_part_rows(rows, streams, 16);
  const StreamPrefetch& prefetch = stream_prefetch();
  for (std::size_t c = 0; c < part; c += 16) {
    const auto chunk = stream_chunk<kGemvMaxRows>(row_begin, rows, part, streams, 16, c);
    if constexpr (T == 1) {
      StreamRowVectors raw;  // (rows a stream does not hold are zeroed below, before the tree reads them)
      for (std::size_t i = 0; i < chunk.count[0]; ++i) {
        RowSet set{};  // (rows past `active` stay unused; zeroed so that no compiler sees them uninitialized)
        const std::size_t active = stream_row_set(w, chunk, streams, i, prefetch, set);
        row_set(active, set, raw, i);
      }
      for (std::size_t s = 0; s < streams && chunk.count[s] != 0; ++s) {
        for (std::size_t i = chunk.count[s]; i < 16; ++i) raw.rows[s][i] = _mm512_setzero_si512();
        store_outputs<Codes>(reduce_rows16(raw.rows[s]), chunk.count[s], a.scale[t0], a.sum[t0], e, chunk.first[s],
                             y + t0 * y_stride);
      }
    } else {
      alignas(64) StreamSums raw = {};
      for (std::size_t i = 0; i < chunk.count[0]; ++i) {
        RowSet set{};  // (as above)
        const std::size_t active = stream_row_set(w, chunk, streams, i, prefetch, set);
        row_set(active, set, raw, i);
      }
      for (std::size_t s = 0; s < streams && chunk.count[s] != 0; ++s) {
        BITLINEAR_UNROLL
        for (int t = 0; t < T; ++t) {
          const std::size_t token = t0 + static_cast<std::size_t>(t);
          store_outputs<Codes>(_mm512_load_si512(raw[s][t]), chunk.count[s], a.scale[token], a.sum[token], e,
                               chunk.first[s], y + token * y_stride);
        }
      }
    }
  }
}

// Outputs [row_begin, row_end) of tokens [t0, t0 + T), in as many streams as one call holds rows.
template <class Codes, int T>
BITLINEAR_AVX512_TARGET inline void gemv_tokens(const PackedWeightsView& w, const ActivationsView& a, std::size_t t0,
                                                std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                float* y, std::size_t y_stride) {
  constexpr std::size_t streams = T == 1 ? Codes::single_token_rows : kGemvMaxRows;
  const std::int8_t* q = a.q + t0 * a.stride;
  const std::size_t q_stride = a.stride;
  gemv_streams<Codes, T>(streams, w, a, t0, row_begin, row_end, e, y, y_stride,
                         [q, q_stride](std::size_t active, const RowSet& set, auto& raw, std::size_t i) {
                           gemv_row_set<Codes, T>(active, set, q, q_stride, raw, i);
                         });
}

// Every token of `a`, up to kGemvMaxTokens at a time (each group of tokens reads the weights once).
template <class Codes>
BITLINEAR_AVX512_TARGET inline void gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                                         std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride) {
  for (std::size_t t0 = 0; t0 < a.batch; t0 += kGemvMaxTokens) {
    switch (a.batch - t0) {
      case 1: gemv_tokens<Codes, 1>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 2: gemv_tokens<Codes, 2>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 3: gemv_tokens<Codes, 3>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      default: gemv_tokens<Codes, 4>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
    }
  }
}

// --------------------------------------------------------------------------------------------------------------
// Avx512 GEMV for compact ternary weights (a few tokens, memory bound). The structure of
// gemv.hpp: R <= 4 rows side by side, row i of kCompactStreams streams (canonical layout: each stream one linear
// pass over memory, prefetched as gemv.hpp does), T <= 4 tokens, one 64-byte load per block and row, decoded by
// codes.hpp into five u8 field vectors, each dotted (vpdpbusd) with its 64 activations. At batch 1 each
// row keeps kCompactSingleTokenAccumulators accumulators (fields rotate over them) so that consecutive vpdpbusd do
// not wait on each other. Epilogue: codes.hpp (TernaryCodes), raw - sum q.
// Activation rows are padded to activation_stride(in) (a multiple of 512), which can be shorter than the compact
// row (a multiple of 320): the last block therefore runs only its fields that start below in_features (fields past
// it are all padding, code 0, and contribute nothing), so no activation byte past the padded row is read.

inline constexpr std::size_t kCompactStreams = 4;
// 2, not 3: with 3 (12 accumulators for 4 rows) GCC 12 shuffled accumulators through extra zmm moves in the inner
// loop; hot 2560x2560 measured 58.3-58.8 µs with 2 against 60.2-61.2 with 3 (1: 62 µs, 4: 63-64 µs), streaming alike.
inline constexpr int kCompactSingleTokenAccumulators = 2;

// One block of R rows (row r's at block[r]), its first NF fields, T tokens.
template <int R, int T, int A, int NF>
BITLINEAR_AVX512VBMI_INLINE void compact_block(const std::uint8_t* const (&block)[R], const std::int8_t* q,
                                               std::size_t q_stride, const CompactTables& tables,
                                               __m512i (&acc)[R][T * A]) {
  __m512i qv[NF][T];
  BITLINEAR_UNROLL
  for (int i = 0; i < NF; ++i) {
    BITLINEAR_UNROLL
    for (int t = 0; t < T; ++t) qv[i][t] = _mm512_loadu_si512(q + static_cast<std::size_t>(t) * q_stride + 64 * i);
  }
  BITLINEAR_UNROLL
  for (int r = 0; r < R; ++r) {
    __m512i f[5];
    decode_compact_block(_mm512_loadu_si512(block[r]), tables, f);
    BITLINEAR_UNROLL
    for (int i = 0; i < NF; ++i) {
      BITLINEAR_UNROLL
      for (int t = 0; t < T; ++t) acc[r][t * A + i % A] = dpbusd(acc[r][t * A + i % A], f[i], qv[i][t]);
    }
  }
}

// raw[r][t][i] = sum f * q over the row for the R rows of `set` (set.blocks blocks, the last with tail_fields
// fields) and tokens [0, T) from q.
template <int R, int T, class Sums>
BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv_rows(const RowSet& set, int tail_fields, const std::int8_t* q,
                                                          std::size_t q_stride, Sums& raw, std::size_t i) {
  constexpr int A = T == 1 ? kCompactSingleTokenAccumulators : 1;
  const CompactTables tables = load_compact_tables();
  __m512i acc[R][T * A];
  const std::uint8_t* block[R];
  gemv_start(set, acc, block);
  const std::size_t full_blocks = set.blocks - 1;
  for (std::size_t b = 0; b < full_blocks; ++b) {
    if (set.prefetch_offset != 0) {
      BITLINEAR_UNROLL
      for (int r = 0; r < R; ++r) {
        prefetch_line(block[r] + set.prefetch_offset, set.prefetch_to_l2);
      }
    }
    compact_block<R, T, A, 5>(block, q + 320 * b, q_stride, tables, acc);
    BITLINEAR_UNROLL
    for (int r = 0; r < R; ++r) block[r] += set.block_step[r];
  }
  const std::int8_t* q_tail = q + 320 * full_blocks;
  switch (tail_fields) {
    case 1: compact_block<R, T, A, 1>(block, q_tail, q_stride, tables, acc); break;
    case 2: compact_block<R, T, A, 2>(block, q_tail, q_stride, tables, acc); break;
    case 3: compact_block<R, T, A, 3>(block, q_tail, q_stride, tables, acc); break;
    case 4: compact_block<R, T, A, 4>(block, q_tail, q_stride, tables, acc); break;
    default: compact_block<R, T, A, 5>(block, q_tail, q_stride, tables, acc); break;
  }
  gemv_finish<TernaryCodes, T, A, false>(acc, raw, i);
}

template <int T, class Sums>
BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv_row_set(std::size_t rows, const RowSet& set, int tail_fields,
                                                             const std::int8_t* q, std::size_t q_stride, Sums& raw,
                                                             std::size_t i) {
  switch (rows) {
    case 1: compact_gemv_rows<1, T>(set, tail_fields, q, q_stride, raw, i); break;
    case 2: compact_gemv_rows<2, T>(set, tail_fields, q, q_stride, raw, i); break;
    case 3: compact_gemv_rows<3, T>(set, tail_fields, q, q_stride, raw, i); break;
    default: compact_gemv_rows<4, T>(set, tail_fields, q, q_stride, raw, i); break;
  }
}

// Outputs [row_begin, row_end) of tokens [t0, t0 + T), in kCompactStreams streams (gemv.hpp).
template <int T>
BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv_tokens(const PackedWeightsView& w, const ActivationsView& a,
                                                            std::size_t t0, std::size_t row_begin,
                                                            std::size_t row_end, const Epilogue& e, float* y,
                                                            std::size_t y_stride) {
  const std::int8_t* q = a.q + t0 * a.stride;
  const std::size_t blocks = w.row_bytes / 64;
  // Fields of the last block that start below in_features (1..5).
  const int tail_fields = static_cast<int>((w.in_features - 320 * (blocks - 1) + 63) / 64);
  const std::size_t q_stride = a.stride;
  gemv_streams<TernaryCodes, T>(
      kCompactStreams, w, a, t0, row_begin, row_end, e, y, y_stride,
      [q, q_stride, tail_fields](std::size_t active, const RowSet& set, auto& raw, std::size_t i) {
        compact_gemv_row_set<T>(active, set, tail_fields, q, q_stride, raw, i);
      });
}

BITLINEAR_AVX512VBMI_TARGET inline void compact_gemv(const PackedWeightsView& w, const ActivationsView& a,
                                                     std::size_t row_begin, std::size_t row_end, const Epilogue& e,
                                                     float* y, std::size_t y_stride) {
  for (std::size_t t0 = 0; t0 < a.batch; t0 += kGemvMaxTokens) {
    switch (a.batch - t0) {
      case 1: compact_gemv_tokens<1>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 2: compact_gemv_tokens<2>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      case 3: compact_gemv_tokens<3>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
      default: compact_gemv_tokens<4>(w, a, t0, row_begin, row_end, e, y, y_stride); break;
    }
  }
}

}  // namespace detail::avx512
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_X86_64
