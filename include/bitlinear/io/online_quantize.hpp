// bitlinear: ternary quantization of a floating-point safetensors weight (F32, F16, BF16, F64) row by row, straight
// from the file's bytes into a layer's execution layout: the online checkpoints of transformers' AutoBitLinear.
//
// Exactly the rule of quantize_weights<Ternary> (quantize.hpp), without its float32 copy of the matrix:
//   pass 1 (serial, index order, as the reference sums): every weight finite, sum_abs += |w| in double;
//          beta = max(float(sum_abs / n), 1e-5f), s_w = 1 / beta;
//   pass 2 (rows in parallel): code = +1 if w * s_w > 0.5, -1 if < -0.5, else 0, packed into canonical blocks.
// Each pass converts one row at a time into a buffer of in_features floats (F64 rounds to float, out of range to
// infinity, as safetensors_to_float does).
#pragma once

#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "../format.hpp"
#include "../detail/exact_float.hpp"
#include "../detail/fp_environment.hpp"
#include "../kernels/interface.hpp"
#include "layer_builder.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

enum class FloatDtype { f32, f16, bf16, f64 };

// The dtype of a floating tensor; throws std::invalid_argument (as safetensors_to_float does) for any other.
inline FloatDtype float_dtype_of(const SafetensorsTensor& t) {
  if (t.dtype == "F32") return FloatDtype::f32;
  if (t.dtype == "F16") return FloatDtype::f16;
  if (t.dtype == "BF16") return FloatDtype::bf16;
  if (t.dtype == "F64") return FloatDtype::f64;
  throw_bad_safetensors("tensor \"" + t.name + "\" has dtype " + t.dtype +
                        "; a floating-point dtype (F32, F16, BF16, F64) is needed");
}

// IEEE half -> float, exactly.
inline float half_to_float(std::uint32_t h) noexcept {
  const std::uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1Fu) return float_from_bits(sign | 0x7F800000u | (mantissa << 13));  // inf / NaN
  if (exponent != 0) return float_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return float_from_bits(sign);
  std::uint32_t e = 0;  // subnormal half: normalize
  while ((mantissa & 0x400u) == 0) mantissa <<= 1, ++e;
  return float_from_bits(sign | ((113u - e) << 23) | ((mantissa & 0x3FFu) << 13));
}

// n little-endian values of `dtype` at p -> out.
inline void float_row(FloatDtype dtype, const std::uint8_t* p, std::size_t n, float* out) noexcept {
  switch (dtype) {
    case FloatDtype::f32:
      for (std::size_t i = 0; i < n; ++i, p += 4) {
        out[i] = float_from_bits(static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                                 static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24);
      }
      break;
    case FloatDtype::bf16:
      for (std::size_t i = 0; i < n; ++i, p += 2) {
        out[i] = float_from_bits((static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8) << 16);
      }
      break;
    case FloatDtype::f16:
      for (std::size_t i = 0; i < n; ++i, p += 2) {
        out[i] = half_to_float(static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8);
      }
      break;
    case FloatDtype::f64:
      for (std::size_t i = 0; i < n; ++i, p += 8) {
        std::uint64_t bits = 0;
        for (int b = 7; b >= 0; --b) bits = bits << 8 | p[b];
        double d;
        std::memcpy(&d, &bits, 8);
        const double float_max = static_cast<double>(std::numeric_limits<float>::max());
        if (d > float_max || d < -float_max) {  // out of float range: converting would be undefined behaviour
          out[i] = d > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
        } else {
          out[i] = static_cast<float>(d);  // also NaN -> NaN
        }
      }
      break;
  }
}

inline std::size_t float_dtype_size(FloatDtype dtype) noexcept {
  return dtype == FloatDtype::f32 ? 4 : dtype == FloatDtype::f64 ? 8 : 2;
}

// Pass 1: beta of the whole [rows, in] tensor at p, in the default FP environment. Throws std::invalid_argument
// naming the first non-finite weight (flat index), with quantize_weights' message.
inline float ternary_beta_of(FloatDtype dtype, const std::uint8_t* p, std::size_t rows, std::size_t in) {
  std::vector<float> row(in);
  const std::size_t row_bytes = in * float_dtype_size(dtype);
  const FpEnvironmentGuard fp_environment;
  double sum_abs = 0.0;
  for (std::size_t r = 0; r < rows; ++r) {
    float_row(dtype, p + r * row_bytes, in, row.data());
    for (std::size_t k = 0; k < in; ++k) {
      if (!is_finite_bits(row[k])) {
        fail_invalid_argument("bitlinear: weight[" + std::to_string(r * in + k) + "] = " + std::to_string(row[k]) +
                              " is not finite; weights must be finite numbers");
      }
      const double w = static_cast<double>(row[k]);
      sum_abs = opaque(sum_abs + (w < 0.0 ? -w : w));  // index order, as quantize_weights sums
    }
  }
  const double n = static_cast<double>(rows) * static_cast<double>(in);
  const float mean_abs = opaque(static_cast<float>(opaque(sum_abs / opaque(n))));
  return mean_abs > 1e-5f ? mean_abs : 1e-5f;
}

// 1 / beta, computed as quantize_weights computes s_w.
inline float reciprocal_in_default_environment(float beta) noexcept {
  const FpEnvironmentGuard fp_environment;
  return opaque(exact_div(1.0f, beta));
}

// Pass 2: rows [r_begin, r_end) quantized with s_w = 1 / beta into the execution layout `w`. `row` is scratch of
// Ternary::packed_row_bytes(in) * 4 floats (one row, padded to whole blocks).
inline void ternary_quantize_rows(FloatDtype dtype, const std::uint8_t* p, std::size_t in, float s_w,
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
          // clamp(rne(v), -1, 1) is +1 exactly when v > 0.5 and -1 exactly when v < -0.5 (rne(+-0.5) = 0).
          const float v = exact_mul(x[64 * i + t], s_w);
          byte |= (v > 0.5f ? 2u : (v < -0.5f ? 0u : 1u)) << (2 * i);
        }
        out[t] = static_cast<std::uint8_t>(byte);
      }
    }
  }
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
