// The aarch64 kernel families (neon, neon_dotprod) called directly: GEMM tiles and their tails, GEMV, worst-case
// accumulators, row-range splits, NaN rows, quantization tails and unaligned pointers, each against the scalar
// reference bit for bit. A family the (emulated) CPU cannot run is skipped; on other architectures this file
// holds no tests.
#include <bitlinear/bitlinear.hpp>

#if BITLINEAR_ARCH_AARCH64
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using bitlinear::ActivationsView;
using bitlinear::Isa;
namespace detail = bitlinear::detail;

// Hand-built quantized activations: q in [lo, hi] (random), zero padding, exact sums, positive scales.
struct HandActivations {
  detail::AlignedBytes q;
  std::vector<float> scale;
  std::vector<std::int32_t> sum;
  ActivationsView view;

  HandActivations(std::size_t batch, std::size_t in, std::uint32_t seed, int lo = -128, int hi = 127)
      : q(batch * bitlinear::activation_stride(in)), scale(batch), sum(batch) {
    const std::size_t stride = bitlinear::activation_stride(in);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> value(lo, hi);
    std::uniform_real_distribution<float> s(0.01f, 300.0f);
    auto* qp = reinterpret_cast<std::int8_t*>(q.data());
    for (std::size_t t = 0; t < batch; ++t) {
      std::int32_t total = 0;
      for (std::size_t k = 0; k < stride; ++k) {
        const int v = k < in ? value(rng) : 0;
        qp[t * stride + k] = static_cast<std::int8_t>(v);
        total += v;
      }
      sum[t] = total;
      scale[t] = s(rng);
    }
    view = {qp, scale.data(), sum.data(), batch, in, stride};
  }
};

template <class Format>
std::vector<std::uint8_t> random_packed(std::size_t out, std::size_t in, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(Format::bits_per_weight == 2 ? -1 : 0, 1);
  std::vector<std::int8_t> codes(out * in);
  for (auto& c : codes) {
    const int v = code(rng);
    c = static_cast<std::int8_t>(Format::bits_per_weight == 2 ? v : (v == 0 ? -1 : 1));
  }
  std::vector<std::uint8_t> packed(bitlinear::packed_size<Format>(out, in));
  bitlinear::pack_codes<Format>(codes.data(), out, in, packed.data());
  return packed;
}

class NeonFamilies : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!detail::isa_runnable(GetParam())) {
      GTEST_SKIP() << bitlinear::isa_name(GetParam()) << " cannot run on this CPU; it supports "
                   << detail::runnable_isa_list();
    }
  }
  bool dotprod() const { return GetParam() == Isa::neon_dotprod; }
};

enum class Path { gemm, gemv, table };

