// Issue 12 regressions: checked size arithmetic, QuantizedActivations' strong exception guarantee, weight
// scales without a finite reciprocal, results independent of the FP environment (rounding mode, FTZ/DAZ, on
// ThreadPool workers), and moved-from layers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

#include <bitlinear/io/hf_import_compact.hpp>
#include <bitlinear/io/serialize.hpp>

#include "test_util.hpp"

namespace {

using bitlinear::ActivationScale;
using bitlinear::BinaryLinear;
using bitlinear::Isa;
using bitlinear::QuantizedActivations;
using bitlinear::TernaryLinear;
using bitlinear::ThreadPool;
using ::testing::HasSubstr;

using bitlinear_test::invalid_argument_message;

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!bitlinear_test::same_bits(a[i], b[i])) return false;
  }
  return true;
}

constexpr std::size_t kHuge = std::numeric_limits<std::size_t>::max();

// ---------------------------------------------------------------- item 3: size arithmetic

TEST(SizeArithmetic, WorkspaceSizeOfAnAbsurdBatchThrows) {
  const std::vector<float> w(15, 0.25f);
  const auto layer = TernaryLinear::from_float(w.data(), 3, 5);
  // The batch of the issue: batch * 512 + ... wrapped to 132 bytes before.
  EXPECT_THAT(invalid_argument_message([&] { (void)layer.workspace_size(1135184250689818561ull); }),
              HasSubstr("activation workspace for batch 1135184250689818561 x in_features 5 does not fit in memory"));
  EXPECT_THAT(invalid_argument_message([&] { (void)bitlinear::activation_workspace_size(kHuge, 1); }),
              HasSubstr("does not fit in memory"));
  EXPECT_THAT(invalid_argument_message([&] { (void)bitlinear::activation_workspace_size(kHuge / 4, 1); }),
              HasSubstr("does not fit in memory"));
  EXPECT_THAT(invalid_argument_message([&] { (void)bitlinear::activation_workspace_size(1, kHuge); }),
              HasSubstr("in_features 18446744073709551615 exceeds the limit of 2^20"));
  // And a forward with that batch and a small caller workspace is refused before anything is written. The batch
  // comes through a volatile: as a constant, GCC (MinGW 12) inlines forward() and warns that the quantization loop
  // over it would overflow the pointer, a loop the call never reaches (it throws first).
  volatile std::size_t absurd_batch_source = 1135184250689818561ull;
  const std::size_t absurd_batch = absurd_batch_source;
  std::vector<unsigned char> workspace(4096);
  std::vector<float> x(8, 1.0f), y(8, 0.0f);
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), absurd_batch, 5, y.data(), 3, workspace.data(), workspace.size());
              }),
              HasSubstr("does not fit in memory"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), absurd_batch, y.data()); }),
              HasSubstr("does not fit in memory"));
  // Normal sizes still work and are what they were.
  EXPECT_EQ(layer.workspace_size(1), 512u + 64u + 4u + 64u);
}

