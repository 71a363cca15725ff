// Windows only (the MinGW leg runs it under wine): bitlinear declares IsProcessorFeaturePresent itself instead of
// including <windows.h>. That declaration must agree with <windows.h> whichever comes first (this TU includes
// bitlinear first, windows_api_check_other.cpp the other way round), link against kernel32, and answer:
// PF_XMMI64_INSTRUCTIONS_AVAILABLE (SSE2) is present on every x64 CPU. The constant bitlinear uses for
// PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE is checked against winnt.h here too.
#include <bitlinear/bitlinear.hpp>

#include <windows.h>

#include <cstdio>
#include <cstdlib>
#include <string>

static_assert(PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE == 43, "isa.hpp hard-codes 43 for Windows on ARM dotprod");

int other_translation_unit_sse2();

int main() {
  const int sse2 = ::IsProcessorFeaturePresent(PF_XMMI64_INSTRUCTIONS_AVAILABLE);
  const int other = other_translation_unit_sse2();
  const std::string automatic(bitlinear::active_isa());
  std::printf("IsProcessorFeaturePresent(SSE2) = %d here, %d in the other TU; automatic family %s\n", sse2, other,
              automatic.c_str());
  const char* expected = std::getenv("BITLINEAR_EXPECT_AUTOMATIC");
  const bool family_ok = expected == nullptr || *expected == '\0' || automatic == expected;
  if (!family_ok) std::printf("FAIL: expected the automatic family %s\n", expected);
  return sse2 != 0 && other != 0 && family_ok ? 0 : 1;
}
