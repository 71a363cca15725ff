// ggml's reference dequantizers of the group-scaled ternary / 1-bit GGUF types, transcribed literally from their
// description in ggml-quants.c (ggml-org/ggml d99724f) for the tests, independently of the library's decoders;
// random rows of those types; and ggml's Q8_K activation quantizer (quantize_row_q8_K_ref with its helper
// nearest_int, ggml-quants.c in ggml-org/llama.cpp), transcribed step by step.
#pragma once

#include <bitlinear/io/gguf_blocks.hpp>
#include <bitlinear/quantize.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace ggml_reference {

using bitlinear::GgufBlockType;

// fp16 by its definition: (-1)^s * 2^(e - 15) * (1 + m / 1024), or 2^-14 * (m / 1024) for e = 0.
inline float fp16_by_definition(std::uint16_t h) {
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  const float sign = (h & 0x8000) != 0 ? -1.0f : 1.0f;
  if (e == 0x1f) return m == 0 ? sign * INFINITY : NAN;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -24);
  return sign * std::ldexp(static_cast<float>(1024 + m), e - 25);
}

inline std::uint16_t read_half(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }

// ggml's dequantizers, one weight at a time in ggml's output order.
inline std::vector<float> dequantize_reference(GgufBlockType type, const std::vector<std::uint8_t>& bytes, std::size_t count) {
  std::vector<float> y;
  const auto info = bitlinear::gguf_block_info(type);
  for (std::size_t b = 0; b < count / info.block_weights; ++b) {
    const std::uint8_t* x = bytes.data() + b * info.block_bytes;
    if (type == GgufBlockType::tq2_0) {
      const float d = fp16_by_definition(read_half(x + 64));
      for (std::size_t j = 0; j < 64; j += 32)
        for (int l = 0; l < 4; ++l)
          for (std::size_t m = 0; m < 32; ++m) y.push_back(static_cast<float>(((x[j + m] >> (l * 2)) & 3) - 1) * d);
    } else if (type == GgufBlockType::tq1_0) {
      const float d = fp16_by_definition(read_half(x + 52));
      const std::uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
      auto digit = [&](std::uint8_t v, int n) {
        const std::uint8_t q = static_cast<std::uint8_t>(v * pow3[n]);
        return static_cast<std::int16_t>((static_cast<std::uint16_t>(q) * 3) >> 8);
      };
      for (int n = 0; n < 5; ++n)
        for (std::size_t m = 0; m < 32; ++m) y.push_back(static_cast<float>(digit(x[m], n) - 1) * d);
      for (int n = 0; n < 5; ++n)
        for (std::size_t m = 0; m < 16; ++m) y.push_back(static_cast<float>(digit(x[32 + m], n) - 1) * d);
      for (int n = 0; n < 4; ++n)
        for (std::size_t j = 0; j < 4; ++j) y.push_back(static_cast<float>(digit(x[48 + j], n) - 1) * d);
    } else if (type == GgufBlockType::q1_0) {
      const float d = fp16_by_definition(read_half(x));
      for (std::size_t j = 0; j < 128; ++j) y.push_back(((x[2 + j / 8] >> (j % 8)) & 1) != 0 ? d : -d);
    } else {
      const float d = fp16_by_definition(read_half(x));
      for (std::size_t j = 0; j < 64; ++j) y.push_back(static_cast<float>(((x[2 + j / 4] >> ((j % 4) * 2)) & 3) - 1) * d);
    }
  }
  return y;
}

// Random blocks: every code byte random, every d a random finite fp16 of either sign.
inline std::vector<std::uint8_t> random_row(GgufBlockType type, std::size_t n, std::mt19937& rng) {
  const auto info = bitlinear::gguf_block_info(type);
  std::vector<std::uint8_t> bytes(bitlinear::gguf_block_row_bytes(type, n));
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
  const std::size_t d_at = type == GgufBlockType::tq2_0 ? 64 : type == GgufBlockType::tq1_0 ? 52 : 0;
  for (std::size_t b = 0; b < n / info.block_weights; ++b) {
    std::uint16_t h;
    do h = static_cast<std::uint16_t>(rng()); while (((h >> 10) & 0x1f) == 0x1f);
    bytes[b * info.block_bytes + d_at] = static_cast<std::uint8_t>(h);
    bytes[b * info.block_bytes + d_at + 1] = static_cast<std::uint8_t>(h >> 8);
  }
  return bytes;
}

// --- Q8_K: quantize_row_q8_K_ref ------------------------------------------------------------------------------
// Each float operation of the C source is one exact_* call here, so that the test's own flags (-ffast-math,
// -ffp-contract=fast) cannot fuse or reorder them; ggml's code assumes IEEE float arithmetic in round-to-nearest
// with subnormals (no flush-to-zero), which the guard pins.

struct BlockQ8K {
  float d = 0.0f;
  std::int8_t qs[256] = {};
  std::int16_t bsums[16] = {};  // sums of 16 consecutive qs (not used by bitlinear)
};

// nearest_int: adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits (round half to even in the
// default rounding mode). ggml asserts |fval| <= 4194303; the case the assert excludes (an infinite iscale) is
// computed anyway, as a build without asserts does.
inline int q8k_nearest_int(float fval) {
  const float val = bitlinear::detail::exact_add(fval, 12582912.0f);
  std::int32_t i = 0;
  std::memcpy(&i, &val, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// k a multiple of 256.
inline void quantize_row_q8_K_ref(const float* x, BlockQ8K* y, std::size_t k) {
  namespace det = bitlinear::detail;
  const det::FpEnvironmentGuard fp_environment;
  for (std::size_t i = 0; i < k / 256; ++i, x += 256) {
    float max = 0.0f, amax = 0.0f;
    for (std::size_t j = 0; j < 256; ++j) {
      const float ax = det::float_from_bits(det::float_bits(x[j]) & 0x7fffffffu);  // fabsf
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (!(amax != 0.0f)) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      continue;
    }
    const float iscale = det::exact_div(-127.0f, max);
    for (std::size_t j = 0; j < 256; ++j) {
      const int v = q8k_nearest_int(det::exact_mul(iscale, x[j]));
      y[i].qs[j] = static_cast<std::int8_t>(v < 127 ? v : 127);  // MIN(127, v), then C's conversion to int8
    }
    for (std::size_t j = 0; j < 16; ++j) {
      int sum = 0;
      for (std::size_t l = 0; l < 16; ++l) sum += y[i].qs[j * 16 + l];
      y[i].bsums[j] = static_cast<std::int16_t>(sum);
    }
    y[i].d = det::exact_div(1.0f, iscale);
  }
}

}  // namespace ggml_reference
