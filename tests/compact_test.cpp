// The compact ternary format (format_compact.hpp, 1.6 bits per weight): its byte encoding and bit order, the
// rejection of non-canonical bytes, and CompactTernaryLinear against TernaryLinear bit for bit on every kernel
// family this CPU runs (shapes, tails, batches, row ranges, strides, threads, NaN rows), conversions, save/load.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/serialize.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using bitlinear::CompactTernaryLinear;
using bitlinear::Isa;
using bitlinear::Options;
using bitlinear::Ternary;
using bitlinear::TernaryCompact;
using bitlinear::TernaryLinear;

// --- the format ----------------------------------------------------------------------------------------------

TEST(CompactFormat, EncodingFormulaAndValidBytes) {
  std::set<unsigned> seen;
  for (unsigned f0 = 0; f0 < 3; ++f0)
    for (unsigned f1 = 0; f1 < 3; ++f1)
      for (unsigned f2 = 0; f2 < 3; ++f2)
        for (unsigned f3 = 0; f3 < 3; ++f3)
          for (unsigned f4 = 0; f4 < 3; ++f4) {
            const std::uint8_t f[5] = {static_cast<std::uint8_t>(f0), static_cast<std::uint8_t>(f1),
                                       static_cast<std::uint8_t>(f2), static_cast<std::uint8_t>(f3),
                                       static_cast<std::uint8_t>(f4)};
            const unsigned w = f0 + 3 * f1 + 9 * f2, p = f3 + 3 * f4;
            const std::uint8_t byte = TernaryCompact::encode(f);
            EXPECT_EQ(byte, 64 * (w % 4) + 7 * p + w / 4);  // the documented formula
            EXPECT_TRUE(TernaryCompact::valid_byte(byte));
            for (unsigned i = 0; i < 5; ++i) EXPECT_EQ(TernaryCompact::field(byte, i), f[i]);
            seen.insert(byte);
          }
  EXPECT_EQ(seen.size(), 243u);
  unsigned valid = 0;
  for (unsigned byte = 0; byte < 256; ++byte) {
    const bool documented_invalid = byte % 64 == 63 || (byte % 64 % 7 == 6 && byte / 64 == 3);
    EXPECT_EQ(TernaryCompact::valid_byte(static_cast<std::uint8_t>(byte)), !documented_invalid) << byte;
    valid += TernaryCompact::valid_byte(static_cast<std::uint8_t>(byte)) ? 1 : 0;
  }
  EXPECT_EQ(valid, 243u);
  const std::uint8_t zeros[5] = {1, 1, 1, 1, 1};
  EXPECT_EQ(TernaryCompact::encode(zeros), TernaryCompact::zero_byte);
  EXPECT_EQ(TernaryCompact::zero_byte, 0x5F);
}

// Bit order, one-hot: a single nonzero code at weight k changes exactly byte 64 * (k / 320) + k % 64, whose
// field k % 320 / 64 decodes to it, and the layer reads it as weight k.
TEST(CompactFormat, OneHotBitOrder) {
  const std::size_t in = 700;  // 3 blocks, the last one partly padding
  const std::size_t row_bytes = TernaryCompact::packed_row_bytes(in);
  ASSERT_EQ(row_bytes, 192u);
  for (std::size_t k = 0; k < in; ++k) {
    for (int code : {-1, 1}) {
      std::vector<std::int8_t> codes(in, 0);
      codes[k] = static_cast<std::int8_t>(code);
      std::vector<std::uint8_t> packed(row_bytes);
      bitlinear::pack_codes<TernaryCompact>(codes.data(), 1, in, packed.data());
      for (std::size_t i = 0; i < row_bytes; ++i) {
        if (i == 64 * (k / 320) + k % 64) {
          std::uint8_t f[5] = {1, 1, 1, 1, 1};
          f[k % 320 / 64] = static_cast<std::uint8_t>(code + 1);
          ASSERT_EQ(packed[i], TernaryCompact::encode(f)) << k;
        } else {
          ASSERT_EQ(packed[i], TernaryCompact::zero_byte) << k << " " << i;
        }
      }
      std::vector<std::int8_t> back(in);
      bitlinear::unpack_codes<TernaryCompact>(packed.data(), 1, in, back.data());
      ASSERT_EQ(back, codes);
      if (k % 37 == 0) {  // the layer reads it as weight k: y = +-q[k] scaled, on every family
        for (Isa isa : bitlinear_test::runnable_isas()) {
          Options options;
          options.isa = isa;
          const auto layer = CompactTernaryLinear::from_packed(packed.data(), packed.size(), 1, in, 1.0f, nullptr,
                                                                options);
          std::vector<float> x(in, 0.0f);
          x[k] = 2.0f;
          x[(k + 1) % in] = 100.0f;  // other weights are 0: must not contribute
          float y = 0;
          layer.forward(x.data(), 1, &y);
          const float s_x = (1.0f / 100.0f) * 127.0f;
          const float q = std::nearbyint(2.0f * s_x);
          ASSERT_EQ(y, static_cast<float>(code) * q / s_x / 1.0f) << k << " " << bitlinear::isa_name(isa);
        }
      }
    }
  }
}

