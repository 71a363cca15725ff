// The AVX2-class families (avx2, avxvnni) against the scalar reference, bit for bit, where their kernels have
// edges: GEMV and GEMM called directly on weights in every execution layout (group sizes, the smaller last
// group, row ranges starting anywhere), GEMM register tiles and panels (token and row tails, k-chunks),
// int16/int32 accumulator limits, output row ranges, non-finite rows, unaligned and strided pointers, and the
// quantization kernels directly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "test_util.hpp"

namespace {

using bitlinear::Isa;
using bitlinear_test::same_bits;
namespace det = bitlinear::detail;

class Avx2Family : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!bitlinear::detail::isa_implemented(GetParam())) {
      GTEST_SKIP() << bitlinear::isa_name(GetParam()) << " has no kernels in this build";
    }
    if (!bitlinear::cpu_supports(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run " << bitlinear::isa_name(GetParam());
    }
  }
  bitlinear::Options options() const {
    bitlinear::Options o;
    o.isa = GetParam();
    return o;
  }
};

bitlinear::Options scalar_options(bitlinear::ActivationScale mode = bitlinear::ActivationScale::per_token) {
  bitlinear::Options o;
  o.isa = Isa::scalar;
  o.activation_scale = mode;
  return o;
}

void expect_same_outputs(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(same_bits(got[i], want[i])) << what << " at " << i << ": " << got[i] << " vs scalar " << want[i];
  }
}

// Layer of the family and the scalar one from the same float weights; both forward the same input.
template <class Layer>
void check_forward(Isa isa, std::size_t out, std::size_t in, std::size_t batch, std::uint32_t seed) {
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto bias = bitlinear_test::random_floats(out, seed + 1);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 2, -4.0f, 4.0f);
  bitlinear::Options o;
  o.isa = isa;
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), o);
  const auto reference = Layer::from_float(w.data(), out, in, bias.data(), scalar_options());
  ASSERT_EQ(layer.isa(), isa);
  std::vector<float> y(batch * out), y_ref(batch * out);
  layer.forward(x.data(), batch, y.data());
  reference.forward(x.data(), batch, y_ref.data());
  expect_same_outputs(y, y_ref, std::string(bitlinear::isa_name(isa)) + " out=" + std::to_string(out) +
                                    " in=" + std::to_string(in) + " batch=" + std::to_string(batch));
}

// Output sizes around the 8-row slabs and 16-row panels of the GEMM, and the 4-row groups of the GEMV.
const std::size_t kTileOuts[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 33, 47};
const std::size_t kTileBatches[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 64, 128};

TEST_P(Avx2Family, TernaryGemmTilesMatchScalar) {
  std::uint32_t seed = 11;
  for (std::size_t batch : kTileBatches) {
    for (std::size_t out : kTileOuts) check_forward<bitlinear::TernaryLinear>(GetParam(), out, 77, batch, seed++);
  }
}

TEST_P(Avx2Family, BinaryGemmTilesMatchScalar) {
  std::uint32_t seed = 211;
  for (std::size_t batch : kTileBatches) {
    for (std::size_t out : kTileOuts) check_forward<bitlinear::BinaryLinear>(GetParam(), out, 77, batch, seed++);
  }
}

// k-chunks of the panel (1024 weights) and 64-group int16 segments: sizes on and around their edges.
TEST_P(Avx2Family, LongRowsAcrossPanelChunksMatchScalar) {
  std::uint32_t seed = 411;
  for (std::size_t in : {255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 2048, 2049, 2560, 3000}) {
    for (std::size_t batch : {1, 3, 5, 6, 11}) {
      check_forward<bitlinear::TernaryLinear>(GetParam(), 19, in, batch, seed++);
      check_forward<bitlinear::BinaryLinear>(GetParam(), 19, in, batch, seed++);
    }
  }
}

