// bitlinear: quantized activations, the input of every matmul kernel.
//
// A batch of `batch` rows of `in_features` floats becomes, per row r:
//   q[r * stride + k]   int8, k < in_features: clamp(rne(x[r][k] * scale[r]), -128, 127); k >= in_features: 0
//   scale[r]            s_x = (1 / max(absmax, 1e-5)) * 127, or NaN if the row (per-tensor: the batch) holds
//                       a NaN or infinite value; such rows have q = 0 and produce NaN outputs
//   sum[r]              sum over k of q[r * stride + k] (kernels use it to undo the code offset, see layer.hpp)
// stride is activation_stride(in_features): a multiple of 512 bytes, so that kernels may read whole blocks
// of the padded row. The padding must be zero; quantize_activations() guarantees all of this. A view built
// by hand must keep every invariant (forward_quantized checks stride and padding, not sums).
#pragma once

#include <cstddef>
#include <cstdint>

#include "config.hpp"

BITLINEAR_NAMESPACE_BEGIN

inline constexpr std::size_t activation_row_multiple = 512;

inline constexpr std::size_t activation_stride(std::size_t in_features) noexcept {
  return (in_features + activation_row_multiple - 1) / activation_row_multiple * activation_row_multiple;
}

// Per-block activations (ActivationScale::per_block): one scale per block of this many consecutive values of a
// row (ggml's Q8_0 block); the last block of a row may be shorter.
inline constexpr std::size_t activation_block_size = 32;
inline constexpr std::size_t activation_block_count(std::size_t in_features) noexcept {
  return (in_features + activation_block_size - 1) / activation_block_size;
}

// Per-super-block activations (ActivationScale::per_superblock): one float scale per super-block of this many
// consecutive values of a row (ggml's Q8_K block, QK_K); the last super-block of a row may be shorter.
inline constexpr std::size_t activation_superblock_size = 256;
inline constexpr std::size_t activation_superblock_count(std::size_t in_features) noexcept {
  return (in_features + activation_superblock_size - 1) / activation_superblock_size;
}

struct ActivationsView {
  const std::int8_t* q = nullptr;
  const float* scale = nullptr;
  const std::int32_t* sum = nullptr;
  std::size_t batch = 0;
  std::size_t in_features = 0;
  std::size_t stride = 0;
  // Per-block activations (ActivationScale::per_block or per_superblock, read by group-scaled layers only):
  // block_size > 0, the scale of block b (weights b * block_size ...) of row r is block_scale[r * block_stride + b],
  // scale[r] is 1 (NaN for a non-finite row). block_size == 0: per-token or per-tensor, block_scale unused.
  // Per-tensor layers (BitLinear) refuse views with block_size != 0; group-scaled layers take block_size 0,
  // activation_block_size (32) with block_stride >= activation_block_count(in_features), or
  // activation_superblock_size (256) with block_stride >= activation_superblock_count(in_features).
  const float* block_scale = nullptr;
  std::size_t block_size = 0;
  std::size_t block_stride = 0;
};

struct MutableActivationsView {
  std::int8_t* q = nullptr;
  float* scale = nullptr;
  std::int32_t* sum = nullptr;
  std::size_t batch = 0;
  std::size_t in_features = 0;
  std::size_t stride = 0;
  float* block_scale = nullptr;
  std::size_t block_size = 0;
  std::size_t block_stride = 0;

  operator ActivationsView() const noexcept {
    return {q, scale, sum, batch, in_features, stride, block_scale, block_size, block_stride};
  }
};

BITLINEAR_NAMESPACE_END
