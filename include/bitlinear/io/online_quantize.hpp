// bitlinear: ternary quantization of a floating-point safetensors weight (F32, F16, BF16, F64) row by row, straight
// from the file's bytes into a layer's execution layout: the online checkpoints of transformers' AutoBitLinear.
//
// Exactly the rule of quantize_weights<Ternary> (detail::WeightRule, quantize.hpp), without its float32 copy of the
// matrix:
//   pass 1 (serial, index order, as the reference sums): every weight finite, the rule's sums (WeightSums) row by
//          row: beta = max(float(sum_abs / n), 1e-5f), s_w = 1 / beta;
//   pass 2 (rows in parallel): the rule's code of each weight, packed into canonical blocks.
// Each pass converts one row at a time into a buffer of in_features floats (F64 rounds to float, out of range to
// infinity, as safetensors_to_float does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../format.hpp"
#include "../detail/exact_float.hpp"
#include "../detail/fp_environment.hpp"
#include "../kernels/interface.hpp"
#include "../quantize.hpp"
#include "layer_builder.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Pass 1: the weight rule (quantize.hpp) of the whole [rows, in] tensor at p, summed row by row in index order,
// in the default FP environment. Throws std::invalid_argument naming the first non-finite weight (flat index), with
// quantize_weights' message.
inline WeightRule<true> ternary_rule_of(FloatDtype dtype, const std::uint8_t* p, std::size_t rows, std::size_t in) {
  std::vector<float> row(in);
  const std::size_t row_bytes = in * float_dtype_size(dtype);
  const FpEnvironmentGuard fp_environment;
  WeightSums sums;
  for (std::size_t r = 0; r < rows; ++r) {
    float_row(dtype, p + r * row_bytes, in, row.data());
    for (std::size_t k = 0; k < in; ++k) {
      if (!is_finite_bits(row[k])) {
        fail_invalid_argument("bitlinear: weight[" + std::to_string(r * in + k) + "] = " + std::to_string(row[k]) +
                              " is not finite; weights must be finite numbers");
      }
    }
    sums.add(row.data(), in);
  }
  return WeightRule<true>(sums);
}

// Pass 2: rows [r_begin, r_end) quantized with `rule` into the execution layout `w`. `row` is scratch of
// Ternary::packed_row_bytes(in) * 4 floats (one row, padded to whole blocks).
inline void ternary_quantize_rows(FloatDtype dtype, const std::uint8_t* p, std::size_t in, const WeightRule<true>& rule,
                                  const PackedWeightsView& w, std::size_t r_begin, std::size_t r_end,
                                  float* row) noexcept {
  const FpEnvironmentGuard fp_environment;  // each pool thread pins its own environment
  const std::size_t row_bytes = in * float_dtype_size(dtype);
  const std::size_t blocks = Ternary::packed_row_bytes(in) / packed_block_bytes;
  for (std::size_t k = in; k < blocks * Ternary::weights_per_block; ++k) row[k] = 0.0f;  // padding: code 0
  for (std::size_t r = r_begin; r < r_end; ++r) {
    float_row(dtype, p + r * row_bytes, in, row);
    for (std::size_t b = 0; b < blocks; ++b) {
      const float* x = row + b * Ternary::weights_per_block;
      std::uint8_t* out = block_in_layout(w, r, b);
      for (std::size_t t = 0; t < packed_block_bytes; ++t) {
        unsigned byte = 0;
        for (unsigned i = 0; i < 4; ++i) {
          // The stored field is code + 1 (0, 1, 2).
          byte |= static_cast<unsigned>(rule.code(x[64 * i + t]) + 1) << (2 * i);
        }
        out[t] = static_cast<std::uint8_t>(byte);
      }
    }
  }
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