// Runs one kernel of the family under test and the scalar reference on the same inputs; y has y_stride > out
// and is pre-filled with a sentinel that must survive outside [row_begin, row_end). The kernel reads the weights
// laid out in groups of group_rows rows (kernels.hpp), from a buffer of exactly their size; the reference reads
// the canonical rows.
template <class Format>
void expect_kernel_matches(bool dotprod, Path path, std::size_t out, std::size_t in, const ActivationsView& a,
                           const std::uint8_t* packed, std::size_t row_begin, std::size_t row_end,
                           std::size_t y_offset = 1, std::size_t group_rows = 1) {
  constexpr bool ternary = Format::bits_per_weight == 2;
  const detail::PackedWeightsView canonical{packed, out, in, Format::packed_row_bytes(in)};
  const bitlinear_test::LaidOutWeights laid_out(packed, out, in, Format::packed_row_bytes(in), group_rows);
  const detail::PackedWeightsView& w = laid_out.view();
  const auto bias = bitlinear_test::random_floats(out, static_cast<std::uint32_t>(out * 31 + in));
  const detail::Epilogue e{0.037f, 1.0f / 0.037f, bias.data()};
  const std::size_t y_stride = out + 3;
  const float sentinel = -12345.0f;
  bitlinear_test::Misaligned<float> y(a.batch * y_stride, 4 * y_offset);
  std::vector<float> y_ref(a.batch * y_stride, sentinel);
  for (std::size_t i = 0; i < a.batch * y_stride; ++i) y.data()[i] = sentinel;
  if (ternary) {
    detail::ref::ternary_matmul(canonical, a, row_begin, row_end, e, y_ref.data(), y_stride);
  } else {
    detail::ref::binary_matmul(canonical, a, row_begin, row_end, e, y_ref.data(), y_stride);
  }
  using detail::neon::gemm;
  using detail::neon::gemv;
  switch (path) {
    case Path::gemm:
      (dotprod ? gemm<Format, true> : gemm<Format, false>)(w, a, row_begin, row_end, e, y.data(), y_stride);
      break;
    case Path::gemv:
      (dotprod ? gemv<Format, true> : gemv<Format, false>)(w, a, row_begin, row_end, e, y.data(), y_stride);
      break;
    case Path::table: {
      const auto& table = detail::kernel_table(dotprod ? Isa::neon_dotprod : Isa::neon);
      (ternary ? table[detail::WeightFormat::ternary].matmul : table[detail::WeightFormat::binary].matmul)(w, a, row_begin, row_end, e, y.data(), y_stride);
      break;
    }
  }
  for (std::size_t i = 0; i < a.batch * y_stride; ++i) {
    ASSERT_TRUE(bitlinear_test::same_bits(y.data()[i], y_ref[i]))
        << Format::name << (dotprod ? " dotprod" : " neon") << " path " << static_cast<int>(path) << " out=" << out
        << " in=" << in << " batch=" << a.batch << " group_rows=" << group_rows << " rows [" << row_begin << ", "
        << row_end << ") at token "
        << i / y_stride << " output " << i % y_stride << ": " << y.data()[i] << " vs scalar " << y_ref[i];
  }
}

// Every token-tile tail (batch mod 4), every row-panel tail (out mod 4), the chunk tail (in past 2048), and
// the token-block boundary (batch 130 > 128), through the GEMM and the GEMV directly, in the canonical layout
// and every group size of kLayoutGroupRows (groups cut short at the end of the matrix included).
TEST_P(NeonFamilies, GemmAndGemvTilesMatchScalar) {
  const std::size_t batches[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 64, 128, 130};
  const std::size_t outs[] = {1, 2, 3, 4, 5, 7, 9, 13};
  const std::size_t ins[] = {1, 17, 256, 257, 513, 2049};
  std::uint32_t seed = 7;
  for (std::size_t batch : batches) {
    for (std::size_t in : ins) {
      if (batch > 17 && in > 600) continue;  // large batches: small rows keep qemu time reasonable
      const HandActivations acts(batch, in, seed++);
      for (std::size_t out : outs) {
        const auto tpacked = random_packed<bitlinear::Ternary>(out, in, seed++);
        const auto bpacked = random_packed<bitlinear::Binary>(out, in, seed++);
        for (std::size_t group_rows : bitlinear_test::kLayoutGroupRows) {
          // Beyond batch 5 the tiles do not depend on the layout (only the panel unpack does): two layouts.
          if (batch > 5 && group_rows != 1 && group_rows != 4) continue;
          for (Path path : {Path::gemm, Path::gemv}) {
            if (path == Path::gemv && batch > 5) continue;
            expect_kernel_matches<bitlinear::Ternary>(dotprod(), path, out, in, acts.view, tpacked.data(), 0, out, 1,
                                                      group_rows);
            expect_kernel_matches<bitlinear::Binary>(dotprod(), path, out, in, acts.view, bpacked.data(), 0, out, 1,
                                                     group_rows);
          }
        }
      }
    }
  }
  // The big chunked case once: several 2048-weight chunks and a partial last one, 4-token tiles and tails.
  const HandActivations acts(6, 5000, 99);
  const auto tpacked = random_packed<bitlinear::Ternary>(6, 5000, 100);
  const auto bpacked = random_packed<bitlinear::Binary>(6, 5000, 101);
  for (std::size_t group_rows : {1, 4}) {
    expect_kernel_matches<bitlinear::Ternary>(dotprod(), Path::gemm, 6, 5000, acts.view, tpacked.data(), 0, 6, 1,
                                              group_rows);
    expect_kernel_matches<bitlinear::Binary>(dotprod(), Path::gemm, 6, 5000, acts.view, bpacked.data(), 0, 6, 1,
                                             group_rows);
  }
}

