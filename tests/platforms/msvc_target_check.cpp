// Compiled (not run) by .ci/steps/26-msvc-target.sh with clang in MSVC mode: every public header, and every kernel
// family of the architecture instantiated through the dispatch tables, as MSVC or clang-cl would see them.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/gguf_model.hpp>
#include <bitlinear/io/hf_import.hpp>
#include <bitlinear/io/safetensors.hpp>
#include <bitlinear/io/serialize.hpp>

#if !defined(_MSC_VER) || defined(__GNUC__)
#error "expected an MSVC-mode compiler without GNU extensions"
#endif
static_assert(BITLINEAR_ARCH_X86_64 + BITLINEAR_ARCH_AARCH64 == 1, "one SIMD architecture");

int main() {
  const float w[6] = {1, -1, 0.5f, 0.2f, -0.3f, 1}, x[3] = {1, 2, 3};
  float y[2];
  int mismatches = 0;
  for (bitlinear::Isa isa : bitlinear::all_isas) {
    if (!bitlinear::detail::isa_implemented(isa)) continue;
    bitlinear::Options options;
    options.isa = isa;
    const auto layer = bitlinear::TernaryLinear::from_float(w, 2, 3, nullptr, options);
    layer.forward(x, 1, y);
    mismatches += y[0] != y[0];
  }
  return mismatches + static_cast<int>(bitlinear::active_isa().size() == 0);
}
