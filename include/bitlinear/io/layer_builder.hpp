// bitlinear: building a layer from rows an importer writes straight into the layer's own buffer (its kernel
// family's execution layout), optionally in parallel on a caller's ThreadPool.
//
// For importers that validate their source in bulk (once per tensor or per source row) and so produce canonical
// rows by construction: the per-row validation of BitLinear::from_packed_rows would be a second, element-wise
// pass over the output. The shape, the weight scale and the bias are checked here exactly as from_packed_rows
// checks them; the rows are the importer's responsibility.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "../grouped_layer.hpp"
#include "../layer.hpp"
#include "../options.hpp"

#if BITLINEAR_HAS_THREADS
#include "../thread_pool.hpp"
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Runs body(begin, end) over [0, n) in chunks of `chunk`: on `pool` when there is one with more than one thread
// (builds without std::thread always run serially), else in order on the calling thread.
template <class Body>
void for_each_chunk(ThreadPool* pool, std::size_t n, std::size_t chunk, Body&& body) {
  if (chunk == 0) chunk = 1;
#if BITLINEAR_HAS_THREADS
  if (pool != nullptr && pool->size() > 1 && n > chunk) {
    pool->parallel_for(0, n, chunk, body);
    return;
  }
#else
  (void)pool;
#endif
  for (std::size_t begin = 0; begin < n; begin += chunk) body(begin, n - begin > chunk ? begin + chunk : n);
}

// Asks Linux for transparent huge pages on the 2 MiB-aligned part of a fresh buffer before it is first written
// (where THP is "madvise" or "always"): a multi-megabyte layer then costs one page fault per 2 MiB instead of one
// per 4 KiB, which dominates building a layer (on VMs especially). The contents and the allocation are
// unaffected; elsewhere, or when the kernel refuses, nothing happens.
inline void advise_huge_pages(void* data, std::size_t size) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t huge = std::uintptr_t{1} << 21;
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + huge - 1) & ~(huge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + size) & ~(huge - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data, (void)size;
#endif
}

// The lowest of the rows that tasks, running in any order, find bad: the row a serial pass in order would name.
// A task skips rows at or above the lowest found so far (they cannot be the one named) and checks every row below
// it, so when all tasks are done, row() is the first bad row of the matrix. The caller builds the error from it.
class LowestBadRow {
 public:
  explicit LowestBadRow(std::size_t none) noexcept : none_(none), row_(none) {}
  bool skip(std::size_t r) const noexcept { return r >= row_.load(std::memory_order_relaxed); }
  void record(std::size_t r) noexcept {
    std::size_t seen = row_.load(std::memory_order_relaxed);
    while (r < seen && !row_.compare_exchange_weak(seen, r, std::memory_order_relaxed)) {
    }
  }
  // After the tasks: whether a row was recorded, and the lowest one.
  bool found() const noexcept { return row() != none_; }
  std::size_t row() const noexcept { return row_.load(std::memory_order_relaxed); }

 private:
  std::size_t none_;
  std::atomic<std::size_t> row_;
};

template <class Format>
struct LayerBuilder {
  using Layer = BitLinear<Format>;

  // Builds an out_features x in_features layer. fill(view, begin, end) writes the canonical rows that tasks
  // [begin, end) of [0, tasks) own into `view` (through scatter_row or row()/block_step(); view.data is the
  // layer's writable buffer); different tasks must own different rows. Tasks run in chunks of `chunk` on
  // `pool` (null: serially). Throws what from_packed_rows throws for the shape, scale and bias, and whatever
  // fill throws (ThreadPool rethrows the first exception after the running tasks finish).
  template <class Fill>
  static Layer build(std::size_t out_features, std::size_t in_features, float weight_scale, const float* bias,
                     const Options& options, std::size_t tasks, std::size_t chunk, ThreadPool* pool, Fill&& fill) {
    Layer::check_shape(out_features, in_features);
    Layer::check_weight_scale(weight_scale);
    Layer layer(out_features, in_features, bias, options);
    fill_rows(layer, tasks, chunk, pool, fill);
    finish(layer, weight_scale);
    return layer;
  }