// Output ranges [row_begin, row_end) of every kind (inside a group or panel, across them, single rows, starting
// anywhere) give the same bits as the full range and write nothing outside the range (sentinels checked by
// expect_kernel_matches), in every layout.
TEST_P(NeonFamilies, RowRangeSplitsMatchScalar) {
  const std::size_t out = 23, in = 300;
  const auto tpacked = random_packed<bitlinear::Ternary>(out, in, 5);
  const auto bpacked = random_packed<bitlinear::Binary>(out, in, 6);
  const std::size_t ranges[][2] = {{0, 23}, {0, 1}, {1, 2}, {3, 9}, {5, 6}, {6, 23}, {22, 23}, {2, 21}, {8, 12},
                                   {1, 4},  {7, 8}, {9, 11}, {13, 22}, {21, 23}};
  for (std::size_t batch : {1, 2, 3, 6}) {
    const HandActivations acts(batch, in, static_cast<std::uint32_t>(batch));
    for (std::size_t group_rows : bitlinear_test::kLayoutGroupRows) {
      for (const auto& range : ranges) {
        for (Path path : {Path::table, Path::gemm, Path::gemv}) {
          expect_kernel_matches<bitlinear::Ternary>(dotprod(), path, out, in, acts.view, tpacked.data(), range[0],
                                                    range[1], 3, group_rows);
          expect_kernel_matches<bitlinear::Binary>(dotprod(), path, out, in, acts.view, bpacked.data(), range[0],
                                                   range[1], 3, group_rows);
        }
      }
    }
  }
  // Through the public layer (stored in the family's layout): split forward_quantized equals one call.
  const auto w = bitlinear_test::random_floats(out * in, 77);
  bitlinear::Options options;
  options.isa = GetParam();
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in, nullptr, options);
  ASSERT_EQ(layer.isa(), GetParam());
  ASSERT_EQ(layer.execution_group_rows(), detail::kernel_table(GetParam())[detail::WeightFormat::ternary].group_rows);
  const auto x = bitlinear_test::random_floats(5 * in, 78);
  bitlinear::QuantizedActivations q;
  layer.quantize(x.data(), 5, in, q);
  std::vector<float> whole(5 * out), split(5 * out);
  layer.forward_quantized(q.view(), 0, out, whole.data(), out);
  layer.forward_quantized(q.view(), 0, 7, split.data(), out);
  layer.forward_quantized(q.view(), 7, 8, split.data(), out);
  layer.forward_quantized(q.view(), 8, out, split.data(), out);
  for (std::size_t i = 0; i < whole.size(); ++i) ASSERT_TRUE(bitlinear_test::same_bits(whole[i], split[i])) << i;
}

