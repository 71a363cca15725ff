// bitlinear: forward() on a ThreadPool for every layer kind (declared in layer_core.hpp), and RowChunks, the dynamic row split for
// engines that run forward_quantized() on threads of their own.
//
// Work split:
//   1. quantization: chunks of rows of x (per tensor: first every row's absmax in chunks, then the shared
//      scale on the calling thread, then the rows in chunks);
//   2. matmul, prefill (batch > decode_max_batch): a grid of tiles, each a block of tokens times a chunk of
//      output rows (a multiple of 64 rows, except the last), a function of the shape and batch only;
//   3. matmul, decode (batch <= decode_max_batch, memory bound): the output rows in the chunks of the decode
//      split (RowChunks with a DecodeSplit): large ones first, then smaller ones, several per thread, claimed one
//      at a time by whichever thread is free. Each chunk is a run of whole 64-row blocks (whole row groups of
//      every execution layout), so it is one linear stretch of the weights, and it holds at least
//      min_decode_chunk_bytes of them, so that the GEMV's own streams and the hardware prefetchers run at full
//      speed inside it. A thread on a slower (or shared) core simply claims fewer chunks: an equal split would
//      make the fast thread wait for it.
// Every output element is computed by exactly one task, and every kernel computes an output from its row and
// token alone (exact integer dot product, then the same float32 epilogue; tested bit for bit against the
// scalar reference for every split of the rows), so the result is identical whatever the number of threads
// and whichever thread runs a task, in whatever order. Small problems run on the calling thread: waking
// workers costs more.
#pragma once

#include "config.hpp"
#include "error.hpp"

// Without std::thread (config.hpp) there is no pool: layer_core.hpp still declares the overloads, nothing defines them.
#if BITLINEAR_HAS_THREADS

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "activations.hpp"
#include "config.hpp"
#include "layer.hpp"
#include "layer_core.hpp"
#include "quantize.hpp"
#include "thread_pool.hpp"

BITLINEAR_NAMESPACE_BEGIN

template <class Format>
class GroupedLinear;  // grouped_layer.hpp

namespace detail {

inline constexpr std::size_t output_chunk_multiple = 64;   // output rows per matmul chunk: a multiple of this
inline constexpr std::size_t max_output_chunks = 64;       // beyond this, chunks grow (fewer, larger tasks)
inline constexpr std::size_t min_tiles = 16;               // split tokens too when output chunks are fewer
inline constexpr std::size_t serial_matmul_work = 1u << 17;  // batch * out * in below this: one thread
inline constexpr std::size_t quantize_chunk_floats = 1u << 14;  // floats of x per quantization task
inline constexpr std::size_t decode_max_batch = 4;           // up to this batch, the decode split (3. above)
inline constexpr std::size_t min_decode_chunk_bytes = 256u << 10;  // weight bytes per decode chunk: at least
inline constexpr std::size_t decode_chunks_per_thread = 8;         // equal decode chunks per thread: at most

// The matmul tiling of a forward call: token_blocks x output_chunks tiles.
struct MatmulTiling {
  std::size_t tokens_per_block = 1;
  std::size_t token_blocks = 1;
  std::size_t outputs_per_chunk = 1;
  std::size_t output_chunks = 1;
  bool decode_split = false;  // output chunks: RowChunks(out_features, DecodeSplit{row_bytes, threads})
  std::size_t tiles() const noexcept { return token_blocks * output_chunks; }
};

inline constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept { return (a + b - 1) / b; }

}  // namespace detail

// A half-open range [begin, end) of output rows.
struct RowRange {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool empty() const noexcept { return begin >= end; }
  std::size_t size() const noexcept { return empty() ? 0 : end - begin; }
};

// forward()'s decode split of a layer with `row_bytes` weight bytes per output row (Format::packed_row_bytes,
// plus scale bytes for group-scaled layers) for `threads` threads that claim its chunks dynamically.
struct DecodeSplit {
  std::size_t row_bytes = 0;
  std::size_t threads = 1;
};

