// Group-scaled layers (grouped_layer.hpp) through the public API: every kernel family this CPU runs against the
// scalar family bit for bit (odd shapes and tails, every group size, row ranges, batches across the GEMV/GEMM
// switch, thread counts, per-token / per-tensor / per-block / per-super-block activations, non-finite rows, code
// +2, unaligned buffers); against a float64 evaluation of the dequantized product; bad input; save / load (old
// versions too); conversions; per-block and per-super-block quantization against literal transcriptions of
// ggml's references (Q8_0, Q8_K); fp16 conversions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <bitlinear/serialize.hpp>

#include "ggml_reference.hpp"
#include "test_util.hpp"

namespace {

namespace det = bitlinear::detail;
using bitlinear::ActivationScale;
using bitlinear::Binary;
using bitlinear::GroupedLinear;
using bitlinear::Isa;
using bitlinear::Options;
using bitlinear::Ternary;
using bitlinear::TernaryCompact;
using bitlinear_test::same_bits;

const ActivationScale kModes[] = {ActivationScale::per_token, ActivationScale::per_tensor, ActivationScale::per_block,
                                  ActivationScale::per_superblock};

const char* mode_label(ActivationScale mode) {
  switch (mode) {
    case ActivationScale::per_token: return "per_token";
    case ActivationScale::per_tensor: return "per_tensor";
    case ActivationScale::per_block: return "per_block";
    case ActivationScale::per_superblock: return "per_superblock";
  }
  return "unknown";
}

bool has_block_scales(ActivationScale mode) {
  return mode == ActivationScale::per_block || mode == ActivationScale::per_superblock;
}

// Expects fn() to throw std::invalid_argument whose message contains `needle`.
void expect_invalid(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning \"" << needle << "\"";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

// Random canonical codes for Format: ternary with +2 if `plus_two`, compact ternary, or binary.
template <class Format>
std::vector<std::uint8_t> random_packed(std::size_t out, std::size_t in, std::uint32_t seed, bool plus_two) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> packed(bitlinear::packed_size<Format>(out, in));
  const std::size_t row_bytes = Format::packed_row_bytes(in);
  for (std::size_t j = 0; j < out; ++j) {
    std::uint8_t* row = packed.data() + j * row_bytes;
    for (std::size_t i = 0; i < row_bytes; ++i) row[i] = Format::zero_byte;
    for (std::size_t k = 0; k < in; ++k) {
      int code = 0;
      if (std::is_same<Format, Binary>::value) {
        code = rng() % 2 == 0 ? -1 : 1;
      } else {
        code = static_cast<int>(rng() % (plus_two && std::is_same<Format, Ternary>::value ? 4 : 3)) - 1;
      }
      Format::set_code(row, k, code);
    }
  }
  return packed;
}

std::vector<float> random_scales(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(0.001f, 0.1f);
  std::vector<float> s(n);
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = dist(rng);
    if (i % 7 == 3) s[i] = -s[i];  // any finite value is allowed
    if (i % 11 == 5) s[i] = 0.0f;
  }
  return s;
}

template <class Format>
GroupedLinear<Format> packed_layer(std::size_t out, std::size_t in, std::size_t group, std::uint32_t seed, Isa isa,
                                   ActivationScale mode, bool plus_two = true) {
  const auto packed = random_packed<Format>(out, in, seed, plus_two);
  const auto scales = random_scales(out * (in / group), seed + 1);
  const auto bias = bitlinear_test::random_floats(out, seed + 2);
  Options options;
  options.isa = isa;
  options.activation_scale = mode;
  return GroupedLinear<Format>::from_packed(packed.data(), packed.size(), out, in, group, scales.data(), scales.size(),
                                            bias.data(), options);
}

std::vector<std::size_t> group_sizes_for(std::size_t in) {
  std::vector<std::size_t> sizes;
  for (std::size_t g : {32u, 64u, 128u, 256u}) {
    if (in % g == 0 && g != in) sizes.push_back(g);
  }
  sizes.push_back(in);
  return sizes;
}

// The family's layer against the scalar one: forward (unaligned x and y), forward_quantized over a split of the
// rows, and forward on pools of 1-3 threads; every output bit for bit.
template <class Format>
void expect_family_matches_scalar(Isa isa, std::size_t out, std::size_t in, std::size_t group, std::size_t batch,
                                  ActivationScale mode, std::uint32_t seed, bool with_pool) {
  const auto reference = packed_layer<Format>(out, in, group, seed, Isa::scalar, mode);
  const auto layer = packed_layer<Format>(out, in, group, seed, isa, mode);
  ASSERT_EQ(layer.isa(), isa);
  ASSERT_EQ(layer.native_kernel(), det::kernel_table(isa)[det::grouped_format_of<Format>].native);
  auto x = bitlinear_test::random_floats(batch * in, seed + 3, -3.0f, 3.0f);
  if (batch > 2) {
    for (std::size_t k = 0; k < in; k += 5) x[in + k] *= 1000.0f;  // one row with a wide range
  }
  std::vector<float> y_ref(batch * out);
  reference.forward(x.data(), batch, y_ref.data());
  const std::string where = bitlinear_test::isa_label(isa) + " " + Format::name + " out=" + std::to_string(out) +
                            " in=" + std::to_string(in) + " group=" + std::to_string(group) + " batch=" +
                            std::to_string(batch) + " " + mode_label(mode);
  bitlinear_test::Misaligned<float> x_unaligned(batch * in, 4), y_unaligned(batch * out, 8);
  std::copy(x.begin(), x.end(), x_unaligned.data());
  layer.forward(x_unaligned.data(), batch, y_unaligned.data());
  for (std::size_t i = 0; i < batch * out; ++i) {
    ASSERT_TRUE(same_bits(y_unaligned.data()[i], y_ref[i])) << where << " at " << i << ": " << y_unaligned.data()[i]
                                                            << " vs " << y_ref[i];
  }
  // Row ranges through forward_quantized (the family's quantization, a split at odd places).
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  std::vector<float> y_rows(batch * out, -7.0f);
  const std::size_t cut1 = out / 3, cut2 = out - out / 4;
  layer.forward_quantized(acts.view(), cut1, cut2, y_rows.data(), out);
  layer.forward_quantized(acts.view(), 0, cut1, y_rows.data(), out);
  layer.forward_quantized(acts.view(), cut2, out, y_rows.data(), out);
  for (std::size_t i = 0; i < batch * out; ++i) {
    ASSERT_TRUE(same_bits(y_rows[i], y_ref[i])) << where << " row ranges at " << i;
  }
  // An engine's own split: RowChunks sized for the layer, chunks in any order.
  bitlinear::RowChunks chunks(layer, 3);
  std::vector<float> y_chunks(batch * out, -7.0f);
  for (std::size_t i = chunks.chunks(); i-- > 0;) {
    const bitlinear::RowRange rows = chunks.chunk(i);
    layer.forward_quantized(acts.view(), rows.begin, rows.end, y_chunks.data(), out);
  }
  for (std::size_t i = 0; i < batch * out; ++i) {
    ASSERT_TRUE(same_bits(y_chunks[i], y_ref[i])) << where << " RowChunks at " << i;
  }
  if (with_pool) {
    for (std::size_t threads : {1u, 2u, 3u}) {
      bitlinear::ThreadPool pool(threads);
      std::vector<float> y_pool(batch * out);
      layer.forward(x.data(), batch, y_pool.data(), pool);
      for (std::size_t i = 0; i < batch * out; ++i) {
        ASSERT_TRUE(same_bits(y_pool[i], y_ref[i])) << where << " threads=" << threads << " at " << i;
      }
    }
  }
}

