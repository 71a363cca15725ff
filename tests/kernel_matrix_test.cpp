// The kernel grid (kernels/grid.hpp), cell by cell: every (family, format) slot this CPU runs against the scalar
// reference, bit for bit, through the public layer. Sizes: in_features around every block and field boundary
// (1..4099), out_features 1..17, 64, 129, batches 1..9, 16, 33 and both sides of the slot's GEMV/GEMM switch;
// unaligned inputs and outputs. A family row that shares a slot's kernels with an earlier row (avx512_vbmi
// differs from avx512 only in the compact slot) is not instantiated twice: the cell list is made from the grid.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

namespace det = bitlinear::detail;
using bitlinear::Isa;
using det::WeightFormat;

const std::size_t kInFeatures[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 4099};
const std::size_t kOutFeatures[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 64, 129};
const std::size_t kBatches[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 33};

struct Cell {
  Isa isa;
  WeightFormat format;
};

const char* format_label(WeightFormat format) {
  switch (format) {
    case WeightFormat::ternary: return "ternary";
    case WeightFormat::binary: return "binary";
    case WeightFormat::ternary_compact: return "ternary_compact";
    case WeightFormat::ternary_grouped: return "ternary_grouped";
    case WeightFormat::binary_grouped: return "binary_grouped";
    case WeightFormat::ternary_compact_grouped: return "ternary_compact_grouped";
  }
  return "unknown";
}

// One cell per distinct slot: same matmul, same quantization kernels and same layout as an earlier cell means the
// same code runs, so it is tested once, under the first family that has it.
std::vector<Cell> grid_cells() {
  std::vector<Cell> cells;
  std::vector<const det::KernelTable*> seen_rows;
  for (Isa isa : bitlinear_test::runnable_isas()) {
    const det::KernelTable& row = det::kernel_table(isa);
    for (WeightFormat format : {WeightFormat::ternary, WeightFormat::binary, WeightFormat::ternary_compact}) {
      const det::FormatKernels& slot = row[format];
      const bool repeated = std::any_of(seen_rows.begin(), seen_rows.end(), [&](const det::KernelTable* other) {
        const det::FormatKernels& o = (*other)[format];
        return o.matmul == slot.matmul && o.group_rows == slot.group_rows && other->absmax == row.absmax &&
               other->quantize_row == row.quantize_row;
      });
      if (!repeated) cells.push_back({isa, format});
    }
    seen_rows.push_back(&row);
  }
  return cells;
}

template <class Layer>
void expect_cell_matches_scalar(Isa isa, std::size_t out, std::size_t in, std::size_t batch, std::uint32_t seed) {
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto bias = bitlinear_test::random_floats(out, seed + 1);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 2, -3.0f, 3.0f);
  bitlinear::Options scalar_options;
  scalar_options.isa = Isa::scalar;
  bitlinear::Options family_options;
  family_options.isa = isa;
  const auto reference = Layer::from_float(w.data(), out, in, bias.data(), scalar_options);
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), family_options);
  ASSERT_EQ(layer.isa(), isa);
  ASSERT_EQ(layer.native_kernel(), det::kernel_table(isa)[det::weight_format_of<typename Layer::format_type>].native);
  // Unaligned input and output: offsets of 4 bytes from a 64-byte boundary.
  bitlinear_test::Misaligned<float> x_unaligned(batch * in, 4), y_unaligned(batch * out, 4);
  std::copy(x.begin(), x.end(), x_unaligned.data());
  std::vector<float> y_ref(batch * out);
  reference.forward(x.data(), batch, y_ref.data());
  layer.forward(x_unaligned.data(), batch, y_unaligned.data());
  for (std::size_t i = 0; i < batch * out; ++i) {
    ASSERT_TRUE(bitlinear_test::same_bits(y_unaligned.data()[i], y_ref[i]))
        << bitlinear::isa_name(isa) << " out=" << out << " in=" << in << " batch=" << batch << " at " << i << ": "
        << y_unaligned.data()[i] << " vs scalar " << y_ref[i];
  }
}

