// bitlinear internal: the kernel interface every family (scalar, avx2, avx512, neon, ...) implements.
#pragma once
#include "../detail/internal_only.hpp"

#include <cstddef>
#include <cstdint>

#include "../activations.hpp"
#include "../config.hpp"
#include "../detail/exact_float.hpp"
#include "../format.hpp"
#include "../format_compact.hpp"
#include "../isa.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Packed weights in an execution layout: the 64-byte blocks of the canonical format (format.hpp), permuted.
// Rows are stored in groups of `group_rows` consecutive rows (the last group may hold fewer); a group takes
// rows_in_group * row_bytes bytes, and inside it the rows are interleaved block by block:
//   block b of row r of the group is at  group_start + (b * rows_in_group + r) * 64.
// group_rows == 1 is the canonical layout itself (row j at data + j * row_bytes). A GEMV that reads the rows of
// one group side by side therefore reads one linear stream (layout.hpp converts to and from the canonical
// bytes). The library allocates the buffer 64-byte aligned; kernels may read whole blocks but nothing past the
// last byte (out_features * row_bytes). Which layouts a kernel reads: the layout of its grid slot
// (FormatKernels::group_rows) always; the scalar reference, the NEON kernels and the GEMMs any layout (the scalar
// reference is the oracle of the layout conversions); the avx2-class GEMVs only the canonical one, their slots'.
struct PackedWeightsView {
  const std::uint8_t* data = nullptr;
  std::size_t out_features = 0;
  std::size_t in_features = 0;
  std::size_t row_bytes = 0;
  std::size_t group_rows = 1;

  std::size_t group_begin(std::size_t j) const noexcept { return j - j % group_rows; }
  std::size_t rows_in_group(std::size_t j) const noexcept {
    const std::size_t begin = group_begin(j);
    return out_features - begin < group_rows ? out_features - begin : group_rows;
  }
  // Bytes from block b to block b + 1 of row j.
  std::size_t block_step(std::size_t j) const noexcept { return group_rows == 1 ? 64 : 64 * rows_in_group(j); }
  // Block 0 of row j.
  const std::uint8_t* row(std::size_t j) const noexcept {
    const std::size_t begin = group_begin(j);
    return data + begin * row_bytes + (j - begin) * (group_rows == 1 ? row_bytes : 64);
  }
  // Rows j, j + 1, ..., run_end(j) - 1 share one block_step and sit row_step() bytes apart: a run of rows a
  // kernel may address as row(j) + r * row_step() + b * block_step(j).
  std::size_t run_end(std::size_t j) const noexcept {
    return group_rows == 1 ? out_features : group_begin(j) + rows_in_group(j);
  }
  std::size_t row_step() const noexcept { return group_rows == 1 ? row_bytes : 64; }
  const std::uint8_t* end() const noexcept { return data + out_features * row_bytes; }
};

// The per-layer constants of the epilogue. bias is never null (a layer without bias passes zeros: adding +0
// changes no value, since a dot product of 0 gives +0, never -0).
struct Epilogue {
  float beta = 0;  // weight_scale(): dequantized weight = code * beta
  float s_w = 0;   // ternary only: 1.0f / beta, as the reference computes it
  const float* bias = nullptr;
  // Grouped formats only (beta and s_w unused): the scale of group g of row j is
  // group_scale[j * groups_per_row + g]; group g holds weights g * group_size .. (g + 1) * group_size - 1 of the
  // row (group_size == in_features: one scale per row). See "Grouped formats" below.
  const float* group_scale = nullptr;
  std::size_t group_size = 0;
  std::size_t groups_per_row = 0;
};