template <class Format>
void family_sweep(Isa isa) {
  // in_features around the 32-weight blocks, the 256 / 320 / 512-weight packed blocks and odd tails; batches on
  // both sides of every slot's GEMV/GEMM switch.
  const std::size_t ins[] = {1, 7, 31, 32, 33, 64, 100, 128, 160, 255, 256, 320, 384, 512, 640, 1000, 1024, 1280};
  const std::size_t outs[] = {1, 3, 17, 64, 65};
  std::uint32_t seed = 1000;
  std::size_t pick = 0;
  for (std::size_t in : ins) {
    for (std::size_t group : group_sizes_for(in)) {
      for (ActivationScale mode : kModes) {
        const std::size_t out = outs[pick % 5];
        const std::size_t batch = 1 + pick % 9;
        expect_family_matches_scalar<Format>(isa, out, in, group, batch, mode, ++seed, pick % 16 == 0);
        if (::testing::Test::HasFatalFailure()) return;
        ++pick;
      }
    }
  }
  for (std::size_t batch : {4u, 5u, 16u, 33u, 64u, 128u}) {
    for (ActivationScale mode : kModes) {
      expect_family_matches_scalar<Format>(isa, 67, 160, batch % 2 == 0 ? 32 : 160, batch, mode, ++seed, batch == 128);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  expect_family_matches_scalar<Format>(isa, 130, 2560, 128, 3, ActivationScale::per_block, ++seed, true);
  // Per super-block: every group size and per row (tails: 300, 1000 are not multiples of 256), GEMV and GEMM.
  for (std::size_t group : {32u, 64u, 128u, 256u, 2560u}) {
    expect_family_matches_scalar<Format>(isa, 71, 2560, group, 3, ActivationScale::per_superblock, ++seed, true);
    expect_family_matches_scalar<Format>(isa, 33, 2560, group, 65, ActivationScale::per_superblock, ++seed, false);
  }
  for (std::size_t in : {300u, 1000u, 257u}) {
    for (std::size_t batch : {1u, 2u, 5u, 9u, 40u}) {
      const bool with_pool = batch == 40;
      expect_family_matches_scalar<Format>(isa, 19, in, in, batch, ActivationScale::per_superblock, ++seed, with_pool);
    }
  }
}

TEST(Grouped, EveryFamilyMatchesScalarBitForBit) {
  for (Isa isa : bitlinear_test::runnable_isas()) {
    SCOPED_TRACE(bitlinear_test::isa_label(isa));
    family_sweep<Ternary>(isa);
    family_sweep<Binary>(isa);
    family_sweep<TernaryCompact>(isa);
    if (HasFatalFailure()) return;
  }
}

// A NaN or infinity in one row of x makes that row's outputs NaN and leaves every other row as it is without it
// (per token, per block); per tensor, the whole batch is NaN.
TEST(Grouped, NonFiniteRowsStayInTheirRow) {
  for (Isa isa : bitlinear_test::runnable_isas()) {
    for (ActivationScale mode : kModes) {
      const std::size_t out = 9, in = 600, batch = 5;  // 3 super-blocks, the last one short
      const auto layer = packed_layer<Ternary>(out, in, in, 77, isa, mode);
      auto x = bitlinear_test::random_floats(batch * in, 78);
      std::vector<float> y_clean(batch * out), y(batch * out);
      layer.forward(x.data(), batch, y_clean.data());
      x[2 * in + 150] = std::numeric_limits<float>::quiet_NaN();
      x[3 * in + 7] = -std::numeric_limits<float>::infinity();
      layer.forward(x.data(), batch, y.data());
      for (std::size_t t = 0; t < batch; ++t) {
        for (std::size_t j = 0; j < out; ++j) {
          const float v = y[t * out + j];
          if (mode == ActivationScale::per_tensor || t == 2 || t == 3) {
            EXPECT_TRUE(bitlinear_test::is_nan(v)) << mode_label(mode) << " t=" << t;
          } else {
            EXPECT_TRUE(same_bits(v, y_clean[t * out + j])) << mode_label(mode) << " t=" << t;
          }
        }
      }
      if (has_block_scales(mode)) {
        bitlinear::QuantizedActivations acts;
        layer.quantize(x.data(), batch, in, acts);
        const bitlinear::ActivationsView v = acts.view();
        EXPECT_EQ(v.block_size, mode == ActivationScale::per_block ? 32u : 256u);
        EXPECT_TRUE(bitlinear_test::is_nan(v.scale[2]));
        EXPECT_TRUE(bitlinear_test::is_nan(v.scale[3]));
        EXPECT_TRUE(same_bits(v.scale[1], 1.0f));
        const std::size_t blocks = (in + v.block_size - 1) / v.block_size;
        for (std::size_t b = 0; b < blocks; ++b) EXPECT_TRUE(same_bits(v.block_scale[2 * v.block_stride + b], 0.0f));
        for (std::size_t b = 0; b < blocks; ++b) EXPECT_TRUE(same_bits(v.block_scale[3 * v.block_stride + b], 0.0f));
        for (std::size_t b = 0; b < blocks; ++b) EXPECT_FALSE(same_bits(v.block_scale[1 * v.block_stride + b], 0.0f));
        for (std::size_t k = 0; k < v.stride; ++k) EXPECT_EQ(v.q[2 * v.stride + k], 0);
        EXPECT_EQ(v.sum[2], 0);
      }
    }
  }
}

// The float64 value of the pinned formula on the layer's own codes, scales and quantized activations, against
// the float32 result. Bound: per segment the scale c = w_scale * block_scale is one rounding (relative u = 2^-24),
// each lane's fma chain over m segments and the 4-level lane tree, the division and the bias add are a recursive
// float sum of at most m + 6 roundings, each at most u times the running sum of absolute values, so
//   |y - y64| <= (m + 7) u (A + |bias|),   A = sum_k |code_k * w_scale * q_k * block_scale| / s_x,
// with m = in_features / 32 <= 40 here: (m + 7) u < 3e-6 < 1e-5. The check uses 1e-5 * (A + |bias|) per output,
// and per row of y: max_j |y - y64| <= 1e-5 * max_j |y64| (measured around 2e-7 on 256x2560 layers).
template <class Format>
void expect_close_to_float64(ActivationScale mode, std::size_t out, std::size_t in, std::size_t group,
                             std::size_t batch, std::uint32_t seed) {
  const auto layer = packed_layer<Format>(out, in, group, seed, Isa::automatic, mode);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 5, -2.0f, 2.0f);
  std::vector<float> y(batch * out);
  layer.forward(x.data(), batch, y.data());
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  const bitlinear::ActivationsView a = acts.view();
  const auto codes = layer.unpacked_weights();
  const auto& scales = layer.group_scales();
  double worst = 0.0;
  for (std::size_t t = 0; t < batch; ++t) {
    double row_max = 0.0, row_err = 0.0;  // per row: max |y - y64| <= 1e-5 * max |y64|
    for (std::size_t j = 0; j < out; ++j) {
      double sum = 0.0, magnitude = 0.0;
      for (std::size_t k = 0; k < in; ++k) {
        double term = static_cast<double>(codes[j * in + k]) * scales[j * layer.groups() + k / group] * a.q[t * a.stride + k];
        if (a.block_size != 0) term *= a.block_scale[t * a.block_stride + k / a.block_size];
        sum += term;
        magnitude += std::fabs(term);
      }
      const double bias = layer.bias()[j];
      const double y64 = sum / a.scale[t] + bias;
      const double bound = 1e-5 * (magnitude / a.scale[t] + std::fabs(bias));
      const double err = std::fabs(static_cast<double>(y[t * out + j]) - y64);
      ASSERT_LE(err, bound) << Format::name << " " << mode_label(mode) << " t=" << t << " j=" << j;
      if (bound > 0) worst = std::max(worst, err / bound * 1e-5);
      row_max = std::max(row_max, std::fabs(y64));
      row_err = std::max(row_err, err);
    }
    ASSERT_LE(row_err, 1e-5 * row_max) << Format::name << " " << mode_label(mode) << " row " << t;
  }
  ::testing::Test::RecordProperty(std::string(Format::name) + "_" + mode_label(mode) + "_worst_relative", std::to_string(worst));
}

TEST(Grouped, CloseToFloat64OfTheDequantizedProduct) {
  for (ActivationScale mode : kModes) {
    expect_close_to_float64<Ternary>(mode, 33, 1280, 128, 3, 11);
    expect_close_to_float64<Ternary>(mode, 20, 999, 999, 2, 12);
    expect_close_to_float64<Binary>(mode, 33, 1024, 32, 3, 13);
    expect_close_to_float64<TernaryCompact>(mode, 17, 640, 64, 2, 14);
  }
  // TQ2_0-like: group 256 with ggml's Q8_K activations (block scales of either sign).
  expect_close_to_float64<Ternary>(ActivationScale::per_superblock, 64, 2560, 256, 4, 15);
  expect_close_to_float64<TernaryCompact>(ActivationScale::per_superblock, 16, 1280, 256, 3, 16);
}

// --- from_float: the per-group rule ----------------------------------------------------------------------------

TEST(Grouped, FromFloatFollowsThePerGroupRule) {
  const std::size_t out = 5, in = 256, group = 64;
  auto w = bitlinear_test::random_floats(out * in, 21);
  for (std::size_t k = 0; k < group; ++k) w[2 * in + 64 + k] = 0.0f;  // an all-zero group: scale 1e-5, codes 0
  const auto layer = GroupedLinear<Ternary>::from_float(w.data(), out, in, group);
  const auto codes = layer.unpacked_weights();
  for (std::size_t j = 0; j < out; ++j) {
    for (std::size_t g = 0; g < in / group; ++g) {
      double sum_abs = 0.0;
      for (std::size_t k = g * group; k < (g + 1) * group; ++k) sum_abs += std::fabs(static_cast<double>(w[j * in + k]));
      const float mean = static_cast<float>(sum_abs / group);
      const float scale = mean > 1e-5f ? mean : 1e-5f;
      ASSERT_TRUE(same_bits(layer.group_scales()[j * 4 + g], scale));
      const float s = det::exact_div(1.0f, scale);
      for (std::size_t k = g * group; k < (g + 1) * group; ++k) {
        const int expected = std::max(-1, std::min(1, static_cast<int>(std::nearbyint(det::exact_mul(w[j * in + k], s)))));
        ASSERT_EQ(codes[j * in + k], expected) << j << " " << k;
      }
    }
  }
  EXPECT_TRUE(same_bits(layer.group_scales()[2 * 4 + 1], 1e-5f));
  // Binary: alpha / beta per group; compact: the same codes and scales as the 2-bit form.
  const auto binary = GroupedLinear<Binary>::from_float(w.data(), out, in, group);
  const auto bcodes = binary.unpacked_weights();
  for (std::size_t j = 0; j < out; ++j) {
    for (std::size_t g = 0; g < in / group; ++g) {
      double sum = 0.0, sum_abs = 0.0;
      for (std::size_t k = g * group; k < (g + 1) * group; ++k) {
        sum += w[j * in + k];
        sum_abs += std::fabs(static_cast<double>(w[j * in + k]));
      }
      const float alpha = static_cast<float>(sum / group);
      ASSERT_TRUE(same_bits(binary.group_scales()[j * 4 + g], static_cast<float>(sum_abs / group)));
      for (std::size_t k = g * group; k < (g + 1) * group; ++k) ASSERT_EQ(bcodes[j * in + k], w[j * in + k] > alpha ? 1 : -1);
    }
  }
  const auto compact = GroupedLinear<TernaryCompact>::from_float(w.data(), out, in, group);
  EXPECT_EQ(compact.unpacked_weights(), codes);
  EXPECT_EQ(compact.group_scales(), layer.group_scales());
}

// --- conversions, code +2, bits per weight -------------------------------------------------------------------

TEST(Grouped, CompactConversionsAreExactAndRefusePlusTwo) {
  const std::size_t out = 19, in = 640, batch = 3;
  for (ActivationScale mode : kModes) {
    const auto two_bit = packed_layer<Ternary>(out, in, 128, 31, Isa::automatic, mode, /*plus_two=*/false);
    const auto compact = bitlinear::to_compact(two_bit);
    EXPECT_EQ(compact.unpacked_weights(), two_bit.unpacked_weights());
    const auto back = bitlinear::to_ternary(compact);
    EXPECT_EQ(back.packed_weights(), two_bit.packed_weights());
    const auto x = bitlinear_test::random_floats(batch * in, 32);
    std::vector<float> y2(batch * out), yc(batch * out);
    two_bit.forward(x.data(), batch, y2.data());
    compact.forward(x.data(), batch, yc.data());
    for (std::size_t i = 0; i < y2.size(); ++i) ASSERT_TRUE(same_bits(y2[i], yc[i]));
  }
  // Code +2 (field value 3): held and used by the 2-bit form, refused by the compact one.
  auto packed = random_packed<Ternary>(2, 64, 33, false);
  Ternary::set_code(packed.data() + 64, 17, 2);
  const std::vector<float> scales = {0.5f, 0.25f};
  const auto layer = GroupedLinear<Ternary>::from_packed(packed.data(), packed.size(), 2, 64, 64, scales.data(), 2);
  EXPECT_EQ(layer.unpacked_weights()[64 + 17], 2);
  std::vector<float> x(64, 0.0f), y(2);
  x[17] = 1.0f;
  layer.forward(x.data(), 1, y.data());
  EXPECT_FLOAT_EQ(y[1], 2 * 0.25f);  // q = 127, s_x = 127: 2 * 127 * 0.25 / 127
  expect_invalid([&] { (void)bitlinear::to_compact(layer); }, "row 1, weight 17 has code +2");
}

TEST(Grouped, BitsPerWeight) {
  const std::size_t out = 4, in = 2560;
  const std::vector<float> w = bitlinear_test::random_floats(out * in, 41);
  EXPECT_DOUBLE_EQ(GroupedLinear<Ternary>::from_float(w.data(), out, in, 128).bits_per_weight_fp16(), 2.125);
  EXPECT_DOUBLE_EQ(GroupedLinear<TernaryCompact>::from_float(w.data(), out, in, 128).bits_per_weight_fp16(), 1.725);
  EXPECT_DOUBLE_EQ(GroupedLinear<Binary>::from_float(w.data(), out, in, 128).bits_per_weight_fp16(), 1.125);
}

// --- fp16 scales -------------------------------------------------------------------------------------------

TEST(Grouped, Fp16ScalesConvertExactly) {
  const std::size_t out = 3, in = 64;
  const auto packed = random_packed<Binary>(out, in, 51, false);
  // Normal, subnormal (2^-24 and 0x03FF), zero, negative, largest finite.
  const std::vector<std::uint16_t> bits = {0x3C00, 0x0001, 0x03FF, 0x8000, 0xB800, 0x7BFF};
  const auto layer = GroupedLinear<Binary>::from_packed_fp16(packed.data(), packed.size(), out, in, 32, bits.data(), 6);
  const float expected[] = {1.0f, std::ldexp(1.0f, -24), std::ldexp(1023.0f, -24), -0.0f, -0.5f, 65504.0f};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_TRUE(same_bits(layer.group_scales()[i], expected[i])) << i;
  for (std::uint16_t bad : {std::uint16_t{0x7C00}, std::uint16_t{0xFC00}, std::uint16_t{0x7E00}, std::uint16_t{0x7C01}}) {
    std::vector<std::uint16_t> b = bits;
    b[4] = bad;
    expect_invalid([&] { (void)GroupedLinear<Binary>::from_packed_fp16(packed.data(), packed.size(), out, in, 32, b.data(), 6); },
                   "fp16 group scale [4]");
  }
}

// ggml's fp16 conversions (ggml-impl.h), transcribed from the facts: bit manipulation plus float operations that
// go through exact_* so that -ffast-math cannot rewrite them.
float ggml_fp16_to_fp32(std::uint16_t h) {
  const std::uint32_t w = static_cast<std::uint32_t>(h) << 16;
  const std::uint32_t sign = w & 0x80000000u;
  const std::uint32_t two_w = w + w;
  const std::uint32_t exp_offset = 0xE0u << 23;
  const float normalized = det::exact_mul(det::float_from_bits((two_w >> 4) + exp_offset), std::ldexp(1.0f, -112));
  const float denormalized = det::exact_add(det::float_from_bits((two_w >> 17) | (126u << 23)), -0.5f);
  const std::uint32_t result =
      sign | (two_w < (1u << 27) ? det::float_bits(denormalized) : det::float_bits(normalized));
  return det::float_from_bits(result);
}
std::uint16_t ggml_fp32_to_fp16(float f) {
  float base = det::exact_mul(det::exact_mul(det::float_from_bits(det::float_bits(f) & 0x7FFFFFFFu), std::ldexp(1.0f, 112)),
                              std::ldexp(1.0f, -110));
  const std::uint32_t w = det::float_bits(f);
  const std::uint32_t shl1_w = w + w;
  const std::uint32_t sign = w & 0x80000000u;
  std::uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = det::exact_add(det::float_from_bits((bias >> 1) + 0x07800000u), base);
  const std::uint32_t bits = det::float_bits(base);
  const std::uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const std::uint32_t mantissa_bits = bits & 0x00000FFFu;
  const std::uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<std::uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

TEST(Fp16, ConversionsEqualGgmlsBitForBit) {
  const det::FpEnvironmentGuard fp_environment;  // ggml's routine assumes round to nearest, no FTZ / DAZ
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto half = static_cast<std::uint16_t>(h);
    const float f = bitlinear::fp16_to_float(half);
    if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0) {
      ASSERT_TRUE(bitlinear_test::is_nan(f)) << h;
      continue;
    }
    ASSERT_EQ(det::float_bits(f), det::float_bits(ggml_fp16_to_fp32(half))) << h;
    ASSERT_EQ(bitlinear::float_to_fp16_bits(f), half) << h;  // exact round trip
  }
  std::mt19937 rng(61);
  for (int i = 0; i < 2000000; ++i) {
    std::uint32_t u = rng();
    if (i % 2 == 0) u = (u & 0x80000000u) | (0x32000000u + u % 0x16000000u);  // around the fp16 range
    const float f = det::float_from_bits(u);
    ASSERT_EQ(bitlinear::float_to_fp16_bits(f), ggml_fp32_to_fp16(f)) << std::hex << u;
  }
  for (float f : {65504.0f, 65519.996f, 65520.0f, 1e30f, std::ldexp(1.0f, -24), std::ldexp(1.0f, -25),
                  std::nextafter(std::ldexp(1.0f, -25), 1.0f), std::ldexp(3.0f, -26), std::ldexp(1.0f, -14),
                  std::nextafter(std::ldexp(1.0f, -14), 0.0f), 1e-45f, 0.0f, -0.0f}) {
    ASSERT_EQ(bitlinear::float_to_fp16_bits(f), ggml_fp32_to_fp16(f)) << f;
    ASSERT_EQ(bitlinear::float_to_fp16_bits(-f), ggml_fp32_to_fp16(-f)) << f;
  }
  EXPECT_EQ(bitlinear::float_to_fp16_bits(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(bitlinear::float_to_fp16_bits(std::numeric_limits<float>::quiet_NaN()), 0x7E00);
}

// --- per-block activations against ggml's quantize_row_q8_0_ref ---------------------------------------------

// A literal transcription of ggml's reference (k a multiple of 32): amax with MAX(a, b) = a > b ? a : b over
// fabsf, d = amax / 127, id = d ? 1/d : 0, d stored as fp16, q = roundf(x * id).
void ggml_quantize_row_q8_0_ref(const float* x, std::size_t k, std::vector<std::uint16_t>& d_out,
                                std::vector<std::int8_t>& q_out) {
  // ggml's reference assumes IEEE arithmetic: no flush-to-zero / denormals-are-zero (a -ffast-math program turns
  // them on at startup), round to nearest.
  const det::FpEnvironmentGuard fp_environment;
  const std::size_t nb = k / 32;
  d_out.resize(nb);
  q_out.resize(k);
  for (std::size_t i = 0; i < nb; ++i) {
    float amax = 0.0f;
    for (std::size_t j = 0; j < 32; ++j) {
      const float v = det::float_from_bits(det::float_bits(x[i * 32 + j]) & 0x7FFFFFFFu);  // fabsf
      amax = amax > v ? amax : v;
    }
    const float d = det::exact_div(amax, 127.0f);
    const float id = (det::float_bits(d) & 0x7FFFFFFFu) != 0 ? det::exact_div(1.0f, d) : 0.0f;
    d_out[i] = ggml_fp32_to_fp16(d);
    for (std::size_t j = 0; j < 32; ++j) {
      const float x0 = det::exact_mul(x[i * 32 + j], id);
      q_out[i * 32 + j] = static_cast<std::int8_t>(std::round(x0));
    }
  }
}

void expect_per_block_equals_ggml(const std::vector<float>& x, std::size_t batch, std::size_t in, const char* what) {
  for (Isa isa : bitlinear_test::runnable_isas()) {
    bitlinear::QuantizedActivations acts;
    acts.quantize(x.data(), batch, in, in, ActivationScale::per_block, isa);
    const bitlinear::ActivationsView a = acts.view();
    ASSERT_EQ(a.block_size, 32u);
    for (std::size_t t = 0; t < batch; ++t) {
      std::vector<float> padded(x.begin() + static_cast<std::ptrdiff_t>(t * in),
                                x.begin() + static_cast<std::ptrdiff_t>((t + 1) * in));
      padded.resize(bitlinear::activation_block_count(in) * 32, 0.0f);  // a short last block = zero-padded block
      std::vector<std::uint16_t> d;
      std::vector<std::int8_t> q;
      ggml_quantize_row_q8_0_ref(padded.data(), padded.size(), d, q);
      std::int32_t sum = 0;
      ASSERT_TRUE(same_bits(a.scale[t], 1.0f));
      for (std::size_t k = 0; k < in; ++k) {
        ASSERT_EQ(a.q[t * a.stride + k], q[k]) << what << " row " << t << " k " << k << " x " << x[t * in + k];
        sum += q[k];
      }
      for (std::size_t k = in; k < a.stride; ++k) ASSERT_EQ(a.q[t * a.stride + k], 0);
      ASSERT_EQ(a.sum[t], sum);
      for (std::size_t b = 0; b < d.size(); ++b) {
        ASSERT_EQ(det::float_bits(a.block_scale[t * a.block_stride + b]), det::float_bits(ggml_fp16_to_fp32(d[b])))
            << what << " row " << t << " block " << b;
      }
    }
  }
}

TEST(PerBlock, EqualsGgmlReferenceOnRandomInputs) {
  for (std::size_t in : {32u, 64u, 96u, 1024u, 2560u, 33u, 100u, 1u}) {
    const auto x = bitlinear_test::random_floats(3 * in, static_cast<std::uint32_t>(in), -4.0f, 4.0f);
    expect_per_block_equals_ggml(x, 3, in, "random");
  }
  std::mt19937 rng(71);
  std::vector<float> x(4 * 256);
  for (float& v : x) v = std::ldexp(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng), static_cast<int>(rng() % 60) - 30);
  expect_per_block_equals_ggml(x, 4, 256, "random magnitudes");
}

TEST(PerBlock, EqualsGgmlReferenceOnAdversarialInputs) {
  const std::size_t in = 32 * 12;
  std::vector<float> x(in, 0.0f);  // block 0: all zero
  // Block 1: amax 127 (d = 1, id = 1): every half-integer tie, both signs.
  for (std::size_t j = 0; j < 32; ++j) x[32 + j] = (j % 2 == 0 ? 1.0f : -1.0f) * (static_cast<float>(j) * 3.5f + 0.5f);
  x[32] = 127.0f;
  // Block 2: amax 127 * 2^-3: ties at a smaller scale; halves.
  for (std::size_t j = 0; j < 32; ++j) x[64 + j] = std::ldexp(static_cast<float>(j) + 0.5f, -3) * (j % 3 == 0 ? -1.0f : 1.0f);
  x[64 + 31] = std::ldexp(127.0f, -3);
  // Block 3: one value (amax = that value), the rest tiny.
  x[96] = -3.0f;
  for (std::size_t j = 1; j < 32; ++j) x[96 + j] = 1e-30f * static_cast<float>(j);
  // Block 4: tiny (d subnormal, id finite): amax 1e-36.
  for (std::size_t j = 0; j < 32; ++j) x[128 + j] = 1e-36f * static_cast<float>(j % 5) / 4.0f;
  // Block 5: amax just below 65520 * 127 (the largest finite fp16 block scale), and block 6 above it (fp16 inf).
  for (std::size_t j = 0; j < 32; ++j) x[160 + j] = 8.3e6f * static_cast<float>(j) / 31.0f;
  for (std::size_t j = 0; j < 32; ++j) x[192 + j] = -1e20f * static_cast<float>(j) / 31.0f;
  // Block 7: values whose x * id lands within an ulp of .5 (amax 1: id = 127 rounded).
  for (std::size_t j = 0; j < 32; ++j) x[224 + j] = std::nextafter((static_cast<float>(j) + 0.5f) / 127.0f, j % 2 ? 0.0f : 1.0f);
  x[224 + 31] = 1.0f;
  // Block 8: subnormal inputs with a normal amax; block 9: negative zero and amax 1e-3; block 10: all equal.
  for (std::size_t j = 0; j < 32; ++j) x[256 + j] = 1e-42f * static_cast<float>(j);
  x[256] = 1e-10f;
  for (std::size_t j = 0; j < 32; ++j) x[288 + j] = j % 2 ? -0.0f : 1e-3f * static_cast<float>(j) / 31.0f;
  for (std::size_t j = 0; j < 32; ++j) x[320 + j] = -0.7f;
  // Block 11: amax 127 * 2^k for odd k, values k + 0.5 scaled.
  for (std::size_t j = 0; j < 32; ++j) x[352 + j] = std::ldexp(static_cast<float>(j * 4 % 127) + 0.5f, 5);
  x[352 + 7] = std::ldexp(127.0f, 5);
  expect_per_block_equals_ggml(x, 1, in, "adversarial");
}

// Where ggml's reference is undefined (1 / d overflows: amax below about 3.7e-37), q is 0 and the block scale 0.
TEST(PerBlock, VanishingBlocksQuantizeToZero) {
  std::vector<float> x(64, 0.0f);
  for (std::size_t j = 0; j < 32; ++j) x[j] = 1e-38f * static_cast<float>(j + 1) / 32.0f;
  for (std::size_t j = 32; j < 64; ++j) x[j] = 0.5f;
  bitlinear::QuantizedActivations acts;
  acts.quantize(x.data(), 1, 64, 64, ActivationScale::per_block);
  const auto a = acts.view();
  for (std::size_t k = 0; k < 32; ++k) EXPECT_EQ(a.q[k], 0);
  EXPECT_EQ(a.block_scale[0], 0.0f);
  EXPECT_EQ(a.q[40], 127);
}

// --- per-super-block activations against ggml's quantize_row_q8_K_ref --------------------------------------

// Every runnable family's quantization of `batch` rows of `in` against the transcription (ggml_reference.hpp) of
// the zero-padded rows (a short last super-block = a zero-padded one: zeros change neither max nor the other q).
void expect_per_superblock_equals_ggml(const std::vector<float>& x, std::size_t batch, std::size_t in,
                                       const char* what) {
  const std::size_t blocks = bitlinear::activation_superblock_count(in);
  for (Isa isa : bitlinear_test::runnable_isas()) {
    bitlinear::QuantizedActivations acts;
    acts.quantize(x.data(), batch, in, in, ActivationScale::per_superblock, isa);
    const bitlinear::ActivationsView a = acts.view();
    ASSERT_EQ(a.block_size, 256u);
    ASSERT_GE(a.block_stride, blocks);
    for (std::size_t t = 0; t < batch; ++t) {
      std::vector<float> padded(x.begin() + static_cast<std::ptrdiff_t>(t * in),
                                x.begin() + static_cast<std::ptrdiff_t>((t + 1) * in));
      padded.resize(blocks * 256, 0.0f);
      std::vector<ggml_reference::BlockQ8K> want(blocks);
      ggml_reference::quantize_row_q8_K_ref(padded.data(), want.data(), padded.size());
      ASSERT_TRUE(same_bits(a.scale[t], 1.0f)) << what;
      std::int32_t sum = 0;
      for (std::size_t k = 0; k < in; ++k) {
        ASSERT_EQ(a.q[t * a.stride + k], want[k / 256].qs[k % 256])
            << what << " " << bitlinear_test::isa_label(isa) << " row " << t << " k " << k << " x " << x[t * in + k];
        sum += a.q[t * a.stride + k];
      }
      for (std::size_t k = in; k < a.stride; ++k) ASSERT_EQ(a.q[t * a.stride + k], 0);
      ASSERT_EQ(a.sum[t], sum);
      for (std::size_t b = 0; b < blocks; ++b) {
        ASSERT_EQ(det::float_bits(a.block_scale[t * a.block_stride + b]), det::float_bits(want[b].d))
            << what << " row " << t << " block " << b << ": " << a.block_scale[t * a.block_stride + b] << " vs "
            << want[b].d;
      }
    }
  }
}

TEST(PerSuperblock, EqualsGgmlReferenceOnRandomInputs) {
  for (std::size_t in : {256u, 512u, 2560u, 1u, 100u, 300u, 1000u, 1029u}) {
    const auto x = bitlinear_test::random_floats(3 * in, static_cast<std::uint32_t>(in) + 7, -4.0f, 4.0f);
    expect_per_superblock_equals_ggml(x, 3, in, "random");
  }
  std::mt19937 rng(72);
  std::vector<float> x(5 * 768);
  for (float& v : x) {
    v = std::ldexp(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng), static_cast<int>(rng() % 80) - 40);
  }
  expect_per_superblock_equals_ggml(x, 5, 768, "random magnitudes");
}

