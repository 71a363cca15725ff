// One translation unit's view of the library, compiled twice with different -m flags (see CMakeLists.txt).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

struct TranslationUnitReport {
  std::vector<float> ternary_y, binary_y;  // forward of a fixed layer and input with the scalar family forced
  const void* quantize_row_address;        // this TU's copy of an inline scalar helper
  std::string layer_type_name;             // mangled name of TernaryLinear as this TU sees it
};

TranslationUnitReport report_from_simd_flags_tu();
TranslationUnitReport report_from_plain_tu();