TEST(SizeArithmetic, StridesWhoseSpanWrapsAreRejected) {
  const std::vector<float> w(15, 0.25f);
  const auto layer = TernaryLinear::from_float(w.data(), 3, 5);
  std::vector<float> x(16, 1.0f), y(16, 0.0f);
  std::vector<unsigned char> workspace(layer.workspace_size(2));
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), 2, kHuge / 2, y.data(), 3, workspace.data(), workspace.size());
              }),
              HasSubstr("input x of 2 rows with stride 9223372036854775807 (row width 5) does not fit in memory"));
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), 2, 5, y.data(), kHuge / 4, workspace.data(), workspace.size());
              }),
              HasSubstr("output y of 2 rows with stride"));
  ThreadPool pool(2);
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), 2, kHuge / 2, y.data(), 3, workspace.data(), workspace.size(), pool);
              }),
              HasSubstr("input x of 2 rows"));
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), 2, 5, y.data(), kHuge / 8, workspace.data(), workspace.size(), pool);
              }),
              HasSubstr("output y of 2 rows"));
  // The largest extent that fits is still accepted by the check (one row: the stride does not matter).
  EXPECT_NO_THROW(layer.forward(x.data(), 1, kHuge, y.data(), kHuge, workspace.data(), workspace.size()));
  // A hand-built activations view claiming more rows than memory can hold.
  QuantizedActivations acts;
  layer.quantize(x.data(), 1, 5, acts);
  bitlinear::ActivationsView view = acts.view();
  view.batch = kHuge / 256;
  EXPECT_THAT(invalid_argument_message([&] { layer.forward_quantized(view, 0, 3, y.data(), 3); }),
              HasSubstr("does not fit in memory"));
  // quantize_activations() into a caller view: same rule for x.
  const auto mutable_view = bitlinear::activation_view_in(workspace.data(), workspace.size(), 2, 5);
  EXPECT_THAT(invalid_argument_message([&] {
                bitlinear::quantize_activations(x.data(), 2, 5, kHuge / 2, ActivationScale::per_token, mutable_view);
              }),
              HasSubstr("input x of 2 rows"));
}

TEST(SizeArithmetic, ShapeLimitIsTwoToTheFortyWeights) {
  const std::vector<float> w(8, 0.5f);
  // out * in > 2^40 (checked by division, so no product can wrap).
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_float(w.data(), (std::size_t{1} << 21) + 1, 1u << 19); }),
              HasSubstr("exceeds the limit of 2^40 weights"));
  EXPECT_THAT(invalid_argument_message([&] { BinaryLinear::from_float(w.data(), kHuge, 1); }),
              HasSubstr("out_features 18446744073709551615 x in_features 1 exceeds the limit of 2^40 weights"));
  const std::vector<std::uint8_t> packed(64, 0x55);
  EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_packed(packed.data(), 64, kHuge / 64, 1, 1.0f); }),
              HasSubstr("exceeds the limit of 2^40 weights"));
}

// ---------------------------------------------------------------- item 4: strong exception guarantee

// The allocating forward checks x and y before it allocates its workspace: a batch whose workspace would take
// tens of TiB, with a stride that does not fit, is the stride's invalid_argument (it used to be bad_alloc).
TEST(SizeArithmetic, AllocatingForwardChecksExtentsBeforeItAllocates) {
  const std::vector<float> w(15, 0.25f);
  const auto layer = TernaryLinear::from_float(w.data(), 3, 5);
  std::vector<float> x(16, 1.0f), y(16, 0.0f);
  const std::size_t batch = std::size_t{1} << 36;  // workspace: about 2^45 bytes
  ASSERT_GT(layer.workspace_size(batch), std::size_t{1} << 44);
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), batch, std::size_t{1} << 40, y.data(), 3); }),
              HasSubstr("input x of"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), batch, 5, y.data(), std::size_t{1} << 40); }),
              HasSubstr("output y of"));
  ThreadPool pool(2);
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), batch, std::size_t{1} << 40, y.data(), 3, pool);
              }),
              HasSubstr("input x of"));
}

// The same for the group-scaled layers (one scale per row here: in_features 5), with and without a pool.
TEST(SizeArithmetic, GroupedAllocatingForwardChecksExtentsBeforeItAllocates) {
  const std::vector<float> w(15, 0.25f);
  const auto layer = bitlinear::GroupedTernaryLinear::from_float(w.data(), 3, 5, 5);
  std::vector<float> x(16, 1.0f), y(16, 0.0f);
  const std::size_t batch = std::size_t{1} << 36;
  ASSERT_GT(layer.workspace_size(batch), std::size_t{1} << 44);
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), batch, std::size_t{1} << 40, y.data(), 3); }),
              HasSubstr("input x of"));
  EXPECT_THAT(invalid_argument_message([&] { layer.forward(x.data(), batch, 5, y.data(), std::size_t{1} << 40); }),
              HasSubstr("output y of"));
  ThreadPool pool(2);
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), batch, std::size_t{1} << 40, y.data(), 3, pool);
              }),
              HasSubstr("input x of"));
  EXPECT_THAT(invalid_argument_message([&] {
                layer.forward(x.data(), batch, 5, y.data(), std::size_t{1} << 40, pool);
              }),
              HasSubstr("output y of"));
}

