// bitlinear internal: conversion between the canonical packed bytes (format.hpp) and a kernel family's
// execution layout (PackedWeightsView in interface.hpp: rows in groups, interleaved block by block). Both are the
// same 64-byte blocks in a different order, so the conversion is a copy of blocks and the footprint is equal.
#pragma once
#include "../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../format.hpp"
#include "interface.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Calls copy(at, offset, bytes) for each run of row j's bytes in the execution layout `w`: `at` in the layout,
// `offset` into the canonical row. A canonical row (group of 1) is one run, otherwise each 64-byte block is one.
template <class Copy>
inline void for_each_row_run(const PackedWeightsView& w, std::size_t j, Copy copy) noexcept {
  const std::uint8_t* row = w.row(j);
  const std::size_t step = w.block_step(j);
  if (step == packed_block_bytes) {
    copy(row, 0, w.row_bytes);
    return;
  }
  const std::size_t blocks = w.row_bytes / packed_block_bytes;
  for (std::size_t b = 0; b < blocks; ++b) copy(row + b * step, b * packed_block_bytes, packed_block_bytes);
}

// Writes canonical row j (row_bytes bytes) into its place in the execution layout `w` (w.data is writable).
inline void scatter_row(const PackedWeightsView& w, std::size_t j, const std::uint8_t* canonical_row) noexcept {
  for_each_row_run(w, j, [canonical_row](const std::uint8_t* at, std::size_t offset, std::size_t bytes) {
    std::memcpy(const_cast<std::uint8_t*>(at), canonical_row + offset, bytes);
  });
}

// Reads row j of the execution layout `w` into canonical_row (row_bytes bytes).
inline void gather_row(const PackedWeightsView& w, std::size_t j, std::uint8_t* canonical_row) noexcept {
  for_each_row_run(w, j, [canonical_row](const std::uint8_t* at, std::size_t offset, std::size_t bytes) {
    std::memcpy(canonical_row + offset, at, bytes);
  });
}

// Fills the execution layout `w` from a canonical matrix (out_features rows of row_bytes, one after another).
inline void scatter_matrix(const PackedWeightsView& w, const std::uint8_t* canonical) noexcept {
  for (std::size_t j = 0; j < w.out_features; ++j) scatter_row(w, j, canonical + j * w.row_bytes);
}

// Writes the canonical bytes of the execution layout `w` to `canonical` (out_features * row_bytes bytes).
inline void gather_matrix(const PackedWeightsView& w, std::uint8_t* canonical) noexcept {
  for (std::size_t j = 0; j < w.out_features; ++j) gather_row(w, j, canonical + j * w.row_bytes);
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
