// The code paths MSVC compiles, run here: this translation unit is built by GCC with no_gnu_shim.hpp
// force-included (no __GNUC__/__clang__ in bitlinear's headers) and with -m flags for every x86 kernel family,
// as cl.exe builds the headers (it needs no target attributes). Every family this CPU runs must equal the
// scalar family built the ordinary way in no_gnu_reference.cpp, bit for bit. GCC contracts a*b + c into an
// FMA by default (-ffp-contract=fast) and -mfma lets it: without the volatile anti-FMA barriers of the non-GNU
// paths the binary outputs differ from the reference (checked when the barriers were written).
#include <bitlinear/bitlinear.hpp>

#if defined(__GNUC__) || defined(__clang__)
#error "no_gnu_shim.hpp must be force-included: bitlinear must not see __GNUC__ or __clang__ here"
#endif

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "no_gnu_reference.hpp"

namespace {

std::vector<float> values(std::size_t n, std::size_t seed, float scale) {
  std::vector<float> v(n);
  // Integer arithmetic only, so that no FMA can change the inputs between the two translation units.
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<float>(static_cast<long>((i * 7919 + seed * 104729) % 2001) - 1000) / (1000.0f / scale);
  }
  return v;
}

}  // namespace

int main() {
  struct Shape {
    std::size_t out, in, batch;
  };
  const Shape shapes[] = {{70, 300, 1}, {17, 129, 3}, {64, 257, 9}, {129, 1000, 65}, {33, 4099, 2}};
  int failures = 0, checked = 0;
  for (const Shape& s : shapes) {
    for (bool ternary : {true, false}) {
      const std::vector<float> w = values(s.out * s.in, 1, 1.0f), x = values(s.batch * s.in, 2, 3.0f),
                               bias = values(s.out, 3, 5.0f);
      const std::vector<float> reference = no_gnu_reference_forward(ternary, w, bias, x, s.out, s.in, s.batch);
      for (bitlinear::Isa isa : bitlinear::all_isas) {
        if (!bitlinear::detail::isa_runnable(isa)) continue;
        bitlinear::Options options;
        options.isa = isa;
        std::vector<float> y(s.batch * s.out);
        if (ternary) {
          bitlinear::TernaryLinear::from_float(w.data(), s.out, s.in, bias.data(), options).forward(x.data(), s.batch,
                                                                                                   y.data());
        } else {
          bitlinear::BinaryLinear::from_float(w.data(), s.out, s.in, bias.data(), options).forward(x.data(), s.batch,
                                                                                                  y.data());
        }
        ++checked;
        if (std::memcmp(y.data(), reference.data(), y.size() * sizeof(float)) != 0) {
          ++failures;
          std::printf("FAIL: %s %s %zux%zu batch %zu differs from the reference\n", ternary ? "ternary" : "binary",
                      std::string(bitlinear::isa_name(isa)).c_str(), s.out, s.in, s.batch);
        }
      }
    }
  }
  std::printf("%d layer/family cases checked, %d failures; families run:", checked, failures);
  for (bitlinear::Isa isa : bitlinear::all_isas) {
    if (bitlinear::detail::isa_runnable(isa)) std::printf(" %s", std::string(bitlinear::isa_name(isa)).c_str());
  }
  std::printf("\n");
  // Registered only on CPUs with every x86 family (tests/CMakeLists.txt): a missing one means detection broke.
  for (bitlinear::Isa isa : {bitlinear::Isa::avx2, bitlinear::Isa::avxvnni, bitlinear::Isa::avx512}) {
    if (!bitlinear::detail::isa_runnable(isa)) {
      std::printf("FAIL: %s does not run, but the CPU has it\n", std::string(bitlinear::isa_name(isa)).c_str());
      ++failures;
    }
  }
  return failures == 0 && checked > 0 ? 0 : 1;
}