// Output rows [0, rows) cut into runs of whole blocks of `block_rows` rows (the last block may be short), handed
// out in order, one per next() call, from an atomic counter. Threads call next() until it returns an empty range
// and compute each chunk with forward_quantized(); a faster thread claims more chunks. Every chunk goes to exactly
// one thread, and the outputs are the same bits whoever computes a chunk, in whatever order. Two ways to cut:
//   - RowChunks(rows, chunks, block_rows): `chunks` runs as equal as whole blocks allow (the first ones one block
//     longer);
//   - RowChunks(rows, DecodeSplit{row_bytes, threads}) and RowChunks(layer, threads): forward()'s decode split,
//     64-row blocks, tapered: each of the first chunks takes 1/(2 * threads) of the blocks still unclaimed, until
//     what is left is about two minimum-size chunks per thread (min_decode_chunk_bytes of weights each), which are
//     cut equal. Large first chunks keep the number of chunk starts low (each costs a core about a microsecond of
//     stream ramp-up); small last chunks let the threads finish together even when one core is slower.
// Lock-free, allocation-free; not copyable (threads share one object). docs/threads.md.
class RowChunks {
 public:
  // At most one chunk per block (fewer if there are fewer blocks; none if rows is 0). Throws
  // std::invalid_argument if chunks or block_rows is 0.
  RowChunks(std::size_t rows, std::size_t chunks, std::size_t block_rows = detail::output_chunk_multiple)
      : rows_(rows), block_rows_(block_rows) {
    BITLINEAR_REQUIRE(chunks > 0 && block_rows > 0, "RowChunks of " + std::to_string(chunks) + " chunks of " +
                                                        std::to_string(block_rows) + "-row blocks; both must be >= 1");
    cut_equal(0, detail::ceil_div(rows, block_rows), chunks);
  }

  // forward()'s decode split (see above). One chunk for one thread or one block; at least `threads` chunks
  // otherwise (when there are that many blocks), even below the size floor: a small layer gets the equal split.
  RowChunks(std::size_t rows, const DecodeSplit& split) noexcept
      : rows_(rows), block_rows_(detail::output_chunk_multiple) {
    using detail::ceil_div;
    const std::size_t blocks = ceil_div(rows, block_rows_);
    const std::size_t threads = split.threads > 0 ? split.threads : 1;
    if (blocks <= 1 || threads == 1) {
      cut_equal(0, blocks, 1);
      return;
    }
    const std::size_t block_bytes = (split.row_bytes > 0 ? split.row_bytes : 1) * block_rows_;
    const std::size_t min_blocks = ceil_div(detail::min_decode_chunk_bytes, block_bytes);
    // Tapered part: chunk k takes ceil(left / (2 * threads)) blocks while more than 2 * threads minimum chunks
    // are left (so every tapered chunk is larger than the floor).
    std::size_t first_left = 0;  // first block not in a tapered chunk
    while (tapered_ < max_tapered_chunks && blocks - first_left > 2 * threads * min_blocks) {
      first_left += ceil_div(blocks - first_left, 2 * threads);
      tapered_end_[++tapered_] = first_left;
    }
    // Equal part: as many chunks as the floor allows, at least one per thread, at most
    // decode_chunks_per_thread per thread.
    const std::size_t left = blocks - first_left;
    std::size_t count = left / min_blocks;
    if (count > threads * detail::decode_chunks_per_thread) count = threads * detail::decode_chunks_per_thread;
    if (tapered_ == 0 && count < threads) count = threads;
    cut_equal(first_left, left, count > 0 ? count : 1);
  }

  // The decode split forward() uses for `layer` at batch <= 4 on a pool of `threads` threads.
  template <class Format>
  RowChunks(const BitLinear<Format>& layer, std::size_t threads)
      : RowChunks(layer.out_features(), DecodeSplit{Format::packed_row_bytes(layer.in_features()), threads}) {}

  // The same for a group-scaled layer (grouped_layer.hpp), its rows sized as codes plus float scales.
  template <class Format>
  RowChunks(const GroupedLinear<Format>& layer, std::size_t threads)
      : RowChunks(layer.out_features(),
                  DecodeSplit{Format::packed_row_bytes(layer.in_features()) + layer.groups() * sizeof(float),
                              threads}) {}

