// The avx512 kernel family against the scalar reference, bit for bit, where the generic kernel matrix does not
// reach: GEMM register-tile and panel tails (GEMM and GEMV called directly at every batch), worst-case int32
// accumulators at in_features = 2^20, row-range splits, non-finite rows, strided and unaligned x/y, and the
// quantization kernels on edge values. Skipped only on a CPU without AVX-512 VNNI.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include "test_util.hpp"

#if BITLINEAR_ARCH_X86_64

namespace {

namespace bl = bitlinear;
namespace det = bitlinear::detail;

#define SKIP_WITHOUT_AVX512()                                                        \
  do {                                                                               \
    if (!det::isa_runnable(bl::Isa::avx512)) GTEST_SKIP() << "CPU lacks avx512";     \
  } while (false)

bl::Options options_for(bl::Isa isa) {
  bl::Options o;
  o.isa = isa;
  return o;
}

template <class Layer>
bitlinear_test::LaidOutWeights view_of(const Layer& layer, std::size_t group_rows = 1) {
  return bitlinear_test::LaidOutWeights(layer, group_rows);
}

template <class Layer>
det::Epilogue epilogue_of(const Layer& layer) {
  return {layer.weight_scale(), 1.0f / layer.weight_scale(), layer.bias().data()};
}

template <class Format>
using Codes = std::conditional_t<Format::bits_per_weight == 2, det::avx512::TernaryCodes, det::avx512::BinaryCodes>;

template <class Format>
det::MatmulKernel scalar_matmul() {
  return Format::bits_per_weight == 2 ? &det::ref::ternary_matmul : &det::ref::binary_matmul;
}

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(bitlinear_test::same_bits(got[i], want[i])) << what << " at " << i << ": " << got[i] << " vs " << want[i];
  }
}

// GEMM and GEMV, called directly (not through the batch threshold), against scalar for one shape.
template <class Format>
void expect_gemm_and_gemv_match(std::size_t out, std::size_t in, std::size_t batch, std::uint32_t seed) {
  using Layer = bl::BitLinear<Format>;
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto bias = bitlinear_test::random_floats(out, seed + 1);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 2, -4.0f, 4.0f);
  const Layer layer = Layer::from_float(w.data(), out, in, bias.data(), options_for(bl::Isa::scalar));
  bl::QuantizedActivations acts;
  acts.quantize(x.data(), batch, in, in);
  const auto canonical = view_of(layer);
  const auto e = epilogue_of(layer);
  std::vector<float> want(batch * out);
  scalar_matmul<Format>()(canonical.view(), acts.view(), 0, out, e, want.data(), out);
  for (std::size_t group_rows : bitlinear_test::kLayoutGroupRows) {
    const auto laid_out = view_of(layer, group_rows);
    const auto& wv = laid_out.view();
    std::vector<float> gemm(batch * out, -1.0f), gemv(batch * out, -1.0f);
    det::avx512::gemm<Codes<Format>>(wv, acts.view(), 0, out, e, gemm.data(), out);
    det::avx512::gemv<Codes<Format>>(wv, acts.view(), 0, out, e, gemv.data(), out);
    const std::string shape = std::string(Format::name) + " out=" + std::to_string(out) + " in=" +
                              std::to_string(in) + " batch=" + std::to_string(batch) +
                              " group_rows=" + std::to_string(group_rows);
    expect_same_bits(gemm, want, "gemm " + shape);
    expect_same_bits(gemv, want, "gemv " + shape);
  }
}

// Outputs that hit every tail of the 32-output panel (and its two 16-lane halves); batches that hit every
// tail of the 12-token tile and of the 132-token chunk; in_features that end inside a block and that span
// several 1024-weight k-panels.
const std::size_t kTileOuts[] = {1, 5, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65};
const std::size_t kTileBatches[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 64, 128, 133};

