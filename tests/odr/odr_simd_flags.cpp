// Compiled with SIMD -m flags (x86: -mavx2 -mfma -mavx512f -mavx512bw; aarch64: +dotprod).
#include "odr_tu_body.inc"
TranslationUnitReport report_from_simd_flags_tu() { return make_report(); }
