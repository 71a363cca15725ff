// bitlinear: Eigen adaptor (the only bitlinear header that includes Eigen; bitlinear.hpp does not include it).
//
//   Eigen::MatrixXf W(out, in);                        // any storage order or expression, float
//   auto layer = bitlinear::from_eigen<bitlinear::Ternary>(W, bias);      // bias: optional float vector
//   bitlinear::RowMajorMatrixXf X(batch, in), Y(batch, out);
//   bitlinear::forward(layer, X, Y);                   // Y = layer(X)
//   bitlinear::forward(layer, QKV.middleCols(in, in), Y2.leftCols(out));  // strided slices, no copies
//   auto grouped = bitlinear::from_eigen_grouped<bitlinear::Ternary>(W, 128);  // group-scaled, 128 per group
//
// Inputs and outputs are row-major Eigen::Ref views with any outer (row) stride: blocks, middleCols() of a
// row-major matrix and Maps bind without a copy, and the stride is passed to the layer. The output must be a
// writable row-major lvalue (anything else does not compile). A column-major input still works, but Eigen
// then evaluates it into a row-major temporary (an allocation and a copy): use row-major inputs on hot paths.
// Shape mismatches throw std::invalid_argument naming both shapes.
#pragma once

#include <Eigen/Core>

#include <string>
#include <type_traits>

#include "bitlinear.hpp"

BITLINEAR_NAMESPACE_BEGIN

using RowMajorMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Read-only row-major view of [batch, in_features] floats with any row stride.
using EigenInput = Eigen::Ref<const RowMajorMatrixXf, 0, Eigen::OuterStride<>>;
// Writable row-major view of [batch, out_features] floats with any row stride.
using EigenOutput = Eigen::Ref<RowMajorMatrixXf, 0, Eigen::OuterStride<>>;

