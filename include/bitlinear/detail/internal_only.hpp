// bitlinear internal: included first by every internal header (detail/, kernels/, io/json.hpp, io/crc32.hpp) so
// that a program including one of them directly gets a clear error. config.hpp, which every public header
// includes first, defines the macro.
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear internal headers (detail/, kernels/) are not meant for direct use: include <bitlinear/bitlinear.hpp>"
#endif
