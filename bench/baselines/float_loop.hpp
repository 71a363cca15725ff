// bench baseline: the plain float32 loop a user would write first (what the main benchmark compares against).
// No intrinsics, no blocking; compiled with the program's flags (Release: -O3, no -m flags), so the compiler
// may not reorder the float sum and the inner loop stays a scalar multiply-add chain.
#pragma once

#include <cstddef>

namespace bench::loop {

// y [batch][out] = x [batch][in] * w^T, w [out][in] float32.
[[gnu::noinline]] inline void fp32_gemm(const float* w, std::size_t out, std::size_t in, const float* x,
                                        std::size_t batch, float* y) {
  for (std::size_t t = 0; t < batch; ++t) {
    for (std::size_t j = 0; j < out; ++j) {
      float acc = 0.0f;
      for (std::size_t k = 0; k < in; ++k) acc += w[j * in + k] * x[t * in + k];
      y[t * out + j] = acc;
    }
  }
}

}  // namespace bench::loop
