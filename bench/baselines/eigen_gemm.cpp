// Eigen baselines, compiled on their own (see eigen_gemm.hpp for why).
#include "eigen_gemm.hpp"

#include <Eigen/Core>

namespace bench::eigen {

namespace {
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixH = Eigen::Matrix<Eigen::half, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Index = Eigen::Index;
}  // namespace

void fp32_gemm(const float* w, std::size_t out, std::size_t in, const float* x, std::size_t batch, float* y) {
  const Eigen::Map<const RowMatrixF> W(w, static_cast<Index>(out), static_cast<Index>(in));
  if (batch == 1) {
    const Eigen::Map<const Eigen::VectorXf> xv(x, static_cast<Index>(in));
    Eigen::Map<Eigen::VectorXf> yv(y, static_cast<Index>(out));
    yv.noalias() = W * xv;
    return;
  }
  const Eigen::Map<const RowMatrixF> X(x, static_cast<Index>(batch), static_cast<Index>(in));
  Eigen::Map<RowMatrixF> Y(y, static_cast<Index>(batch), static_cast<Index>(out));
  Y.noalias() = X * W.transpose();
}

void half_gemm(const std::uint16_t* w16, std::size_t out, std::size_t in, const float* x, std::size_t batch, float* y,
               std::uint16_t* xh, std::uint16_t* yh) {
  static_assert(sizeof(Eigen::half) == sizeof(std::uint16_t), "Eigen::half is 16 bits");
  const Eigen::Map<const RowMatrixH> W(reinterpret_cast<const Eigen::half*>(w16), static_cast<Index>(out),
                                       static_cast<Index>(in));
  const Eigen::Map<const RowMatrixF> X(x, static_cast<Index>(batch), static_cast<Index>(in));
  Eigen::Map<RowMatrixH> Xh(reinterpret_cast<Eigen::half*>(xh), static_cast<Index>(batch), static_cast<Index>(in));
  Eigen::Map<RowMatrixH> Yh(reinterpret_cast<Eigen::half*>(yh), static_cast<Index>(batch), static_cast<Index>(out));
  Eigen::Map<RowMatrixF> Y(y, static_cast<Index>(batch), static_cast<Index>(out));
  Xh = X.cast<Eigen::half>();
  Yh.noalias() = Xh * W.transpose();
  Y = Yh.cast<float>();
}

std::string simd_description() { return Eigen::SimdInstructionSetsInUse(); }

bool half_uses_f16c() {
#if defined(EIGEN_HAS_FP16_C)
  return true;
#else
  return false;
#endif
}

}  // namespace bench::eigen
