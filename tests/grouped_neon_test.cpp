// The aarch64 grouped kernels (neon/grouped.hpp), both families, called directly and through their grid slots,
// against the scalar reference ref::grouped_matmul bit for bit: every group size, per-token, per-block (32) and
// per-super-block (256, signed block scales) activations, tails (group size == in_features, odd in_features), row
// ranges, GEMV and GEMM batches, NaN rows, unaligned output strides. A family the (emulated) CPU cannot run is
// skipped (cortex-a53: no dotprod); on other architectures this file holds no tests. The suite is named NeonFamilies* so the cortex-a53 CI run includes it.
#include <bitlinear/bitlinear.hpp>

#if BITLINEAR_ARCH_AARCH64
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using bitlinear::ActivationsView;
using bitlinear::Isa;
namespace detail = bitlinear::detail;

// Quantized activations by hand: random int8 with zero padding, per token (block_size 0, random positive scales)
// or per block of `block` weights (scale 1, random block scales of widely varying magnitude); NaN rows get a NaN
// scale (and, per block, NaN block scales).
struct GroupedActivations {
  detail::AlignedBytes q;
  std::vector<float> scale;
  std::vector<std::int32_t> sum;
  std::vector<float> block_scale;
  ActivationsView view;

  GroupedActivations(std::size_t batch, std::size_t in, std::size_t block, std::uint32_t seed,
                     std::vector<std::size_t> nan_rows = {})
      : q(batch * bitlinear::activation_stride(in)), scale(batch), sum(batch) {
    const std::size_t stride = bitlinear::activation_stride(in);
    const std::size_t block_stride = block == 0 ? 0 : (in + block - 1) / block;
    block_scale.resize(batch * block_stride);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> value(-128, 127);
    std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
    std::uniform_int_distribution<int> exponent(-12, 12);
    auto* qp = reinterpret_cast<std::int8_t*>(q.data());
    for (std::size_t t = 0; t < batch; ++t) {
      std::int32_t total = 0;
      for (std::size_t k = 0; k < stride; ++k) {
        const int v = k < in ? value(rng) : 0;
        qp[t * stride + k] = static_cast<std::int8_t>(v);
        total += v;
      }
      sum[t] = total;
      scale[t] = block == 0 ? std::ldexp(mantissa(rng), exponent(rng)) : 1.0f;
      for (std::size_t b = 0; b < block_stride; ++b) {
        block_scale[t * block_stride + b] = std::ldexp(mantissa(rng), exponent(rng));
        // Per super-block (256, ggml's Q8_K): d has either sign, and +0 / -0 for all-zero or vanishing blocks.
        if (block == 256 && rng() % 2 != 0) block_scale[t * block_stride + b] = -block_scale[t * block_stride + b];
        if (block == 256 && rng() % 11 == 0) block_scale[t * block_stride + b] = rng() % 2 != 0 ? 0.0f : -0.0f;
      }
    }
    for (std::size_t t : nan_rows) {
      scale[t] = std::numeric_limits<float>::quiet_NaN();
      for (std::size_t b = 0; b < block_stride; ++b) block_scale[t * block_stride + b] = scale[t];
    }
    view = {qp,
            scale.data(),
            sum.data(),
            batch,
            in,
            stride,
            block == 0 ? nullptr : block_scale.data(),
            block,
            block_stride};
  }
};

// Random canonical rows: ternary codes -1..+2 (field value 3 = +2 included), binary +-1, compact -1..+1.
template <class Format>
std::vector<std::uint8_t> random_grouped_packed(std::size_t out, std::size_t in, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const std::size_t row_bytes = Format::packed_row_bytes(in);
  std::vector<std::uint8_t> packed(out * row_bytes, Format::zero_byte);
  const bool ternary_2bit = std::is_same<Format, bitlinear::Ternary>::value;
  const bool binary = std::is_same<Format, bitlinear::Binary>::value;
  std::uniform_int_distribution<int> code(-1, ternary_2bit ? 2 : 1);
  for (std::size_t r = 0; r < out; ++r) {
    for (std::size_t k = 0; k < in; ++k) {
      int c = code(rng);
      if (binary) c = c >= 0 ? 1 : -1;
      Format::set_code(packed.data() + r * row_bytes, k, c);
    }
  }
  return packed;
}

