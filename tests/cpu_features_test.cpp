// x86 feature decoding (isa.hpp, decode_x86_features) from synthetic cpuid leaves: each family needs every one
// of its instruction bits and the OS saving its registers (XCR0). On x86-64, decoding the leaves of this CPU
// gives cpu_features().
#include <gtest/gtest.h>

#include <bitlinear/bitlinear.hpp>

namespace {

using bitlinear::CpuFeatures;
using bitlinear::detail::decode_x86_features;
using bitlinear::detail::X86CpuidLeaves;

constexpr unsigned bit(int n) { return 1u << n; }

// A Sapphire Rapids-like CPU under an OS that saves every state: all x86 families.
X86CpuidLeaves full() {
  X86CpuidLeaves r;
  r.max_leaf = 0x20;
  r.leaf1_ecx = bit(12) | bit(27) | bit(28) | bit(29);            // FMA, OSXSAVE, AVX, F16C
  r.leaf7_eax = 1;                                               // subleaf 1 exists
  r.leaf7_ebx = bit(5) | bit(16) | bit(30) | bit(31);            // AVX2, AVX512F, AVX512BW, AVX512VL
  r.leaf7_ecx = bit(1) | bit(11);                                // AVX512_VBMI, AVX512_VNNI
  r.leaf7_1_eax = bit(4);                                        // AVX-VNNI
  r.xcr0 = 0xE7;                                                 // x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  return r;
}

std::string describe(const CpuFeatures& f) {
  return std::string("avx2=") + (f.avx2 ? "1" : "0") + " avxvnni=" + (f.avxvnni ? "1" : "0") +
         " avx512=" + (f.avx512 ? "1" : "0") + " avx512vbmi=" + (f.avx512vbmi ? "1" : "0") +
         " neon=" + (f.neon ? "1" : "0") + " dotprod=" + (f.dotprod ? "1" : "0");
}

TEST(CpuFeatures, AllFamiliesWhenEverythingIsPresent) {
  EXPECT_EQ(describe(decode_x86_features(full())), "avx2=1 avxvnni=1 avx512=1 avx512vbmi=1 neon=0 dotprod=0");
}

TEST(CpuFeatures, EachMissingBitRemovesItsFamilies) {
  struct Case {
    const char* what;
    void (*edit)(X86CpuidLeaves&);
    const char* expect;
  };
  const Case cases[] = {
      {"no OSXSAVE", [](X86CpuidLeaves& r) { r.leaf1_ecx &= ~bit(27); }, "avx2=0 avxvnni=0 avx512=0 avx512vbmi=0"},
      {"no AVX", [](X86CpuidLeaves& r) { r.leaf1_ecx &= ~bit(28); }, "avx2=0 avxvnni=0 avx512=0 avx512vbmi=0"},
      {"no FMA", [](X86CpuidLeaves& r) { r.leaf1_ecx &= ~bit(12); }, "avx2=0 avxvnni=0 avx512=0 avx512vbmi=0"},
      {"no F16C", [](X86CpuidLeaves& r) { r.leaf1_ecx &= ~bit(29); }, "avx2=0 avxvnni=0 avx512=0 avx512vbmi=0"},
      {"no leaf 7", [](X86CpuidLeaves& r) { r.max_leaf = 6; }, "avx2=0 avxvnni=0 avx512=0 avx512vbmi=0"},
      {"no AVX2", [](X86CpuidLeaves& r) { r.leaf7_ebx &= ~bit(5); }, "avx2=0 avxvnni=0 avx512=0 avx512vbmi=0"},
      {"OS saves no ymm", [](X86CpuidLeaves& r) { r.xcr0 = 0x3; }, "avx2=0 avxvnni=0 avx512=0 avx512vbmi=0"},
      {"OS saves no zmm", [](X86CpuidLeaves& r) { r.xcr0 = 0x7; }, "avx2=1 avxvnni=1 avx512=0 avx512vbmi=0"},
      {"OS saves no opmask", [](X86CpuidLeaves& r) { r.xcr0 = 0xC7; }, "avx2=1 avxvnni=1 avx512=0 avx512vbmi=0"},
      {"no AVX512F", [](X86CpuidLeaves& r) { r.leaf7_ebx &= ~bit(16); }, "avx2=1 avxvnni=1 avx512=0 avx512vbmi=0"},
      {"no AVX512BW", [](X86CpuidLeaves& r) { r.leaf7_ebx &= ~bit(30); }, "avx2=1 avxvnni=1 avx512=0 avx512vbmi=0"},
      {"no AVX512VL", [](X86CpuidLeaves& r) { r.leaf7_ebx &= ~bit(31); }, "avx2=1 avxvnni=1 avx512=0 avx512vbmi=0"},
      {"no AVX512_VNNI", [](X86CpuidLeaves& r) { r.leaf7_ecx = 0; }, "avx2=1 avxvnni=1 avx512=0 avx512vbmi=0"},
      {"no AVX-VNNI", [](X86CpuidLeaves& r) { r.leaf7_1_eax = 0; }, "avx2=1 avxvnni=0 avx512=1 avx512vbmi=1"},
      {"no AVX512_VBMI", [](X86CpuidLeaves& r) { r.leaf7_ecx &= ~bit(1); }, "avx2=1 avxvnni=1 avx512=1 avx512vbmi=0"},
      // VBMI without the rest of the avx512 family gives neither.
      {"VBMI alone", [](X86CpuidLeaves& r) { r.leaf7_ebx &= ~bit(16); }, "avx2=1 avxvnni=1 avx512=0 avx512vbmi=0"},
      // A stale AVX-VNNI bit in a subleaf the CPU does not declare is ignored.
      {"no subleaf 1", [](X86CpuidLeaves& r) { r.leaf7_eax = 0; }, "avx2=1 avxvnni=0 avx512=1 avx512vbmi=1"},
  };
  for (const Case& c : cases) {
    X86CpuidLeaves r = full();
    c.edit(r);
    EXPECT_EQ(describe(decode_x86_features(r)), std::string(c.expect) + " neon=0 dotprod=0") << c.what;
  }
}

#if BITLINEAR_ARCH_X86_64
TEST(CpuFeatures, ThisCpuDecodesToCpuFeatures) {
  EXPECT_EQ(describe(decode_x86_features(bitlinear::detail::read_x86_cpuid())), describe(bitlinear::cpu_features()));
}
#endif

}  // namespace
