// The Eigen adaptor: layers from Eigen matrices of any storage order, forward on row-major Eigen::Ref views
// (strides honoured, bit for bit equal to the pointer API), and shape errors that say what is wrong.
#include <bitlinear/eigen.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "../test_util.hpp"

namespace {

using bitlinear::RowMajorMatrixXf;
using bitlinear_test::invalid_argument_message;

RowMajorMatrixXf random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint32_t seed) {
  const auto values = bitlinear_test::random_floats(static_cast<std::size_t>(rows * cols), seed, -2.0f, 2.0f);
  RowMajorMatrixXf m(rows, cols);
  std::copy(values.begin(), values.end(), m.data());
  return m;
}

template <class A, class B>
void expect_same_bits(const A& got, const B& want, const std::string& what) {
  ASSERT_EQ(got.rows(), want.rows());
  ASSERT_EQ(got.cols(), want.cols());
  for (Eigen::Index r = 0; r < got.rows(); ++r) {
    for (Eigen::Index c = 0; c < got.cols(); ++c) {
      ASSERT_TRUE(bitlinear_test::same_bits(got(r, c), want(r, c)))
          << what << " at (" << r << ", " << c << "): " << got(r, c) << " vs " << want(r, c);
    }
  }
}

template <class Format>
void expect_layer_from_any_storage_order(std::uint32_t seed) {
  const Eigen::Index out = 37, in = 70;
  const RowMajorMatrixXf w = random_matrix(out, in, seed);
  const Eigen::VectorXf bias = random_matrix(out, 1, seed + 1);
  const auto reference = bitlinear::BitLinear<Format>::from_float(w.data(), out, in, bias.data());

  const Eigen::MatrixXf column_major = w;
  const RowMajorMatrixXf wide = random_matrix(out + 3, in + 5, seed + 2);
  RowMajorMatrixXf with_gaps = wide;
  with_gaps.block(2, 4, out, in) = w;  // rows with gaps between them
  const Eigen::RowVectorXf bias_row = bias.transpose();

  const auto a = bitlinear::from_eigen<Format>(w, bias);
  const auto b = bitlinear::from_eigen<Format>(column_major, bias_row);
  const auto c = bitlinear::from_eigen<Format>(with_gaps.block(2, 4, out, in), bias);
  const auto d = bitlinear::from_eigen<Format>(column_major.transpose().transpose(), bias);
  for (const auto* layer : {&a, &b, &c, &d}) {
    EXPECT_EQ(layer->out_features(), static_cast<std::size_t>(out));
    EXPECT_EQ(layer->in_features(), static_cast<std::size_t>(in));
    EXPECT_TRUE(bitlinear_test::same_bits(layer->weight_scale(), reference.weight_scale()));
    EXPECT_EQ(layer->unpacked_weights(), reference.unpacked_weights());
    EXPECT_EQ(layer->bias(), reference.bias());
  }
  const auto no_bias = bitlinear::from_eigen<Format>(column_major);
  EXPECT_FALSE(no_bias.has_bias());
  EXPECT_EQ(no_bias.unpacked_weights(), reference.unpacked_weights());
}

TEST(Eigen, LayerFromAnyStorageOrder) {
  expect_layer_from_any_storage_order<bitlinear::Ternary>(1);
  expect_layer_from_any_storage_order<bitlinear::Binary>(2);
}

template <class Format>
void expect_forward_matches_pointer_api(std::uint32_t seed) {
  const Eigen::Index out = 150, in = 130, batch = 6;
  const RowMajorMatrixXf w = random_matrix(out, in, seed);
  const auto layer = bitlinear::from_eigen<Format>(w);
  const RowMajorMatrixXf x = random_matrix(batch, in, seed + 1);
  RowMajorMatrixXf expected(batch, out);
  layer.forward(x.data(), batch, expected.data());

  RowMajorMatrixXf y(batch, out);
  bitlinear::forward(layer, x, y);
  expect_same_bits(y, expected, "contiguous");

  // Fused QKV-like input [batch, 3 in]: the layer reads the middle third; output into a slice of a wider matrix.
  RowMajorMatrixXf fused = random_matrix(batch, 3 * in, seed + 2);
  fused.middleCols(in, in) = x;
  const RowMajorMatrixXf canary = RowMajorMatrixXf::Constant(batch, out + 7, 99.5f);
  RowMajorMatrixXf wide = canary;
  bitlinear::forward(layer, fused.middleCols(in, in), wide.middleCols(3, out));
  expect_same_bits(wide.middleCols(3, out), expected, "strided");
  expect_same_bits(wide.leftCols(3), canary.leftCols(3), "left of the slice");
  expect_same_bits(wide.rightCols(4), canary.rightCols(4), "right of the slice");

  // Workspace, pool, and both.
  std::vector<unsigned char> workspace(layer.workspace_size(batch));
  bitlinear::ThreadPool pool(3);
  for (int variant = 0; variant < 3; ++variant) {
    wide = canary;
    auto y_slice = wide.middleCols(3, out);
    if (variant == 0) bitlinear::forward(layer, fused.middleCols(in, in), y_slice, workspace.data(), workspace.size());
    if (variant == 1) bitlinear::forward(layer, fused.middleCols(in, in), y_slice, pool);
    if (variant == 2) {
      bitlinear::forward(layer, fused.middleCols(in, in), y_slice, workspace.data(), workspace.size(), pool);
    }
    expect_same_bits(wide.middleCols(3, out), expected, "variant " + std::to_string(variant));
    expect_same_bits(wide.rightCols(4), canary.rightCols(4), "right of the slice, variant " + std::to_string(variant));
  }

  // One row, as a row vector and as a row of a block.
  Eigen::RowVectorXf one(out);
  bitlinear::forward(layer, x.row(4), one);
  expect_same_bits(one, expected.row(4), "single row");
  RowMajorMatrixXf rows_out(2, out);
  bitlinear::forward(layer, fused.block(2, in, 2, in), rows_out);
  expect_same_bits(rows_out, expected.middleRows(2, 2), "block of rows");

  // A column-major input works too (Eigen copies it into a row-major temporary).
  const Eigen::MatrixXf x_column_major = x;
  y.setZero();
  bitlinear::forward(layer, x_column_major, y);
  expect_same_bits(y, expected, "column-major input");
}

