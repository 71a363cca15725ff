// The x86 grouped kernels (avx2, avxvnni, avx512, avx512_vbmi rows of the grid: ternary_grouped, binary_grouped,
// ternary_compact_grouped) against ref::grouped_matmul, bit for bit: every group size, in_features tails
// (group_size == in_features with odd in), per-token, per-block (32) and per-super-block (256, block scales of
// either sign and zeros, as ggml's Q8_K gives) activations, NaN rows, row ranges, batches
// on both sides of each family's grouped_gemm_min_batch, unaligned y strides. Weights, scales and block scales sit
// in exact-size heap buffers, so an ASan build catches any read past them. Families the CPU cannot run are skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

#if BITLINEAR_ARCH_X86_64

namespace {

namespace bl = bitlinear;
namespace det = bitlinear::detail;

constexpr bl::Isa kX86Isas[] = {bl::Isa::avx2, bl::Isa::avxvnni, bl::Isa::avx512, bl::Isa::avx512_vbmi};
constexpr det::WeightFormat kGroupedFormats[] = {det::WeightFormat::ternary_grouped, det::WeightFormat::binary_grouped,
                                                 det::WeightFormat::ternary_compact_grouped};

struct Shape {
  std::size_t out, in, group, block, batch, row_begin, row_end, y_pad;
};

// One grouped problem with random contents, every buffer exactly as large as the contract says.
struct Problem {
  std::vector<std::uint8_t> packed;
  std::vector<float> group_scale, bias, scale, block_scale;
  std::vector<std::int8_t> q;
  std::vector<std::int32_t> sum;
  det::PackedWeightsView w;
  bl::ActivationsView a;
  det::Epilogue e;
};

float random_scale(std::mt19937& rng, bool signed_values) {
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::uniform_int_distribution<int> exponent(-14, 14);
  const float v = std::ldexp(mantissa(rng), exponent(rng));
  return signed_values && (rng() & 1u) != 0 ? -v : v;
}

template <class Format>
void fill_weights(Problem& p, const Shape& s, std::mt19937& rng) {
  const std::size_t row_bytes = Format::packed_row_bytes(s.in);
  p.packed.assign(s.out * row_bytes, Format::zero_byte);
  // 2-bit: -1, 0, +1 and +2 (field 3); 1-bit: -1, +1; compact: -1, 0, +1.
  constexpr bool binary = std::is_same_v<Format, bl::Binary>;
  const int lo = Format::min_code;
  const int hi = std::is_same_v<Format, bl::Ternary> ? 2 : 1;
  std::uniform_int_distribution<int> code(lo, hi);
  for (std::size_t j = 0; j < s.out; ++j) {
    for (std::size_t k = 0; k < s.in; ++k) {
      int c = code(rng);
      if (binary && c == 0) c = -1;
      Format::set_code(p.packed.data() + j * row_bytes, k, c);
    }
  }
  p.w = {p.packed.data(), s.out, s.in, row_bytes, 1};
}

template <class Format>
Problem make_problem(const Shape& s, std::uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p;
  fill_weights<Format>(p, s, rng);
  const std::size_t groups = (s.in + s.group - 1) / s.group;
  p.group_scale.resize(s.out * groups);
  for (float& v : p.group_scale) v = random_scale(rng, true);
  p.bias.resize(s.out);
  for (float& v : p.bias) v = random_scale(rng, true);
  const std::size_t stride = bl::activation_stride(s.in);
  p.q.assign(s.batch * stride, 0);
  p.sum.assign(s.batch, 0);
  std::uniform_int_distribution<int> act(-128, 127);
  for (std::size_t t = 0; t < s.batch; ++t) {
    for (std::size_t k = 0; k < s.in; ++k) {
      p.q[t * stride + k] = static_cast<std::int8_t>(act(rng));
      p.sum[t] += p.q[t * stride + k];
    }
  }
  p.scale.resize(s.batch);
  for (std::size_t t = 0; t < s.batch; ++t) {
    p.scale[t] = s.block != 0 ? 1.0f : random_scale(rng, false);
    if (t % 5 == 3) p.scale[t] = std::numeric_limits<float>::quiet_NaN();  // a non-finite input row
  }
  std::size_t block_stride = 0;
  if (s.block != 0) {
    block_stride = (s.in + s.block - 1) / s.block;
    p.block_scale.resize(s.batch * block_stride);
    for (float& v : p.block_scale) v = random_scale(rng, s.block == 256);
    if (s.block == 256) {  // Q8_K: d = 1 / iscale may be +0 or -0 (an all-zero block, an overflowing iscale)
      for (std::size_t i = 5; i < p.block_scale.size(); i += 13) p.block_scale[i] = (i / 13) % 2 == 0 ? 0.0f : -0.0f;
    }
  }
  p.a = {p.q.data(), p.scale.data(), p.sum.data(), s.batch, s.in, stride,
         s.block != 0 ? p.block_scale.data() : nullptr, s.block, block_stride};
  p.e.bias = p.bias.data();
  p.e.group_scale = p.group_scale.data();
  p.e.group_size = s.group;
  p.e.groups_per_row = groups;
  return p;
}

std::string describe(const Shape& s, bl::Isa isa, det::WeightFormat f) {
  return bitlinear_test::isa_label(isa) + " format " + std::to_string(static_cast<int>(f)) + " out=" +
         std::to_string(s.out) + " in=" + std::to_string(s.in) + " group=" + std::to_string(s.group) +
         " block=" + std::to_string(s.block) + " batch=" + std::to_string(s.batch) + " rows=[" +
         std::to_string(s.row_begin) + "," + std::to_string(s.row_end) + ") y_pad=" + std::to_string(s.y_pad);
}

template <class Format>
void check_format(const Shape& s, det::WeightFormat format, std::uint32_t seed) {
  const Problem p = make_problem<Format>(s, seed);
  const std::size_t y_stride = s.out + s.y_pad;
  std::vector<float> want(s.batch * y_stride, -7.0f);
  det::ref::grouped_matmul<Format>(p.w, p.a, s.row_begin, s.row_end, p.e, want.data(), y_stride);
  for (bl::Isa isa : kX86Isas) {
    if (!det::isa_runnable(isa)) continue;
    const det::FormatKernels& slot = det::kernel_table(isa)[format];
    std::vector<float> got(s.batch * y_stride, -7.0f);
    slot.matmul(p.w, p.a, s.row_begin, s.row_end, p.e, got.data(), y_stride);
    for (std::size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(bitlinear_test::same_bits(got[i], want[i]))
          << describe(s, isa, format) << " at token " << i / y_stride << " row " << i % y_stride << ": " << got[i]
          << " vs " << want[i];
    }
  }
}

void check_all_formats(const Shape& s, std::uint32_t seed) {
  check_format<bl::Ternary>(s, det::WeightFormat::ternary_grouped, seed);
  check_format<bl::Binary>(s, det::WeightFormat::binary_grouped, seed + 1);
  check_format<bl::TernaryCompact>(s, det::WeightFormat::ternary_compact_grouped, seed + 2);
}

bool any_x86_family() {
  for (bl::Isa isa : kX86Isas) {
    if (det::isa_runnable(isa)) return true;
  }
  return false;
}

#define SKIP_WITHOUT_X86_FAMILY()                                                   \
  do {                                                                             \
    if (!any_x86_family()) GTEST_SKIP() << "CPU runs no x86 SIMD family";          \
  } while (false)

TEST(GroupedKernels, EveryGroupSizePerToken) {
  SKIP_WITHOUT_X86_FAMILY();
  std::uint32_t seed = 1;
  for (std::size_t group : {32, 64, 128, 256}) {
    for (std::size_t in : {group, 2 * group, std::size_t{512}, std::size_t{640}, std::size_t{1000}, std::size_t{2560}}) {
      for (std::size_t batch : {1, 2, 3, 4, 5}) {
        check_all_formats({13, in, group, 0, batch, 0, 13, batch % 2}, seed++);
      }
    }
  }
}

TEST(GroupedKernels, EveryGroupSizePerBlock) {
  SKIP_WITHOUT_X86_FAMILY();
  std::uint32_t seed = 100;
  for (std::size_t group : {32, 64, 128, 256}) {
    for (std::size_t in : {group, std::size_t{512}, std::size_t{640}, std::size_t{970}, std::size_t{1000}}) {
      for (std::size_t batch : {1, 2, 4, 7}) {
        check_all_formats({9, in, group, 32, batch, 0, 9, 3}, seed++);
      }
    }
  }
}

TEST(GroupedKernels, EveryGroupSizePerSuperblock) {
  SKIP_WITHOUT_X86_FAMILY();
  std::uint32_t seed = 150;
  for (std::size_t group : {32, 64, 128, 256}) {
    for (std::size_t in : {std::size_t{256}, std::size_t{512}, std::size_t{768}, std::size_t{2560}}) {
      for (std::size_t batch : {1, 2, 3, 4, 5, 7, 9}) {
        check_all_formats({9, in, group, 256, batch, 0, 9, 3}, seed++);
      }
    }
  }
}

TEST(GroupedKernels, GroupSpansTheRowWithTails) {
  SKIP_WITHOUT_X86_FAMILY();
  std::uint32_t seed = 200;
  for (std::size_t in : {1, 3, 31, 33, 63, 64, 65, 200, 257, 511, 513, 1000, 1029}) {
    for (std::size_t block : {0, 32, 256}) {
      for (std::size_t batch : {1, 3, 6}) {
        check_all_formats({7, in, in, block, batch, 0, 7, 1}, seed++);
      }
    }
  }
}

TEST(GroupedKernels, RowRangesAndOddShapes) {
  SKIP_WITHOUT_X86_FAMILY();
  std::uint32_t seed = 300;
  for (std::size_t out : {1, 2, 3, 5, 17, 33, 70}) {
    for (std::size_t batch : {1, 2, 4, 8}) {
      check_all_formats({out, 384, 128, 0, batch, out / 3, out - out / 4, 5}, seed++);
      check_all_formats({out, 300, 64, 32, batch, out / 2, out, 2}, seed++);
      check_all_formats({out, 768, 256, 256, batch, out / 3, out - out / 5, 1}, seed++);
      check_all_formats({out, 1000, 1000, 256, batch, out / 2, out, 4}, seed++);
    }
  }
}

TEST(GroupedKernels, BatchesAcrossTheGemmThreshold) {
  SKIP_WITHOUT_X86_FAMILY();
  std::uint32_t seed = 400;
  for (std::size_t batch : {8, 9, 15, 16, 17, 33, 64, 65, 130}) {
    check_all_formats({19, 512, 128, 0, batch, 0, 19, 1}, seed++);
    check_all_formats({11, 200, 200, 32, batch, 2, 11, 0}, seed++);
  }
  check_all_formats({35, 640, 32, 32, 130, 0, 35, 3}, seed++);
  check_all_formats({21, 1000, 256, 0, 130, 1, 20, 7}, seed++);
  for (std::size_t batch : {8, 9, 16, 17, 33, 65, 130}) {
    check_all_formats({23, 1024, 256, 256, batch, 1, 22, 1}, seed++);
    check_all_formats({13, 1536, 64, 256, batch, 0, 13, 2}, seed++);
    check_all_formats({9, 700, 700, 256, batch, 0, 9, 0}, seed++);
  }
}

TEST(GroupedKernels, LongRows) {
  // Beyond the AVX2 lane-sum buffer (256 segments) with segments of 32 and 64; 2^20 weights with one segment.
  SKIP_WITHOUT_X86_FAMILY();
  check_all_formats({3, 20000, 32, 0, 1, 0, 3, 0}, 500);
  check_all_formats({2, 20000, 64, 32, 2, 0, 2, 1}, 501);
  check_all_formats({2, 1u << 20, 1u << 20, 0, 1, 0, 2, 0}, 502);
  // Past the AVX2 lane-sum buffer with segments of 256 (per super-block, group 256 or per row).
  check_all_formats({2, 70144, 256, 256, 2, 0, 2, 1}, 503);
  check_all_formats({2, 70001, 70001, 256, 1, 0, 2, 0}, 504);
  // Either side of the avx512 lane-sum buffer (128 segment ends: 8192 weights in segments of 64, 4096 of 32),
  // GEMV batches 1-4 and the GEMM.
  for (std::size_t batch : {1, 3, 4, 17, 70}) {
    check_all_formats({3, 8192, 64, 0, batch, 0, 3, 1}, 510 + static_cast<std::uint32_t>(batch));
    check_all_formats({3, 8256, 64, 32, batch, 1, 3, 0}, 520 + static_cast<std::uint32_t>(batch));
    check_all_formats({2, 4160, 32, 0, batch, 0, 2, 2}, 530 + static_cast<std::uint32_t>(batch));
  }
}

TEST(GroupedKernels, EveryRowIsSelectedByTheGrid) {
  // Each runnable x86 row binds native grouped 2-bit and 1-bit kernels.
  SKIP_WITHOUT_X86_FAMILY();
  for (bl::Isa isa : kX86Isas) {
    if (!det::isa_runnable(isa)) continue;
    const det::KernelTable& table = det::kernel_table(isa);
    for (det::WeightFormat f : kGroupedFormats) EXPECT_NE(table[f].matmul, nullptr);
    EXPECT_TRUE(table[det::WeightFormat::ternary_grouped].native) << bitlinear_test::isa_label(isa);
    EXPECT_TRUE(table[det::WeightFormat::binary_grouped].native) << bitlinear_test::isa_label(isa);
    EXPECT_GT(table[det::WeightFormat::ternary_grouped].gemm_min_batch, 1u) << bitlinear_test::isa_label(isa);
    // Compact grouped: native with VBMI (avx512_vbmi), the grid's decode-to-2-bit fallback elsewhere.
    EXPECT_EQ(table[det::WeightFormat::ternary_compact_grouped].native, isa == bl::Isa::avx512_vbmi)
        << bitlinear_test::isa_label(isa);
  }
}

}  // namespace

#endif  // BITLINEAR_ARCH_X86_64