  RowChunks(const RowChunks&) = delete;
  RowChunks& operator=(const RowChunks&) = delete;

  // Claims the next unclaimed chunk; an empty range once every chunk has been claimed. Thread-safe.
  RowRange next() noexcept {
    // The load keeps the counter from growing without bound when threads keep asking after the end.
    if (next_.load(std::memory_order_relaxed) >= chunks()) return {rows_, rows_};
    return chunk(next_.fetch_add(1, std::memory_order_relaxed));
  }

  // Chunk i (empty for i >= chunks()), without claiming it. Chunks are in row order and adjacent.
  RowRange chunk(std::size_t i) const noexcept {
    if (i >= chunks()) return {rows_, rows_};
    if (i < tapered_) return {tapered_end_[i] * block_rows_, tapered_end_[i + 1] * block_rows_};
    const std::size_t e = i - tapered_;  // chunk e of the equal part
    const auto first_block = [this](std::size_t c) {
      return equal_first_block_ + c * blocks_per_chunk_ + (c < longer_chunks_ ? c : longer_chunks_);
    };
    const std::size_t begin = first_block(e) * block_rows_;
    const std::size_t end = e + 1 == equal_chunks_ ? rows_ : first_block(e + 1) * block_rows_;
    return {begin, end};
  }

  // Makes every chunk claimable again. Not while another thread may call next().
  void reset() noexcept { next_.store(0, std::memory_order_relaxed); }

  std::size_t rows() const noexcept { return rows_; }
  std::size_t chunks() const noexcept { return tapered_ + equal_chunks_; }

 private:
  // Tapered chunks at most; beyond this (many threads and a huge layer) the rest is cut equal.
  static constexpr std::size_t max_tapered_chunks = 64;

  // The equal part: `blocks` blocks from block `first_block` on, in `count` chunks (at most one per block).
  void cut_equal(std::size_t first_block, std::size_t blocks, std::size_t count) noexcept {
    equal_first_block_ = first_block;
    equal_chunks_ = count < blocks ? count : blocks;
    if (equal_chunks_ > 0) {
      blocks_per_chunk_ = blocks / equal_chunks_;
      longer_chunks_ = blocks % equal_chunks_;
    }
  }

  std::size_t rows_;
  std::size_t block_rows_;
  std::size_t tapered_ = 0;  // tapered chunks, before the equal ones
  std::size_t tapered_end_[max_tapered_chunks + 1] = {};  // tapered chunk i: blocks [end_[i], end_[i + 1])
  std::size_t equal_first_block_ = 0;
  std::size_t equal_chunks_ = 0;
  std::size_t blocks_per_chunk_ = 0;
  std::size_t longer_chunks_ = 0;  // the first this many equal chunks hold one block more
  std::atomic<std::size_t> next_{0};
};

// The number of chunks of forward()'s decode split (RowChunks(rows, DecodeSplit{row_bytes, threads}).chunks()).
inline std::size_t decode_chunk_count(std::size_t rows, std::size_t row_bytes, std::size_t threads) noexcept {
  return RowChunks(rows, DecodeSplit{row_bytes, threads}).chunks();
}