// The scalar epilogue of the MatmulKernel contract below, written once (the scalar reference and the NEON kernels
// use it; the vector epilogues in each x86 family's codes.hpp compute the same operations lane by lane):
//   ternary: y = (float)dot / s_x / s_w + bias     (two divisions, then the add: nothing to contract)
//   binary:  y = ((float)dot / s_x * beta) + bias  (the product is rounded before the add)
// int32 -> float rounds to nearest even. A NaN s_x (non-finite input row) gives NaN. exact_* (exact_float.hpp)
// are these operations as single instructions that -ffast-math cannot rewrite.
inline float ternary_output(std::int32_t dot, float s_x, const Epilogue& e, std::size_t j) noexcept {
  return exact_add(exact_div(exact_div(static_cast<float>(dot), s_x), e.s_w), e.bias[j]);
}
inline float binary_output(std::int32_t dot, float s_x, const Epilogue& e, std::size_t j) noexcept {
  return exact_add(exact_mul(exact_div(static_cast<float>(dot), s_x), e.beta), e.bias[j]);
}

// Returns max |x[i]| over i < n (n >= 1) if every x[i] is finite, otherwise a non-finite value.
using AbsmaxKernel = float (*)(const float* x, std::size_t n);

// Writes q[k] = clamp(rne(x[k] * s_x), -128, 127) for k < n and q[k] = 0 for n <= k < padded_n, and returns
// the sum of q. s_x is finite and positive.
using QuantizeRowKernel = std::int32_t (*)(const float* x, std::size_t n, float s_x, std::int8_t* q,
                                           std::size_t padded_n);

// Computes, for every row t < a.batch and output j in [row_begin, row_end):
//   dot = sum_k code[j][k] * q[t][k]                         (exact int32)
//   ternary: y[t * y_stride + j] = (float)dot / a.scale[t] / e.s_w + e.bias[j]
//   binary:  y[t * y_stride + j] = ((float)dot / a.scale[t] * e.beta) + e.bias[j]   (no fused multiply-add)
// Float conversion rounds to nearest even; each operation is one IEEE float32 operation in the order written,
// so every family gives the same bits. Writes nothing else.
using MatmulKernel = void (*)(const PackedWeightsView& w, const ActivationsView& a, std::size_t row_begin,
                              std::size_t row_end, const Epilogue& e, float* y, std::size_t y_stride);

// --------------------------------------------------------------------------------------------------------------
// Grouped formats: the codes of Ternary (2-bit; field value 3 is the code +2 here, the fourth level of ggml's
// Q2_0), Binary or TernaryCompact in the canonical layout (group rows 1), with one float scale per group of
// weights (Epilogue::group_scale). The activations are per token / per tensor (a.block_size == 0) or per block
// (a.block_size > 0: 32 for per_block, 256 for per_superblock; a multiple of the group size or a divisor of it,
// or any size when group_size == in_features, the one-scale-per-row form, whose in_features need not be a
// multiple of 32 or 256). Block scales may have either sign or be zero (per_superblock's d has the opposite sign
// of the block's largest value). The pinned float32 order, which every family follows bit for bit:
//
//   segment: a run of S = min(group_size, block_size or in_features) consecutive weights starting at a multiple
//            of S (the last segment of a row may be shorter); each segment lies in one group and one block.
//   lane:    weight k belongs to lane (k % 64) / 4, 16 lanes: the int32 lanes of one 64-weight dot product step
//            (vpdpbusd on 64 bytes; two 8-lane AVX2 halves; four 4-lane NEON registers).
//   For row j, token t:  acc[0..15] = +0
//     for each segment s, in order:  c = group_scale[g(s)]                          (block_size == 0)
//                                    c = group_scale[g(s)] * block_scale[t][b(s)]    (block_size > 0, rounded)
//       for each lane l:  p = sum of code[k] * q[k] over the segment's k in lane l  (exact int32)
//                         acc[l] = fma((float)p, c, acc[l])                          (one rounding)
//     r = grouped_lane_sum(acc)   (a fixed tree: l + l+8, then + l+4, + l+2, + l+1)
//     y[t][j] = r / a.scale[t] + bias[j]                                              (two roundings, no fma)
// (float)p rounds to nearest even. A lane with no weight in a segment adds fma(0, c, acc) = acc (acc is never -0),
// so a kernel may skip it. Non-finite rows: a.scale[t] is NaN, so y is NaN.
inline constexpr std::size_t grouped_lanes = 16;
inline constexpr std::size_t grouped_lane_of(std::size_t k) noexcept { return k % 64 / 4; }

