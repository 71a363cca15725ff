// <windows.h> before bitlinear (see windows_api_check.cpp).
#include <windows.h>

#include <bitlinear/bitlinear.hpp>

int other_translation_unit_sse2() { return ::IsProcessorFeaturePresent(PF_XMMI64_INSTRUCTIONS_AVAILABLE); }
