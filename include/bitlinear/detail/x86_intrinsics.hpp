// bitlinear internal: the x86 intrinsics every kernel family uses, declared on every compiler.
//
// GCC, Clang and MSVC declare all of them in <immintrin.h>. clang-cl (Clang in MSVC mode) does not: its
// <immintrin.h> leaves out the AVX2/AVX-512 headers unless the command line enables those features
// (/arch:AVX2, -mavx2), although target attributes could use them. Including the sub-headers after
// <immintrin.h> declares them for target-attributed functions, as under GCC and Clang.
#pragma once
#include "internal_only.hpp"

#include "../config.hpp"

#if BITLINEAR_ARCH_X86_64
#include <immintrin.h>
#if defined(_MSC_VER) && defined(__clang__)
#include <smmintrin.h>
#include <avxintrin.h>
#include <avx2intrin.h>
#include <fmaintrin.h>
#include <f16cintrin.h>
#include <avx512fintrin.h>
#include <avx512bwintrin.h>
#include <avx512vlintrin.h>
#include <avx512vlbwintrin.h>
#include <avx512vnniintrin.h>
#include <avx512vlvnniintrin.h>
#include <avxvnniintrin.h>
#include <avx512vbmiintrin.h>
#include <avx512vbmivlintrin.h>
#endif
#endif