// Finite group scales of both signs over many binades.
std::vector<float> random_group_scales(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::uniform_int_distribution<int> exponent(-20, 20);
  std::bernoulli_distribution negative(0.4);
  std::vector<float> v(n);
  for (float& f : v) f = (negative(rng) ? -1.0f : 1.0f) * std::ldexp(mantissa(rng), exponent(rng));
  return v;
}

enum class Slot { direct, table };

std::vector<Isa> families() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::neon, Isa::neon_dotprod}) {
    if (detail::isa_runnable(isa)) isas.push_back(isa);
  }
  return isas;
}

template <class Format>
detail::MatmulKernel direct_kernel(Isa isa) {
  namespace neon = detail::neon;
  return isa == Isa::neon_dotprod ? &neon::grouped_matmul_dotprod<Format> : &neon::grouped_matmul_neon<Format>;
}

detail::WeightFormat grouped_format_of(bool ternary_2bit, bool binary) {
  return ternary_2bit ? detail::WeightFormat::ternary_grouped
                      : (binary ? detail::WeightFormat::binary_grouped : detail::WeightFormat::ternary_compact_grouped);
}

struct Case {
  std::size_t out, in, group, block, batch, row_begin, row_end;
  std::size_t group_rows = 1;
  std::vector<std::size_t> nan_rows = {};
};

std::string describe(const Case& c) {
  return "out=" + std::to_string(c.out) + " in=" + std::to_string(c.in) + " group=" + std::to_string(c.group) +
         " block=" + std::to_string(c.block) + " batch=" + std::to_string(c.batch) + " rows [" +
         std::to_string(c.row_begin) + ", " + std::to_string(c.row_end) + ") group_rows=" +
         std::to_string(c.group_rows);
}

// Runs every runnable NEON family (direct kernels and grid slots) on one case and
// compares with the scalar reference, including the sentinel outside the row range and the stride gap.
template <class Format>
void expect_grouped_matches(const Case& c, std::uint32_t seed) {
  constexpr bool ternary_2bit = std::is_same<Format, bitlinear::Ternary>::value;
  constexpr bool binary = std::is_same<Format, bitlinear::Binary>::value;
  const auto canonical = random_grouped_packed<Format>(c.out, c.in, seed);
  const std::size_t row_bytes = Format::packed_row_bytes(c.in);
  const bitlinear_test::LaidOutWeights laid_out(canonical.data(), c.out, c.in, row_bytes, c.group_rows);
  const detail::PackedWeightsView& w = laid_out.view();
  const GroupedActivations acts(c.batch, c.in, c.block, seed * 7 + 1, c.nan_rows);
  const std::size_t groups = (c.in + c.group - 1) / c.group;
  const std::vector<float> scales = random_group_scales(c.out * groups, seed * 13 + 5);
  const auto bias = bitlinear_test::random_floats(c.out, seed * 3 + 2, -4.0f, 4.0f);
  detail::Epilogue e{};
  e.bias = bias.data();
  e.group_scale = scales.data();
  e.group_size = c.group;
  e.groups_per_row = groups;

  const std::size_t y_stride = c.out + 3;
  const float sentinel = -12345.0f;
  std::vector<float> y_ref(c.batch * y_stride, sentinel);
  detail::ref::grouped_matmul<Format>(w, acts.view, c.row_begin, c.row_end, e, y_ref.data(), y_stride);

  for (Isa isa : families()) {
    for (Slot slot : {Slot::direct, Slot::table}) {
      const detail::MatmulKernel kernel = slot == Slot::direct
                                              ? direct_kernel<Format>(isa)
                                              : detail::kernel_table(isa)[grouped_format_of(ternary_2bit, binary)].matmul;
      bitlinear_test::Misaligned<float> y(c.batch * y_stride, 4 * (1 + c.out % 3));
      for (std::size_t i = 0; i < c.batch * y_stride; ++i) y.data()[i] = sentinel;
      kernel(w, acts.view, c.row_begin, c.row_end, e, y.data(), y_stride);
      for (std::size_t i = 0; i < c.batch * y_stride; ++i) {
        ASSERT_TRUE(bitlinear_test::same_bits(y.data()[i], y_ref[i]))
            << Format::name << " " << bitlinear::isa_name(isa) << (slot == Slot::direct ? " direct" : " grid slot")
            << " " << describe(c) << " token " << i / y_stride << " output " << i % y_stride << ": " << y.data()[i]
            << " vs scalar " << y_ref[i];
      }
    }
  }
}

