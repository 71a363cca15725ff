// bitlinear: GroupedLinear::forward on a ThreadPool (declared in grouped_layer.hpp): the split of
// parallel_forward.hpp (quantization over rows of x, the matmul over chunks of output rows or tiles), so the
// result is bit-identical to forward() for every thread count.
#pragma once

#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

#include "config.hpp"

#if BITLINEAR_HAS_THREADS

#include <cstddef>
#include <vector>

#include "grouped_layer.hpp"
#include "parallel_forward.hpp"
#include "thread_pool.hpp"

BITLINEAR_NAMESPACE_BEGIN

template <class Format>
void GroupedLinear<Format>::forward(const float* x, std::size_t batch, float* y, ThreadPool& pool) const {
  forward(x, batch, in_, y, out_, pool);
}

template <class Format>
void GroupedLinear<Format>::forward(const float* x, std::size_t batch, std::size_t x_stride, float* y,
                                    std::size_t y_stride, ThreadPool& pool) const {
  check_output(y != nullptr, batch, y_stride);  // extents before the allocation, as in forward() without a pool
  detail::check_activation_input(x, batch, in_, x_stride);
  std::vector<unsigned char> workspace(workspace_size(batch));
  forward(x, batch, x_stride, y, y_stride, workspace.data(), workspace.size(), pool);
}

template <class Format>
void GroupedLinear<Format>::forward(const float* x, std::size_t batch, std::size_t x_stride, float* y,
                                    std::size_t y_stride, void* workspace, std::size_t workspace_bytes,
                                    ThreadPool& pool) const {
  // Every check happens here, on the calling thread, before any task starts.
  check_output(y != nullptr, batch, y_stride);
  detail::check_activation_input(x, batch, in_, x_stride);
  const MutableActivationsView acts =
      activation_view_in(workspace, workspace_bytes, batch, in_, options_.activation_scale);
  detail::quantize_activations_parallel(x, batch, x_stride, options_.activation_scale, acts, kernels_->isa, pool);
  // The decode split sizes its chunks by weight bytes per row: codes plus float scales (as RowChunks(layer, n)).
  const std::size_t row_bytes = Format::packed_row_bytes(in_) + groups_ * sizeof(float);
  detail::matmul_on_pool(acts, out_, in_, row_bytes, y, y_stride, pool,
                         [this](const ActivationsView& a, std::size_t row_begin, std::size_t row_end, float* out,
                                std::size_t out_stride) { run_matmul(a, row_begin, row_end, out, out_stride); });
}

BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_HAS_THREADS
