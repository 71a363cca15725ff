// bench baselines (b) and (c): Eigen 3 matrix products over caller memory (Eigen::Map), single thread.
// They live in their own translation unit (eigen_gemm.cpp), compiled with -march=native when the compiler
// accepts it: Eigen picks its SIMD width at compile time, so without it Eigen would run SSE2 code on an AVX-512
// machine, which is not how anyone would deploy it. Only this file's functions cross the boundary (plain
// pointers), so no Eigen template is instantiated with two different instruction sets in one program.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bench::eigen {

// y [batch][out] = x [batch][in] * w^T with w [out][in] float32 (GEMV via matrix * vector when batch == 1).
void fp32_gemm(const float* w, std::size_t out, std::size_t in, const float* x, std::size_t batch, float* y);

// The same product in Eigen::half: w16 holds binary16 bits [out][in]; x is rounded to half (into xh, batch * in
// values) and y converted back to float (via yh, batch * out values), both inside the call. Eigen 3.4.0 enables
// its F16C conversions only for clang (EIGEN_HAS_FP16_C is never defined under GCC), and its half arithmetic
// rounds every multiply-add to half, so this is what "Eigen::half" costs, not what FP16 storage could cost.
void half_gemm(const std::uint16_t* w16, std::size_t out, std::size_t in, const float* x, std::size_t batch, float* y,
               std::uint16_t* xh, std::uint16_t* yh);

// Eigen's compile-time SIMD description ("AVX512, FMA, ..."), whether F16C conversions are on.
std::string simd_description();
bool half_uses_f16c();

}  // namespace bench::eigen
