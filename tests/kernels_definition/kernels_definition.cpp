// The one translation unit of the project's test and benchmark programs that compiles bitlinear's kernels
// (BITLINEAR_SEPARATE_KERNELS, set on every unit that links bitlinear_kernels_once; docs/build-time.md). Every
// other unit of those programs only declares the kernel table, which keeps each of them from compiling every
// kernel family again.
#include <bitlinear/kernels_definition.hpp>