  // The steps of build() for importers that learn the weight scale from the weights (online quantization): an
  // empty layer checked as from_float checks it (shape, then bias and options), its rows, then its scale.
  static Layer make(std::size_t out_features, std::size_t in_features, const float* bias, const Options& options) {
    Layer::check_shape(out_features, in_features);
    return Layer(out_features, in_features, bias, options);
  }
  template <class Fill>
  static void fill_rows(Layer& layer, std::size_t tasks, std::size_t chunk, ThreadPool* pool, Fill&& fill) {
    const PackedWeightsView view = layer.weights();
    advise_huge_pages(layer.packed_.data(), layer.packed_.size());
    for_each_chunk(pool, tasks, chunk, [&](std::size_t begin, std::size_t end) { fill(view, begin, end); });
  }
  static void finish(Layer& layer, float weight_scale) {
    Layer::check_weight_scale(weight_scale);
    layer.beta_ = weight_scale;
    layer.finish_scale();
  }
};

// GroupedLinear::from_packed_rows with the rows in chunks of `chunk` on `pool` (null, or a build without threads:
// serially, in order). fill_row(j, row, row_scales) is called once for each row j (concurrently for different
// rows, in any order) and must write all Format::packed_row_bytes(in_features) bytes of the row (the layer's
// codes start unwritten here), and each row is checked as from_packed_rows checks it. The layer and the error are the
// same for every pool: an invalid row is reported as from_packed_rows reports it, and the row named is the FIRST
// invalid row of the matrix (every row below the lowest invalid one found so far is still converted and checked;
// rows above it are skipped). Exceptions thrown by fill_row itself are rethrown as ThreadPool rethrows them (the
// first to be thrown); the GGUF fills throw none once the tensor has been checked.
template <class Format>
struct GroupedLayerBuilder {
  using Layer = GroupedLinear<Format>;

  template <class FillRow>
  static Layer build(FillRow&& fill_row, std::size_t out_features, std::size_t in_features, std::size_t group_size,
                     const float* bias, const Options& options, std::size_t chunk, ThreadPool* pool) {
    Layer::check_shape(out_features, in_features, group_size);
    // The codes are left unwritten until their rows are filled (each fill writes whole rows), so that their pages
    // are first touched by the tasks, in parallel, and can be huge pages.
    Layer layer(out_features, in_features, group_size, bias, options, false);
    advise_huge_pages(layer.packed_.data(), layer.packed_.size());
    LowestBadRow first_bad(out_features);
    for_each_chunk(pool, out_features, chunk, [&](std::size_t begin, std::size_t end) {
      for (std::size_t j = begin; j < end; ++j) {
        if (first_bad.skip(j)) return;  // a lower row is invalid: it is the one named
        fill_row(j, layer.row_codes(j), layer.row_scales(j));
        if (!layer.row_valid(j)) {
          first_bad.record(j);
          return;
        }
      }
    });
    if (first_bad.found()) layer.fail_row(first_bad.row());
    return layer;
  }
};

// Rows per task of a GGUF import: about 64 KiB of source bytes (at least one row), so that a 2-thread pool gets
// tens of tasks per layer of a 2B model and the last task's imbalance stays small.
inline std::size_t gguf_rows_per_task(std::size_t src_row_bytes) noexcept {
  return src_row_bytes >= (std::size_t{1} << 16) ? 1 : (std::size_t{1} << 16) / src_row_bytes;
}

// Writable first byte of row j's block b in the execution layout `w` (w.data is the layer's own buffer).
inline std::uint8_t* block_in_layout(const PackedWeightsView& w, std::size_t j, std::size_t b) noexcept {
  return const_cast<std::uint8_t*>(w.row(j)) + b * w.block_step(j);
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