TEST(CompactFormat, RejectsInvalidBytesAndPadding) {
  const std::size_t in = 330;  // block 1 holds weights 320..329 in field 0 of bytes 64..73
  std::vector<std::uint8_t> packed(TernaryCompact::packed_row_bytes(in), TernaryCompact::zero_byte);
  EXPECT_NO_THROW(bitlinear::validate_packed<TernaryCompact>(packed.data(), 1, in));
  for (unsigned bad : {63u, 127u, 255u, 198u, 0xC0u + 13u}) {
    std::vector<std::uint8_t> b = packed;
    b[5] = static_cast<std::uint8_t>(bad);
    try {
      (void)CompactTernaryLinear::from_packed(b.data(), b.size(), 1, in, 1.0f);
      ADD_FAILURE() << "accepted byte " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("byte 5 holds " + std::to_string(bad)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not one of the 243 valid"), std::string::npos) << e.what();
    }
  }
  // Padding: byte 64 + 9 holds weight 329 (valid) and weights 393.. (padding); byte 64 + 10 holds only padding.
  std::uint8_t f[5] = {2, 1, 1, 1, 1};
  std::vector<std::uint8_t> ok = packed;
  ok[64 + 9] = TernaryCompact::encode(f);
  EXPECT_NO_THROW(bitlinear::validate_packed<TernaryCompact>(ok.data(), 1, in));
  std::vector<std::uint8_t> b = packed;
  b[64 + 10] = TernaryCompact::encode(f);  // weight 330 = padding set to +1
  EXPECT_THROW(bitlinear::validate_packed<TernaryCompact>(b.data(), 1, in), std::invalid_argument);
  try {
    (void)CompactTernaryLinear::from_packed_rows([&](std::size_t, std::uint8_t* row) {
      std::copy(b.begin(), b.end(), row);
    }, 1, in, 1.0f);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("weight 330 is padding"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("in row 0"), std::string::npos) << e.what();
  }
  f[0] = 1;
  f[4] = 0;  // weight 64*4 + 64 + 320 = 640: padding of byte 64
  b = packed;
  b[64] = TernaryCompact::encode(f);
  EXPECT_THROW(bitlinear::validate_packed<TernaryCompact>(b.data(), 1, in), std::invalid_argument);
  EXPECT_THROW((void)CompactTernaryLinear::from_packed(packed.data(), packed.size() - 1, 1, in, 1.0f),
               std::invalid_argument);
  EXPECT_THROW((void)CompactTernaryLinear::from_packed(packed.data(), packed.size(), 1, in, 0.0f),
               std::invalid_argument);
  std::vector<std::int8_t> codes(in, 0);
  codes[3] = 2;
  EXPECT_THROW(bitlinear::pack_codes<TernaryCompact>(codes.data(), 1, in, packed.data()), std::invalid_argument);
}

// The fast check of a load (every byte by arithmetic, only the padding fields of the last block) against the
// rules one field at a time: every tail length, every field of the last block set to code +1 and to -1.
TEST(CompactFormat, PaddingRuleAtEveryTailLength) {
  for (std::size_t tail = 1; tail <= 320; ++tail) {
    const std::size_t in = 320 + tail;
    const std::vector<std::uint8_t> packed(TernaryCompact::packed_row_bytes(in), TernaryCompact::zero_byte);
    for (std::size_t i = 0; i < bitlinear::packed_block_bytes; ++i) {
      for (unsigned f = 0; f < 5; ++f) {
        const bool padding = 64 * f + i >= tail;
        for (std::uint8_t field : {std::uint8_t{0}, std::uint8_t{2}}) {
          std::uint8_t fields[5] = {1, 1, 1, 1, 1};
          fields[f] = field;
          std::vector<std::uint8_t> b = packed;
          b[64 + i] = TernaryCompact::encode(fields);
          const std::string report = bitlinear::detail::noncanonical_report<TernaryCompact>(b.data(), 1, in);
          ASSERT_EQ(report.empty(), !padding) << "in " << in << ", byte " << 64 + i << ", field " << f << ": " << report;
        }
      }
    }
  }
}

// Every byte value in every position of a 16-byte run (the lanes of a vectorized check), and in a row's last byte.
TEST(CompactFormat, EveryByteValueIsCheckedInEveryLane) {
  const std::size_t in = 640;  // two whole blocks: no padding
  const std::vector<std::uint8_t> packed(TernaryCompact::packed_row_bytes(in), TernaryCompact::zero_byte);
  for (unsigned v = 0; v < 256; ++v) {
    for (std::size_t at : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{15}, std::size_t{16},
                           std::size_t{33}, std::size_t{63}, std::size_t{64}, std::size_t{127}}) {
      std::vector<std::uint8_t> b = packed;
      b[at] = static_cast<std::uint8_t>(v);
      const std::string report = bitlinear::detail::noncanonical_report<TernaryCompact>(b.data(), 1, in);
      ASSERT_EQ(report.empty(), TernaryCompact::valid_byte(static_cast<std::uint8_t>(v))) << v << " at " << at;
    }
  }
}

