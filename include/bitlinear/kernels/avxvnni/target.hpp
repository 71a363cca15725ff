// bitlinear internal: the target attribute of every avxvnni kernel (AVX2 + VEX-encoded AVX-VNNI), written here once.
#pragma once
#include "../../detail/internal_only.hpp"

#include "../../config.hpp"
#include "../avx2/target.hpp"

#define BITLINEAR_AVXVNNI_TARGET BITLINEAR_TARGET("avxvnni,avx2,fma,f16c")
#if defined(__GNUC__) || defined(__clang__)
#define BITLINEAR_AVXVNNI_INLINE BITLINEAR_AVXVNNI_TARGET __attribute__((always_inline)) inline
#else
#define BITLINEAR_AVXVNNI_INLINE inline
#endif