namespace detail {

inline std::string eigen_shape(Eigen::Index rows, Eigen::Index cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

// Distance between row starts, in floats (a single row may report any stride: use its width).
template <class View>
std::size_t eigen_row_stride(const View& v) noexcept {
  return static_cast<std::size_t>(v.rows() <= 1 ? v.cols() : v.outerStride());
}

inline void check_eigen_forward(std::size_t in_features, std::size_t out_features, const EigenInput& x,
                                const EigenOutput& y) {
  BITLINEAR_REQUIRE(x.rows() > 0, "Eigen input x is " + eigen_shape(x.rows(), x.cols()) +
                                      "; it needs at least one row (batch >= 1)");
  BITLINEAR_REQUIRE(static_cast<std::size_t>(x.cols()) == in_features,
                    "Eigen input x is " + eigen_shape(x.rows(), x.cols()) + " but the layer has in_features " +
                        std::to_string(in_features) + ": x must have " + std::to_string(in_features) + " columns");
  BITLINEAR_REQUIRE(y.rows() == x.rows() && static_cast<std::size_t>(y.cols()) == out_features,
                    "Eigen output y is " + eigen_shape(y.rows(), y.cols()) + " but must be batch x out_features = " +
                        eigen_shape(x.rows(), static_cast<Eigen::Index>(out_features)));
}

template <class Derived>
void check_eigen_weight(const Eigen::MatrixBase<Derived>& weight) {
  static_assert(std::is_same<typename Derived::Scalar, float>::value,
                "bitlinear::from_eigen: the weight matrix must hold float (convert with .cast<float>())");
  BITLINEAR_REQUIRE(weight.rows() > 0 && weight.cols() > 0,
                    "Eigen weight matrix is " + eigen_shape(weight.rows(), weight.cols()) +
                        "; it must be out_features x in_features with both at least 1");
}

template <class Format, class WeightDerived>
BitLinear<Format> layer_from_eigen(const Eigen::MatrixBase<WeightDerived>& weight, const float* bias, Options options) {
  check_eigen_weight(weight);
  const auto out = static_cast<std::size_t>(weight.rows()), in = static_cast<std::size_t>(weight.cols());
  const EigenInput view(weight);  // row-major data binds as is; Eigen evaluates anything else into a temporary
  if (eigen_row_stride(view) == in) return BitLinear<Format>::from_float(view.data(), out, in, bias, options);
  const RowMajorMatrixXf contiguous = view;  // rows with gaps between them (a block): pack them
  return BitLinear<Format>::from_float(contiguous.data(), out, in, bias, options);
}

}  // namespace detail

// A layer from a float weight matrix [out_features, in_features] (as nn.Linear.weight), any storage order or
// Eigen expression, with an optional bias vector of out_features floats. Options as in BitLinear::from_float.
template <class Format, class WeightDerived>
BitLinear<Format> from_eigen(const Eigen::MatrixBase<WeightDerived>& weight, Options options = {}) {
  return detail::layer_from_eigen<Format>(weight, nullptr, options);
}

template <class Format, class WeightDerived, class BiasDerived>
BitLinear<Format> from_eigen(const Eigen::MatrixBase<WeightDerived>& weight, const Eigen::MatrixBase<BiasDerived>& bias,
                             Options options = {}) {
  static_assert(std::is_same<typename BiasDerived::Scalar, float>::value,
                "bitlinear::from_eigen: the bias must hold float (convert with .cast<float>())");
  BITLINEAR_REQUIRE((bias.rows() == 1 || bias.cols() == 1) && bias.size() == weight.rows(),
                    "Eigen bias is " + detail::eigen_shape(bias.rows(), bias.cols()) +
                        " but must be a vector of out_features = " + std::to_string(weight.rows()) + " values");
  Eigen::VectorXf bias_values(bias.size());
  for (Eigen::Index j = 0; j < bias.size(); ++j) bias_values(j) = bias.rows() == 1 ? bias(0, j) : bias(j, 0);
  return detail::layer_from_eigen<Format>(weight, bias_values.data(), options);
}

namespace detail {
template <class Format, class WeightDerived>
GroupedLinear<Format> grouped_layer_from_eigen(const Eigen::MatrixBase<WeightDerived>& weight, std::size_t group_size,
                                               const float* bias, Options options) {
  check_eigen_weight(weight);
  const auto out = static_cast<std::size_t>(weight.rows()), in = static_cast<std::size_t>(weight.cols());
  const EigenInput view(weight);
  if (eigen_row_stride(view) == in) {
    return GroupedLinear<Format>::from_float(view.data(), out, in, group_size, bias, options);
  }
  const RowMajorMatrixXf contiguous = view;
  return GroupedLinear<Format>::from_float(contiguous.data(), out, in, group_size, bias, options);
}
}  // namespace detail

// A group-scaled layer (grouped_layer.hpp) from a float weight matrix, as GroupedLinear::from_float.
template <class Format, class WeightDerived>
GroupedLinear<Format> from_eigen_grouped(const Eigen::MatrixBase<WeightDerived>& weight, std::size_t group_size,
                                         Options options = {}) {
  return detail::grouped_layer_from_eigen<Format>(weight, group_size, nullptr, options);
}

template <class Format, class WeightDerived, class BiasDerived>
GroupedLinear<Format> from_eigen_grouped(const Eigen::MatrixBase<WeightDerived>& weight, std::size_t group_size,
                                         const Eigen::MatrixBase<BiasDerived>& bias, Options options = {}) {
  static_assert(std::is_same<typename BiasDerived::Scalar, float>::value,
                "bitlinear::from_eigen_grouped: the bias must hold float (convert with .cast<float>())");
  BITLINEAR_REQUIRE((bias.rows() == 1 || bias.cols() == 1) && bias.size() == weight.rows(),
                    "Eigen bias is " + detail::eigen_shape(bias.rows(), bias.cols()) +
                        " but must be a vector of out_features = " + std::to_string(weight.rows()) + " values");
  Eigen::VectorXf bias_values(bias.size());
  for (Eigen::Index j = 0; j < bias.size(); ++j) bias_values(j) = bias.rows() == 1 ? bias(0, j) : bias(j, 0);
  return detail::grouped_layer_from_eigen<Format>(weight, group_size, bias_values.data(), options);
}

// y = layer(x) for a group-scaled layer (the overloads below, for BitLinear, say more).
template <class Format>
void forward(const GroupedLinear<Format>& layer, const EigenInput& x, EigenOutput y) {
  detail::check_eigen_forward(layer.in_features(), layer.out_features(), x, y);
  layer.forward(x.data(), static_cast<std::size_t>(x.rows()), detail::eigen_row_stride(x), y.data(),
                detail::eigen_row_stride(y));
}

template <class Format>
void forward(const GroupedLinear<Format>& layer, const EigenInput& x, EigenOutput y, ThreadPool& pool) {
  detail::check_eigen_forward(layer.in_features(), layer.out_features(), x, y);
  layer.forward(x.data(), static_cast<std::size_t>(x.rows()), detail::eigen_row_stride(x), y.data(),
                detail::eigen_row_stride(y), pool);
}

// y = layer(x). x: batch x in_features, y: batch x out_features, both row-major with any row stride.
template <class Format>
void forward(const BitLinear<Format>& layer, const EigenInput& x, EigenOutput y) {
  detail::check_eigen_forward(layer.in_features(), layer.out_features(), x, y);
  layer.forward(x.data(), static_cast<std::size_t>(x.rows()), detail::eigen_row_stride(x), y.data(),
                detail::eigen_row_stride(y));
}

// Allocation-free (for row-major x): workspace of at least layer.workspace_size(x.rows()) bytes.
template <class Format>
void forward(const BitLinear<Format>& layer, const EigenInput& x, EigenOutput y, void* workspace,
             std::size_t workspace_bytes) {
  detail::check_eigen_forward(layer.in_features(), layer.out_features(), x, y);
  layer.forward(x.data(), static_cast<std::size_t>(x.rows()), detail::eigen_row_stride(x), y.data(),
                detail::eigen_row_stride(y), workspace, workspace_bytes);
}

// Multithreaded on a ThreadPool; bit-identical to the single-threaded call.
template <class Format>
void forward(const BitLinear<Format>& layer, const EigenInput& x, EigenOutput y, ThreadPool& pool) {
  detail::check_eigen_forward(layer.in_features(), layer.out_features(), x, y);
  layer.forward(x.data(), static_cast<std::size_t>(x.rows()), detail::eigen_row_stride(x), y.data(),
                detail::eigen_row_stride(y), pool);
}

template <class Format>
void forward(const BitLinear<Format>& layer, const EigenInput& x, EigenOutput y, void* workspace,
             std::size_t workspace_bytes, ThreadPool& pool) {
  detail::check_eigen_forward(layer.in_features(), layer.out_features(), x, y);
  layer.forward(x.data(), static_cast<std::size_t>(x.rows()), detail::eigen_row_stride(x), y.data(),
                detail::eigen_row_stride(y), workspace, workspace_bytes, pool);
}

BITLINEAR_NAMESPACE_END