TEST(QuantizedActivationsGuarantee, AFailedCallLeavesTheObjectAsItWas) {
  const std::size_t in = 40;
  const auto w = bitlinear_test::random_floats(7 * in, 11);
  const auto layer = TernaryLinear::from_float(w.data(), 7, in);
  const auto x = bitlinear_test::random_floats(3 * in, 12, -2.0f, 2.0f);
  QuantizedActivations acts;
  acts.quantize(x.data(), 3, in, in);
  const bitlinear::ActivationsView before = acts.view();
  const std::vector<std::int8_t> q_before(before.q, before.q + before.batch * before.stride);
  std::vector<float> y_before(3 * 7), y_after(3 * 7);
  layer.forward_quantized(before, 0, 7, y_before.data(), 7);

  const auto big = bitlinear_test::random_floats(9 * in, 13);
  auto expect_unchanged = [&](const char* what) {
    const bitlinear::ActivationsView now = acts.view();
    EXPECT_EQ(now.q, before.q) << what;
    EXPECT_EQ(now.scale, before.scale) << what;
    EXPECT_EQ(now.batch, before.batch) << what;
    EXPECT_EQ(now.in_features, before.in_features) << what;
    EXPECT_EQ(now.stride, before.stride) << what;
    EXPECT_EQ(std::vector<std::int8_t>(now.q, now.q + now.batch * now.stride), q_before) << what;
    layer.forward_quantized(now, 0, 7, y_after.data(), 7);
    EXPECT_TRUE(same_floats(y_after, y_before)) << what;
  };
  EXPECT_THROW(acts.quantize(nullptr, 9, in, in), std::invalid_argument);
  expect_unchanged("null x, larger batch");
  EXPECT_THROW(acts.quantize(big.data(), 9, in, in - 1), std::invalid_argument);
  expect_unchanged("x_stride < in_features");
  EXPECT_THROW(acts.quantize(big.data(), 0, in, in), std::invalid_argument);
  expect_unchanged("batch 0");
  EXPECT_THROW(acts.quantize(big.data(), kHuge / 2, in, in), std::invalid_argument);
  expect_unchanged("absurd batch");
  EXPECT_THROW(acts.quantize(big.data(), 2, (1u << 20) + 1, (1u << 20) + 1), std::invalid_argument);
  expect_unchanged("in_features above 2^20");
  EXPECT_THROW(acts.quantize(big.data(), 2, in, in, ActivationScale::per_token, static_cast<Isa>(200)),
               std::exception);
  expect_unchanged("unknown isa");
}

// ---------------------------------------------------------------- item 5: weight scale extremes

TEST(WeightScale, TernaryScaleWithoutAFiniteReciprocalIsRejected) {
  const std::size_t out = 2, in = 3;
  std::vector<std::uint8_t> packed(bitlinear::packed_size<bitlinear::Ternary>(out, in), 0x55);
  // 2.9e-39 and below: 1 / beta overflows to inf, which made every output inf, 0 or NaN.
  for (float beta : {2.0e-39f, 1.0e-45f, 2.9e-39f}) {
    EXPECT_THAT(invalid_argument_message([&] { TernaryLinear::from_packed(packed.data(), packed.size(), out, in, beta); }),
                HasSubstr("its reciprocal 1 / weight_scale is not a finite float"))
        << beta;
  }
  // The smallest accepted scales have a finite reciprocal, and outputs stay finite.
  const float smallest = 1.0f / std::numeric_limits<float>::max();  // 2.9387359e-39 (subnormal), 1/x = FLT_MAX
  const auto layer = TernaryLinear::from_packed(packed.data(), packed.size(), out, in,
                                                std::nextafter(smallest, 1.0f));
  const float x[3] = {1.0f, -2.0f, 0.5f};
  float y[2] = {-1.0f, -1.0f};
  layer.forward(x, 1, y);
  EXPECT_TRUE(bitlinear::detail::is_finite_bits(y[0]) && bitlinear::detail::is_finite_bits(y[1]));
  // Binary multiplies by the scale (no reciprocal): tiny and zero scales stay valid.
  std::vector<std::uint8_t> binary(bitlinear::packed_size<bitlinear::Binary>(out, in), 0x00);
  EXPECT_NO_THROW(BinaryLinear::from_packed(binary.data(), binary.size(), out, in, 1.0e-45f));
  EXPECT_NO_THROW(BinaryLinear::from_packed(binary.data(), binary.size(), out, in, 0.0f));
}