// The family's own layout is the group the batch-1 GEMV reads side by side (4 rows), for both formats, and a
// layer in it gives the scalar layer's bits at batches 1 to 4 (the decode batches).
TEST_P(NeonFamilies, LayersUseTheStreamingLayout) {
  const auto& table = detail::kernel_table(GetParam());
  EXPECT_EQ(table[detail::WeightFormat::ternary].group_rows, 4u);
  EXPECT_EQ(table[detail::WeightFormat::binary].group_rows, 4u);
  const std::size_t out = 37, in = 1000;  // 9 whole groups and a group of 1; blocks with a tail
  const auto w = bitlinear_test::random_floats(out * in, 91);
  const auto bias = bitlinear_test::random_floats(out, 92);
  bitlinear::Options options, scalar_options;
  options.isa = GetParam();
  scalar_options.isa = Isa::scalar;
  for (std::size_t batch = 1; batch <= 4; ++batch) {
    const auto x = bitlinear_test::random_floats(batch * in, static_cast<std::uint32_t>(93 + batch));
    std::vector<float> y(batch * out), y_ref(batch * out), b(batch * out), b_ref(batch * out);
    const auto ternary = bitlinear::TernaryLinear::from_float(w.data(), out, in, bias.data(), options);
    const auto binary = bitlinear::BinaryLinear::from_float(w.data(), out, in, bias.data(), options);
    ASSERT_EQ(ternary.execution_group_rows(), 4u);
    ASSERT_EQ(binary.execution_group_rows(), 4u);
    ternary.forward(x.data(), batch, y.data());
    binary.forward(x.data(), batch, b.data());
    bitlinear::TernaryLinear::from_float(w.data(), out, in, bias.data(), scalar_options)
        .forward(x.data(), batch, y_ref.data());
    bitlinear::BinaryLinear::from_float(w.data(), out, in, bias.data(), scalar_options)
        .forward(x.data(), batch, b_ref.data());
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(bitlinear_test::same_bits(y[i], y_ref[i])) << "ternary batch " << batch << " at " << i;
      ASSERT_TRUE(bitlinear_test::same_bits(b[i], b_ref[i])) << "binary batch " << batch << " at " << i;
    }
  }
}

// Worst-case accumulators: rows of 2^20 weights (the maximum) all +1 or all -1 (or all 0), against activation
// rows all -128 or all 127, through from_packed and forward_quantized. The exact result is computed here in
// 64-bit integers: |dot| reaches 128 * 2^20 = 2^27.
template <class Format>
void expect_worst_case(Isa isa, std::size_t batch) {
  constexpr bool ternary = Format::bits_per_weight == 2;
  const std::size_t in = bitlinear::max_in_features, out = 5;
  const int row_code[out] = {1, -1, ternary ? 0 : 1, -1, 1};
  const std::size_t row_bytes = Format::packed_row_bytes(in);
  std::vector<std::uint8_t> packed(out * row_bytes);
  for (std::size_t j = 0; j < out; ++j) {
    // Ternary fields: code + 1 in every 2-bit field; binary: every bit set for +1, clear for -1.
    const std::uint8_t byte = ternary ? static_cast<std::uint8_t>((row_code[j] + 1) * 0x55)
                                      : static_cast<std::uint8_t>(row_code[j] > 0 ? 0xFF : 0x00);
    for (std::size_t i = 0; i < row_bytes; ++i) packed[j * row_bytes + i] = byte;
  }
  bitlinear::Options options;
  options.isa = isa;
  const auto layer = bitlinear::BitLinear<Format>::from_packed(packed.data(), packed.size(), out, in, 1.0f, nullptr,
                                                               options);
  ASSERT_EQ(layer.isa(), isa);
  const std::size_t stride = bitlinear::activation_stride(in);
  detail::AlignedBytes qbuf(batch * stride);
  auto* q = reinterpret_cast<std::int8_t*>(qbuf.data());
  std::vector<float> scale(batch, 1.0f);
  std::vector<std::int32_t> sum(batch);
  std::vector<int> token_value(batch);
  for (std::size_t t = 0; t < batch; ++t) {
    token_value[t] = t % 2 == 0 ? -128 : 127;
    for (std::size_t k = 0; k < stride; ++k) q[t * stride + k] = static_cast<std::int8_t>(token_value[t]);
    sum[t] = static_cast<std::int32_t>(static_cast<std::int64_t>(token_value[t]) * static_cast<std::int64_t>(in));
  }
  const ActivationsView view{q, scale.data(), sum.data(), batch, in, stride};
  std::vector<float> y(batch * out);
  layer.forward_quantized(view, 0, out, y.data(), out);
  for (std::size_t t = 0; t < batch; ++t) {
    for (std::size_t j = 0; j < out; ++j) {
      const std::int64_t dot = static_cast<std::int64_t>(row_code[j]) * token_value[t] * static_cast<std::int64_t>(in);
      // scale = 1 and weight_scale = 1 (s_w = 1): y = (float)dot exactly (|dot| <= 2^27 with 7 significant bits).
      EXPECT_EQ(y[t * out + j], static_cast<float>(dot))
          << Format::name << " " << bitlinear::isa_name(isa) << " token " << t << " row " << j;
    }
  }
}

