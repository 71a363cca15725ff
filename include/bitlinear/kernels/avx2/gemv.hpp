// bitlinear internal: the GEMV driver of the AVX2-class families (batches below the family's gemm_min_batch).
//
// Rows go in runs of up to R through the row kernel (gemv_rows.hpp), R = the family's gemv_shape().rows; a run
// never crosses the end of a row group of the layout (kernels.hpp), so any group size and any row range are
// read exactly. At batch 1 in the canonical layout (the families' own, since 0.2's second revision) a run is
// row i of R streams (row_streams.hpp): the range cut into R contiguous parts of whole 64-row chunks, so a run's rows sit
// part * row_bytes apart and the layer is read as R linear passes side by side (as the avx512 GEMV does, which
// keeps more misses in flight than one pass: docs/avx2.md). In an interleaved layout (groups of R rows block by
// block) a run is one group, one linear pass. With more tokens (up to 4 per pass), each row of the run goes
// through the kernel against up to T tokens at once, which takes the fields out once for all of them: the run's
// bytes come from memory once and from L1 after. 64 raw sums per token (or per stream) go through the vectorized
// epilogue (epilogue.hpp) at a time.
// Prefetch: each block load also prefetches prefetch_bytes further on in its stream (streams, or an interleaved
// layout), and at batch > 1 in the canonical layout the same block of the rows ~canonical_prefetch_bytes further
// on; only the first call on a run prefetches, and never past the end of the weight buffer.
#pragma once
#include "../../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>

#include "../../activations.hpp"
#include "../../config.hpp"
#include "../interface.hpp"
#include "../row_streams.hpp"
#include "epilogue.hpp"
#include "gemv_rows.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail::avx2 {

// Measured with bench/avx2_micro_bench.cpp (docs/avx2.md).
inline constexpr std::size_t prefetch_bytes = 4096;
inline constexpr std::size_t canonical_prefetch_bytes = 16384;

inline constexpr std::size_t gemv_chunk_rows = 64;
inline constexpr std::size_t gemv_pass_tokens = 4;

// Walks the rows of a range in runs (kernels.hpp), one group at a time, without a division per run.
class RunCursor {
 public:
  RunCursor(const PackedWeightsView& w, std::size_t row) noexcept : w_(w) {
    if (w.group_rows == 1) {
      group_begin_ = 0;
      group_end_ = w.out_features;
    } else {
      set_group(w.group_begin(row));
    }
  }
  // Rows from `row` (>= the row of the previous call) up to the end of its group, at most `limit`.
  std::size_t rows(std::size_t row, std::size_t limit) noexcept {
    if (row >= group_end_) set_group(row);  // runs never cross a group end, so `row` starts the next group
    return group_end_ - row < limit ? group_end_ - row : limit;
  }
  const std::uint8_t* first(std::size_t row) const noexcept {
    return w_.group_rows == 1 ? w_.data + row * w_.row_bytes
                              : w_.data + group_begin_ * w_.row_bytes + (row - group_begin_) * packed_block_bytes;
  }
  std::size_t row_step() const noexcept { return w_.row_step(); }
  std::size_t block_step() const noexcept {
    return w_.group_rows == 1 ? packed_block_bytes : (group_end_ - group_begin_) * packed_block_bytes;
  }

 private:
  void set_group(std::size_t begin) noexcept {
    group_begin_ = begin;
    group_end_ = w_.out_features - begin < w_.group_rows ? w_.out_features : begin + w_.group_rows;
  }
  const PackedWeightsView& w_;
  std::size_t group_begin_ = 0, group_end_ = 0;
};

