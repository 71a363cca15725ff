// bitlinear internal: BITLINEAR_AVX2_UNROLL before a loop over register accumulators asks for full unrolling, so
// that GCC keeps arrays of vector accumulators in registers (a loop it leaves rolled indexes them in memory).
#pragma once
#include "../../detail/internal_only.hpp"

#if defined(__clang__)
#define BITLINEAR_AVX2_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define BITLINEAR_AVX2_UNROLL _Pragma("GCC unroll 16")
#else
#define BITLINEAR_AVX2_UNROLL
#endif
