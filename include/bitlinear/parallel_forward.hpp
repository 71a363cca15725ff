// bitlinear: BitLinear::forward on a ThreadPool (declared in layer.hpp).
//
// Work split:
//   1. quantization: chunks of rows of x (per tensor: first every row's absmax in chunks, then the shared
//      scale on the calling thread, then the rows in chunks);
//   2. matmul, prefill (batch > decode_max_batch): a grid of tiles, each a block of tokens times a chunk of
//      output rows (a multiple of 64 rows, except the last), a function of the shape and batch only;
//   3. matmul, decode (batch <= decode_max_batch, memory bound): the output rows in one contiguous part per
//      thread of the pool (multiples of 64 rows, so whole row groups of every execution layout), so that each
//      thread streams its own stretch of the weights in memory order, as the hardware prefetchers like it.
// Every output element is computed by exactly one task, and every kernel computes an output from its row and
// token alone (exact integer dot product, then the same float32 epilogue; tested bit for bit against the
// scalar reference for every split of the rows), so the result is identical whatever the number of threads
// and whichever thread runs a task. Small problems run on the calling thread: waking workers costs more.
#pragma once

#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

#include "config.hpp"
#include "error.hpp"

// Without std::thread (config.hpp) there is no pool: layer.hpp still declares the overloads, nothing defines them.
#if BITLINEAR_HAS_THREADS

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "activations.hpp"
#include "config.hpp"
#include "layer.hpp"
#include "quantize.hpp"
#include "thread_pool.hpp"

BITLINEAR_NAMESPACE_BEGIN

namespace detail {

inline constexpr std::size_t output_chunk_multiple = 64;   // output rows per matmul chunk: a multiple of this
inline constexpr std::size_t max_output_chunks = 64;       // beyond this, chunks grow (fewer, larger tasks)
inline constexpr std::size_t min_tiles = 16;               // split tokens too when output chunks are fewer
inline constexpr std::size_t serial_matmul_work = 1u << 17;  // batch * out * in below this: one thread
inline constexpr std::size_t quantize_chunk_floats = 1u << 14;  // floats of x per quantization task
inline constexpr std::size_t decode_max_batch = 4;           // up to this batch, one contiguous part per thread

// The matmul tiling of a forward call: token_blocks x output_chunks tiles.
struct MatmulTiling {
  std::size_t tokens_per_block = 1;
  std::size_t token_blocks = 1;
  std::size_t outputs_per_chunk = 1;
  std::size_t output_chunks = 1;
  std::size_t tiles() const noexcept { return token_blocks * output_chunks; }
};

inline constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept { return (a + b - 1) / b; }

inline MatmulTiling plan_matmul(std::size_t batch, std::size_t out_features, std::size_t in_features,
                                std::size_t threads) noexcept {
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
    t.tokens_per_block = batch;
    t.outputs_per_chunk = output_chunk_multiple * ceil_div(blocks, threads < blocks ? threads : blocks);
    t.output_chunks = ceil_div(out_features, t.outputs_per_chunk);
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
inline ActivationsView activation_rows(const ActivationsView& a, std::size_t row_begin, std::size_t row_end) noexcept {
  return {a.q + row_begin * a.stride, a.scale + row_begin, a.sum + row_begin, row_end - row_begin, a.in_features,
          a.stride};
}
inline MutableActivationsView activation_rows(const MutableActivationsView& a, std::size_t row_begin,
                                              std::size_t row_end) noexcept {
  return {a.q + row_begin * a.stride, a.scale + row_begin, a.sum + row_begin, row_end - row_begin, a.in_features,
          a.stride};
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

}  // namespace detail

template <class Format>
void BitLinear<Format>::forward(const float* x, std::size_t batch, float* y, ThreadPool& pool) const {
  forward(x, batch, in_, y, out_, pool);
}

template <class Format>
void BitLinear<Format>::forward(const float* x, std::size_t batch, std::size_t x_stride, float* y,
                                std::size_t y_stride, ThreadPool& pool) const {
  BITLINEAR_REQUIRE(batch > 0, "batch is 0; it must be at least 1");
  std::vector<unsigned char> workspace(workspace_size(batch));
  forward(x, batch, x_stride, y, y_stride, workspace.data(), workspace.size(), pool);
}

template <class Format>
void BitLinear<Format>::forward(const float* x, std::size_t batch, std::size_t x_stride, float* y,
                                std::size_t y_stride, void* workspace, std::size_t workspace_bytes,
                                ThreadPool& pool) const {
  // Every check happens here, on the calling thread, before any task starts.
  check_output(y != nullptr, batch, y_stride);
  detail::check_activation_input(x, batch, in_, x_stride);
  const MutableActivationsView acts = activation_view_in(workspace, workspace_bytes, batch, in_);
  detail::quantize_activations_parallel(x, batch, x_stride, options_.activation_scale, acts, kernels_->isa, pool);

  const detail::MatmulTiling tiling = detail::plan_matmul(batch, out_, in_, pool.size());
  const ActivationsView all_rows = acts;
  pool.parallel_for(0, tiling.tiles(), 1, [&](std::size_t tile, std::size_t) {
    const std::size_t token_block = tile / tiling.output_chunks;
    const std::size_t output_chunk = tile % tiling.output_chunks;
    const std::size_t t_begin = token_block * tiling.tokens_per_block;
    const std::size_t t_end = t_begin + tiling.tokens_per_block < batch ? t_begin + tiling.tokens_per_block : batch;
    const std::size_t j_begin = output_chunk * tiling.outputs_per_chunk;
    const std::size_t j_end = j_begin + tiling.outputs_per_chunk < out_ ? j_begin + tiling.outputs_per_chunk : out_;
    run_matmul(detail::activation_rows(all_rows, t_begin, t_end), j_begin, j_end, y + t_begin * y_stride, y_stride);
  });
}

BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_HAS_THREADS
