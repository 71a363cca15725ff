// Include in exactly one translation unit of a program built with BITLINEAR_SEPARATE_KERNELS=1 (defined for
// every translation unit, e.g. with CMake's target_compile_definitions): that unit compiles every kernel family
// once and defines the table the layers of all other units look up (kernels/grid.hpp). Build it with the same
// flags as the rest of the program; no -m flags are needed (the kernels carry their own target attributes).
// docs/build-time.md has the figures and a CMake example.
#pragma once
#include "bitlinear.hpp"  // kernels/grid.hpp with every family

#if !BITLINEAR_SEPARATE_KERNELS
#error "bitlinear/kernels_definition.hpp is for programs built with BITLINEAR_SEPARATE_KERNELS=1 (in every translation unit); without it every unit compiles the kernels itself and this header is not needed"
#endif

BITLINEAR_NAMESPACE_BEGIN
namespace detail {
const KernelTable& kernel_table(Isa isa) noexcept { return grid_dispatch(isa); }
}  // namespace detail
BITLINEAR_NAMESPACE_END