TEST(WeightScale, LoadRejectsATernaryScaleWithoutAFiniteReciprocal) {
  const auto w = bitlinear_test::random_floats(6, 5);
  auto bytes = bitlinear::save_to_bytes(TernaryLinear::from_float(w.data(), 2, 3));
  const float tiny = 1.0e-40f;
  std::memcpy(bytes.data() + 40, &tiny, 4);  // weight_scale (little-endian host)
  const std::uint32_t crc = bitlinear::detail::crc32_update(0, bytes.data(), bytes.size() - 4);
  for (int i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = static_cast<unsigned char>(crc >> (8 * i));
  EXPECT_THAT(invalid_argument_message([&] { bitlinear::load<bitlinear::Ternary>(bytes.data(), bytes.size()); }),
              HasSubstr("is too small: its reciprocal 1 / weight_scale is not a finite float"));
}

// ---------------------------------------------------------------- item 6: the FP environment

// A mode the caller may have set: a rounding direction, or flush-to-zero / denormals-are-zero.
enum class FpMode { toward_zero, upward, downward, flush_denormals };
const FpMode kModes[] = {FpMode::toward_zero, FpMode::upward, FpMode::downward, FpMode::flush_denormals};

const char* mode_name(FpMode m) {
  switch (m) {
    case FpMode::toward_zero: return "FE_TOWARDZERO";
    case FpMode::upward: return "FE_UPWARD";
    case FpMode::downward: return "FE_DOWNWARD";
    default: return "FTZ+DAZ";
  }
}

bool set_flush_denormals(bool on) {
#if defined(__x86_64__) || defined(_M_X64)
  const unsigned bits = 0x8040u;  // FTZ | DAZ
  _mm_setcsr(on ? (_mm_getcsr() | bits) : (_mm_getcsr() & ~bits));
  return true;
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
  std::uint64_t fpcr = 0;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
  fpcr = on ? (fpcr | (std::uint64_t{1} << 24)) : (fpcr & ~(std::uint64_t{1} << 24));
  __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
  return true;
#else
  (void)on;
  return false;
#endif
}

// Sets the mode for its lifetime (on the calling thread only).
class ScopedFpMode {
 public:
  explicit ScopedFpMode(FpMode mode) : mode_(mode) {
    switch (mode) {
      case FpMode::toward_zero: EXPECT_EQ(std::fesetround(FE_TOWARDZERO), 0); break;
      case FpMode::upward: EXPECT_EQ(std::fesetround(FE_UPWARD), 0); break;
      case FpMode::downward: EXPECT_EQ(std::fesetround(FE_DOWNWARD), 0); break;
      default: EXPECT_TRUE(set_flush_denormals(true)); break;
    }
  }
  ~ScopedFpMode() {
    std::fesetround(FE_TONEAREST);
    set_flush_denormals(false);
  }
  // The library must hand the caller's environment back unchanged.
  void expect_still_set() const {
    switch (mode_) {
      case FpMode::toward_zero: EXPECT_EQ(std::fegetround(), FE_TOWARDZERO); break;
      case FpMode::upward: EXPECT_EQ(std::fegetround(), FE_UPWARD); break;
      case FpMode::downward: EXPECT_EQ(std::fegetround(), FE_DOWNWARD); break;
      default: {
#if defined(__x86_64__) || defined(_M_X64)
        EXPECT_EQ(_mm_getcsr() & 0x8040u, 0x8040u);
#endif
        break;
      }
    }
  }

 private:
  FpMode mode_;
};

// Everything a layer computes from one set of inputs: weights, scale, quantized activations, outputs.
struct Results {
  std::vector<std::int8_t> codes;
  float weight_scale = 0.0f;
  std::vector<std::int8_t> q;
  std::vector<float> scales;
  std::vector<float> y;
  std::vector<float> y_pool;
};

template <class Layer>
Results compute(Isa isa, ActivationScale scale_mode, const std::vector<float>& w, const std::vector<float>& bias,
                const std::vector<float>& x, std::size_t out, std::size_t in, std::size_t batch, ThreadPool& pool) {
  bitlinear::Options options;
  options.isa = isa;
  options.activation_scale = scale_mode;
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), options);
  Results r;
  r.codes = layer.unpacked_weights();
  r.weight_scale = layer.weight_scale();
  QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  const bitlinear::ActivationsView v = acts.view();
  for (std::size_t t = 0; t < batch; ++t) {
    r.q.insert(r.q.end(), v.q + t * v.stride, v.q + t * v.stride + in);
    r.scales.push_back(v.scale[t]);
  }
  r.y.assign(batch * out, 0.0f);
  layer.forward(x.data(), batch, r.y.data());
  r.y_pool.assign(batch * out, 0.0f);
  layer.forward(x.data(), batch, r.y_pool.data(), pool);
  return r;
}

