// Instantiates the aarch64 GEMV inner loops as out-of-line symbols so that tools/count-neon-gemv-ops.sh can
// count their instructions in `aarch64-linux-gnu-objdump -d`. Not part of the library or the tests.
#include <bitlinear/bitlinear.hpp>

namespace neon = bitlinear::detail::neon;
using I32 = std::int32_t;
using I8 = std::int8_t;
using Run = neon::RowRun;

void count_ternary_dotprod(const Run& run, const I8* q, I32* d) { neon::ternary_gemv_dotprod<4, 64>(run, q, d); }
void count_binary_dotprod(const Run& run, const I8* q, I32* d) { neon::binary_gemv_dotprod<4, 64>(run, q, d); }
void count_ternary_neon(const Run& run, const I8* q, I32* d) { neon::ternary_gemv_neon<4, 64>(run, q, d); }
void count_binary_neon(const Run& run, const I8* q, I32* d) { neon::binary_gemv_neon<4, 64>(run, q, d); }