TEST(PerSuperblock, EqualsGgmlReferenceOnAdversarialInputs) {
  const std::size_t blocks = 12, in = 256 * blocks - 56;  // the last block holds 200 values
  std::vector<float> x(in, 0.0f);  // block 0: all zero
  auto block = [&](std::size_t b) { return x.data() + b * 256; };
  // Block 1: max +127 (iscale -1): q = rne(-x), every half-integer tie of both signs.
  for (std::size_t j = 0; j < 256; ++j) {
    block(1)[j] = (j % 2 == 0 ? 1.0f : -1.0f) * (static_cast<float>(j % 127) + 0.5f);
  }
  block(1)[9] = 127.0f;
  // Block 2: max -127 (iscale +1), ties again; a later +127 does not replace the first -127 (strict >).
  for (std::size_t j = 0; j < 256; ++j) {
    block(2)[j] = (j % 3 == 0 ? -1.0f : 1.0f) * (static_cast<float>(j % 126) + 0.5f);
  }
  block(2)[4] = -127.0f;
  block(2)[200] = 127.0f;
  // Block 3: max 127 * 2^-5 positive: ties at a smaller scale; and +max first, -max later.
  for (std::size_t j = 0; j < 256; ++j) {
    block(3)[j] = std::ldexp(static_cast<float>(j % 120) + 0.5f, -5) * (j % 5 == 0 ? -1.0f : 1.0f);
  }
  block(3)[0] = std::ldexp(127.0f, -5);
  block(3)[1] = -std::ldexp(127.0f, -5);
  // Block 4: one value, the rest subnormal or tiny.
  block(4)[77] = -3.0f;
  for (std::size_t j = 100; j < 256; ++j) block(4)[j] = 1e-42f * static_cast<float>(j);
  // Block 5: tiny but iscale finite (max 1e-36); block 6: iscale overflows (max 1e-38, positive): q = 0, d = -0.
  for (std::size_t j = 0; j < 256; ++j) block(5)[j] = -1e-36f * static_cast<float>(j % 9) / 8.0f;
  for (std::size_t j = 0; j < 256; ++j) block(6)[j] = 1e-38f * static_cast<float>(j % 7) / 6.0f;
  // Block 7: values whose iscale * x lands within an ulp of .5 (max 1).
  for (std::size_t j = 0; j < 256; ++j) {
    const float near_half = std::nextafter((static_cast<float>(j % 127) + 0.5f) / 127.0f, j % 2 ? 0.0f : 1.0f);
    block(7)[j] = j % 4 < 2 ? near_half : -near_half;
  }
  block(7)[255] = 1.0f;
  // Block 8: huge values (max 3e38); block 9: all equal and negative; block 10: negative zeros and one -1e-3.
  for (std::size_t j = 0; j < 256; ++j) block(8)[j] = 3e38f * (static_cast<float>(static_cast<int>(j % 11) - 5) / 5.0f);
  for (std::size_t j = 0; j < 256; ++j) block(9)[j] = -0.7f;
  for (std::size_t j = 0; j < 256; ++j) block(10)[j] = -0.0f;
  block(10)[31] = -1e-3f;
  // Block 11 (200 values): iscale overflows with a negative max (d = +0), but one block among finite ones.
  for (std::size_t j = 0; j < 200; ++j) block(11)[j] = -1e-39f * static_cast<float>(j % 3);
  expect_per_superblock_equals_ggml(x, 1, in, "adversarial");
}