void expect_same(const Results& a, const Results& b, const std::string& what) {
  EXPECT_EQ(a.codes, b.codes) << what;
  EXPECT_TRUE(bitlinear_test::same_bits(a.weight_scale, b.weight_scale)) << what;
  EXPECT_EQ(a.q, b.q) << what;
  EXPECT_TRUE(same_floats(a.scales, b.scales)) << what;
  std::size_t differing = 0;
  for (std::size_t i = 0; i < a.y.size(); ++i) differing += bitlinear_test::same_bits(a.y[i], b.y[i]) ? 0 : 1;
  EXPECT_EQ(differing, 0u) << what << ": outputs differ from the default environment's";
  differing = 0;
  for (std::size_t i = 0; i < a.y.size(); ++i) differing += bitlinear_test::same_bits(a.y[i], b.y_pool[i]) ? 0 : 1;
  EXPECT_EQ(differing, 0u) << what << ": ThreadPool outputs differ from the default single-threaded ones";
}

class FpEnvironment : public ::testing::TestWithParam<Isa> {};

template <class Layer>
void check_every_mode(Isa isa, float weight_magnitude, float bias_magnitude) {
  const std::size_t out = 70, in = 300, batch = 67;  // large enough for the pool to split rows and outputs
  const auto w = bitlinear_test::random_floats(out * in, 21, -weight_magnitude, weight_magnitude);
  const auto bias = bitlinear_test::random_floats(out, 22, -bias_magnitude, bias_magnitude);
  auto x = bitlinear_test::random_floats(batch * in, 23, -3.0f, 3.0f);
  x[5] = 1.0e-39f;  // a subnormal input (DAZ would read it as 0)
  for (ActivationScale scale_mode : {ActivationScale::per_token, ActivationScale::per_tensor}) {
    ThreadPool pool(3);  // created in the default environment: its workers keep it
    const Results reference = compute<Layer>(isa, scale_mode, w, bias, x, out, in, batch, pool);
    for (FpMode mode : kModes) {
      ScopedFpMode scoped(mode);
      ThreadPool late_pool(2);  // created in the caller's mode: its workers inherit it
      const std::string what = std::string(bitlinear::isa_name(isa)) + " " + mode_name(mode) +
                               (scale_mode == ActivationScale::per_token ? " per_token" : " per_tensor");
      expect_same(reference, compute<Layer>(isa, scale_mode, w, bias, x, out, in, batch, pool), what);
      expect_same(reference, compute<Layer>(isa, scale_mode, w, bias, x, out, in, batch, late_pool),
                  what + " (pool created in that mode)");
      scoped.expect_still_set();
    }
  }
}