TEST(Avx512Kernels, GemmAndGemvTilesMatchScalar) {
  SKIP_WITHOUT_AVX512();
  std::uint32_t seed = 7;
  for (std::size_t batch : kTileBatches) {
    for (std::size_t out : kTileOuts) {
      if (batch > 17 && out != 33 && out != 65) continue;  // big batches: two tail shapes suffice
      expect_gemm_and_gemv_match<bl::Ternary>(out, 300, batch, seed++);
      expect_gemm_and_gemv_match<bl::Binary>(out, 300, batch, seed++);
    }
  }
  for (std::size_t in : {1u, 64u, 255u, 256u, 511u, 1024u, 1025u, 2049u, 3333u}) {
    for (std::size_t batch : {1u, 13u, 64u}) {
      expect_gemm_and_gemv_match<bl::Ternary>(47, in, batch, seed++);
      expect_gemm_and_gemv_match<bl::Binary>(47, in, batch, seed++);
    }
  }
}

// Worst case for the int32 accumulators: in_features = 2^20 (the limit), rows of all +1 and all -1 codes
// (binary: all +1, all -1), activations all -128 and all 127, built by hand. With weight_scale 1 and
// activation scale 1, y is the exact integer dot product (|dot| <= 2^27 is exact in float32).
template <class Format>
void worst_case_accumulators() {
  using Layer = bl::BitLinear<Format>;
  const std::size_t in = bl::max_in_features, out = 3;
  std::vector<std::int8_t> codes(out * in);
  for (std::size_t k = 0; k < in; ++k) {
    codes[k] = 1;
    codes[in + k] = -1;
    codes[2 * in + k] = static_cast<std::int8_t>(k % 2 == 0 ? 1 : -1);
  }
  std::vector<std::uint8_t> packed(bl::packed_size<Format>(out, in));
  bl::pack_codes<Format>(codes.data(), out, in, packed.data());
  const Layer layer = Layer::from_packed(packed.data(), packed.size(), out, in, 1.0f, nullptr,
                                         options_for(bl::Isa::avx512));
  const Layer scalar = Layer::from_packed(packed.data(), packed.size(), out, in, 1.0f, nullptr,
                                          options_for(bl::Isa::scalar));
  // Tokens alternate q = -128 and q = 127 everywhere; 64 tokens so that forward_quantized takes the GEMM.
  for (std::size_t batch : {2u, 64u}) {
    const std::size_t stride = bl::activation_stride(in);
    bl::detail::AlignedBytes q_bytes(batch * stride);
    std::vector<float> scale(batch, 1.0f);
    std::vector<std::int32_t> sum(batch);
    for (std::size_t t = 0; t < batch; ++t) {
      const std::int8_t value = t % 2 == 0 ? std::int8_t{-128} : std::int8_t{127};
      std::fill_n(reinterpret_cast<std::int8_t*>(q_bytes.data()) + t * stride, in, value);
      sum[t] = static_cast<std::int32_t>(value) * static_cast<std::int32_t>(in);
    }
    const bl::ActivationsView acts{reinterpret_cast<const std::int8_t*>(q_bytes.data()), scale.data(), sum.data(),
                                   batch, in, stride};
    std::vector<float> y(batch * out), y_scalar(batch * out);
    layer.forward_quantized(acts, 0, out, y.data(), out);
    scalar.forward_quantized(acts, 0, out, y_scalar.data(), out);
    expect_same_bits(y, y_scalar, std::string(Format::name) + " worst case batch " + std::to_string(batch));
    const double n = static_cast<double>(in);
    for (std::size_t t = 0; t < batch; ++t) {
      const double q = t % 2 == 0 ? -128.0 : 127.0;
      EXPECT_EQ(y[t * out + 0], static_cast<float>(q * n)) << Format::name << " all +1, token " << t;
      EXPECT_EQ(y[t * out + 1], static_cast<float>(-q * n)) << Format::name << " all -1, token " << t;
      EXPECT_EQ(y[t * out + 2], 0.0f) << Format::name << " alternating, token " << t;
    }
    // The GEMM and GEMV kernels directly, whatever the threshold.
    std::vector<float> y_gemm(batch * out), y_gemv(batch * out);
    det::avx512::gemm<Codes<Format>>(view_of(layer).view(), acts, 0, out, epilogue_of(layer), y_gemm.data(), out);
    det::avx512::gemv<Codes<Format>>(view_of(layer).view(), acts, 0, out, epilogue_of(layer), y_gemv.data(), out);
    expect_same_bits(y_gemm, y_scalar, std::string(Format::name) + " worst case gemm");
    expect_same_bits(y_gemv, y_scalar, std::string(Format::name) + " worst case gemv");
  }
}