// The rule's definitions where ggml's assert leaves it undefined and the signs of d, stated explicitly.
TEST(PerSuperblock, SignsZerosAndOverflowingScales) {
  std::vector<float> x(5 * 256, 0.0f);
  x[3] = 2.0f;  // block 0: max +2, d = -2 / 127 rounded, q[3] = -127
  x[4] = -1.0f;
  x[256 + 8] = -2.0f;  // block 1: max -2, d > 0, its q = -127 too (d * q ~ x)
  for (std::size_t j = 0; j < 256; ++j) x[512 + j] = 1e-38f;    // block 2: iscale = -inf: q = 0, d = -0
  for (std::size_t j = 0; j < 256; ++j) x[768 + j] = -2e-38f;   // block 3: iscale = +inf: q = 0, d = +0
  // block 4: all zero: q = 0, d = +0
  bitlinear::QuantizedActivations acts;
  acts.quantize(x.data(), 1, x.size(), x.size(), ActivationScale::per_superblock);
  const auto a = acts.view();
  EXPECT_EQ(a.q[3], -127);
  EXPECT_EQ(a.q[4], 64);  // rne(63.5) = 64
  EXPECT_TRUE(same_bits(a.block_scale[0], det::exact_div(1.0f, det::exact_div(-127.0f, 2.0f))));
  EXPECT_LT(a.block_scale[0], 0.0f);
  EXPECT_EQ(a.q[256 + 8], -127);
  EXPECT_GT(a.block_scale[1], 0.0f);
  for (std::size_t k = 512; k < 5 * 256; ++k) ASSERT_EQ(a.q[k], 0) << k;
  EXPECT_EQ(det::float_bits(a.block_scale[2]), 0x80000000u);
  EXPECT_EQ(det::float_bits(a.block_scale[3]), 0u);
  EXPECT_EQ(det::float_bits(a.block_scale[4]), 0u);
  EXPECT_TRUE(same_bits(a.scale[0], 1.0f));
  EXPECT_EQ(a.sum[0], -127 + 64 - 127);
}

