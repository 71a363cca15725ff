// Execution layouts (kernels.hpp, layout.hpp): every family stores the canonical blocks in its own order, and
// export, import, row-by-row import and every split of the output rows stay exact.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "test_util.hpp"

namespace {

namespace bl = bitlinear;
using bl::Isa;

bl::Options options_for(Isa isa) {
  bl::Options o;
  o.isa = isa;
  return o;
}

// Shapes whose out_features end on every remainder of the 2- and 4-row groups, and in_features with tails.
const std::size_t kOuts[] = {1, 2, 3, 4, 5, 6, 7, 9, 17, 33, 66};
const std::size_t kIns[] = {1, 255, 257, 700};

class Layout : public ::testing::TestWithParam<Isa> {};

template <class Layer>
void expect_round_trips(Isa isa, std::size_t out, std::size_t in, std::uint32_t seed) {
  using Format = typename Layer::format_type;
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto layer = Layer::from_float(w.data(), out, in, nullptr, options_for(isa));
  const std::string what = std::string(bl::isa_name(isa)) + " " + Format::name + " " + std::to_string(out) + "x" +
                           std::to_string(in);
  // The export is the canonical packing of the codes, whatever the execution layout.
  const auto codes = layer.unpacked_weights();
  std::vector<std::uint8_t> canonical(bl::packed_size<Format>(out, in));
  bl::pack_codes<Format>(codes.data(), out, in, canonical.data());
  ASSERT_EQ(layer.packed_weights(), canonical) << what;
  const auto scalar = Layer::from_float(w.data(), out, in, nullptr, options_for(Isa::scalar));
  ASSERT_EQ(scalar.unpacked_weights(), codes) << what;
  // Caller-buffer export: exactly the same bytes, nothing written past them.
  std::vector<std::uint8_t> exported(canonical.size() + 3, 0xA5);
  layer.copy_packed_weights(exported.data(), exported.size());
  EXPECT_TRUE(std::equal(canonical.begin(), canonical.end(), exported.begin())) << what;
  EXPECT_EQ(exported[canonical.size()], 0xA5) << what;
  // Import, whole and row by row, gives the same layer.
  const auto whole = Layer::from_packed(canonical.data(), canonical.size(), out, in, layer.weight_scale(), nullptr,
                                        options_for(isa));
  std::size_t next_row = 0;
  const std::size_t row_bytes = Format::packed_row_bytes(in);
  const auto by_rows = Layer::from_packed_rows(
      [&](std::size_t j, std::uint8_t* row) {
        EXPECT_EQ(j, next_row++);
        std::copy(canonical.begin() + j * row_bytes, canonical.begin() + (j + 1) * row_bytes, row);
      },
      out, in, layer.weight_scale(), nullptr, options_for(isa));
  EXPECT_EQ(next_row, out);
  EXPECT_EQ(whole.packed_weights(), canonical) << what;
  EXPECT_EQ(by_rows.packed_weights(), canonical) << what;
  EXPECT_EQ(whole.execution_group_rows(), layer.execution_group_rows());
  EXPECT_EQ(by_rows.execution_group_rows(), layer.execution_group_rows());
}

TEST_P(Layout, ExportAndImportRoundTrip) {
  std::uint32_t seed = 11;
  for (std::size_t out : kOuts) {
    for (std::size_t in : kIns) {
      expect_round_trips<bl::TernaryLinear>(GetParam(), out, in, seed++);
      expect_round_trips<bl::BinaryLinear>(GetParam(), out, in, seed++);
    }
  }
}

TEST_P(Layout, LayerUsesTheFamilysLayout) {
  const auto& table = bl::detail::kernel_table(GetParam());
  const auto w = bitlinear_test::random_floats(8 * 64, 3);
  EXPECT_EQ(bl::TernaryLinear::from_float(w.data(), 8, 64, nullptr, options_for(GetParam())).execution_group_rows(),
            table[bl::detail::WeightFormat::ternary].group_rows);
  EXPECT_EQ(bl::BinaryLinear::from_float(w.data(), 8, 64, nullptr, options_for(GetParam())).execution_group_rows(),
            table[bl::detail::WeightFormat::binary].group_rows);
}

// Every split of the outputs into two ranges (the unit an engine's own threads run), at batches 1 to 5, equals
// the scalar layer's forward bit for bit.
template <class Layer>
void expect_every_split_exact(Isa isa, std::size_t out, std::size_t in, std::size_t batch, std::uint32_t seed) {
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto bias = bitlinear_test::random_floats(out, seed + 1);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 2, -2.0f, 2.0f);
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), options_for(isa));
  const auto scalar = Layer::from_float(w.data(), out, in, bias.data(), options_for(Isa::scalar));
  std::vector<float> want(batch * out);
  scalar.forward(x.data(), batch, want.data());
  bl::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  for (std::size_t split = 0; split <= out; ++split) {
    std::vector<float> y(batch * out, -7.0f);
    layer.forward_quantized(acts.view(), 0, split, y.data(), out);
    layer.forward_quantized(acts.view(), split, out, y.data(), out);
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(bitlinear_test::same_bits(y[i], want[i]))
          << bl::isa_name(isa) << " " << Layer::format_type::name << " " << out << "x" << in << " batch " << batch
          << " split at " << split << ", output " << i;
    }
  }
}