#if BITLINEAR_ARCH_X86_64
// The GEMV and GEMM of a family called directly (whatever the batch threshold), in a given row-kernel shape.
template <class Family, class Format, int R, int Span, int T>
void direct_gemv(const det::PackedWeightsView& w, const bitlinear::ActivationsView& a, std::size_t row_begin,
                 std::size_t row_end, const det::Epilogue& e, float* y, std::size_t y_stride) {
  det::avx2::gemv<Format, typename Family::Mac, R, Span, T>(w, a, row_begin, row_end, e, y, y_stride);
}

template <class Family, class Format>
void direct_gemm(const det::PackedWeightsView& w, const bitlinear::ActivationsView& a, std::size_t row_begin,
                 std::size_t row_end, const det::Epilogue& e, float* y, std::size_t y_stride) {
  det::avx2::gemm<Format, typename Family::Tile>(w, a, row_begin, row_end, e, y, y_stride);
}

struct NamedKernel {
  const char* name;
  det::MatmulKernel kernel;
  bool any_layout;  // false: reads only the canonical layout, the family's own (the GEMVs: kernels/interface.hpp)
};

// The family's own GEMV shape, its GEMM, and other shapes of the same row-kernel template (runs of 1, 3 and 4
// rows; one, two or every field per shift; 1 to 4 tokens per call) so that every run length, field split and
// token count is exercised.
template <class Family, class Format>
std::vector<NamedKernel> family_kernels() {
  constexpr det::avx2::GemvShape shape = Family::gemv_shape(Format::bits_per_weight);
  constexpr bool int16_stage = Family::Mac::int16_blocks != 0;
  constexpr int fields = 8 / Format::bits_per_weight;
  return {{"gemv (family shape)", &direct_gemv<Family, Format, shape.rows, shape.span, shape.tokens>, false},
          {"gemv R=1 span=1 T=1", &direct_gemv<Family, Format, 1, 1, 1>, false},
          {"gemv R=3 span=2 T=2", &direct_gemv<Family, Format, 3, 2, 2>, false},
          {"gemv R=4 span=max T=4", &direct_gemv<Family, Format, 4, int16_stage ? 2 : fields, 4>, false},
          {"gemm", &direct_gemm<Family, Format>, true}};
}

template <class Format>
std::vector<NamedKernel> kernels_of(Isa isa) {
  return isa == Isa::avx2 ? family_kernels<det::avx2::Family, Format>()
                          : family_kernels<det::avxvnni::Family, Format>();
}

// Every kernel of the family on every layout it reads (the GEMM: every group size; the GEMVs: the canonical
// layout), over the full range and over row ranges that start and end inside groups, against the scalar reference on the canonical bytes; nothing
// outside the range (and nothing in the gaps of a padded y_stride) is written.
template <class Format>
void check_kernels_over_layouts(Isa isa, std::size_t out, std::size_t in, std::size_t batch, std::uint32_t seed) {
  using Layer = bitlinear::BitLinear<Format>;
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto bias = bitlinear_test::random_floats(out, seed + 1);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 2, -3.0f, 3.0f);
  const Layer layer = Layer::from_float(w.data(), out, in, bias.data(), scalar_options());
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  const det::Epilogue e{layer.weight_scale(), 1.0f / layer.weight_scale(), layer.bias().data()};
  const auto scalar = Format::bits_per_weight == 2 ? &det::ref::ternary_matmul : &det::ref::binary_matmul;
  const bitlinear_test::LaidOutWeights canonical(layer, 1);
  const std::size_t y_stride = out + 3;
  const float sentinel = -7777.25f;
  std::vector<float> want(batch * y_stride, sentinel);
  scalar(canonical.view(), acts.view(), 0, out, e, want.data(), y_stride);
  std::vector<std::pair<std::size_t, std::size_t>> ranges{{0, out}};
  if (out > 1) ranges.push_back({1, out});
  if (out > 2) ranges.push_back({out / 3, out - 1});
  if (out > 6) ranges.push_back({3, 6});
  if (out > 134) ranges.push_back({5, 134});  // 129 rows: a 128-row stream and a 1-row one
  if (out > 128) ranges.push_back({63, out});
  const auto kernels = kernels_of<Format>(isa);
  for (std::size_t group_rows : bitlinear_test::kLayoutGroupRows) {
    const bitlinear_test::LaidOutWeights laid_out(layer, group_rows);
    for (const NamedKernel& k : kernels) {
      if (group_rows != 1 && !k.any_layout) continue;
      for (const auto& range : ranges) {
        std::vector<float> got(batch * y_stride, sentinel);
        k.kernel(laid_out.view(), acts.view(), range.first, range.second, e, got.data(), y_stride);
        const std::string what = std::string(bitlinear::isa_name(isa)) + " " + k.name + " " + Format::name +
                                 " out=" + std::to_string(out) + " in=" + std::to_string(in) +
                                 " batch=" + std::to_string(batch) + " group_rows=" + std::to_string(group_rows) +
                                 " rows [" + std::to_string(range.first) + ", " + std::to_string(range.second) + ")";
        for (std::size_t t = 0; t < batch; ++t) {
          for (std::size_t j = 0; j < y_stride; ++j) {
            const bool inside = j >= range.first && j < range.second;
            const float expected = inside ? want[t * y_stride + j] : sentinel;
            ASSERT_TRUE(same_bits(got[t * y_stride + j], expected))
                << what << " token " << t << " column " << j << ": " << got[t * y_stride + j] << " vs " << expected;
          }
        }
      }
    }
  }
}