// The thread-pool forward (rows of the quantization spread over tasks) equals the serial one bit for bit, NaN
// rows included.
TEST(PerSuperblock, ThreadPoolEqualsSerial) {
  for (Isa isa : bitlinear_test::runnable_isas()) {
    const std::size_t out = 37, in = 1280, batch = 48;  // 12 rows per quantization task: 4 tasks
    const auto layer = packed_layer<Ternary>(out, in, 256, 501, isa, ActivationScale::per_superblock);
    auto x = bitlinear_test::random_floats(batch * in, 502, -3.0f, 3.0f);
    x[17 * in + 600] = std::numeric_limits<float>::infinity();
    x[40 * in + 3] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y_serial(batch * out);
    layer.forward(x.data(), batch, y_serial.data());
    for (std::size_t threads : {2u, 3u}) {
      bitlinear::ThreadPool pool(threads);
      std::vector<float> y_pool(batch * out);
      layer.forward(x.data(), batch, y_pool.data(), pool);
      for (std::size_t i = 0; i < y_pool.size(); ++i) {
        ASSERT_TRUE(same_bits(y_pool[i], y_serial[i]))
            << bitlinear_test::isa_label(isa) << " threads " << threads << " at " << i;
      }
    }
    for (std::size_t j = 0; j < out; ++j) {
      EXPECT_TRUE(bitlinear_test::is_nan(y_serial[17 * out + j]));
      EXPECT_TRUE(bitlinear_test::is_nan(y_serial[40 * out + j]));
      EXPECT_FALSE(bitlinear_test::is_nan(y_serial[16 * out + j]));
    }
  }
}