TEST_P(FpEnvironment, TernaryResultsDoNotDependOnTheCallersEnvironment) {
  check_every_mode<TernaryLinear>(GetParam(), 1.0f, 1.0f);
}

TEST_P(FpEnvironment, BinaryResultsDoNotDependOnTheCallersEnvironment) {
  check_every_mode<BinaryLinear>(GetParam(), 1.0f, 1.0f);
  // Subnormal weight scale and bias: flush-to-zero would turn outputs and the scale into zeros.
  check_every_mode<BinaryLinear>(GetParam(), 1.0e-38f, 1.0e-39f);
}

// The case: a pool created before the caller switches to FE_TOWARDZERO, 1024 x 1024 outputs.
TEST_P(FpEnvironment, PoolCreatedBeforeFesetroundMatchesTheSingleThreadedCall) {
  const std::size_t n = 1024, in = 64;  // a short row keeps the scalar family fast; the epilogue is what matters
  const auto w = bitlinear_test::random_floats(n * in, 31);
  const auto x = bitlinear_test::random_floats(n * in, 32, -4.0f, 4.0f);
  bitlinear::Options options;
  options.isa = GetParam();
  const auto layer = TernaryLinear::from_float(w.data(), n, in, nullptr, options);
  ThreadPool pool(2);
  std::vector<float> y_default(n * n), y_single(n * n), y_pool(n * n);
  layer.forward(x.data(), n, y_default.data());
  {
    ScopedFpMode scoped(FpMode::toward_zero);
    layer.forward(x.data(), n, y_single.data());
    layer.forward(x.data(), n, y_pool.data(), pool);
    scoped.expect_still_set();
  }
  std::size_t single_differs = 0, pool_differs = 0;
  for (std::size_t i = 0; i < n * n; ++i) {
    single_differs += bitlinear_test::same_bits(y_single[i], y_default[i]) ? 0 : 1;
    pool_differs += bitlinear_test::same_bits(y_pool[i], y_single[i]) ? 0 : 1;
  }
  EXPECT_EQ(single_differs, 0u);
  EXPECT_EQ(pool_differs, 0u);
}