namespace detail {

// row_bytes: weight bytes per output row (only the decode split uses it).
inline MatmulTiling plan_matmul(std::size_t batch, std::size_t out_features, std::size_t in_features,
                                std::size_t row_bytes, std::size_t threads) noexcept {
  MatmulTiling t;
  // batch * out * in, in 64-bit arithmetic once both factors are known to be small (size_t may be 32 bits).
  const std::size_t weights = out_features * in_features;
  const bool small = batch < serial_matmul_work && weights < serial_matmul_work &&
                     static_cast<std::uint64_t>(batch) * weights < serial_matmul_work;
  if (small) {
    t.tokens_per_block = batch;
    t.outputs_per_chunk = out_features;
    return t;
  }
  const std::size_t blocks = ceil_div(out_features, output_chunk_multiple);
  if (batch <= decode_max_batch) {
    // Tiles are claimed from the pool's atomic counter in order: the RowChunks schedule, on the pool.
    t.tokens_per_block = batch;
    t.output_chunks = decode_chunk_count(out_features, row_bytes, threads);
    t.decode_split = true;
    return t;
  }
  t.outputs_per_chunk = output_chunk_multiple * ceil_div(blocks, max_output_chunks);
  t.output_chunks = ceil_div(out_features, t.outputs_per_chunk);
  const std::size_t wanted_token_blocks = t.output_chunks >= min_tiles ? 1 : ceil_div(min_tiles, t.output_chunks);
  t.tokens_per_block = ceil_div(batch, wanted_token_blocks < batch ? wanted_token_blocks : batch);
  t.token_blocks = ceil_div(batch, t.tokens_per_block);
  return t;
}

// Rows of activations [row_begin, row_end) as a view of their own.
// (Per-block views keep their block scales, shifted with the rows.)
inline ActivationsView activation_rows(const ActivationsView& a, std::size_t row_begin, std::size_t row_end) noexcept {
  return {a.q + row_begin * a.stride, a.scale + row_begin, a.sum + row_begin, row_end - row_begin, a.in_features,
          a.stride, a.block_scale != nullptr ? a.block_scale + row_begin * a.block_stride : nullptr, a.block_size,
          a.block_stride};
}
inline MutableActivationsView activation_rows(const MutableActivationsView& a, std::size_t row_begin,
                                              std::size_t row_end) noexcept {
  return {a.q + row_begin * a.stride, a.scale + row_begin, a.sum + row_begin, row_end - row_begin, a.in_features,
          a.stride, a.block_scale != nullptr ? a.block_scale + row_begin * a.block_stride : nullptr, a.block_size,
          a.block_stride};
}

// quantize_activations() with its rows spread over the pool; same results bit for bit. Arguments are checked
// by the caller (x non-null, x_stride >= in_features, out sized for batch x in_features).
inline void quantize_activations_parallel(const float* x, std::size_t batch, std::size_t x_stride,
                                          ActivationScale mode, const MutableActivationsView& out, Isa isa,
                                          ThreadPool& pool) {
  const std::size_t in_features = out.in_features;
  const std::size_t rows_per_task = quantize_chunk_floats / in_features > 0 ? quantize_chunk_floats / in_features : 1;
  const KernelTable& kernels = kernel_table(isa);
  // Every task pins its own thread's FP environment (workers keep the one they were created with).
  if (block_size_of(mode) != 0) {  // per_block, per_superblock
    pool.parallel_for(0, batch, rows_per_task, [&](std::size_t row_begin, std::size_t row_end) {
      const FpEnvironmentGuard fp_environment;
      for (std::size_t r = row_begin; r < row_end; ++r) quantize_blocked_row(kernels, x + r * x_stride, mode, out, r);
    });
    return;
  }
  if (mode == ActivationScale::per_token) {
    pool.parallel_for(0, batch, rows_per_task, [&](std::size_t row_begin, std::size_t row_end) {
      const FpEnvironmentGuard fp_environment;
      for (std::size_t r = row_begin; r < row_end; ++r) {
        const float* row = x + r * x_stride;
        quantize_activation_row(kernels, row, activation_scale_from_absmax(kernels.absmax(row, in_features)), out, r);
      }
    });
    return;
  }
  // Per tensor: the row maxima go to out.scale first (overwritten below). The batch maximum does not depend
  // on the order of the rows, and any non-finite row makes the scale NaN, as in quantize_activations().
  pool.parallel_for(0, batch, rows_per_task, [&](std::size_t row_begin, std::size_t row_end) {
    const FpEnvironmentGuard fp_environment;
    for (std::size_t r = row_begin; r < row_end; ++r) out.scale[r] = kernels.absmax(x + r * x_stride, in_features);
  });
  float m = 0.0f;
  for (std::size_t r = 0; r < batch && is_finite_bits(m); ++r) m = fold_tensor_absmax(m, out.scale[r]);
  float s_x = 0.0f;
  {
    const FpEnvironmentGuard fp_environment;
    s_x = activation_scale_from_absmax(m);
  }
  pool.parallel_for(0, batch, rows_per_task, [&](std::size_t row_begin, std::size_t row_end) {
    const FpEnvironmentGuard fp_environment;
    for (std::size_t r = row_begin; r < row_end; ++r) quantize_activation_row(kernels, x + r * x_stride, s_x, out, r);
  });
}

// The matmul half of forward() on a pool (steps 2 and 3 above), for any layer kind: run(acts, row_begin,
// row_end, y, y_stride) computes a block of outputs (the layer's unchecked forward_quantized).
template <class RunMatmul>
void matmul_on_pool(const ActivationsView& all_rows, std::size_t out_features, std::size_t in_features,
                    std::size_t row_bytes, float* y, std::size_t y_stride, ThreadPool& pool, const RunMatmul& run) {
  const std::size_t batch = all_rows.batch;
  const MatmulTiling tiling = plan_matmul(batch, out_features, in_features, row_bytes, pool.size());
  if (tiling.decode_split) {
    // Decode: the pool hands out chunk indices from its atomic counter, in order, to whichever thread is free.
    const RowChunks chunks(out_features, DecodeSplit{row_bytes, pool.size()});
    pool.parallel_for(0, chunks.chunks(), 1, [&](std::size_t i, std::size_t) {
      const RowRange rows = chunks.chunk(i);
      run(all_rows, rows.begin, rows.end, y, y_stride);
    });
    return;
  }
  pool.parallel_for(0, tiling.tiles(), 1, [&](std::size_t tile, std::size_t) {
    const std::size_t token_block = tile / tiling.output_chunks;
    const std::size_t output_chunk = tile % tiling.output_chunks;
    const std::size_t t_begin = token_block * tiling.tokens_per_block;
    const std::size_t t_end = t_begin + tiling.tokens_per_block < batch ? t_begin + tiling.tokens_per_block : batch;
    const std::size_t j_begin = output_chunk * tiling.outputs_per_chunk;
    const std::size_t j_end =
        j_begin + tiling.outputs_per_chunk < out_features ? j_begin + tiling.outputs_per_chunk : out_features;
    run(activation_rows(all_rows, t_begin, t_end), j_begin, j_end, y + t_begin * y_stride, y_stride);
  });
}

}  // namespace detail