// --- bad input -------------------------------------------------------------------------------------------------

TEST(Grouped, BadInputIsRefusedWithANamedError) {
  const std::vector<float> w(4 * 96, 0.25f);
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_float(w.data(), 4, 96, 64); }, "group_size 64 is not allowed for in_features 96");
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_float(w.data(), 4, 96, 48); }, "group_size 48");
  expect_invalid([&] { (void)GroupedLinear<Binary>::from_float(w.data(), 4, 96, 16); }, "must be 32, 64, 128 or 256");
  expect_invalid([&] { (void)GroupedLinear<Binary>::from_float(w.data(), 4, 96, 0); }, "group_size 0");
  expect_invalid([&] { (void)GroupedLinear<Binary>::from_float(w.data(), 2, 192, 384); }, "group_size 384");
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_float(w.data(), 0, 96, 32); }, "out_features is 0");
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_float(nullptr, 4, 96, 32); }, "weight is null");
  std::vector<float> bad_w = w;
  bad_w[100] = std::numeric_limits<float>::infinity();
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_float(bad_w.data(), 4, 96, 32); }, "weight[100]");
  std::vector<float> bias(4, 0.0f);
  bias[3] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_float(w.data(), 4, 96, 32, bias.data()); }, "bias[3]");

  auto packed = random_packed<Ternary>(4, 96, 81, true);
  std::vector<float> scales(12, 0.5f);
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_packed(packed.data(), packed.size() - 1, 4, 96, 32, scales.data(), 12); },
                 "needs exactly 256");
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_packed(packed.data(), packed.size(), 4, 96, 32, scales.data(), 11); },
                 "group scales hold 11 values");
  scales[5] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_packed(packed.data(), packed.size(), 4, 96, 32, scales.data(), 12); },
                 "group scale [5]");
  scales[5] = 0.5f;
  const std::uint8_t kept = packed[64 + 40];
  packed[64 + 40] = static_cast<std::uint8_t>(packed[64 + 40] & 0x3Fu);  // row 1, weight 232 (padding): field 0
  expect_invalid([&] { (void)GroupedLinear<Ternary>::from_packed(packed.data(), packed.size(), 4, 96, 32, scales.data(), 12); },
                 "row 1, weight 232");
  packed[64 + 40] = kept;
  auto compact = random_packed<TernaryCompact>(4, 96, 82, false);
  compact[64 + 3] = 63;  // not a valid compact byte
  expect_invalid([&] { (void)GroupedLinear<TernaryCompact>::from_packed(compact.data(), compact.size(), 4, 96, 96, scales.data(), 4); },
                 "row 1, byte 3");
  auto binary = random_packed<Binary>(4, 96, 83, false);
  binary[2 * 64 + 40] |= 0x04;  // row 2, weight 168: padding bit set
  expect_invalid([&] { (void)GroupedLinear<Binary>::from_packed(binary.data(), binary.size(), 4, 96, 32, scales.data(), 12); },
                 "row 2, weight 168");
  expect_invalid([&] {
    (void)GroupedLinear<Ternary>::from_packed_rows(
        [&](std::size_t j, std::uint8_t* row, float* row_scales) {
          std::memcpy(row, packed.data() + j * 64, 64);
          for (std::size_t g = 0; g < 3; ++g) row_scales[g] = j == 2 && g == 1 ? -std::numeric_limits<float>::infinity() : 1.0f;
        },
        4, 96, 32);
  }, "group scale [7]");

  // Per-block activations: refused by per-tensor layers, at construction and in forward_quantized.
  Options per_block;
  per_block.activation_scale = ActivationScale::per_block;
  expect_invalid([&] { (void)bitlinear::TernaryLinear::from_float(w.data(), 4, 96, nullptr, per_block); },
                 "per_block, which only group-scaled layers");
  const auto plain = bitlinear::TernaryLinear::from_float(w.data(), 4, 96);
  const auto x = bitlinear_test::random_floats(2 * 96, 84);
  bitlinear::QuantizedActivations acts;
  acts.quantize(x.data(), 2, 96, 96, ActivationScale::per_block);
  std::vector<float> y(8);
  expect_invalid([&] { plain.forward_quantized(acts.view(), 0, 4, y.data(), 4); }, "are per block (block_size 32)");
  // Grouped forward_quantized: block size other than 32, missing block scales.
  const auto layer = GroupedLinear<Ternary>::from_float(w.data(), 4, 96, 32);
  bitlinear::ActivationsView v = acts.view();
  v.block_size = 16;
  expect_invalid([&] { layer.forward_quantized(v, 0, 4, y.data(), 4); }, "block_size 16");
  v = acts.view();
  v.block_scale = nullptr;
  expect_invalid([&] { layer.forward_quantized(v, 0, 4, y.data(), 4); }, "no block scales");
  v = acts.view();
  v.block_stride = 2;
  expect_invalid([&] { layer.forward_quantized(v, 0, 4, y.data(), 4); }, "block_stride 2");
  expect_invalid([&] { layer.forward_quantized(acts.view(), 3, 5, y.data(), 4); }, "output range [3, 5)");
  // Per-super-block activations: refused by per-tensor layers; a grouped layer takes block_size 256 views.
  Options per_superblock;
  per_superblock.activation_scale = ActivationScale::per_superblock;
  expect_invalid([&] { (void)bitlinear::TernaryLinear::from_float(w.data(), 4, 96, nullptr, per_superblock); },
                 "per_superblock, which only group-scaled layers");
  expect_invalid([&] { (void)bitlinear::BinaryLinear::from_float(w.data(), 4, 96, nullptr, per_superblock); },
                 "per_superblock, which only group-scaled layers");
  bitlinear::QuantizedActivations super_acts;
  super_acts.quantize(x.data(), 2, 96, 96, ActivationScale::per_superblock);
  expect_invalid([&] { plain.forward_quantized(super_acts.view(), 0, 4, y.data(), 4); }, "are per block (block_size 256)");
  layer.forward_quantized(super_acts.view(), 0, 4, y.data(), 4);  // accepted by a grouped layer in any mode
  v = super_acts.view();
  v.block_stride = 0;
  expect_invalid([&] { layer.forward_quantized(v, 0, 4, y.data(), 4); }, "block_stride 0");
  v = super_acts.view();
  v.block_size = 128;
  expect_invalid([&] { layer.forward_quantized(v, 0, 4, y.data(), 4); }, "block_size 128");
  // quantize_activations into a view of the wrong block size, or without block scales.
  std::vector<unsigned char> block_bytes(bitlinear::activation_workspace_size(2, 96, ActivationScale::per_block));
  const auto block_view = bitlinear::activation_view_in(block_bytes.data(), block_bytes.size(), 2, 96, ActivationScale::per_block);
  expect_invalid([&] { bitlinear::quantize_activations(x.data(), 2, 96, 96, ActivationScale::per_superblock, block_view); },
                 "per_superblock activations need block scales: block_size 32 must be 256");
  std::vector<unsigned char> plain_bytes(bitlinear::activation_workspace_size(2, 96));
  const auto plain_view = bitlinear::activation_view_in(plain_bytes.data(), plain_bytes.size(), 2, 96);
  expect_invalid([&] { bitlinear::quantize_activations(x.data(), 2, 96, 96, ActivationScale::per_superblock, plain_view); },
                 "block_size 0 must be 256");
  std::vector<unsigned char> super_bytes(bitlinear::activation_workspace_size(2, 96, ActivationScale::per_superblock));
  expect_invalid([&] { (void)bitlinear::activation_view_in(super_bytes.data(), super_bytes.size() - 1, 2, 96,
                                                           ActivationScale::per_superblock); },
                 "per_superblock batch 2");
  const auto super_layer = GroupedLinear<Ternary>::from_float(w.data(), 4, 96, 32, nullptr, per_superblock);
  std::vector<unsigned char> super_small(super_layer.workspace_size(2) - 1);
  expect_invalid([&] { super_layer.forward(x.data(), 2, 96, y.data(), 4, super_small.data(), super_small.size()); },
                 "too small");
  // A per-block workspace too small.
  bitlinear::Options options;
  options.activation_scale = ActivationScale::per_block;
  const auto block_layer = GroupedLinear<Ternary>::from_float(w.data(), 4, 96, 32, nullptr, options);
  std::vector<unsigned char> small(block_layer.workspace_size(2) - 1);
  expect_invalid([&] { block_layer.forward(x.data(), 2, 96, y.data(), 4, small.data(), small.size()); }, "too small");
  // Moved-from layers are empty.
  auto moved = GroupedLinear<Ternary>::from_float(w.data(), 4, 96, 32);
  const auto target = std::move(moved);
  EXPECT_TRUE(moved.empty());  // NOLINT(bugprone-use-after-move): the documented state
  EXPECT_EQ(moved.in_features(), 0u);
  EXPECT_TRUE(moved.group_scales().empty());
  expect_invalid([&] { moved.forward(x.data(), 1, y.data()); }, "the layer is empty");
  EXPECT_EQ(target.out_features(), 4u);
}

