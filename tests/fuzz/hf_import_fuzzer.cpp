// Structured libFuzzer target for the Hugging Face BitNet import (ternary_from_hf_packed). The input is decoded
// into a call: packed_rows, in_features, weight_scale bits, convention, bias, budget and the packed bytes. The
// import must throw std::invalid_argument exactly when the call is invalid (a field value 3, a bad scale, a
// layer beyond the budget) and otherwise build a layer whose codes are transformers' unpacking of the bytes,
// whose weight_scale follows the convention, and whose outputs equal a layer built from the same codes through
// from_packed, bit for bit. Build and run: .ci/steps/40-fuzz.sh.
#include <bitlinear/io/hf_import.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr || size < 8) return 0;
  const std::size_t rows = 1 + data[0] % 8;
  const std::size_t in = 1 + (static_cast<std::size_t>(data[1]) | static_cast<std::size_t>(data[2] & 3) << 8);  // 1..1024
  std::uint32_t scale_bits = 0;
  std::memcpy(&scale_bits, data + 3, 4);
  float scale = 0.0f;
  std::memcpy(&scale, &scale_bits, 4);
  const std::uint8_t flags = data[7];
  const auto convention = (flags & 1) ? bitlinear::HfScaleConvention::multiply : bitlinear::HfScaleConvention::divide;
  const bool with_bias = (flags & 2) != 0;
  bitlinear::HfImportOptions options;
  if (flags & 4) options.max_weight_bytes = static_cast<std::size_t>(data[0]) * 64;
  // Packed bytes: the rest of the input, repeated to fill rows * in bytes.
  const std::uint8_t* body = data + 8;
  const std::size_t body_size = size - 8;
  if (body_size == 0) return 0;
  std::vector<std::uint8_t> packed(rows * in);
  for (std::size_t i = 0; i < packed.size(); ++i) packed[i] = body[i % body_size];
  std::vector<float> bias(4 * rows);
  for (std::size_t j = 0; j < bias.size(); ++j) bias[j] = static_cast<float>(static_cast<int>(body[j % body_size]) - 128) / 16.0f;

  bool has_field_3 = false;
  for (std::uint8_t b : packed) {
    for (int i = 0; i < 4; ++i) has_field_3 |= ((b >> (2 * i)) & 3) == 3;
  }
  // The layer's beta (1 / scale for divide) must itself have a finite reciprocal (the ternary epilogue divides by
  // 1 / beta): a huge scale makes beta subnormal and 1 / beta overflow.
  const float expected_beta = convention == bitlinear::HfScaleConvention::divide ? 1.0f / scale : scale;
  const bool scale_ok = std::isfinite(scale) && scale > 0.0f && std::isfinite(1.0f / scale) &&
                        std::isfinite(1.0f / expected_beta);
  const std::size_t bytes = 4 * rows * bitlinear::Ternary::packed_row_bytes(in);
  const bool valid = !has_field_3 && scale_ok && bytes <= options.max_weight_bytes;
  try {
    const bitlinear::TernaryLinear layer = bitlinear::ternary_from_hf_packed(
        packed.data(), rows, in, scale, convention, with_bias ? bias.data() : nullptr, options);
    if (!valid) std::abort();  // accepted an invalid call
    const float beta = convention == bitlinear::HfScaleConvention::divide ? 1.0f / scale : scale;
    if (!(layer.weight_scale() == beta) || layer.out_features() != 4 * rows || layer.in_features() != in) std::abort();
    // transformers' unpack_weights: code row i * rows + j = ((packed[j] >> 2i) & 3) - 1.
    std::vector<std::int8_t> codes(4 * rows * in);
    for (std::size_t r = 0; r < 4 * rows; ++r) {
      for (std::size_t k = 0; k < in; ++k) codes[r * in + k] = static_cast<std::int8_t>(((packed[(r % rows) * in + k] >> (2 * (r / rows))) & 3) - 1);
    }
    if (layer.unpacked_weights() != codes) std::abort();
    std::vector<std::uint8_t> canonical(bitlinear::packed_size<bitlinear::Ternary>(4 * rows, in));
    bitlinear::pack_codes<bitlinear::Ternary>(codes.data(), 4 * rows, in, canonical.data());
    std::vector<float> scaled_bias = bias;
    if (convention == bitlinear::HfScaleConvention::multiply) {
      for (float& b : scaled_bias) b *= scale;
    }
    bool bias_finite = true;
    for (float b : scaled_bias) bias_finite &= std::isfinite(b);
    if (!bias_finite) return 0;  // (then the import must have thrown: handled by the catch below)
    const auto reference = bitlinear::TernaryLinear::from_packed(canonical.data(), canonical.size(), 4 * rows, in, beta,
                                                                 with_bias ? scaled_bias.data() : nullptr);
    std::vector<float> x(2 * in), y1(8 * rows), y2(8 * rows);
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = static_cast<float>(static_cast<int>(body[(k * 7) % body_size]) - 100) / 8.0f;
    layer.forward(x.data(), 2, y1.data());
    reference.forward(x.data(), 2, y2.data());
    if (std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) != 0) std::abort();
  } catch (const std::invalid_argument&) {
    if (valid) {
      // A valid call may still fail on a bias that overflows when scaled (multiply), and nothing else.
      bool bias_overflow = false;
      if (with_bias && convention == bitlinear::HfScaleConvention::multiply) {
        for (float b : bias) bias_overflow |= !std::isfinite(b * scale);
      }
      if (!bias_overflow) std::abort();
    }
  }
  return 0;
}