// Outputs around the group sizes (1..8) and the 64-row GEMV chunks and 16-row GEMM panels; in sizes that end
// inside a block, on a block, and across the 4-block int16 stage and the 1024-weight panel chunks; batches that
// leave 1, 2 and 3 tokens for the last call and a second pass of 4 tokens.
TEST_P(Avx2Family, KernelsReadEveryLayout) {
  std::uint32_t seed = 901;
  for (std::size_t out : {1, 2, 3, 5, 7, 9, 17, 31, 65, 70}) {
    for (std::size_t in : {1, 100, 256, 257, 1000, 1025, 2100}) {
      for (std::size_t batch : {1, 2, 3, 6}) {
        check_kernels_over_layouts<bitlinear::Ternary>(GetParam(), out, in, batch, seed++);
        check_kernels_over_layouts<bitlinear::Binary>(GetParam(), out, in, batch, seed++);
      }
    }
  }
}

// The families keep the canonical layout (their batch-1 GEMV reads it as streams, avx2/gemv.hpp).
TEST_P(Avx2Family, TableLayoutIsCanonical) {
  const det::KernelTable& k = det::kernel_table(GetParam());
  EXPECT_EQ(k[det::WeightFormat::ternary].group_rows, 1u);
  EXPECT_EQ(k[det::WeightFormat::binary].group_rows, 1u);
}

// Batch 1 in the canonical layout splits the range into streams of 64-row chunks: ranges long enough for two and
// more streams, with short and empty last streams.
TEST_P(Avx2Family, KernelsReadStreamsOfLongRanges) {
  std::uint32_t seed = 1901;
  for (std::size_t out : {129, 130, 200, 300}) {
    for (std::size_t in : {100, 257}) {
      for (std::size_t batch : {1, 2}) {
        check_kernels_over_layouts<bitlinear::Ternary>(GetParam(), out, in, batch, seed++);
        check_kernels_over_layouts<bitlinear::Binary>(GetParam(), out, in, batch, seed++);
      }
    }
  }
}
#endif  // BITLINEAR_ARCH_X86_64