TEST(CompactFormat, Footprint) {
  EXPECT_EQ(TernaryCompact::packed_row_bytes(2560) * 8, 2560u * 16 / 10);  // exactly 1.6 bits per weight
  EXPECT_EQ(bitlinear::packed_size<TernaryCompact>(6912, 2560), 6912u * 512);
  EXPECT_EQ(TernaryCompact::packed_row_bytes(6912), 22u * 64);  // 1.63 bits per weight
  EXPECT_EQ(TernaryCompact::packed_row_bytes(1), 64u);
}

// --- the layer against TernaryLinear ------------------------------------------------------------------------

void expect_same_outputs(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(bitlinear_test::same_bits(a[i], b[i])) << what << " at " << i << ": " << a[i] << " vs " << b[i];
  }
}

struct Pair {
  TernaryLinear ternary;
  CompactTernaryLinear compact;
};

Pair make_pair(std::size_t out, std::size_t in, std::uint32_t seed, Isa isa, bool bias, float zero_fraction = 0.3f) {
  std::vector<float> w = bitlinear_test::random_floats(out * in, seed);
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (static_cast<float>((i * 2654435761u) % 1000) < 1000 * zero_fraction) w[i] *= 0.01f;  // many zero codes
  }
  const std::vector<float> b = bitlinear_test::random_floats(out, seed + 7, -1.0f, 1.0f);
  Options options;
  options.isa = isa;
  return {TernaryLinear::from_float(w.data(), out, in, bias ? b.data() : nullptr, options),
          CompactTernaryLinear::from_float(w.data(), out, in, bias ? b.data() : nullptr, options)};
}

TEST(CompactLayer, SameCodesAndScaleAsTernary) {
  for (std::size_t in : {1u, 5u, 64u, 319u, 320u, 321u, 1000u}) {
    const Pair p = make_pair(9, in, 5 + static_cast<std::uint32_t>(in), Isa::scalar, true);
    EXPECT_EQ(p.compact.unpacked_weights(), p.ternary.unpacked_weights());
    EXPECT_TRUE(bitlinear_test::same_bits(p.compact.weight_scale(), p.ternary.weight_scale()));
    EXPECT_EQ(p.compact.packed_weights_size(), bitlinear::packed_size<TernaryCompact>(9, in));
    // Conversions both ways keep everything.
    const CompactTernaryLinear c = bitlinear::to_compact(p.ternary);
    EXPECT_EQ(c.packed_weights(), p.compact.packed_weights());
    const TernaryLinear t = bitlinear::to_ternary(p.compact);
    EXPECT_EQ(t.packed_weights(), p.ternary.packed_weights());
    EXPECT_EQ(t.bias(), p.ternary.bias());
    // Own canonical bytes round trip, whole and row by row.
    const std::vector<std::uint8_t> bytes = p.compact.packed_weights();
    const auto again = CompactTernaryLinear::from_packed(bytes.data(), bytes.size(), 9, in, c.weight_scale());
    EXPECT_EQ(again.unpacked_weights(), p.ternary.unpacked_weights());
    std::vector<std::uint8_t> copy(bytes.size());
    again.copy_packed_weights(copy.data(), copy.size());
    EXPECT_EQ(copy, bytes);
  }
}