TEST_P(Layout, EverySplitOfTheRowsIsExact) {
  std::uint32_t seed = 500;
  for (std::size_t batch = 1; batch <= 5; ++batch) {
    for (std::size_t out : {7u, 18u, 37u}) {
      expect_every_split_exact<bl::TernaryLinear>(GetParam(), out, 300, batch, seed++);
      expect_every_split_exact<bl::BinaryLinear>(GetParam(), out, 600, batch, seed++);
    }
  }
}

TEST(LayoutErrors, RowByRowImportNamesTheBadRow) {
  const std::size_t out = 6, in = 10;
  try {
    (void)bl::TernaryLinear::from_packed_rows(
        [&](std::size_t j, std::uint8_t* row) {
          for (std::size_t i = 0; i < 64; ++i) row[i] = bl::Ternary::zero_byte;
          if (j == 4) row[0] = 0xFF;  // field value 3: not a ternary code
        },
        out, in, 0.5f);
    FAIL() << "a row with field value 3 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("row 4 of the matrix"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)bl::TernaryLinear::from_packed_rows([](std::size_t, std::uint8_t*) {}, out, in, 0.0f),
               std::invalid_argument);
  const auto layer = bl::TernaryLinear::from_packed_rows(
      [](std::size_t, std::uint8_t* row) {
        for (std::size_t i = 0; i < 64; ++i) row[i] = bl::Ternary::zero_byte;
      },
      out, in, 0.5f);
  std::vector<std::uint8_t> small(layer.packed_weights_size() - 1);
  EXPECT_THROW(layer.copy_packed_weights(small.data(), small.size()), std::invalid_argument);
  EXPECT_THROW(layer.copy_packed_weights(nullptr, 1000), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(AllRunnable, Layout, ::testing::ValuesIn(bitlinear_test::runnable_isas()),
                         [](const ::testing::TestParamInfo<Isa>& param_info) { return bitlinear_test::isa_label(param_info.param); });

}  // namespace

namespace {

// The scalar reference reads every group size exactly as the canonical rows.
TEST(LayoutReference, ScalarReadsEveryGroupSize) {
  const std::size_t out = 11, in = 700, batch = 2;
  const auto w = bitlinear_test::random_floats(out * in, 77);
  const auto x = bitlinear_test::random_floats(batch * in, 78);
  const auto ternary = bl::TernaryLinear::from_float(w.data(), out, in, nullptr, options_for(Isa::scalar));
  const auto binary = bl::BinaryLinear::from_float(w.data(), out, in, nullptr, options_for(Isa::scalar));
  bl::QuantizedActivations acts;
  ternary.quantize(x.data(), batch, in, acts);
  const std::vector<float> zeros(out, 0.0f);
  const bl::detail::Epilogue te{ternary.weight_scale(), 1.0f / ternary.weight_scale(), zeros.data()};
  const bl::detail::Epilogue be{binary.weight_scale(), 0.0f, zeros.data()};
  std::vector<float> t_want(batch * out), b_want(batch * out);
  ternary.forward_quantized(acts.view(), 0, out, t_want.data(), out);
  binary.forward_quantized(acts.view(), 0, out, b_want.data(), out);
  for (std::size_t group_rows : bitlinear_test::kLayoutGroupRows) {
    const bitlinear_test::LaidOutWeights tw(ternary, group_rows), bw(binary, group_rows);
    std::vector<float> t_got(batch * out), b_got(batch * out);
    bl::detail::ref::ternary_matmul(tw.view(), acts.view(), 0, out, te, t_got.data(), out);
    bl::detail::ref::binary_matmul(bw.view(), acts.view(), 0, out, be, b_got.data(), out);
    for (std::size_t i = 0; i < t_got.size(); ++i) {
      ASSERT_TRUE(bitlinear_test::same_bits(t_got[i], t_want[i])) << "ternary group_rows " << group_rows << " at " << i;
      ASSERT_TRUE(bitlinear_test::same_bits(b_got[i], b_want[i])) << "binary group_rows " << group_rows << " at " << i;
    }
  }
}

}  // namespace