// Hand-built activations (scale 1, so y = the exact integer dot while it is a float) against layers whose rows
// are all +1, all -1 (and all 0 for ternary): the extremes of every int16 and int32 accumulator.
template <class Format>
void check_extreme_accumulators(Isa isa, std::size_t in, std::size_t batch) {
  using Layer = bitlinear::BitLinear<Format>;
  const bool ternary = Format::bits_per_weight == 2;
  const std::vector<int> row_codes = ternary ? std::vector<int>{1, -1, 0, 1, -1} : std::vector<int>{1, -1, -1, 1, 1};
  const std::size_t out = row_codes.size();
  std::vector<std::int8_t> codes(out * in);
  for (std::size_t j = 0; j < out; ++j) std::fill_n(codes.begin() + j * in, in, static_cast<std::int8_t>(row_codes[j]));
  std::vector<std::uint8_t> packed(bitlinear::packed_size<Format>(out, in));
  bitlinear::pack_codes<Format>(codes.data(), out, in, packed.data());
  bitlinear::Options o;
  o.isa = isa;
  const auto layer = Layer::from_packed(packed.data(), packed.size(), out, in, 1.0f, nullptr, o);
  const auto reference = Layer::from_packed(packed.data(), packed.size(), out, in, 1.0f, nullptr, scalar_options());

  const std::size_t stride = bitlinear::activation_stride(in);
  std::vector<std::int8_t> q(batch * stride, 0);
  std::vector<float> scale(batch, 1.0f);
  std::vector<std::int32_t> sum(batch);
  for (std::size_t t = 0; t < batch; ++t) {
    const std::int8_t value = t % 2 == 0 ? -128 : 127;
    std::fill_n(q.begin() + t * stride, in, value);
    sum[t] = static_cast<std::int32_t>(value) * static_cast<std::int32_t>(in);
  }
  const bitlinear::ActivationsView acts{q.data(), scale.data(), sum.data(), batch, in, stride};
  std::vector<float> y(batch * out), y_ref(batch * out);
  layer.forward_quantized(acts, 0, out, y.data(), out);
  reference.forward_quantized(acts, 0, out, y_ref.data(), out);
  const std::string what = std::string(bitlinear::isa_name(isa)) + " " + Format::name + " in=" + std::to_string(in) +
                           " batch=" + std::to_string(batch);
  expect_same_outputs(y, y_ref, what);
  for (std::size_t t = 0; t < batch; ++t) {
    for (std::size_t j = 0; j < out; ++j) {
      const std::int64_t exact = static_cast<std::int64_t>(sum[t]) * row_codes[j];  // q * code summed over in
      ASSERT_EQ(static_cast<double>(y[t * out + j]), static_cast<double>(static_cast<float>(exact)))
          << what << " token " << t << " row " << j << " exact dot " << exact;
    }
  }
}

TEST_P(Avx2Family, ExtremeAccumulatorsGiveTheExactDot) {
  for (std::size_t in : {std::size_t{64}, std::size_t{256}, std::size_t{1024}, std::size_t{4096}, std::size_t{65536},
                         std::size_t{1} << 20}) {
    for (std::size_t batch : {1, 2, 4, 6}) {
      check_extreme_accumulators<bitlinear::Ternary>(GetParam(), in, batch);
      check_extreme_accumulators<bitlinear::Binary>(GetParam(), in, batch);
    }
  }
}

// forward_quantized over any split of the output rows writes exactly what the full call writes, and nothing
// outside the rows asked for (the gaps of a padded y_stride keep their sentinel).
template <class Layer>
void check_row_splits(Isa isa, std::size_t batch) {
  const std::size_t out = 75, in = 300, y_stride = out + 5;
  const auto w = bitlinear_test::random_floats(out * in, 5);
  const auto bias = bitlinear_test::random_floats(out, 6);
  const auto x = bitlinear_test::random_floats(batch * in, 7, -2.0f, 2.0f);
  bitlinear::Options o;
  o.isa = isa;
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), o);
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  const float sentinel = -12345.5f;
  std::vector<float> full(batch * y_stride, sentinel);
  layer.forward_quantized(acts.view(), 0, out, full.data(), y_stride);
  for (const std::vector<std::size_t>& cuts :
       {std::vector<std::size_t>{0, 1, 2, 3, 75}, {0, 5, 37, 75}, {0, 16, 32, 48, 64, 75}, {0, 17, 18, 59, 75},
        {0, 74, 75}}) {
    std::vector<float> split(batch * y_stride, sentinel);
    for (std::size_t c = 0; c + 1 < cuts.size(); ++c) {
      std::vector<float> part(batch * y_stride, sentinel);
      layer.forward_quantized(acts.view(), cuts[c], cuts[c + 1], part.data(), y_stride);
      for (std::size_t t = 0; t < batch; ++t) {
        for (std::size_t j = 0; j < y_stride; ++j) {
          const float v = part[t * y_stride + j];
          const bool inside = j >= cuts[c] && j < cuts[c + 1];
          if (!inside) {
            ASSERT_TRUE(same_bits(v, sentinel)) << "wrote outside rows [" << cuts[c] << ", " << cuts[c + 1]
                                                << ") at token " << t << " column " << j;
          } else {
            split[t * y_stride + j] = v;
          }
        }
      }
    }
    expect_same_outputs(split, full, std::string(bitlinear::isa_name(isa)) + " split of batch " + std::to_string(batch));
  }
}