// --- save / load -----------------------------------------------------------------------------------------------

template <class Format>
void expect_round_trip(std::size_t out, std::size_t in, std::size_t group, ActivationScale mode, bool bias) {
  auto layer = packed_layer<Format>(out, in, group, 91, Isa::automatic, mode);
  if (!bias) {
    layer = GroupedLinear<Format>::from_packed(layer.packed_weights().data(), layer.packed_weights_size(), out, in, group,
                                               layer.group_scales().data(), layer.group_scales().size(), nullptr,
                                               layer.options());
  }
  const std::vector<unsigned char> bytes = bitlinear::save_to_bytes(layer);
  EXPECT_EQ(bytes[8], 3);
  const auto loaded = bitlinear::load_grouped<Format>(bytes.data(), bytes.size());
  EXPECT_EQ(loaded.packed_weights(), layer.packed_weights());
  EXPECT_EQ(loaded.group_size(), group);
  EXPECT_EQ(loaded.has_bias(), bias);
  EXPECT_EQ(loaded.options().activation_scale, mode);
  for (std::size_t i = 0; i < layer.group_scales().size(); ++i) {
    ASSERT_TRUE(same_bits(loaded.group_scales()[i], layer.group_scales()[i]));
  }
  EXPECT_EQ(bitlinear::save_to_bytes(loaded), bytes);
  std::stringstream stream;
  bitlinear::save(layer, stream);
  bitlinear::save(layer, stream);
  EXPECT_EQ(bitlinear::load_grouped<Format>(stream).packed_weights(), layer.packed_weights());
  EXPECT_EQ(bitlinear::load_grouped<Format>(stream).group_scales(), layer.group_scales());
  const auto x = bitlinear_test::random_floats(2 * in, 92);
  std::vector<float> y1(2 * out), y2(2 * out);
  layer.forward(x.data(), 2, y1.data());
  loaded.forward(x.data(), 2, y2.data());
  for (std::size_t i = 0; i < y1.size(); ++i) ASSERT_TRUE(same_bits(y1[i], y2[i]));
}