TEST(CompactLayer, FromTernaryPackedRejectsBadTwoBitBytes) {
  const Pair p = make_pair(4, 100, 3, Isa::scalar, false);
  std::vector<std::uint8_t> packed = p.ternary.packed_weights();
  packed[64 * 2 + 7] = 0xFF;  // row 2: field value 3
  try {
    (void)bitlinear::compact_from_ternary_packed(packed.data(), packed.size(), 4, 100, 1.0f);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("in row 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)bitlinear::compact_from_ternary_packed(packed.data(), packed.size() + 1, 4, 100, 1.0f),
               std::invalid_argument);
}

// Every family, shapes with tails on both sides of the 320-weight blocks, batches across the GEMV/GEMM switch,
// unaligned and strided input and output, a NaN row, per-token and per-tensor scales.
TEST(CompactLayer, BitExactAgainstTernaryEveryFamily) {
  const std::size_t ins[] = {1, 2, 3, 15, 63, 64, 65, 255, 256, 257, 319, 320, 321, 639, 640, 641, 1000, 1281, 4099};
  const std::size_t outs[] = {1, 3, 5, 16, 17, 33};
  const std::size_t batches[] = {1, 2, 3, 4, 5, 9, 64, 70};
  std::uint32_t seed = 100;
  for (Isa isa : bitlinear_test::runnable_isas()) {
    for (std::size_t in : ins) {
      for (std::size_t out : outs) {
        if (in > 1000 && out > 17) continue;  // keep the scalar family quick
        const Pair p = make_pair(out, in, ++seed, isa, out % 2 == 1);
        ASSERT_EQ(p.compact.isa(), isa);
        for (std::size_t batch : batches) {
          if (batch > 9 && (in > 700 || out < 16)) continue;
          const std::string what = bitlinear_test::isa_label(isa) + " " + std::to_string(out) + "x" +
                                   std::to_string(in) + " batch " + std::to_string(batch);
          const std::size_t x_stride = in + 3, y_stride = out + 1;
          bitlinear_test::Misaligned<float> x(batch * x_stride, 4);
          const std::vector<float> values = bitlinear_test::random_floats(batch * x_stride, seed * 3, -4.0f, 4.0f);
          std::copy(values.begin(), values.end(), x.data());
          if (batch > 2) x.data()[x_stride + in / 2] = std::numeric_limits<float>::quiet_NaN();  // row 1 is NaN
          std::vector<float> yt(batch * y_stride, -7.0f), yc(batch * y_stride, -7.0f);
          p.ternary.forward(x.data(), batch, x_stride, yt.data(), y_stride);
          p.compact.forward(x.data(), batch, x_stride, yc.data(), y_stride);
          expect_same_outputs(yt, yc, what);
          if (batch > 2) {
            EXPECT_TRUE(std::isnan(yc[y_stride])) << what;
          }
          for (std::size_t t = 0; t < batch; ++t) EXPECT_EQ(yc[t * y_stride + out], -7.0f) << what;  // gap untouched
        }
      }
    }
  }
}

TEST(CompactLayer, RowRangesThreadsWorkspaceAndPerTensor) {
  for (Isa isa : bitlinear_test::runnable_isas()) {
    for (std::size_t batch : {1u, 3u, 66u}) {
      const std::size_t out = 37, in = 645;
      const Pair p = make_pair(out, in, 77 + static_cast<std::uint32_t>(batch), isa, true);
      const std::vector<float> x = bitlinear_test::random_floats(batch * in, 9, -2.0f, 2.0f);
      std::vector<float> yt(batch * out), yc(batch * out, 0.0f);
      p.ternary.forward(x.data(), batch, yt.data());
      // Row ranges that start and end inside the layer's row groups.
      bitlinear::QuantizedActivations acts;
      p.compact.quantize(x.data(), batch, in, acts);
      const std::size_t cuts[] = {0, 1, 2, 5, 6, 15, 16, 30, 37};
      for (std::size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; ++c) {
        p.compact.forward_quantized(acts.view(), cuts[c], cuts[c + 1], yc.data(), out);
      }
      expect_same_outputs(yt, yc, bitlinear_test::isa_label(isa) + " ranges");
      bitlinear::ThreadPool pool(3);
      std::vector<float> yp(batch * out);
      p.compact.forward(x.data(), batch, yp.data(), pool);
      expect_same_outputs(yt, yp, bitlinear_test::isa_label(isa) + " pool");
      std::vector<unsigned char> workspace(p.compact.workspace_size(batch));
      std::vector<float> yw(batch * out);
      p.compact.forward(x.data(), batch, in, yw.data(), out, workspace.data(), workspace.size());
      expect_same_outputs(yt, yw, bitlinear_test::isa_label(isa) + " workspace");
    }
    Options options;
    options.isa = isa;
    options.activation_scale = bitlinear::ActivationScale::per_tensor;
    const std::vector<float> w = bitlinear_test::random_floats(20 * 300, 4);
    const auto t = TernaryLinear::from_float(w.data(), 20, 300, nullptr, options);
    const auto c = CompactTernaryLinear::from_float(w.data(), 20, 300, nullptr, options);
    const std::vector<float> x = bitlinear_test::random_floats(4 * 300, 5);
    std::vector<float> yt(4 * 20), yc(4 * 20);
    t.forward(x.data(), 4, yt.data());
    c.forward(x.data(), 4, yc.data());
    expect_same_outputs(yt, yc, bitlinear_test::isa_label(isa) + " per_tensor");
  }
}

// --- kernels against the scalar reference, on every execution layout ---------------------------------------

// Each family's compact kernel (or, if it has none, the fallback through its 2-bit kernel) against
// ref::compact_matmul, on canonical and interleaved layouts (group sizes 1, 2, 3, 4, 8), row ranges that start
// and end inside groups, batches on both sides of the GEMV/GEMM switch, weights in a buffer of exactly their size.
TEST(CompactKernels, EveryFamilyEveryLayoutAgainstReference) {
  namespace det = bitlinear::detail;
  const std::size_t ins[] = {1, 63, 64, 65, 320, 333, 500, 640, 960, 1000, 1024, 2113};
  std::uint32_t seed = 500;
  for (Isa isa : bitlinear_test::runnable_isas()) {
    const det::KernelTable& kernels = det::kernel_table(isa);
    for (std::size_t in : ins) {
      const std::size_t out = 45;
      std::mt19937 rng(++seed);
      std::vector<std::int8_t> codes(out * in);
      for (auto& c : codes) c = static_cast<std::int8_t>(static_cast<int>(rng() % 3) - 1);
      std::vector<std::uint8_t> canonical(bitlinear::packed_size<TernaryCompact>(out, in));
      bitlinear::pack_codes<TernaryCompact>(codes.data(), out, in, canonical.data());
      const std::vector<float> bias = bitlinear_test::random_floats(out, seed);
      const det::Epilogue e{0.75f, 1.0f / 0.75f, bias.data()};
      for (std::size_t batch : {1u, 2u, 4u, 5u, 64u, 133u}) {
        if (batch > 5 && in > 700) continue;  // the scalar reference is slow (and qemu slower)
        const std::vector<float> x = bitlinear_test::random_floats(batch * in, seed + 1, -3.0f, 3.0f);
        bitlinear::QuantizedActivations acts;
        acts.quantize(x.data(), batch, in, in, bitlinear::ActivationScale::per_token, isa);
        std::vector<float> expected(batch * out);
        const bitlinear_test::LaidOutWeights canonical_layout(canonical.data(), out, in,
                                                              TernaryCompact::packed_row_bytes(in), 1);
        det::ref::compact_matmul(canonical_layout.view(), acts.view(), 0, out, e, expected.data(), out);
        for (std::size_t group_rows : bitlinear_test::kLayoutGroupRows) {
          const bitlinear_test::LaidOutWeights laid(canonical.data(), out, in, TernaryCompact::packed_row_bytes(in),
                                                    group_rows);
          std::vector<float> y(batch * out, -1.0f);
          const std::size_t cuts[] = {0, 3, 4, 17, 33, 45};
          for (std::size_t c = 0; c + 1 < 6; ++c) {
            kernels[det::WeightFormat::ternary_compact].matmul(laid.view(), acts.view(), cuts[c], cuts[c + 1], e,
                                                               y.data(), out);
          }
          expect_same_outputs(expected, y,
                              bitlinear_test::isa_label(isa) + " in " + std::to_string(in) + " batch " +
                                  std::to_string(batch) + " group_rows " + std::to_string(group_rows));
        }
      }
    }
  }
}

// The SIMD 1.6-bit -> 2-bit row decode of the x86 families' fallback against the scalar decode, byte for byte:
// every in_features from 1 to 700 (every tail of a field and of a block) and longer rows, every valid byte value,
// interleaved layouts, output rows at odd addresses with guard bytes around them. (The aarch64 families have
// native compact kernels and use the scalar decode for their large batches.)
#if BITLINEAR_ARCH_X86_64
TEST(CompactKernels, SimdRowDecodeEqualsScalarDecode) {
  namespace det = bitlinear::detail;
  if (!det::isa_runnable(Isa::avx2)) GTEST_SKIP() << "this CPU cannot run avx2";
  std::vector<std::size_t> ins;
  for (std::size_t in = 1; in <= 700; ++in) ins.push_back(in);
  for (std::size_t in : {1279u, 1280u, 1281u, 2560u, 6912u}) ins.push_back(in);
  std::uint32_t seed = 900;
  for (std::size_t in : ins) {
    const std::size_t out = 5;
    std::mt19937 rng(++seed);
    std::vector<std::int8_t> codes(out * in);
    for (auto& c : codes) c = static_cast<std::int8_t>(static_cast<int>(rng() % 3) - 1);
    std::vector<std::uint8_t> canonical(bitlinear::packed_size<TernaryCompact>(out, in));
    bitlinear::pack_codes<TernaryCompact>(codes.data(), out, in, canonical.data());
    for (std::size_t group_rows : {std::size_t{1}, std::size_t{3}}) {
      const bitlinear_test::LaidOutWeights laid(canonical.data(), out, in, TernaryCompact::packed_row_bytes(in),
                                                group_rows);
      const std::size_t row_bytes = Ternary::packed_row_bytes(in);
      for (std::size_t j = 0; j < out; ++j) {
        std::vector<std::uint8_t> expected(row_bytes + 2, 0xA5), got(row_bytes + 3, 0xA5);
        det::decode_compact_row_to_ternary(laid.view(), j, expected.data() + 1);
        det::avx2::decode_compact_row_avx2(laid.view(), j, got.data() + 2);  // odd address, one byte off
        ASSERT_EQ(got[0], 0xA5);
        ASSERT_EQ(got[1], 0xA5);
        ASSERT_EQ(got[row_bytes + 2], 0xA5) << "in " << in << ": wrote past the row";
        ASSERT_TRUE(std::equal(expected.begin() + 1, expected.end() - 1, got.begin() + 2))
            << "in " << in << " row " << j << " group_rows " << group_rows;
      }
    }
  }
  // Every valid byte value in every position of a block (rows of 320 weights: all five fields real).
  std::vector<std::uint8_t> block(64 * 4);
  std::size_t v = 0;
  for (unsigned byte = 0; byte < 256; ++byte) {
    if (TernaryCompact::valid_byte(static_cast<std::uint8_t>(byte))) block[v++] = static_cast<std::uint8_t>(byte);
  }
  ASSERT_EQ(v, 243u);
  for (std::size_t i = v; i < block.size(); ++i) block[i] = TernaryCompact::zero_byte;
  const det::PackedWeightsView view{block.data(), 4, 320, 64, 1};
  for (std::size_t j = 0; j < 4; ++j) {
    std::uint8_t expected[128], got[128];
    det::decode_compact_row_to_ternary(view, j, expected);
    det::avx2::decode_compact_row_avx2(view, j, got);
    ASSERT_TRUE(std::equal(expected, expected + 128, got)) << "row " << j;
  }
}
#endif

// --- save / load -------------------------------------------------------------------------------------------

TEST(CompactSerialize, RoundTripAndKinds) {
  for (std::size_t in : {1u, 320u, 333u, 2000u}) {
    const Pair p = make_pair(6, in, 31, Isa::automatic, in % 2 == 1);
    const std::vector<unsigned char> bytes = bitlinear::save_to_bytes(p.compact);
    EXPECT_EQ(bytes[8], 3);   // version 3 (kind 3 exists since version 2)
    EXPECT_EQ(bytes[12], 3);  // kind 3
    const auto loaded = bitlinear::load<TernaryCompact>(bytes.data(), bytes.size());
    EXPECT_EQ(loaded.packed_weights(), p.compact.packed_weights());
    EXPECT_EQ(loaded.bias(), p.compact.bias());
    EXPECT_TRUE(bitlinear_test::same_bits(loaded.weight_scale(), p.compact.weight_scale()));
    EXPECT_EQ(bitlinear::save_to_bytes(loaded), bytes);
    std::stringstream stream;
    bitlinear::save(p.compact, stream);
    const auto streamed = bitlinear::load<TernaryCompact>(stream);
    EXPECT_EQ(streamed.packed_weights(), p.compact.packed_weights());
    try {
      (void)bitlinear::load<Ternary>(bytes.data(), bytes.size());
      ADD_FAILURE();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("holds a compact ternary layer"), std::string::npos) << e.what();
    }
    // A corrupt compact byte (with a fixed checksum) is rejected by name.
    std::vector<unsigned char> bad = bytes;
    const std::size_t weights_at = bad.size() - 4 - p.compact.packed_weights_size();
    bad[weights_at] = 63;
    const std::uint32_t crc = bitlinear::detail::crc32_update(0, bad.data(), bad.size() - 4);
    for (int i = 0; i < 4; ++i) bad[bad.size() - 4 + i] = static_cast<unsigned char>(crc >> (8 * i));
    try {
      (void)bitlinear::load<TernaryCompact>(bad.data(), bad.size());
      ADD_FAILURE();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("not one of the 243 valid"), std::string::npos) << e.what();
    }
  }
}