TEST(Avx512Kernels, WorstCaseAccumulatorsTernary) {
  SKIP_WITHOUT_AVX512();
  worst_case_accumulators<bl::Ternary>();
}
TEST(Avx512Kernels, WorstCaseAccumulatorsBinary) {
  SKIP_WITHOUT_AVX512();
  worst_case_accumulators<bl::Binary>();
}

// Any split of [0, out) into ranges gives the full call's bits, on the GEMV and the GEMM path.
template <class Format>
void row_ranges_match_full_call() {
  using Layer = bl::BitLinear<Format>;
  const std::size_t out = 101, in = 777;
  const auto w = bitlinear_test::random_floats(out * in, 11);
  const auto bias = bitlinear_test::random_floats(out, 12);
  const Layer layer = Layer::from_float(w.data(), out, in, bias.data(), options_for(bl::Isa::avx512));
  for (std::size_t batch : {1u, 3u, 70u}) {
    const auto x = bitlinear_test::random_floats(batch * in, 13 + static_cast<std::uint32_t>(batch), -2.0f, 2.0f);
    bl::QuantizedActivations acts;
    layer.quantize(x.data(), batch, in, acts);
    std::vector<float> full(batch * out);
    layer.forward_quantized(acts.view(), 0, out, full.data(), out);
    const std::vector<std::vector<std::size_t>> splits = {
        {0, 1, out}, {0, 17, 18, 50, out}, {0, 31, 33, 64, 100, out}, {0, 5, 6, 7, 8, 9, 40, 72, 73, out}};
    for (const auto& cuts : splits) {
      std::vector<float> pieces(batch * out, -7.0f);
      for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
        layer.forward_quantized(acts.view(), cuts[i], cuts[i + 1], pieces.data(), out);
      }
      expect_same_bits(pieces, full, std::string(Format::name) + " split, batch " + std::to_string(batch));
    }
  }
}

TEST(Avx512Kernels, RowRangesMatchFullCall) {
  SKIP_WITHOUT_AVX512();
  row_ranges_match_full_call<bl::Ternary>();
  row_ranges_match_full_call<bl::Binary>();
}