TEST_P(Avx2Family, RowRangeSplitsEqualTheFullCall) {
  for (std::size_t batch : {1, 3, 4, 9}) {
    check_row_splits<bitlinear::TernaryLinear>(GetParam(), batch);
    check_row_splits<bitlinear::BinaryLinear>(GetParam(), batch);
  }
}

// A NaN or infinity makes its own row NaN (per token), or the whole batch (per tensor), exactly as scalar.
template <class Layer>
void check_non_finite(Isa isa, bitlinear::ActivationScale mode, std::size_t batch, std::size_t in) {
  const std::size_t out = 21;
  const auto w = bitlinear_test::random_floats(out * in, 8);
  const auto bias = bitlinear_test::random_floats(out, 9);
  auto x = bitlinear_test::random_floats(batch * in, 10);
  x[1 * in + in - 1] = std::numeric_limits<float>::quiet_NaN();  // last element: the masked tail
  if (batch > 3) x[3 * in] = -std::numeric_limits<float>::infinity();
  if (batch > 4) x[4 * in + in / 2] = std::numeric_limits<float>::infinity();
  bitlinear::Options o;
  o.isa = isa;
  o.activation_scale = mode;
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), o);
  const auto reference = Layer::from_float(w.data(), out, in, bias.data(), scalar_options(mode));
  std::vector<float> y(batch * out), y_ref(batch * out);
  layer.forward(x.data(), batch, y.data());
  reference.forward(x.data(), batch, y_ref.data());
  expect_same_outputs(y, y_ref, "non-finite rows");
  for (std::size_t t = 0; t < batch; ++t) {
    const bool poisoned = mode == bitlinear::ActivationScale::per_tensor || t == 1 || t == 3 || t == 4;
    for (std::size_t j = 0; j < out; ++j) EXPECT_EQ(bitlinear_test::is_nan(y[t * out + j]), poisoned) << "token " << t;
  }
}

TEST_P(Avx2Family, NonFiniteRowsMatchScalar) {
  for (auto mode : {bitlinear::ActivationScale::per_token, bitlinear::ActivationScale::per_tensor}) {
    for (std::size_t batch : {2, 5, 7}) {
      for (std::size_t in : {9, 40, 2560}) {
        check_non_finite<bitlinear::TernaryLinear>(GetParam(), mode, batch, in);
        check_non_finite<bitlinear::BinaryLinear>(GetParam(), mode, batch, in);
      }
    }
  }
}