template <class Format>
void sweep_shapes(std::uint32_t seed) {
  const std::size_t ins[] = {1, 3, 32, 63, 64, 65, 100, 200, 256, 257, 512, 513, 1000, 1024, 2100, 4100};
  const std::size_t batches[] = {1, 2, 3, 4, 5, 8, 1, 4, 6, 37};
  std::size_t pick = 0;
  for (std::size_t in : ins) {
    for (std::size_t group : {std::size_t{32}, std::size_t{64}, std::size_t{128}, std::size_t{256}, in}) {
      if (group != in && group > in) continue;
      for (std::size_t block : {std::size_t{0}, std::size_t{32}, std::size_t{256}}) {
        const std::size_t out = 5 + pick % 3;
        const std::size_t batch = batches[pick % 10];
        const std::size_t row_begin = pick % 2;
        const std::size_t row_end = out - (pick / 2) % 2;
        ++pick;
        expect_grouped_matches<Format>({out, in, group, block, batch, row_begin, row_end}, seed + pick);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

class NeonFamiliesGrouped : public ::testing::Test {
 protected:
  void SetUp() override {
    if (families().empty()) GTEST_SKIP() << "no NEON family runs here";
  }
};

TEST_F(NeonFamiliesGrouped, EveryFamilyIsInTheGrid) {
  for (Isa isa : families()) {
    const auto& table = detail::kernel_table(isa);
    EXPECT_TRUE(table[detail::WeightFormat::ternary_grouped].native) << bitlinear::isa_name(isa);
    EXPECT_TRUE(table[detail::WeightFormat::binary_grouped].native) << bitlinear::isa_name(isa);
    EXPECT_TRUE(table[detail::WeightFormat::ternary_compact_grouped].native) << bitlinear::isa_name(isa);
    EXPECT_EQ(table[detail::WeightFormat::ternary_grouped].gemm_min_batch, detail::neon::grouped_gemm_min_batch);
  }
}

TEST_F(NeonFamiliesGrouped, TernaryShapesGroupSizesAndTails) { sweep_shapes<bitlinear::Ternary>(100); }
TEST_F(NeonFamiliesGrouped, BinaryShapesGroupSizesAndTails) { sweep_shapes<bitlinear::Binary>(200); }

TEST_F(NeonFamiliesGrouped, CompactShapesGroupSizesAndTails) {
  std::uint32_t seed = 300;
  for (std::size_t in : {std::size_t{3}, std::size_t{63}, std::size_t{320}, std::size_t{1000}, std::size_t{1024},
                         std::size_t{1999}, std::size_t{4100}}) {
    for (std::size_t group : {std::size_t{32}, std::size_t{64}, std::size_t{128}, std::size_t{256}, in}) {
      if (group > in && group != in) continue;
      for (std::size_t batch : {std::size_t{1}, std::size_t{2}, std::size_t{6}, std::size_t{37}}) {
        expect_grouped_matches<bitlinear::TernaryCompact>({5, in, group, 32, batch, 0, 5}, ++seed);
        expect_grouped_matches<bitlinear::TernaryCompact>({5, in, group, 0, batch, 1, 4}, ++seed);
        expect_grouped_matches<bitlinear::TernaryCompact>({5, in, group, 256, batch, 1, 5}, ++seed);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Batches on both sides of grouped_gemm_min_batch and past the GEMM's token block; a row long enough that a
// per-row segment outlives the GEMM's chunk; NaN rows; every execution layout of the tests (the grouped formats
// are stored canonical, but the kernels read any layout, as the reference does).
TEST_F(NeonFamiliesGrouped, LargeBatchesLongRowsNanRowsAndLayouts) {
  const std::size_t min_batch = detail::neon::grouped_gemm_min_batch;
  std::uint32_t seed = 400;
  for (std::size_t batch : {min_batch - 1, min_batch, std::size_t{33}, std::size_t{130}}) {
    expect_grouped_matches<bitlinear::Ternary>({6, 384, 128, 32, batch, 1, 6, 1, {0, batch - 1}}, ++seed);
    expect_grouped_matches<bitlinear::Binary>({6, 384, 128, 0, batch, 0, 5, 1, {batch / 2}}, ++seed);
    expect_grouped_matches<bitlinear::Ternary>({7, 1024, 256, 256, batch, 0, 7, 1, {1}}, ++seed);
    expect_grouped_matches<bitlinear::Binary>({5, 1000, 1000, 256, batch, 1, 5, 1, {0}}, ++seed);
    if (HasFatalFailure()) return;
  }
  for (std::size_t batch : {std::size_t{2}, std::size_t{7}}) {
    expect_grouped_matches<bitlinear::Ternary>({3, 5000, 5000, 0, batch, 0, 3}, ++seed);
    expect_grouped_matches<bitlinear::Binary>({3, 5000, 5000, 0, batch, 0, 3}, ++seed);
    expect_grouped_matches<bitlinear::Ternary>({3, 5000, 5000, 32, batch, 0, 3}, ++seed);
    expect_grouped_matches<bitlinear::Ternary>({3, 5000, 5000, 256, batch, 0, 3}, ++seed);
    for (std::size_t group_rows : bitlinear_test::kLayoutGroupRows) {
      expect_grouped_matches<bitlinear::Ternary>({9, 768, 256, 0, batch, 2, 9, group_rows}, ++seed);
      expect_grouped_matches<bitlinear::Binary>({9, 768, 64, 32, batch, 1, 8, group_rows}, ++seed);
    }
    if (HasFatalFailure()) return;
  }
}

// Worst-case magnitudes: every activation -128 against every code +2 (or -1) keeps the int32 lanes exact.
TEST_F(NeonFamiliesGrouped, ExtremeActivations) {
  const std::size_t in = 4096;
  for (std::size_t batch : {std::size_t{1}, std::size_t{5}}) {
    GroupedActivations acts(batch, in, 0, 9);
    auto* q = const_cast<std::int8_t*>(acts.view.q);
    for (std::size_t t = 0; t < batch; ++t) {
      for (std::size_t k = 0; k < in; ++k) q[t * acts.view.stride + k] = -128;
    }
    const std::size_t row_bytes = bitlinear::Ternary::packed_row_bytes(in);
    std::vector<std::uint8_t> packed(2 * row_bytes, 0xFF);  // every field 3: code +2
    for (std::size_t k = 0; k < in; ++k) bitlinear::Ternary::set_code(packed.data() + row_bytes, k, -1);
    const detail::PackedWeightsView w{packed.data(), 2, in, row_bytes, 1};
    const std::vector<float> scales{0.75f, -3.0e-7f};
    const std::vector<float> bias{0.5f, -0.25f};
    detail::Epilogue e{};
    e.bias = bias.data();
    e.group_scale = scales.data();
    e.group_size = in;
    e.groups_per_row = 1;
    std::vector<float> y_ref(batch * 2), y(batch * 2);
    detail::ref::grouped_matmul<bitlinear::Ternary>(w, acts.view, 0, 2, e, y_ref.data(), 2);
    for (Isa isa : families()) {
      direct_kernel<bitlinear::Ternary>(isa)(w, acts.view, 0, 2, e, y.data(), 2);
      for (std::size_t i = 0; i < y.size(); ++i) {
        EXPECT_TRUE(bitlinear_test::same_bits(y[i], y_ref[i])) << bitlinear::isa_name(isa) << " " << i;
      }
    }
  }
}

}  // namespace

#endif  // BITLINEAR_ARCH_AARCH64