template <class Layer>
void run_size_matrix(Isa isa, std::uint32_t seed) {
  for (std::size_t in : kInFeatures) {
    for (std::size_t out : kOutFeatures) {
      for (std::size_t batch : kBatches) {
        if (in >= 1000 && batch > 3 && out > 17) continue;  // the big corner is covered at batch 1..3
        expect_cell_matches_scalar<Layer>(isa, out, in, batch, seed++);
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
}

// Both sides of the slot's switch from GEMV to GEMM, and a prefill-sized batch, on shapes with tails.
template <class Layer>
void run_switch_over(Isa isa, std::size_t gemm_min_batch, std::uint32_t seed) {
  std::vector<std::size_t> batches = {gemm_min_batch > 1 ? gemm_min_batch - 1 : 1, gemm_min_batch + 0,
                                      gemm_min_batch + 1, 128};
  for (std::size_t batch : batches) {
    if (batch == 0) continue;
    for (std::size_t in : {std::size_t{257}, std::size_t{1000}}) {
      expect_cell_matches_scalar<Layer>(isa, 37, in, batch, seed++);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

class KernelGrid : public ::testing::TestWithParam<Cell> {};

TEST_P(KernelGrid, CellMatchesScalarBitForBit) {
  const Cell cell = GetParam();
  switch (cell.format) {
    case WeightFormat::ternary: run_size_matrix<bitlinear::TernaryLinear>(cell.isa, 1); break;
    case WeightFormat::binary: run_size_matrix<bitlinear::BinaryLinear>(cell.isa, 100000); break;
    case WeightFormat::ternary_compact: run_size_matrix<bitlinear::CompactTernaryLinear>(cell.isa, 200000); break;
    default: break;  // the grouped columns: tests/grouped_test.cpp (the cells above hold per-tensor formats only)
  }
}

TEST_P(KernelGrid, BothSidesOfTheGemmSwitchMatchScalar) {
  const Cell cell = GetParam();
  const std::size_t switch_batch = det::kernel_table(cell.isa)[cell.format].gemm_min_batch;
  switch (cell.format) {
    case WeightFormat::ternary: run_switch_over<bitlinear::TernaryLinear>(cell.isa, switch_batch, 300000); break;
    case WeightFormat::binary: run_switch_over<bitlinear::BinaryLinear>(cell.isa, switch_batch, 400000); break;
    case WeightFormat::ternary_compact:
      run_switch_over<bitlinear::CompactTernaryLinear>(cell.isa, switch_batch, 500000);
      break;
    default: break;  // the grouped columns: tests/grouped_test.cpp
  }
}

INSTANTIATE_TEST_SUITE_P(Grid, KernelGrid, ::testing::ValuesIn(grid_cells()),
                         [](const ::testing::TestParamInfo<Cell>& cell_info) {
                           return bitlinear_test::isa_label(cell_info.param.isa) + "_" + format_label(cell_info.param.format);
                         });

// Every row of the grid is complete, and a row's slots say honestly whether they are the family's own kernels.
TEST(KernelGridTable, EveryRunnableRowHasEverySlotFilled) {
  for (Isa isa : bitlinear_test::runnable_isas()) {
    const det::KernelTable& row = det::kernel_table(isa);
    EXPECT_EQ(row.isa, isa);
    EXPECT_NE(row.absmax, nullptr);
    EXPECT_NE(row.quantize_row, nullptr);
    for (const det::FormatKernels& slot : row.formats) {
      EXPECT_NE(slot.matmul, nullptr) << bitlinear::isa_name(isa);
      EXPECT_GE(slot.group_rows, 1u) << bitlinear::isa_name(isa);
    }
    // 2-bit and 1-bit are native everywhere; only the compact slot may hold the shared fallback.
    EXPECT_TRUE(row[WeightFormat::ternary].native);
    EXPECT_TRUE(row[WeightFormat::binary].native);
  }
}

TEST(KernelGridTable, Avx512WithoutVbmiBindsTheCompactFallback) {
  if (!det::isa_runnable(Isa::avx512)) GTEST_SKIP() << "CPU lacks avx512";
  EXPECT_FALSE(det::kernel_table(Isa::avx512)[WeightFormat::ternary_compact].native);
  if (det::isa_runnable(Isa::avx512_vbmi)) {
    EXPECT_TRUE(det::kernel_table(Isa::avx512_vbmi)[WeightFormat::ternary_compact].native);
    // The two rows share every other kernel.
    EXPECT_EQ(det::kernel_table(Isa::avx512_vbmi)[WeightFormat::ternary].matmul,
              det::kernel_table(Isa::avx512)[WeightFormat::ternary].matmul);
  }
}

}  // namespace
