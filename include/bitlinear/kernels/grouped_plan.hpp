// bitlinear internal: how the x86 grouped kernels (avx512/grouped.hpp, avx2/grouped.hpp) walk the segments of the
// pinned grouped order (interface.hpp, "Grouped formats"): in 64-weight steps (one vpdpbusd step, lanes 0..15), a
// segment being the whole row, one half step (S = 32: lanes 0..7 and 8..15 of a step are two segments with their
// own scales), or 1, 2, 4 whole steps (S = 64, 128, 256). Segment n starts at weight n * S; its weight scale is
// group_scale[row * groups_per_row + (n >> group_shift)] and, with per-block activations, its block scale
// block_scale[t * block_stride + (n >> block_shift)] (S divides the group and the block, both powers of two times
// S, or the group / block spans the row: shift 31, index 0). Any other shape is not planned (supported = false)
// and the caller binds the scalar reference.
#pragma once
#include "../detail/internal_only.hpp"

#include <cstddef>

#include "../activations.hpp"
#include "../config.hpp"
#include "interface.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Segment modes (template arguments of the kernels): the whole row, half steps, or this many steps.
inline constexpr int kGroupedWholeRow = 0;
inline constexpr int kGroupedHalfStep = -1;

// Segment ends in a row of `steps` 64-weight steps, per segment mode: after step s (0-based)? Index of that end
// (the segment index, or the step for half steps: lanes 0..7 and 8..15 are segments 2s and 2s + 1)? How many?
template <int Seg>
inline bool grouped_flush_after(std::size_t s, std::size_t steps) noexcept {
  if constexpr (Seg == kGroupedWholeRow) return s + 1 == steps;
  else if constexpr (Seg == kGroupedHalfStep) return true;
  else return (s + 1) % Seg == 0 || s + 1 == steps;
}
template <int Seg>
inline std::size_t grouped_flush_index(std::size_t s) noexcept {
  if constexpr (Seg == kGroupedWholeRow) return 0;
  else if constexpr (Seg == kGroupedHalfStep) return s;
  else return s / Seg;
}
template <int Seg>
inline std::size_t grouped_flushes(std::size_t steps) noexcept {
  return grouped_flush_index<Seg>(steps - 1) + 1;
}

struct GroupedPlan {
  bool supported = false;
  int segment = kGroupedWholeRow;  // kGroupedWholeRow, kGroupedHalfStep, or steps per segment (1, 2, 4)
  std::size_t steps = 0;           // 64-weight steps holding a weight below in_features: ceil(in / 64)
  unsigned group_shift = 31;
  unsigned block_shift = 31;
};

// log2(ratio) if ratio is a power of two, otherwise -1.
inline int grouped_log2(std::size_t ratio) noexcept {
  int shift = 0;
  while ((std::size_t{1} << shift) < ratio && shift < 31) ++shift;
  return (std::size_t{1} << shift) == ratio ? shift : -1;
}

// The shift from segment index to the index of a run of `run` weights (a group or an activation block).
inline bool grouped_index_shift(std::size_t run, std::size_t segment, std::size_t in, unsigned& shift) noexcept {
  if (run >= in) {
    shift = 31;  // one run spans the row: index 0 (segment indices stay below 2^15)
    return true;
  }
  if (run % segment != 0) return false;
  const int log = grouped_log2(run / segment);
  if (log < 0) return false;
  shift = static_cast<unsigned>(log);
  return true;
}

inline GroupedPlan grouped_plan(const PackedWeightsView& w, const ActivationsView& a, const Epilogue& e) noexcept {
  GroupedPlan plan;
  const std::size_t in = w.in_features;
  if (in == 0 || e.group_size == 0) return plan;
  plan.steps = (in + 63) / 64;
  const std::size_t s = grouped_segment(e.group_size, a.block_size, in);
  if (s >= in) {
    plan.segment = kGroupedWholeRow;
    plan.supported = true;
    return plan;  // one segment: both indices 0
  }
  if (s == 32) {
    plan.segment = kGroupedHalfStep;
  } else if (s == 64 || s == 128 || s == 256) {
    plan.segment = static_cast<int>(s / 64);
  } else {
    return plan;
  }
  if (!grouped_index_shift(e.group_size, s, in, plan.group_shift)) return plan;
  if (a.block_size != 0 && !grouped_index_shift(a.block_size, s, in, plan.block_shift)) return plan;
  plan.supported = true;
  return plan;
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
