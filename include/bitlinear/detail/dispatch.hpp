// bitlinear internal: the kernel table of each family, and which families this build has.
// A new family adds its header here, one case in kernel_table() and one in isa_implemented().
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/bitlinear.hpp>"
#endif

#include "../config.hpp"
#include "../isa.hpp"
#include "kernels.hpp"
#include "ref/table.hpp"
#if BITLINEAR_ARCH_X86_64
#include "x86_intrinsics.hpp"  // before the kernels: clang-cl needs it
#include "avx2/table.hpp"
#include "avxvnni/table.hpp"
#include "avx512/table.hpp"
#endif
#if BITLINEAR_ARCH_AARCH64
#include "neon/table.hpp"
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

inline bool isa_implemented(Isa isa) noexcept {
  switch (isa) {
    case Isa::scalar: return true;
#if BITLINEAR_ARCH_X86_64
    case Isa::avx2: return true;
    case Isa::avxvnni: return true;
    case Isa::avx512: return true;
#endif
#if BITLINEAR_ARCH_AARCH64
    case Isa::neon: return true;
    case Isa::neon_dotprod: return true;
#endif
    default: return false;
  }
}

// The kernels of a runnable family (callers resolve Isa::automatic and check support first).
inline const KernelTable& kernel_table(Isa isa) noexcept {
  switch (isa) {
#if BITLINEAR_ARCH_X86_64
    case Isa::avx2: return avx2::kernel_table();
    case Isa::avxvnni: return avxvnni::kernel_table();
    case Isa::avx512: return avx512::kernel_table();
#endif
#if BITLINEAR_ARCH_AARCH64
    case Isa::neon: return neon::neon_kernel_table();
    case Isa::neon_dotprod: return neon::neon_dotprod_kernel_table();
#endif
    default: return ref::kernel_table();
  }
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
