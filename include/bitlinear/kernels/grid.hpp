// bitlinear internal: the kernel table of each family, and which families this build has.
// A new family adds its header here, one case in kernel_table() and one in isa_implemented().
#pragma once
#include "../detail/internal_only.hpp"

#include "../config.hpp"
#include "../isa.hpp"
#include "interface.hpp"
#include "ref/table.hpp"
#if BITLINEAR_ARCH_X86_64
#include "../detail/x86_intrinsics.hpp"  // before the kernels: clang-cl needs it
#include "avx2/table.hpp"
#include "avxvnni/table.hpp"
#include "avx512/table.hpp"
#endif
#if BITLINEAR_ARCH_AARCH64
#include "neon/table.hpp"
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

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
