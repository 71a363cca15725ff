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

// The kernel grid: formats (columns) x families (rows). grid.hpp builds every row complete, so a layer takes its
// slot once, at construction, and calls it with no switch per call.
enum class WeightFormat : std::uint8_t { ternary, binary, ternary_compact };
inline constexpr std::size_t weight_format_count = 3;

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