// The batch-1..4 GEMV cuts its row range into streams of 16-row chunks (gemv.hpp): ranges that start and end on
// and off chunk and stream boundaries, including ones that leave streams short or empty, give the scalar bits in
// [row_begin, row_end) and write nothing outside it, in every layout, for both 2-bit formats and compact.
template <class Layer>
void gemv_streams_match_scalar(const det::MatmulKernel kernel, const det::MatmulKernel reference) {
  const std::size_t out = 150, in = 333;
  const auto w = bitlinear_test::random_floats(out * in, 31);
  const auto bias = bitlinear_test::random_floats(out, 32);
  const Layer layer = Layer::from_float(w.data(), out, in, bias.data(), options_for(bl::Isa::scalar));
  const auto e = epilogue_of(layer);
  const auto canonical = view_of(layer);
  for (std::size_t batch = 1; batch <= 4; ++batch) {
    const auto x = bitlinear_test::random_floats(batch * in, 33 + static_cast<std::uint32_t>(batch), -2.0f, 2.0f);
    bl::QuantizedActivations acts;
    acts.quantize(x.data(), batch, in, in);
    std::vector<float> want(batch * out);
    reference(canonical.view(), acts.view(), 0, out, e, want.data(), out);
    for (std::size_t group_rows : {1u, 4u}) {
      const auto laid_out = view_of(layer, group_rows);
      for (std::size_t begin : {0u, 1u, 15u, 16u, 17u, 63u}) {
        for (std::size_t length : {1u, 15u, 16u, 17u, 33u, 63u, 64u, 65u, 80u, 129u, 150u}) {
          const std::size_t end = std::min(out, begin + length);
          const float sentinel = -12345.0f;
          std::vector<float> y(batch * out, sentinel);
          kernel(laid_out.view(), acts.view(), begin, end, e, y.data(), out);
          for (std::size_t t = 0; t < batch; ++t) {
            for (std::size_t j = 0; j < out; ++j) {
              const float got = y[t * out + j];
              const bool inside = j >= begin && j < end;
              ASSERT_TRUE(bitlinear_test::same_bits(got, inside ? want[t * out + j] : sentinel))
                  << Layer::format_type::name << " batch " << batch << " group_rows " << group_rows << " rows ["
                  << begin << ", " << end << ") token " << t << " output " << j;
            }
          }
        }
      }
    }
  }
}

TEST(Avx512Kernels, GemvStreamsMatchScalarForEveryRange) {
  SKIP_WITHOUT_AVX512();
  gemv_streams_match_scalar<bl::TernaryLinear>(&det::avx512::gemv<det::avx512::TernaryCodes>,
                                               &det::ref::ternary_matmul);
  gemv_streams_match_scalar<bl::BinaryLinear>(&det::avx512::gemv<det::avx512::BinaryCodes>,
                                              &det::ref::binary_matmul);
  if (bl::cpu_features().avx512vbmi) {  // the compact GEMV needs VBMI (only the avx512_vbmi row binds it)
    gemv_streams_match_scalar<bl::CompactTernaryLinear>(&det::avx512::compact_gemv, &det::ref::compact_matmul);
  }
}

// NaN and infinite inputs poison exactly their own rows, with the scalar family's bits, on both paths; y has
// a stride wider than out_features and the gaps are never written; x and y are unaligned.
template <class Format>
void non_finite_rows_and_strides() {
  using Layer = bl::BitLinear<Format>;
  const std::size_t out = 37, in = 515, x_stride = 519, y_stride = 41;
  const auto w = bitlinear_test::random_floats(out * in, 21);
  const auto bias = bitlinear_test::random_floats(out, 22);
  const Layer layer = Layer::from_float(w.data(), out, in, bias.data(), options_for(bl::Isa::avx512));
  const Layer scalar = Layer::from_float(w.data(), out, in, bias.data(), options_for(bl::Isa::scalar));
  for (std::size_t batch : {5u, 67u}) {
    bitlinear_test::Misaligned<float> x(batch * x_stride, 12), y(batch * y_stride, 8);
    const auto values = bitlinear_test::random_floats(batch * x_stride, 23, -3.0f, 3.0f);
    std::copy(values.begin(), values.end(), x.data());
    x.data()[1 * x_stride + 500] = std::numeric_limits<float>::quiet_NaN();
    x.data()[3 * x_stride + 0] = std::numeric_limits<float>::infinity();
    x.data()[4 * x_stride + in - 1] = -std::numeric_limits<float>::infinity();
    x.data()[2 * x_stride + in] = std::numeric_limits<float>::quiet_NaN();  // in the stride gap: not an input
    const float sentinel = 12345.0f;
    std::fill_n(y.data(), batch * y_stride, sentinel);
    std::vector<float> want(batch * y_stride, sentinel);
    layer.forward(x.data(), batch, x_stride, y.data(), y_stride);
    scalar.forward(x.data(), batch, x_stride, want.data(), y_stride);
    for (std::size_t t = 0; t < batch; ++t) {
      const bool poisoned = t == 1 || t == 3 || t == 4;
      for (std::size_t j = 0; j < y_stride; ++j) {
        const float got = y.data()[t * y_stride + j];
        ASSERT_TRUE(bitlinear_test::same_bits(got, want[t * y_stride + j])) << "row " << t << " col " << j;
        if (j >= out) {
          EXPECT_EQ(got, sentinel) << "gap written at row " << t << " col " << j;
        } else {
          EXPECT_EQ(bitlinear_test::is_nan(got), poisoned) << "row " << t << " col " << j;
        }
      }
    }
  }
}

