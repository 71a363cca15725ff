// x86 feature detection through the MSVC intrinsics (__cpuidex, _xgetbv), the code MSVC compiles, built here by
// GCC (whose <cpuid.h> and <immintrin.h> declare both) via the BITLINEAR_TEST_MSVC_CPUID hook of isa.hpp. The
// leaves it reads must equal those read with GCC's own __cpuid_count and an xgetbv instruction, and the
// families decoded from them must be those the CPU has (the automatic family is BITLINEAR_EXPECT_AUTOMATIC
// when set).
#define BITLINEAR_TEST_MSVC_CPUID 1
#include <bitlinear/bitlinear.hpp>

#include <cpuid.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

int main() {
  const bitlinear::detail::X86CpuidLeaves msvc = bitlinear::detail::read_x86_cpuid();
  unsigned a = 0, b = 0, c = 0, d = 0;
  int failures = 0;
  const auto expect = [&](const char* what, std::uint64_t got, std::uint64_t want) {
    std::printf("%-12s msvc path %#llx, gnu %#llx\n", what, static_cast<unsigned long long>(got),
                static_cast<unsigned long long>(want));
    if (got != want) ++failures;
  };
  __cpuid_count(0, 0, a, b, c, d);
  expect("max leaf", msvc.max_leaf, a);
  __cpuid_count(1, 0, a, b, c, d);
  expect("leaf 1 ecx", msvc.leaf1_ecx, c);
  __cpuid_count(7, 0, a, b, c, d);
  expect("leaf 7 eax", msvc.leaf7_eax, a);
  expect("leaf 7 ebx", msvc.leaf7_ebx, b);
  expect("leaf 7 ecx", msvc.leaf7_ecx, c);
  __cpuid_count(7, 1, a, b, c, d);
  expect("leaf 7.1 eax", msvc.leaf7_1_eax, msvc.leaf7_eax >= 1 ? a : 0);
  std::uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  expect("xcr0", msvc.xcr0, (static_cast<std::uint64_t>(hi) << 32) | lo);
  const char* expected = std::getenv("BITLINEAR_EXPECT_AUTOMATIC");
  const std::string automatic(bitlinear::active_isa());
  std::printf("automatic family: %s\n", automatic.c_str());
  if (expected != nullptr && *expected != '\0' && automatic != expected) {
    std::printf("FAIL: expected %s\n", expected);
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