void set_u32(std::vector<unsigned char>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}
void fix_crc(std::vector<unsigned char>& b) {
  set_u32(b, b.size() - 4, det::crc32_update(0, b.data(), b.size() - 4));
}

TEST(GroupedSerialize, RoundTripsAndValidates) {
  for (ActivationScale mode : kModes) {
    expect_round_trip<Ternary>(7, 256, 64, mode, true);
    expect_round_trip<Binary>(5, 1000, 1000, mode, false);
    expect_round_trip<TernaryCompact>(6, 640, 128, mode, true);
  }
  const auto layer = packed_layer<Ternary>(3, 128, 32, 93, Isa::automatic, ActivationScale::per_block);
  const std::vector<unsigned char> good = bitlinear::save_to_bytes(layer);
  EXPECT_EQ(good[12], 4);  // kind 4: grouped ternary
  EXPECT_EQ(good[32], 2);  // per_block
  EXPECT_EQ(good[40], 32);  // group_size
  expect_invalid([&] { (void)bitlinear::load<Ternary>(good.data(), good.size()); }, "holds a grouped ternary layer");
  expect_invalid([&] { (void)bitlinear::load_grouped<Binary>(good.data(), good.size()); }, "but a grouped binary layer");
  auto b = good;
  set_u32(b, 40, 48);
  fix_crc(b);
  expect_invalid([&] { (void)bitlinear::load_grouped<Ternary>(b.data(), b.size()); }, "group_size 48 is not allowed");
  b = good;
  set_u32(b, 8, 2);
  fix_crc(b);
  expect_invalid([&] { (void)bitlinear::load_grouped<Ternary>(b.data(), b.size()); }, "kind 4 is unknown in format version 2");
  b = good;
  b[52 + 4 * 3 + 4 * 2 + 3] = 0x7F;  // scale 2 (after the 3 biases) with an all-ones exponent: NaN / inf
  b[52 + 4 * 3 + 4 * 2 + 2] = 0x80;
  fix_crc(b);
  expect_invalid([&] { (void)bitlinear::load_grouped<Ternary>(b.data(), b.size()); }, "group scale [2]");
  b = good;
  b[b.size() - 5] ^= 1;
  expect_invalid([&] { (void)bitlinear::load_grouped<Ternary>(b.data(), b.size()); }, "checksum mismatch");
  b = good;
  b.pop_back();
  expect_invalid([&] { (void)bitlinear::load_grouped<Ternary>(b.data(), b.size()); }, "truncated");
  // A per-tensor file with activation scale 2 is refused.
  const std::vector<float> w(3 * 128, 0.5f);
  auto plain = bitlinear::save_to_bytes(bitlinear::TernaryLinear::from_float(w.data(), 3, 128));
  set_u32(plain, 32, 2);
  fix_crc(plain);
  expect_invalid([&] { (void)bitlinear::load<Ternary>(plain.data(), plain.size()); }, "activation scale 2 is unknown for kind 1");
  set_u32(plain, 32, 3);  // per_superblock: grouped kinds only
  fix_crc(plain);
  expect_invalid([&] { (void)bitlinear::load<Ternary>(plain.data(), plain.size()); }, "activation scale 3 is unknown for kind 1");
  // per_superblock is written as 3; 4 is unknown everywhere.
  const auto super_layer = packed_layer<Ternary>(3, 256, 256, 94, Isa::automatic, ActivationScale::per_superblock);
  auto super_bytes = bitlinear::save_to_bytes(super_layer);
  EXPECT_EQ(super_bytes[32], 3);
  EXPECT_EQ(bitlinear::load_grouped<Ternary>(super_bytes.data(), super_bytes.size()).options().activation_scale,
            ActivationScale::per_superblock);
  set_u32(super_bytes, 32, 4);
  fix_crc(super_bytes);
  expect_invalid([&] { (void)bitlinear::load_grouped<Ternary>(super_bytes.data(), super_bytes.size()); },
                 "activation scale 4 is unknown for kind 4");
}

// Version 1 and 2 files (the per-tensor kinds, byte for byte what version 3 writes apart from the version field)
// still load.
TEST(GroupedSerialize, OldVersionsStillLoad) {
  const auto w = bitlinear_test::random_floats(5 * 300, 94);
  const auto bias = bitlinear_test::random_floats(5, 95);
  const auto ternary = bitlinear::TernaryLinear::from_float(w.data(), 5, 300, bias.data());
  const auto compact = bitlinear::CompactTernaryLinear::from_float(w.data(), 5, 300, bias.data());
  for (std::uint32_t version : {1u, 2u}) {
    auto bytes = bitlinear::save_to_bytes(ternary);
    set_u32(bytes, 8, version);
    fix_crc(bytes);
    const auto loaded = bitlinear::load<Ternary>(bytes.data(), bytes.size());
    EXPECT_EQ(loaded.packed_weights(), ternary.packed_weights());
    EXPECT_TRUE(same_bits(loaded.weight_scale(), ternary.weight_scale()));
  }
  auto bytes = bitlinear::save_to_bytes(compact);
  set_u32(bytes, 8, 2);
  fix_crc(bytes);
  EXPECT_EQ(bitlinear::load<TernaryCompact>(bytes.data(), bytes.size()).packed_weights(), compact.packed_weights());
}

}  // namespace