TEST(Avx512Kernels, NonFiniteRowsStridesAndUnalignedPointers) {
  SKIP_WITHOUT_AVX512();
  non_finite_rows_and_strides<bl::Ternary>();
  non_finite_rows_and_strides<bl::Binary>();
}

// absmax and quantize_row against the reference on edge values: ties at .5, -0, subnormals, values beyond the
// int8 range, products that overflow to infinity, every tail length, padding that held garbage.
TEST(Avx512Kernels, QuantizationKernelsMatchReference) {
  SKIP_WITHOUT_AVX512();
  std::vector<float> specials = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, 127.5f, -127.5f, -128.5f, -0.0f,
                                 1e-40f, -1e-40f, 3e38f, -3e38f, 1000.0f, -1000.0f, 0.49999997f, 0.50000006f};
  const float scales[] = {1.0f, 127.0f / 3.0f, 1e30f, 3.0e38f};
  for (std::size_t n = 1; n <= 200; n += (n < 70 ? 1 : 13)) {
    auto x = bitlinear_test::random_floats(n, static_cast<std::uint32_t>(n), -130.0f, 130.0f);
    for (std::size_t i = 0; i < n; i += 3) x[i] = specials[(i / 3 + n) % specials.size()];
    EXPECT_TRUE(bitlinear_test::same_bits(det::avx512::absmax(x.data(), n), det::ref::absmax(x.data(), n))) << n;
    for (float s : scales) {
      const std::size_t padded = n + 77;
      std::vector<std::int8_t> q(padded, 99), q_ref(padded, 99);
      const std::int32_t sum = det::avx512::quantize_row(x.data(), n, s, q.data(), padded);
      const std::int32_t sum_ref = det::ref::quantize_row(x.data(), n, s, q_ref.data(), padded);
      EXPECT_EQ(sum, sum_ref) << "n=" << n << " s=" << s;
      EXPECT_EQ(q, q_ref) << "n=" << n << " s=" << s;
    }
    // Non-finite values anywhere make absmax non-finite.
    for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                      std::numeric_limits<float>::quiet_NaN()}) {
      auto y = x;
      y[n / 2] = bad;
      EXPECT_FALSE(bitlinear_test::is_finite(det::avx512::absmax(y.data(), n))) << "n=" << n << " bad=" << bad;
    }
  }
}

TEST(Avx512Kernels, AutomaticFamilyIsAnAvx512RowHere) {
  SKIP_WITHOUT_AVX512();
  EXPECT_TRUE(det::isa_implemented(bl::Isa::avx512));
  EXPECT_EQ(det::kernel_table(bl::Isa::avx512).isa, bl::Isa::avx512);
  EXPECT_EQ(det::kernel_table(bl::Isa::avx512_vbmi).isa, bl::Isa::avx512_vbmi);
  if (std::getenv("BITLINEAR_ISA") == nullptr) {
    EXPECT_EQ(bl::active_isa(), bl::cpu_features().avx512vbmi ? "avx512_vbmi" : "avx512");
  }
}

}  // namespace

#endif  // BITLINEAR_ARCH_X86_64