TEST_P(NeonFamilies, WorstCaseAccumulatorsAreExact) {
  for (std::size_t batch : {1, 3}) {  // GEMV and GEMM
    expect_worst_case<bitlinear::Ternary>(GetParam(), batch);
    expect_worst_case<bitlinear::Binary>(GetParam(), batch);
  }
}

// Quantization kernels against the reference: every tail length, unaligned inputs, ties at .5, clamping, garbage
// in q beforehand (padding must be zeroed), and the absmax of non-finite rows.
TEST_P(NeonFamilies, QuantizeRowMatchesScalar) {
  const auto& table = detail::kernel_table(GetParam());
  ASSERT_EQ(table.isa, GetParam());
  for (std::size_t n = 1; n <= 70; ++n) {
    for (std::size_t offset = 0; offset < 4; ++offset) {
      bitlinear_test::Misaligned<float> x(n, 4 * offset);
      auto values = bitlinear_test::random_floats(n, static_cast<std::uint32_t>(n * 4 + offset), -5.0f, 5.0f);
      for (std::size_t k = 0; k < n; k += 3) values[k] = static_cast<float>(static_cast<int>(k % 9) - 4) + 0.5f;
      for (std::size_t k = 0; k < n; ++k) x.data()[k] = values[k];
      const float m = table.absmax(x.data(), n);
      ASSERT_EQ(m, detail::ref::absmax(x.data(), n)) << "n=" << n;
      // s_x = 2 maps the .5 values to exact ties (rne: to even); s_x = 40 drives values past +-127 (clamp).
      for (float s_x : {2.0f, 40.0f, (1.0f / m) * 127.0f}) {
        const std::size_t padded = bitlinear::activation_stride(n);
        std::vector<std::int8_t> q(padded, 99), q_ref(padded, 0);
        const std::int32_t sum = table.quantize_row(x.data(), n, s_x, q.data(), padded);
        const std::int32_t sum_ref = detail::ref::quantize_row(x.data(), n, s_x, q_ref.data(), padded);
        ASSERT_EQ(sum, sum_ref) << "n=" << n << " s_x=" << s_x;
        ASSERT_EQ(q, q_ref) << "n=" << n << " s_x=" << s_x;
      }
    }
  }
  for (std::size_t n = 1; n <= 40; ++n) {
    for (std::size_t at = 0; at < n; ++at) {
      for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity()}) {
        auto x = bitlinear_test::random_floats(n, static_cast<std::uint32_t>(n * 100 + at));
        x[at] = bad;
        ASSERT_FALSE(bitlinear_test::is_finite(table.absmax(x.data(), n))) << "n=" << n << " at " << at;
      }
    }
  }
}