TEST(Eigen, ForwardMatchesPointerApiWithStrides) {
  expect_forward_matches_pointer_api<bitlinear::Ternary>(10);
  expect_forward_matches_pointer_api<bitlinear::Binary>(20);
}

TEST(Eigen, ShapeErrorsSayWhatIsWrong) {
  const RowMajorMatrixXf w = random_matrix(8, 16, 3);
  const auto layer = bitlinear::from_eigen<bitlinear::Ternary>(w);
  RowMajorMatrixXf x(4, 16), y(4, 8);
  x.setOnes();
  RowMajorMatrixXf x_bad(4, 15), y_bad_rows(3, 8), y_bad_cols(4, 9), empty(0, 16), y_empty(0, 8);
  x_bad.setOnes();

  std::string m = invalid_argument_message([&] { bitlinear::forward(layer, x_bad, y); });
  EXPECT_NE(m.find("4x15"), std::string::npos) << m;
  EXPECT_NE(m.find("in_features 16"), std::string::npos) << m;
  m = invalid_argument_message([&] { bitlinear::forward(layer, x, y_bad_rows); });
  EXPECT_NE(m.find("3x8"), std::string::npos) << m;
  EXPECT_NE(m.find("4x8"), std::string::npos) << m;
  m = invalid_argument_message([&] { bitlinear::forward(layer, x, y_bad_cols); });
  EXPECT_NE(m.find("4x9"), std::string::npos) << m;
  m = invalid_argument_message([&] { bitlinear::forward(layer, empty, y_empty); });
  EXPECT_NE(m.find("at least one row"), std::string::npos) << m;
  bitlinear::ThreadPool pool(2);
  EXPECT_THROW(bitlinear::forward(layer, x_bad, y, pool), std::invalid_argument);
  std::vector<unsigned char> too_small(layer.workspace_size(4) - 1);
  EXPECT_THROW(bitlinear::forward(layer, x, y, too_small.data(), too_small.size()), std::invalid_argument);

  const Eigen::VectorXf short_bias = Eigen::VectorXf::Ones(7);
  m = invalid_argument_message([&] { (void)bitlinear::from_eigen<bitlinear::Ternary>(w, short_bias); });
  EXPECT_NE(m.find("out_features = 8"), std::string::npos) << m;
  const Eigen::MatrixXf matrix_bias = Eigen::MatrixXf::Ones(2, 4);
  EXPECT_THROW((void)bitlinear::from_eigen<bitlinear::Ternary>(w, matrix_bias), std::invalid_argument);
  const Eigen::MatrixXf no_columns(8, 0);
  m = invalid_argument_message([&] { (void)bitlinear::from_eigen<bitlinear::Binary>(no_columns); });
  EXPECT_NE(m.find("8x0"), std::string::npos) << m;
}

// Group-scaled layers: from_eigen_grouped from a column-major matrix equals from_float on the row-major copy, and
// forward through Eigen views equals the pointer API (also on a pool).
TEST(EigenAdaptor, GroupedLayers) {
  const Eigen::MatrixXf w = Eigen::MatrixXf::Random(6, 128);
  const Eigen::VectorXf bias = Eigen::VectorXf::Random(6);
  const RowMajorMatrixXf w_rows = w;
  const auto layer = bitlinear::from_eigen_grouped<bitlinear::Ternary>(w, 64, bias);
  const auto expected = bitlinear::GroupedTernaryLinear::from_float(w_rows.data(), 6, 128, 64, bias.data());
  EXPECT_EQ(layer.packed_weights(), expected.packed_weights());
  EXPECT_EQ(layer.group_scales(), expected.group_scales());
  const RowMajorMatrixXf x = RowMajorMatrixXf::Random(3, 128);
  RowMajorMatrixXf y(3, 6), y_pool(3, 6);
  bitlinear::forward(layer, x, y);
  bitlinear::ThreadPool pool(2);
  bitlinear::forward(layer, x, y_pool, pool);
  std::vector<float> y_ref(3 * 6);
  expected.forward(x.data(), 3, y_ref.data());
  for (Eigen::Index t = 0; t < 3; ++t) {
    for (Eigen::Index j = 0; j < 6; ++j) {
      EXPECT_TRUE(bitlinear_test::same_bits(y(t, j), y_ref[static_cast<std::size_t>(t * 6 + j)]));
      EXPECT_TRUE(bitlinear_test::same_bits(y_pool(t, j), y(t, j)));
    }
  }
  const auto binary = bitlinear::from_eigen_grouped<bitlinear::Binary>(w, 128);
  EXPECT_EQ(binary.group_size(), 128u);
  EXPECT_THROW((void)bitlinear::from_eigen_grouped<bitlinear::Binary>(w, 48), std::invalid_argument);
}

}  // namespace