// A version-1 file, written by bitlinear before the compact format existed (a 3x5 ternary layer with bias; the
// expected outputs were printed by that build with %a): it still loads, and converts to compact exactly.
TEST(CompactSerialize, VersionOneFileStillLoads) {
  const std::vector<unsigned char> v1 = {
    0x89, 0x42, 0x4c, 0x4e, 0x0d, 0x0a, 0x1a, 0x0a, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 0x3a, 0xed, 0x3e, 0xc0, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xa0, 0xbf, 0x00, 0x00, 0x00, 0x40,
    0x56, 0x55, 0x56, 0x54, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x54, 0x56, 0x55, 0x54, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x54, 0x56, 0x56, 0x56, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0xb2, 0x70, 0x7f, 0x67, 
  };
  ASSERT_EQ(v1[8], 1);
  const auto layer = bitlinear::load<Ternary>(v1.data(), v1.size());
  const float x[5] = {1, -2, 3, 0.5f, -1};
  float y[3];
  layer.forward(x, 1, y);
  const float expected[3] = {0x1.0f57p+1f, 0x1.87ae1p+0f, 0x1.1d6b7ap+1f, };
  for (int j = 0; j < 3; ++j) EXPECT_TRUE(bitlinear_test::same_bits(y[j], expected[j])) << j;
  const CompactTernaryLinear compact = bitlinear::to_compact(layer);
  float yc[3];
  compact.forward(x, 1, yc);
  for (int j = 0; j < 3; ++j) EXPECT_TRUE(bitlinear_test::same_bits(yc[j], expected[j])) << j;
  // Re-saved, it becomes a file of the current version (3) holding the same layer.
  const std::vector<unsigned char> v2 = bitlinear::save_to_bytes(layer);
  EXPECT_EQ(v2[8], 3);
  EXPECT_EQ(v2.size(), v1.size());
  EXPECT_EQ(bitlinear::load<Ternary>(v2.data(), v2.size()).packed_weights(), layer.packed_weights());
}

}  // namespace