// Batch 1, canonical layout: row i of R streams per kernel call (see the top of the file). raw holds a chunk of
// 64 sums per stream.
template <class Format, class Mac, int R, int Span>
BITLINEAR_TARGET("avx2,fma,f16c")
inline void gemv_streams(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                         std::size_t row_end, const Epilogue& e, float* y,
                         std::int32_t (&raw)[gemv_pass_tokens][gemv_chunk_rows]) noexcept {
  static_assert(R <= static_cast<int>(gemv_pass_tokens), "one raw chunk per stream");
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  const std::size_t rows = row_end - row_begin;
  const std::size_t part = stream_part_rows(rows, R, gemv_chunk_rows);
  for (std::size_t c = 0; c < part; c += gemv_chunk_rows) {
    const auto chunk = stream_chunk<R>(row_begin, rows, part, R, gemv_chunk_rows, c);
    for (std::size_t i = 0; i < chunk.count[0]; ++i) {
      const std::size_t streams = streams_holding_row(chunk, R, i);
      RowRun run{w.data + chunk.first[0] * w.row_bytes + i * w.row_bytes, part * w.row_bytes, packed_block_bytes,
                 blocks, prefetch_bytes};
      const std::uint8_t* last = run.rows + (streams - 1) * run.row_step + (blocks - 1) * run.block_step;
      if (static_cast<std::size_t>(w.end() - last) < packed_block_bytes + prefetch_bytes) run.prefetch_offset = 0;
      std::int32_t sums[R];
      dot_rows_upto<Format, Mac, R, Span>(streams, run, a.q, sums);
      for (std::size_t s = 0; s < streams; ++s) raw[s][i] = sums[s];
    }
    for (std::size_t s = 0; s < static_cast<std::size_t>(R) && chunk.count[s] != 0; ++s) {
      write_outputs<Format>(raw[s], chunk.count[s], a.sum[0], a.scale[0], e, chunk.first[s], y);
    }
  }
}

// R rows per run at batch 1; with more tokens, runs of one row against up to T tokens at a time (gemv_rows.hpp).
template <class Format, class Mac, int R, int Span, int T>
BITLINEAR_TARGET("avx2,fma,f16c")
inline void gemv(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin, std::size_t row_end,
                 const Epilogue& e, float* y, std::size_t y_stride) noexcept {
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  const std::size_t run_bytes = R * w.row_bytes;
  const std::size_t prefetch_offset = w.group_rows == 1
                                          ? (canonical_prefetch_bytes / run_bytes + 1) * run_bytes
                                          : prefetch_bytes;
  alignas(32) std::int32_t raw[gemv_pass_tokens][gemv_chunk_rows];
  if (a.batch == 1 && w.group_rows == 1 && R > 1) {
    gemv_streams<Format, Mac, R, Span>(w, a, row_begin, row_end, e, y, raw);
    return;
  }
  for (std::size_t t0 = 0; t0 < a.batch; t0 += gemv_pass_tokens) {
    const std::size_t tokens = a.batch - t0 < gemv_pass_tokens ? a.batch - t0 : gemv_pass_tokens;
    const std::int8_t* q = a.q + t0 * a.stride;
    RunCursor cursor(w, row_begin);
    for (std::size_t j0 = row_begin; j0 < row_end; j0 += gemv_chunk_rows) {
      const std::size_t count = row_end - j0 < gemv_chunk_rows ? row_end - j0 : gemv_chunk_rows;
      for (std::size_t r0 = 0; r0 < count;) {
        const std::size_t row = j0 + r0;
        const std::size_t rows = cursor.rows(row, count - r0 < static_cast<std::size_t>(R) ? count - r0 : R);
        RowRun run{cursor.first(row), cursor.row_step(), cursor.block_step(), blocks, prefetch_offset};
        // The farthest byte the run prefetches must lie inside the buffer.
        const std::uint8_t* last = run.rows + (rows - 1) * run.row_step + (blocks - 1) * run.block_step;
        if (static_cast<std::size_t>(w.end() - last) < packed_block_bytes + prefetch_offset) run.prefetch_offset = 0;
        if (tokens == 1) {
          dot_rows_upto<Format, Mac, R, Span>(rows, run, q, raw[0] + r0);
        } else {
          // Each row against up to T tokens at a time; the first call brings the run's bytes into L1.
          for (std::size_t r = 0; r < rows; ++r) {
            RowRun one = run;
            one.rows += r * run.row_step;
            for (std::size_t t = 0; t < tokens; t += static_cast<std::size_t>(T)) {
              dot_row_tokens<Format, Mac, Span, T>(tokens - t < static_cast<std::size_t>(T) ? tokens - t : T, one, q + t * a.stride, a.stride,
                                                   raw[t] + r0 + r, gemv_chunk_rows);
              one.prefetch_offset = 0;
            }
          }
        }
        r0 += rows;
      }
      for (std::size_t t = 0; t < tokens; ++t) {
        const std::size_t token = t0 + t;
        write_outputs<Format>(raw[t], count, a.sum[token], a.scale[token], e, j0, y + token * y_stride);
      }
    }
  }
}

}  // namespace detail::avx2
BITLINEAR_NAMESPACE_END