// A NaN or infinite activation makes its own row NaN and no other (per token); results equal scalar's bits.
TEST_P(NeonFamilies, NonFiniteRowsGiveNaNRowsOnly) {
  const std::size_t out = 9, in = 77;
  const auto w = bitlinear_test::random_floats(out * in, 3);
  bitlinear::Options options, scalar_options;
  options.isa = GetParam();
  scalar_options.isa = Isa::scalar;
  for (std::size_t batch : {1, 2, 5}) {
    auto x = bitlinear_test::random_floats(batch * in, static_cast<std::uint32_t>(batch));
    x[(batch - 1) * in + in / 2] = std::numeric_limits<float>::quiet_NaN();
    if (batch > 2) x[1 * in + 3] = std::numeric_limits<float>::infinity();
    for (int kind = 0; kind < 2; ++kind) {
      std::vector<float> y(batch * out), y_ref(batch * out);
      if (kind == 0) {
        bitlinear::TernaryLinear::from_float(w.data(), out, in, nullptr, options).forward(x.data(), batch, y.data());
        bitlinear::TernaryLinear::from_float(w.data(), out, in, nullptr, scalar_options)
            .forward(x.data(), batch, y_ref.data());
      } else {
        bitlinear::BinaryLinear::from_float(w.data(), out, in, nullptr, options).forward(x.data(), batch, y.data());
        bitlinear::BinaryLinear::from_float(w.data(), out, in, nullptr, scalar_options)
            .forward(x.data(), batch, y_ref.data());
      }
      for (std::size_t t = 0; t < batch; ++t) {
        const bool bad_row = t == batch - 1 || (batch > 2 && t == 1);
        for (std::size_t j = 0; j < out; ++j) {
          ASSERT_EQ(bitlinear_test::is_nan(y[t * out + j]), bad_row) << "token " << t << " output " << j;
          ASSERT_TRUE(bitlinear_test::same_bits(y[t * out + j], y_ref[t * out + j])) << "token " << t;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Aarch64, NeonFamilies, ::testing::Values(Isa::neon, Isa::neon_dotprod),
                         [](const ::testing::TestParamInfo<Isa>& param_info) {
                           return bitlinear_test::isa_label(param_info.param);
                         });

// CI pins the family the automatic choice must make under each emulated CPU (BITLINEAR_EXPECT_AUTOMATIC:
// neon under qemu -cpu cortex-a53, neon_dotprod under -cpu max); without it, the check is the rule itself.
TEST(NeonDispatch, AutomaticFamilyFollowsHwcap) {
  const char* forced = std::getenv("BITLINEAR_ISA");
  if (forced != nullptr && *forced != '\0') GTEST_SKIP() << "BITLINEAR_ISA is set; isa_env_* tests cover forcing";
  const std::string expected_by_rule = bitlinear::cpu_features().dotprod ? "neon_dotprod" : "neon";
  EXPECT_EQ(bitlinear::active_isa(), expected_by_rule);
  if (const char* expected = std::getenv("BITLINEAR_EXPECT_AUTOMATIC")) {
    EXPECT_EQ(bitlinear::active_isa(), expected) << "the CI leg pins the automatic family for this CPU";
  }
  const std::vector<float> w(4 * 8, 0.5f);
  EXPECT_EQ(bitlinear::isa_name(bitlinear::TernaryLinear::from_float(w.data(), 4, 8).isa()), expected_by_rule);
}

TEST(NeonDispatch, ForcingDotprodWithoutItIsTheDocumentedError) {
  bitlinear::Options options;
  options.isa = Isa::neon_dotprod;
  const std::vector<float> w(4 * 8, 0.5f);
  if (bitlinear::cpu_features().dotprod) {
    EXPECT_EQ(bitlinear::TernaryLinear::from_float(w.data(), 4, 8, nullptr, options).isa(), Isa::neon_dotprod);
    return;
  }
  try {
    (void)bitlinear::TernaryLinear::from_float(w.data(), 4, 8, nullptr, options);
    FAIL() << "neon_dotprod was accepted on a CPU without dotprod";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("\"neon_dotprod\" cannot run on this CPU"), std::string::npos) << message;
    EXPECT_NE(message.find("this CPU supports: scalar, neon"), std::string::npos) << message;
  }
}

}  // namespace
#endif  // BITLINEAR_ARCH_AARCH64