// HF import computes beta = 1 / weight_scale (divide) or scales the bias (multiply): in the default environment.
TEST(FpEnvironmentHfImport, ScaleAndBiasDoNotDependOnTheCallersEnvironment) {
  const std::size_t rows = 3, in = 40, out = 4 * rows;
  std::vector<std::uint8_t> packed(rows * in);
  for (std::size_t i = 0; i < packed.size(); ++i) packed[i] = static_cast<std::uint8_t>((i * 37u + 11u) & 0xAAu);
  const auto bias = bitlinear_test::random_floats(out, 51, -1.0f, 1.0f);
  const float weight_scale = 3.0f;  // 1/3 and b * 3 round differently toward zero, up and down
  for (auto convention : {bitlinear::HfScaleConvention::divide, bitlinear::HfScaleConvention::multiply}) {
    const auto reference = bitlinear::ternary_from_hf_packed(packed.data(), rows, in, weight_scale, convention, bias.data());
    for (FpMode mode : kModes) {
      ScopedFpMode scoped(mode);
      const auto layer = bitlinear::ternary_from_hf_packed(packed.data(), rows, in, weight_scale, convention, bias.data());
      const auto compact =
          bitlinear::compact_ternary_from_hf_packed(packed.data(), rows, in, weight_scale, convention, bias.data());
      const std::string what = std::string(mode_name(mode)) +
                               (convention == bitlinear::HfScaleConvention::divide ? " divide" : " multiply");
      EXPECT_TRUE(bitlinear_test::same_bits(layer.weight_scale(), reference.weight_scale())) << what;
      EXPECT_TRUE(bitlinear_test::same_bits(compact.weight_scale(), reference.weight_scale())) << what;
      EXPECT_TRUE(same_floats(layer.bias(), reference.bias())) << what;
      EXPECT_TRUE(same_floats(compact.bias(), reference.bias())) << what;
      scoped.expect_still_set();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllRunnable, FpEnvironment, ::testing::ValuesIn(bitlinear_test::runnable_isas()),
                         [](const ::testing::TestParamInfo<Isa>& param_info) { return bitlinear_test::isa_label(param_info.param); });

// ---------------------------------------------------------------- item 7: moved-from layers

template <class Layer>
void check_moved_from() {
  const std::size_t out = 9, in = 33;
  const auto w = bitlinear_test::random_floats(out * in, 41);
  const auto bias = bitlinear_test::random_floats(out, 42);
  const auto x = bitlinear_test::random_floats(2 * in, 43);
  Layer original = Layer::from_float(w.data(), out, in, bias.data());
  std::vector<float> y_expected(2 * out), y(2 * out);
  original.forward(x.data(), 2, y_expected.data());

  Layer moved_to(std::move(original));
  moved_to.forward(x.data(), 2, y.data());
  EXPECT_TRUE(same_floats(y, y_expected));
  EXPECT_FALSE(moved_to.empty());

  // The moved-from layer is empty, and every use says so.
  EXPECT_TRUE(original.empty());  // NOLINT(bugprone-use-after-move): the documented empty state
  EXPECT_EQ(original.in_features(), 0u);
  EXPECT_EQ(original.out_features(), 0u);
  EXPECT_FALSE(original.has_bias());
  EXPECT_TRUE(original.bias().empty());
  EXPECT_TRUE(original.unpacked_weights().empty());
  EXPECT_EQ(original.packed_weights_size(), 0u);
  const std::string empty_message = "the layer is empty (it was moved from)";
  EXPECT_THAT(invalid_argument_message([&] { original.forward(x.data(), 2, y.data()); }), HasSubstr(empty_message));
  std::vector<unsigned char> workspace(4096);
  EXPECT_THAT(invalid_argument_message([&] {
                original.forward(x.data(), 1, in, y.data(), out, workspace.data(), workspace.size());
              }),
              HasSubstr(empty_message));
  ThreadPool pool(2);
  EXPECT_THAT(invalid_argument_message([&] { original.forward(x.data(), 2, y.data(), pool); }), HasSubstr(empty_message));
  QuantizedActivations acts;
  EXPECT_THAT(invalid_argument_message([&] { original.quantize(x.data(), 2, in, acts); }), HasSubstr(empty_message));
  moved_to.quantize(x.data(), 2, in, acts);
  EXPECT_THAT(invalid_argument_message([&] { original.forward_quantized(acts.view(), 0, 0, y.data(), out); }),
              HasSubstr(empty_message));
  EXPECT_THAT(invalid_argument_message([&] { (void)bitlinear::save_to_bytes(original); }),
              HasSubstr("cannot save an empty layer"));
  // Copies of an empty layer are empty; assigning a layer makes it usable again.
  const Layer copy = original;
  EXPECT_TRUE(copy.empty());
  original = moved_to;
  EXPECT_FALSE(original.empty());
  original.forward(x.data(), 2, y.data());
  EXPECT_TRUE(same_floats(y, y_expected));
  // Move assignment empties its source too; self-move-assignment keeps the layer.
  Layer target = Layer::from_float(w.data(), 1, 1);
  target = std::move(moved_to);
  EXPECT_TRUE(moved_to.empty());  // NOLINT(bugprone-use-after-move)
  target.forward(x.data(), 2, y.data());
  EXPECT_TRUE(same_floats(y, y_expected));
  Layer& alias = target;
  target = std::move(alias);
  EXPECT_FALSE(target.empty());
}

TEST(MovedFrom, TernaryLayerIsEmptyAndItsUseIsAClearError) { check_moved_from<TernaryLinear>(); }
TEST(MovedFrom, BinaryLayerIsEmptyAndItsUseIsAClearError) { check_moved_from<BinaryLinear>(); }

}  // namespace
