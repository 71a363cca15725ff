// bitlinear internal: how the x86 GEMVs (avx512/gemv.hpp, avx2/gemv.hpp) cut a call's output rows into streams.
// Rows [row_begin, row_end) become S contiguous parts ("streams") of whole chunks of C rows each (the last part
// shorter, or empty); a kernel pass takes row i of chunk c of every stream side by side. In the canonical layout a
// stream is one linear run of memory, so a layer is read as S linear passes at once, which keeps more cache misses
// in flight on one core than one pass (docs/avx512.md). Every stream but the last holds whole chunks, so the
// streams that still hold row i of a chunk are always the first ones (streams_holding_row).
#pragma once
#include "../detail/internal_only.hpp"

#include <cstddef>

#include "../config.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Rows per stream: ceil(rows / S) rounded up to whole chunks of C rows.
inline std::size_t stream_part_rows(std::size_t rows, std::size_t streams, std::size_t chunk_rows) noexcept {
  return (rows + streams * chunk_rows - 1) / (streams * chunk_rows) * chunk_rows;
}

// Chunk c of every stream (its rows start c rows into each part).
template <std::size_t MaxStreams>
struct StreamChunk {
  std::size_t first[MaxStreams];  // output row of the chunk's row 0, per stream
  std::size_t count[MaxStreams];  // rows in the chunk (0 to C), per stream
};

template <std::size_t MaxStreams>
inline StreamChunk<MaxStreams> stream_chunk(std::size_t row_begin, std::size_t rows, std::size_t part,
                                            std::size_t streams, std::size_t chunk_rows, std::size_t c) noexcept {
  StreamChunk<MaxStreams> chunk{};
  for (std::size_t s = 0; s < streams; ++s) {
    const std::size_t begin = s * part + c;  // relative to row_begin
    const std::size_t part_end = (s + 1) * part < rows ? (s + 1) * part : rows;
    const std::size_t end = begin + chunk_rows < part_end ? begin + chunk_rows : part_end;
    chunk.first[s] = row_begin + begin;
    chunk.count[s] = begin < end ? end - begin : 0;
  }
  return chunk;
}

// How many streams hold row i of the chunk (i < chunk.count[0]): they are the first ones.
template <std::size_t MaxStreams>
inline std::size_t streams_holding_row(const StreamChunk<MaxStreams>& chunk, std::size_t streams,
                                       std::size_t i) noexcept {
  std::size_t active = 0;
  while (active < streams && i < chunk.count[active]) ++active;
  return active;
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