// Inputs and outputs at every float offset from a 64-byte boundary, with strides that are not multiples of 8.
TEST_P(Avx2Family, UnalignedStridedPointersMatchScalar) {
  const std::size_t out = 29, in = 131, x_stride = 137, y_stride = 31;
  const auto w = bitlinear_test::random_floats(out * in, 12);
  const auto bias = bitlinear_test::random_floats(out, 13);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in, bias.data(), options());
  const auto reference = bitlinear::TernaryLinear::from_float(w.data(), out, in, bias.data(), scalar_options());
  for (std::size_t batch : {1, 6}) {
    const auto x = bitlinear_test::random_floats(batch * x_stride, 14, -3.0f, 3.0f);
    std::vector<float> y_ref(batch * y_stride, 0.0f);
    reference.forward(x.data(), batch, x_stride, y_ref.data(), y_stride);
    for (std::size_t offset = 0; offset < 64; offset += 4) {
      bitlinear_test::Misaligned<float> xu(batch * x_stride, offset), yu(batch * y_stride, offset);
      std::copy(x.begin(), x.end(), xu.data());
      std::fill_n(yu.data(), batch * y_stride, 0.0f);
      layer.forward(xu.data(), batch, x_stride, yu.data(), y_stride);
      expect_same_outputs(std::vector<float>(yu.data(), yu.data() + batch * y_stride), y_ref,
                          "byte offset " + std::to_string(offset) + " batch " + std::to_string(batch));
    }
  }
}

// The quantization kernels themselves against the reference: ties, signed zeros, subnormals, huge values,
// NaN and infinity at every position class, short rows, and q buffers with and without room for a vector tail.
TEST_P(Avx2Family, QuantizationKernelsMatchReference) {
  const bitlinear::detail::KernelTable& k = bitlinear::detail::kernel_table(GetParam());
  const bitlinear::detail::KernelTable& r = bitlinear::detail::kernel_table(Isa::scalar);
  ASSERT_EQ(k.isa, GetParam());
  std::uint32_t seed = 99;
  for (std::size_t n : {1, 2, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 511, 512, 2560}) {
    auto base = bitlinear_test::random_floats(n, seed++, -2.0f, 2.0f);
    for (std::size_t i = 0; i < n; i += 5) base[i] = static_cast<float>(static_cast<int>(i % 9) - 4) + 0.5f;  // ties
    if (n > 3) {
      base[1] = -0.0f;
      base[2] = 1e-40f;  // subnormal
    }
    for (float s_x : {1.0f, 127.0f / 4.5f, 31.75f, 1e3f}) {  // 1e3: products far past the int8 range, clamped
      for (std::size_t padded : {n, (n + 31) / 32 * 32, bitlinear::activation_stride(n)}) {
        for (std::size_t offset : {0, 4, 12}) {
          bitlinear_test::Misaligned<float> x(n, offset);
          std::copy(base.begin(), base.end(), x.data());
          std::vector<std::int8_t> q(padded + 8, 77), q_ref(padded + 8, 77);
          const std::int32_t sum = k.quantize_row(x.data(), n, s_x, q.data(), padded);
          const std::int32_t sum_ref = r.quantize_row(x.data(), n, s_x, q_ref.data(), padded);
          ASSERT_EQ(sum, sum_ref) << "n=" << n << " s_x=" << s_x;
          ASSERT_EQ(q, q_ref) << "n=" << n << " s_x=" << s_x << " padded=" << padded;  // incl. untouched bytes
          ASSERT_TRUE(same_bits(k.absmax(x.data(), n), r.absmax(x.data(), n))) << "n=" << n;
        }
      }
    }
    for (float special : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::quiet_NaN()}) {
      for (std::size_t at : {std::size_t{0}, n / 2, n - 1}) {
        auto x = base;
        x[at] = special;
        EXPECT_FALSE(bitlinear_test::is_finite(k.absmax(x.data(), n))) << "n=" << n << " special at " << at;
      }
    }
    bitlinear_test::Misaligned<float> x(n, 4);
    std::copy(base.begin(), base.end(), x.data());
    const float m = k.absmax(x.data(), n);
    EXPECT_TRUE(same_bits(m, r.absmax(x.data(), n)));
    float expected = 0.0f;
    for (float v : base) expected = std::max(expected, std::fabs(v));
    EXPECT_TRUE(same_bits(m, expected)) << "n=" << n << ": " << m << " vs " << expected;
  }
}

INSTANTIATE_TEST_SUITE_P(X86, Avx2Family, ::testing::Values(Isa::avx2, Isa::avxvnni),
                         [](const ::testing::TestParamInfo<Isa>& param_info) { return bitlinear_test::isa_label(param_info.param); });

}  // namespace