namespace detail {

template <class Layer>
void LayerCore<Layer>::forward(const float* x, std::size_t batch, float* y, ThreadPool& pool) const {
  forward(x, batch, in_, y, out_, pool);
}

template <class Layer>
void LayerCore<Layer>::forward(const float* x, std::size_t batch, std::size_t x_stride, float* y,
                               std::size_t y_stride, ThreadPool& pool) const {
  check_forward_arguments(x, batch, x_stride, y != nullptr, y_stride);  // before the allocation, as without a pool
  std::vector<unsigned char> workspace(workspace_size(batch));
  forward(x, batch, x_stride, y, y_stride, workspace.data(), workspace.size(), pool);
}

template <class Layer>
void LayerCore<Layer>::forward(const float* x, std::size_t batch, std::size_t x_stride, float* y,
                               std::size_t y_stride, void* workspace, std::size_t workspace_bytes,
                               ThreadPool& pool) const {
  // Every check happens here, on the calling thread, before any task starts.
  check_forward_arguments(x, batch, x_stride, y != nullptr, y_stride);
  const MutableActivationsView acts =
      activation_view_in(workspace, workspace_bytes, batch, in_, options_.activation_scale);
  quantize_activations_parallel(x, batch, x_stride, options_.activation_scale, acts, kernels_->isa, pool);
  const std::size_t row_bytes = static_cast<const Layer&>(*this).decode_row_bytes();
  matmul_on_pool(acts, out_, in_, row_bytes, y, y_stride, pool,
                 [this](const ActivationsView& a, std::size_t row_begin, std::size_t row_end, float* out,
                        std::size_t out_stride) { run_matmul(a, row_begin, row_end, out, out_stride); });
}

}  // namespace detail

BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_HAS_THREADS