// The segment length S of the order above.
inline std::size_t grouped_segment(std::size_t group_size, std::size_t block_size, std::size_t in_features) noexcept {
  const std::size_t block = block_size == 0 ? in_features : block_size;
  return group_size < block ? group_size : block;
}

// The fixed reduction tree of the 16 lane accumulators.
inline float grouped_lane_sum(const float* acc) noexcept {
  float half[8];
  for (std::size_t l = 0; l < 8; ++l) half[l] = exact_add(acc[l], acc[l + 8]);
  for (std::size_t l = 0; l < 4; ++l) half[l] = exact_add(half[l], half[l + 4]);
  for (std::size_t l = 0; l < 2; ++l) half[l] = exact_add(half[l], half[l + 2]);
  return exact_add(half[0], half[1]);
}

// The scale c of a segment at weight k0 of row j, token t.
inline float grouped_segment_scale(const Epilogue& e, const ActivationsView& a, std::size_t t, std::size_t j,
                                   std::size_t k0) noexcept {
  const float w_scale = e.group_scale[j * e.groups_per_row + k0 / e.group_size];
  if (a.block_size == 0) return w_scale;
  return exact_mul(w_scale, a.block_scale[t * a.block_stride + k0 / a.block_size]);
}

inline float grouped_output(float r, float s, const Epilogue& e, std::size_t j) noexcept {
  return exact_add(exact_div(r, s), e.bias[j]);
}

// The kernel grid: formats (columns) x families (rows). grid.hpp builds every row complete, so a layer takes its
// slot once, at construction, and calls it with no switch per call.
// The first three are per-tensor (one weight scale per matrix); the grouped ones carry a scale per group.
enum class WeightFormat : std::uint8_t {
  ternary,
  binary,
  ternary_compact,
  ternary_grouped,
  binary_grouped,
  ternary_compact_grouped
};
inline constexpr std::size_t weight_format_count = 6;

template <class Format>
inline constexpr WeightFormat weight_format_of = WeightFormat::ternary;
template <>
inline constexpr WeightFormat weight_format_of<Binary> = WeightFormat::binary;
template <>
inline constexpr WeightFormat weight_format_of<TernaryCompact> = WeightFormat::ternary_compact;

// One slot: how a family runs one format.
struct FormatKernels {
  MatmulKernel matmul = nullptr;
  // The execution layout a layer of this format stores for this family (PackedWeightsView::group_rows).
  std::size_t group_rows = 1;
  // False where the family has no kernel of its own for the format and the shared fallback is bound instead.
  bool native = false;
  // Batches from this size on take the GEMM path (weights unpacked once per panel, reused across tokens), smaller
  // ones the GEMV (memory bound, streams the weights); 0: one path for every batch (the scalar reference).
  std::size_t gemm_min_batch = 0;
};

// One row of the grid: a family's activation quantization and one slot per format, every slot filled.
struct KernelTable {
  Isa isa = Isa::scalar;
  AbsmaxKernel absmax = nullptr;
  QuantizeRowKernel quantize_row = nullptr;
  FormatKernels formats[weight_format_count] = {};

  constexpr const FormatKernels& operator[](WeightFormat format) const noexcept {
    return formats[static_cast<std::size_t>(format)];
  }
};

// Keeps the compiler from fusing `value` into a following addition (a*b + c -> fma would round once instead
// of twice and break bit-exactness between families). Works for float and for SIMD vector types. GCC and Clang
// contract by default (-ffp-contract=fast / on); MSVC before Visual Studio 2022 17.0 did by default, and still
// does under /fp:contract and /fp:fast: there a volatile store and load forces the rounded product.
template <class T>
inline T no_contract(T value) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && BITLINEAR_ARCH_X86_64
  __asm__("" : "+v"(value));
#elif (defined(__GNUC__) || defined(__clang__)) && BITLINEAR_ARCH_AARCH64
  __asm__("" : "+w"(value));
#else
  volatile T barrier = value;
  value = barrier;
#endif
  return value;
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
