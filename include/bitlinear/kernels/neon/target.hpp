// bitlinear internal: what the aarch64 kernels share (target attributes written here once).
#pragma once
#include "../../detail/internal_only.hpp"

// what the aarch64 kernel families `neon` and `neon_dotprod` share: target attributes, the
// sdot wrapper, the scalar epilogue and block geometry.
//
// Target attributes. Advanced SIMD is part of the aarch64 base ABI, so the `neon` family needs no attribute:
// <arm_neon.h> intrinsics compile without any -march flag. The `neon_dotprod` family needs SDOT (ARMv8.2-A
// optional, mandatory from ARMv8.4-A); every function that may execute it carries BITLINEAR_NEON_DOTPROD_TARGET
// and is only reached through the neon_dotprod kernel table, which dispatch selects only when getauxval(AT_HWCAP)
// reports HWCAP_ASIMDDP (isa.hpp). The spelling differs between the compilers we support:
//   GCC 12:   target("arch=armv8.2-a+dotprod") — its <arm_neon.h> wraps vdotq_s32 in exactly that target pragma
//             (target("+dotprod") alone is refused when inlining vdotq_s32);
//   clang 14: target("dotprod") — clang rejects "arch=..." here, and its <arm_neon.h> only declares vdotq_s32
//             when __ARM_FEATURE_DOTPROD is on the command line, so sdot() below uses inline assembly, which clang
//             assembles with the function's target features;
//   -march/-mcpu flags that already enable dotprod (-mcpu=cortex-a55, -march=armv8.4-a, ...): no attribute at all.
// Known limit (GCC): flags naming features beyond ARMv8.2-A without dotprod (say -march=armv8.2-a+fp16) make
// GCC refuse to inline the <arm_neon.h> intrinsics into the armv8.2-a+dotprod functions; such builds fail to
// compile. Plain builds (no flags) and dotprod builds are fine.
#include "../../config.hpp"

#if BITLINEAR_ARCH_AARCH64
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "../../format.hpp"
#include "../../detail/exact_float.hpp"
#include "../interface.hpp"

#if defined(__ARM_FEATURE_DOTPROD)
#define BITLINEAR_NEON_DOTPROD_TARGET  // the whole translation unit may use SDOT (e.g. -mcpu=cortex-a55)
#elif defined(__clang__)
#define BITLINEAR_NEON_DOTPROD_TARGET BITLINEAR_TARGET("dotprod")
#else
#define BITLINEAR_NEON_DOTPROD_TARGET BITLINEAR_TARGET("arch=armv8.2-a+dotprod")
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail::neon {

// Force-inlined helpers: their reference arguments become registers (see gemv.hpp).
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_NEON_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define BITLINEAR_NEON_ALWAYS_INLINE inline
#endif

// Fully unrolls the loop that follows (the slices of one block).
#if defined(__clang__)
#define BITLINEAR_NEON_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define BITLINEAR_NEON_UNROLL _Pragma("GCC unroll 4")
#else
#define BITLINEAR_NEON_UNROLL
#endif

// acc[i] += sum_{k<4} a[4i+k] * b[4i+k] (SDOT, signed bytes). Only for functions marked dotprod.
BITLINEAR_NEON_DOTPROD_TARGET inline int32x4_t sdot(int32x4_t acc, int8x16_t a, int8x16_t b) noexcept {
#if defined(__clang__) && !defined(__ARM_FEATURE_DOTPROD)
  __asm__("sdot %0.4s, %1.16b, %2.16b" : "+w"(acc) : "w"(a), "w"(b));
  return acc;
#else
  return vdotq_s32(acc, a, b);
#endif
}


// Canonical block geometry (format.hpp): one 64-byte block is four 16-byte slices. In slice s, bit field i of
// byte l holds the weight 64*i + 16*s + l of the block, so one slice lines up with four (ternary) or eight
// (binary) 16-byte runs of activations at offsets 64*i + 16*s.
inline constexpr std::size_t slice_bytes = 16;
inline constexpr std::size_t slices_per_block = 4;

// Weight prefetch (PRFM PLDL1KEEP). In an interleaved layout (group_rows > 1) the kernels read the weights as one
// linear stream and prefetch prefetch_bytes ahead of every 64-byte line they load. In the canonical layout (one
// stream per row) they prefetch the same block of the rows at least one 4-row group and about prefetch_bytes
// further on. Not tuned on hardware (none here): a distance of a few DRAM latencies at a few GB/s per core.
inline constexpr std::size_t prefetch_bytes = 2048;

inline std::size_t prefetch_distance(const PackedWeightsView& w) noexcept {
  if (w.group_rows != 1) return prefetch_bytes;
  const std::size_t rows = (prefetch_bytes / w.row_bytes + 3) / 4 * 4;
  return (rows < 4 ? 4 : rows) * w.row_bytes;
}

// `distance` if a line that far beyond `last_block` (the farthest block a loop reads) still lies inside the
// weights, else 0: the loop then prefetches the lines it is about to read, and never forms a pointer past the end.
inline std::size_t prefetch_within(const PackedWeightsView& w, const std::uint8_t* last_block,
                                   std::size_t distance) noexcept {
  return static_cast<std::size_t>(w.end() - last_block) >= packed_block_bytes + distance ? distance : 0;
}

BITLINEAR_NEON_ALWAYS_INLINE void prefetch(const std::uint8_t* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;  // other compilers: the hardware prefetchers alone
#endif
}

// ROWS rows of one run of the layout (PackedWeightsView::run_end): block b of row r at
// rows + r * row_step + b * block_step. Interleaved groups of 4: row_step 64, block_step 256, so the rows of a
// run are one linear stream; canonical rows: row_step = row_bytes, block_step 64.
struct RowRun {
  const std::uint8_t* rows;
  std::size_t row_step;
  std::size_t block_step;
  std::size_t blocks;
  std::size_t prefetch_offset;  // see prefetch_within
};

// Prefetches the lines prefetch_offset beyond block b (pointer `block`) of ROWS rows of a run.
template <int ROWS>
BITLINEAR_NEON_ALWAYS_INLINE void prefetch_rows(const std::uint8_t* block, std::size_t row_step,
                                                std::size_t offset) noexcept {
  for (int r = 0; r < ROWS; ++r) prefetch(block + static_cast<std::size_t>(r) * row_step + offset);
}

}  // namespace detail::neon
BITLINEAR_NAMESPACE_END

#endif  // BITLINEAR_ARCH_AARCH64
